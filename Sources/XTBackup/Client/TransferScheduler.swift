// Which connection carries which chunk: Multiplexity's inverse multiplexing, pull-based. Every
// connection takes the next chunk for its Pi when it has room, so a fast link takes many and a
// slow or lossy one few, and none waits for another. A connection that stops making progress
// hands its chunks back; at the end, idle fast links take copies of the chunks still out on slow
// ones (BitTorrent's endgame). Once nothing more will be added, a connection takes a chunk
// only if it would land it before the others could (by each connection's delivery rate), so
// every link finishes at about the same time instead of the slowest one trailing. Sans-IO: the caller reports events with the time and acts on
// what comes back.
import DequeModule
import Foundation

/// One chunk to deliver to one Pi.
public struct TransferJob: Hashable, Sendable {
    public var chunk: ChunkID
    public var target: String
    /// Bytes on the wire (the sealed chunk).
    public var size: Int

    public init(chunk: ChunkID, target: String, size: Int) {
        self.chunk = chunk
        self.target = target
        self.size = size
    }
}

/// The scheduler's state. Times are nanoseconds on any monotonic clock.
public struct TransferScheduler: Sendable {
    public struct Settings: Sendable {
        /// Bytes a connection may have out (sent, not yet confirmed) before it takes another chunk.
        public var window: Int = 2 << 20
        /// A connection with chunks out and no progress for this long is stalled: its chunks go back to the queue.
        public var stallTimeout: Int64 = 600_000_000
        /// In the endgame, a chunk is copied to a connection at least this many times faster than the one it is on.
        public var endgameSpeedup: Double = 1.5
        /// Most copies of one chunk out at once (the endgame's copies included).
        public var maximumCopies = 2
        public init() {}
    }

    struct Connection {
        var target: String
        /// The path it runs over (local and Pi address): connections on one path share it, so a
        /// copy from one to another lands no sooner.
        var link: String
        var out: [ChunkID: Int64] = [:]  // chunk → when it was taken
        var outBytes = 0
        var lastProgress: Int64
        var stalled = false
        /// Bytes per second, from completed chunks (exponentially weighted). A chunk's time
        /// includes its wait behind the others out on the same connection, so this reads low.
        var rate: Double = 0
        /// Bytes per second the transport had acknowledged while chunks were out
        /// (exponentially weighted over about a second; 0 until measured).
        var deliveryRate: Double = 0
        var acknowledged: UInt64 = 0
        var acknowledgedAt: Int64?
        var delivered: UInt64 = 0

        /// The best estimate of how fast this connection delivers, bytes per second (0: unknown).
        var speed: Double { deliveryRate > 0 ? deliveryRate : rate }
    }

    public let settings: Settings
    private var queues: [String: Deque<ChunkID>] = [:]
    private var queued: Set<TransferJob> = []
    private var sizes: [ChunkID: Int] = [:]
    /// Chunk and target → connections carrying it now.
    private var carriers: [TransferJob: Set<Int>] = [:]
    private var connections: [Int: Connection] = [:]
    /// Jobs added and not yet confirmed, and how many Pis still wait for each chunk.
    private var pending: Set<TransferJob> = []
    private var needs: [ChunkID: Int] = [:]
    public private(set) var completedJobs = 0
    public private(set) var endgameCopies = 0
    public private(set) var requeued = 0
    /// Set once no more jobs will be added: only then is an empty queue the end (the endgame).
    public private(set) var allAdded = false

    public init(settings: Settings = Settings()) { self.settings = settings }

    /// Jobs not yet confirmed (queued or out).
    public var remaining: Int { pending.count }
    public var isDone: Bool { pending.isEmpty }

    /// Queued bytes not yet taken, per target.
    public func queuedBytes(for target: String) -> Int {
        (queues[target] ?? []).reduce(0) { $0 + (sizes[$1] ?? 0) }
    }

    /// Adds a job (ignored if it is already pending).
    public mutating func add(_ job: TransferJob) {
        let key = TransferJob(chunk: job.chunk, target: job.target, size: 0)
        guard pending.insert(key).inserted else { return }
        sizes[job.chunk] = job.size
        needs[job.chunk, default: 0] += 1
        queued.insert(key)
        queues[job.target, default: []].append(job.chunk)
    }

    /// No more jobs will be added: from now on an empty queue means the end, and idle fast
    /// connections take copies of what slow ones still carry.
    public mutating func finishAdding() { allAdded = true }

    /// A connection to `target` over `link` (nil: a path of its own) is ready.
    public mutating func addConnection(_ id: Int, target: String, link: String? = nil, now: Int64) {
        connections[id] = Connection(target: target, link: link ?? "#\(id)", lastProgress: now)
    }

    /// A connection ended: its chunks go back to the front of its Pi's queue (unless another
    /// connection carries them).
    /// - Returns: the chunks handed back.
    @discardableResult
    public mutating func removeConnection(_ id: Int) -> [ChunkID] {
        guard let connection = connections.removeValue(forKey: id) else { return [] }
        var handedBack: [ChunkID] = []
        for chunk in connection.out.keys.sorted(by: { connection.out[$0]! > connection.out[$1]! }) {
            let key = TransferJob(chunk: chunk, target: connection.target, size: 0)
            carriers[key]?.remove(id)
            if carriers[key]?.isEmpty ?? false { carriers[key] = nil }
            if carriers[key] == nil, !queued.contains(key), pending.contains(key) {
                queued.insert(key)
                queues[connection.target, default: []].prepend(chunk)
                handedBack.append(chunk)
                requeued += 1
            }
        }
        return handedBack
    }

    /// The next chunk for a connection with room, or nil (no room, stalled, nothing to do).
    public mutating func next(for id: Int, now: Int64) -> ChunkID? {
        guard var connection = connections[id], !connection.stalled else { return nil }
        let target = connection.target
        // Room: below the window, and always room for one chunk.
        guard connection.out.isEmpty || connection.outBytes < settings.window else { return nil }
        var chosen: ChunkID?
        while var queue = queues[target], let chunk = queue.first {
            let key = TransferJob(chunk: chunk, target: target, size: 0)
            guard queued.contains(key), pending.contains(key) else {
                queue.removeFirst()
                queues[target] = queue
                queued.remove(key)
                continue
            }
            if allAdded, !landsInTime(sizes[chunk] ?? 0, on: id, connection: connection) { return nil }
            queue.removeFirst()
            queues[target] = queue
            queued.remove(key)
            chosen = chunk
            break
        }
        if chosen == nil && allAdded { chosen = endgameChoice(for: id, connection: connection, now: now) }
        guard let chunk = chosen else { return nil }
        let key = TransferJob(chunk: chunk, target: target, size: 0)
        carriers[key, default: []].insert(id)
        connection.out[chunk] = now
        connection.outBytes += sizes[chunk] ?? 0
        connections[id] = connection
        return chunk
    }

    /// Whether a chunk of `size` bytes taken now by connection `id` would land no later than
    /// the transfer to its Pi can end (the bytes queued and out over the connections' summed
    /// rates), or no later than on the connection that would land it first. With the last
    /// chunks, a slow connection leaves them to faster ones rather than be the one everything
    /// waits for. Unknown rates: it takes the chunk.
    private func landsInTime(_ size: Int, on id: Int, connection: Connection) -> Bool {
        guard connection.speed > 0 else { return true }
        var totalRate = 0.0
        var bytes = Double(queuedBytes(for: connection.target))
        var soonest = Double.infinity
        for other in connections.values where other.target == connection.target && !other.stalled {
            guard other.speed > 0 else { return true }
            totalRate += other.speed
            bytes += Double(other.outBytes)
            soonest = min(soonest, Double(other.outBytes + size) / other.speed)
        }
        let mine = Double(connection.outBytes + size) / connection.speed
        return mine <= Self.tailSlack * max(bytes / max(totalRate, 1), soonest)
    }

    /// How much later than the estimate a chunk may land and still be taken (rates are noisy).
    static let tailSlack = 1.1

    /// With the queue empty: a chunk out on a much slower connection to the same Pi over
    /// another path, or on a stalled one. (Over the same path a copy only competes with the
    /// original: on loopback a fifth of an incremental run's bytes were such copies.)
    private mutating func endgameChoice(for id: Int, connection: Connection, now: Int64) -> ChunkID? {
        var best: (chunk: ChunkID, since: Int64)?
        for (other, theirs) in connections where other != id && theirs.target == connection.target {
            let faster = theirs.stalled
                || (theirs.link != connection.link && connection.speed >= settings.endgameSpeedup * max(theirs.speed, 1))
            guard faster else { continue }
            for (chunk, since) in theirs.out where connection.out[chunk] == nil {
                let key = TransferJob(chunk: chunk, target: connection.target, size: 0)
                guard (carriers[key]?.count ?? 0) < settings.maximumCopies else { continue }
                if best == nil || since < best!.since { best = (chunk, since) }
            }
        }
        if best != nil { endgameCopies += 1 }
        return best?.chunk
    }

    /// A Pi confirmed a chunk (stored, or already there).
    /// - Returns: the other connections still carrying a copy (they may drop it).
    @discardableResult
    public mutating func completed(_ chunk: ChunkID, target: String, on id: Int, now: Int64) -> Set<Int> {
        let key = TransferJob(chunk: chunk, target: target, size: 0)
        if var connection = connections[id], let since = connection.out.removeValue(forKey: chunk) {
            let size = sizes[chunk] ?? 0
            connection.outBytes -= size
            connection.delivered += UInt64(size)
            connection.lastProgress = now
            connection.stalled = false
            let seconds = max(Double(now - since) / 1e9, 0.001)
            let sample = Double(size) / seconds
            connection.rate = connection.rate == 0 ? sample : 0.7 * connection.rate + 0.3 * sample
            connections[id] = connection
        } else if var connection = connections[id] {
            // A copy landing after another already did: the link is alive all the same.
            connection.lastProgress = now
            connection.stalled = false
            connections[id] = connection
        }
        let others = (carriers.removeValue(forKey: key) ?? []).subtracting([id])
        for other in others {
            guard var connection = connections[other], connection.out.removeValue(forKey: chunk) != nil else { continue }
            connection.outBytes -= sizes[chunk] ?? 0
            connections[other] = connection
        }
        queued.remove(key)
        guard pending.remove(key) != nil else { return others }  // a second copy landing
        completedJobs += 1
        needs[chunk, default: 1] -= 1
        if needs[chunk] == 0 {
            needs[chunk] = nil
            sizes[chunk] = nil
        }
        return others
    }

    /// Whether any Pi still waits for the chunk.
    public func stillNeeded(_ chunk: ChunkID) -> Bool { needs[chunk] != nil }

    /// The Pi refused a copy (damaged on the way) or the send failed: it goes back to the front.
    public mutating func failed(_ chunk: ChunkID, target: String, on id: Int) {
        let key = TransferJob(chunk: chunk, target: target, size: 0)
        guard pending.contains(key) else { return }
        if var connection = connections[id], connection.out.removeValue(forKey: chunk) != nil {
            connection.outBytes -= sizes[chunk] ?? 0
            connections[id] = connection
        }
        carriers[key]?.remove(id)
        if carriers[key]?.isEmpty ?? false { carriers[key] = nil }
        if carriers[key] == nil, !queued.contains(key) {
            queued.insert(key)
            queues[target, default: []].prepend(chunk)
            requeued += 1
        }
    }

    /// The transport saw bytes acknowledged on a connection: it is alive.
    public mutating func progressed(_ id: Int, now: Int64) {
        guard var connection = connections[id] else { return }
        connection.lastProgress = now
        connection.stalled = false
        connections[id] = connection
    }

    /// The transport's running total of payload bytes acknowledged on a connection: measures
    /// its delivery rate over the times it has chunks out. Call it every ~100 ms.
    public mutating func acknowledged(_ id: Int, bytes: UInt64, now: Int64) {
        guard var connection = connections[id] else { return }
        defer { connections[id] = connection }
        guard let since = connection.acknowledgedAt, !connection.out.isEmpty, bytes >= connection.acknowledged else {
            connection.acknowledged = bytes
            connection.acknowledgedAt = now
            return
        }
        guard now - since >= 20_000_000 else { return }
        let seconds = Double(now - since) / 1e9
        let sample = Double(bytes - connection.acknowledged) / seconds
        let weight = 1 - exp(-seconds / Self.rateTimeConstant)
        connection.deliveryRate = connection.deliveryRate == 0 ? sample : connection.deliveryRate + weight * (sample - connection.deliveryRate)
        connection.acknowledged = bytes
        connection.acknowledgedAt = now
    }

    /// Seconds over which the delivery rate is averaged.
    static let rateTimeConstant = 1.0

    /// Marks connections with chunks out and no progress for ``Settings/stallTimeout`` as
    /// stalled, handing their chunks back (they stay out too, in case the link recovers).
    /// - Returns: the connections that stalled now.
    public mutating func checkStalls(now: Int64) -> [Int] {
        var stalledNow: [Int] = []
        for (id, var connection) in connections where !connection.stalled && !connection.out.isEmpty {
            guard now - connection.lastProgress >= settings.stallTimeout else { continue }
            connection.stalled = true
            connections[id] = connection
            stalledNow.append(id)
            for chunk in connection.out.keys {
                let key = TransferJob(chunk: chunk, target: connection.target, size: 0)
                let others = (carriers[key] ?? []).subtracting([id]).filter { connections[$0].map { !$0.stalled } ?? false }
                if others.isEmpty, !queued.contains(key), pending.contains(key) {
                    queued.insert(key)
                    queues[connection.target, default: []].prepend(chunk)
                    requeued += 1
                }
            }
        }
        return stalledNow
    }

    /// Whether a connection is stalled now.
    public func isStalled(_ id: Int) -> Bool { connections[id]?.stalled ?? false }

    /// Chunks a connection has out.
    public func outstanding(on id: Int) -> [ChunkID] { connections[id].map { Array($0.out.keys) } ?? [] }

    /// Bytes a connection has delivered.
    public func delivered(on id: Int) -> UInt64 { connections[id]?.delivered ?? 0 }
}
