// Drives a ``TransferScheduler`` with real connections: whenever something changes (a chunk
// queued, a chunk confirmed, a connection opened or lost, a link stalled) every connection with
// room takes its next chunk. Also watches each connection's acknowledged bytes, so a link that
// goes quiet hands its chunks back within the stall timeout.
import Synchronization
import XTransport

/// Per-link and per-Pi figures for progress lines.
public struct TransferFigures: Sendable, Equatable {
    /// Bytes confirmed, by link ("local → Pi address") and by Pi.
    public var bytesByLink: [String: UInt64] = [:]
    public var bytesByTarget: [String: UInt64] = [:]
    /// Bytes sent of chunks the Pi already had (a copy from the endgame or a stalled link landing second).
    public var bytesDuplicate: UInt64 = 0
    public var chunksSent = 0
    public var endgameCopies = 0
    public var requeued = 0
    public var mismatches = 0
    public var connections = 0
    public var stalledConnections = 0
}

/// Sends chunks to Pis over a bond. Holds each chunk's bytes until every Pi that needs it has
/// confirmed it, and no more than ``limit`` bytes at once (``add(_:bytes:targets:)`` waits).
public final class ChunkSender: Sendable {
    /// Most chunk bytes held at once.
    public let limit: Int
    private let state: Mutex<State>
    private let clock = ContinuousClock()
    private let start: ContinuousClock.Instant

    struct State {
        var scheduler: TransferScheduler
        var bytes: [ChunkID: [UInt8]] = [:]
        var held = 0
        var connections: [Int: BackupConnection] = [:]
        var acknowledged: [Int: UInt64] = [:]
        var figures = TransferFigures()
        var roomWaiters: [CheckedContinuation<Bool, Never>] = []
        var doneWaiters: [CheckedContinuation<Void, Never>] = []
        var fatal: BackupError?
    }

    public init(limit: Int = 128 << 20, settings: TransferScheduler.Settings = .init()) {
        self.limit = limit
        state = Mutex(State(scheduler: TransferScheduler(settings: settings)))
        start = clock.now
    }

    private var now: Int64 {
        let elapsed = clock.now - start
        return elapsed.components.seconds * 1_000_000_000 + elapsed.components.attoseconds / 1_000_000_000
    }

    /// A failure that ends the run (a full store, a failing disk), if one happened.
    public var fatalError: BackupError? { state.withLock { $0.fatal } }

    public var figures: TransferFigures {
        state.withLock { state in
            var figures = state.figures
            figures.endgameCopies = state.scheduler.endgameCopies
            figures.requeued = state.scheduler.requeued
            figures.connections = state.connections.count
            figures.stalledConnections = state.connections.keys.filter { state.scheduler.isStalled($0) }.count
            return figures
        }
    }

    /// Bytes queued and not yet taken by a connection, per Pi.
    public func queuedBytes(for target: String) -> Int { state.withLock { $0.scheduler.queuedBytes(for: target) } }

    /// Chunks still to confirm.
    public var remaining: Int { state.withLock { $0.scheduler.remaining } }

    /// Adds a connection (from the bond) and starts using it.
    public func attach(_ connection: BackupConnection) {
        let now = self.now
        state.withLock { state in
            state.connections[connection.number] = connection
            state.scheduler.addConnection(connection.number, target: connection.target, link: connection.link, now: now)
        }
        dispatch()
    }

    /// Queues a chunk for the given Pis. Waits while ``limit`` bytes are held.
    public func add(_ id: ChunkID, bytes: [UInt8], targets: [String]) async {
        guard !targets.isEmpty else { return }
        while true {
            let admitted = await withCheckedContinuation { (continuation: CheckedContinuation<Bool, Never>) in
                let admitted = state.withLock { state -> Bool in
                    guard state.held == 0 || state.held + bytes.count <= limit || state.fatal != nil || state.bytes[id] != nil else {
                        state.roomWaiters.append(continuation)
                        return false
                    }
                    if state.bytes[id] == nil {
                        state.bytes[id] = bytes
                        state.held += bytes.count
                    }
                    for target in targets { state.scheduler.add(TransferJob(chunk: id, target: target, size: bytes.count)) }
                    return true
                }
                if admitted { continuation.resume(returning: true) }
            }
            if admitted { break }
        }
        dispatch()
    }

    /// Waits until every chunk queued is confirmed (or a fatal error).
    public func finish() async throws(BackupError) {
        state.withLock { $0.scheduler.finishAdding() }
        dispatch()
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let done = state.withLock { state -> Bool in
                if state.scheduler.isDone || state.fatal != nil { return true }
                state.doneWaiters.append(continuation)
                return false
            }
            if done { continuation.resume() }
        }
        if let fatal = fatalError { throw fatal }
    }

    /// Checks every connection's acknowledged bytes and marks stalls; call every ~100 ms.
    public func watch() async {
        let connections = state.withLock { Array($0.connections.values) }
        var acked: [Int: UInt64] = [:]
        var idle: Set<Int> = []
        var closed: [Int] = []
        for connection in connections {
            if connection.isClosed { closed.append(connection.number); continue }
            guard let stats = await connection.stats() else { continue }
            acked[connection.number] = stats.payloadBytesAcknowledged
            // Nothing on the wire: the Pi is slow to take what it was sent (its disk), and its
            // receive window holds the sender back. That is not a failing link.
            if stats.bytesInFlight == 0 { idle.insert(connection.number) }
        }
        let now = self.now
        state.withLock { state in
            for (id, value) in acked {
                state.scheduler.acknowledged(id, bytes: value, now: now)
                guard value > state.acknowledged[id] ?? 0 || idle.contains(id) else { continue }
                state.acknowledged[id] = value
                state.scheduler.progressed(id, now: now)
            }
            for id in closed {
                state.connections[id] = nil
                state.scheduler.removeConnection(id)
            }
            _ = state.scheduler.checkStalls(now: now)
        }
        dispatch()
    }

    /// Hands every connection with room its next chunks.
    private func dispatch() {
        let now = self.now
        let sends = state.withLock { state -> [(BackupConnection, ChunkID, [UInt8])] in
            guard state.fatal == nil else { return [] }
            var sends: [(BackupConnection, ChunkID, [UInt8])] = []
            for (id, connection) in state.connections.sorted(by: { $0.key < $1.key }) {
                while let chunk = state.scheduler.next(for: id, now: now) {
                    guard let bytes = state.bytes[chunk] else { continue }
                    sends.append((connection, chunk, bytes))
                }
            }
            return sends
        }
        for (connection, chunk, bytes) in sends {
            Task { await self.send(chunk, bytes, on: connection) }
        }
    }

    private func send(_ chunk: ChunkID, _ bytes: [UInt8], on connection: BackupConnection) async {
        let result: PutResult
        do {
            result = try await connection.put(chunk, bytes)
        } catch {
            state.withLock { state in
                state.connections[connection.number] = nil
                state.scheduler.removeConnection(connection.number)
            }
            dispatch()
            return
        }
        let now = self.now
        let (room, done) = state.withLock { state -> ([CheckedContinuation<Bool, Never>], [CheckedContinuation<Void, Never>]) in
            switch result {
            case .stored, .present:
                if result == .present { state.figures.bytesDuplicate += UInt64(bytes.count) }
                state.scheduler.completed(chunk, target: connection.target, on: connection.number, now: now)
                state.figures.bytesByLink[connection.link, default: 0] += UInt64(bytes.count)
                state.figures.bytesByTarget[connection.target, default: 0] += UInt64(bytes.count)
                state.figures.chunksSent += 1
                if !state.scheduler.stillNeeded(chunk), let held = state.bytes.removeValue(forKey: chunk) {
                    state.held -= held.count
                }
            case .mismatch:
                state.figures.mismatches += 1
                state.scheduler.failed(chunk, target: connection.target, on: connection.number)
            case .quotaFull:
                if state.fatal == nil {
                    let full = BackupError.quotaFull(used: connection.welcome.usedBytes, quota: connection.welcome.quotaBytes)
                    state.fatal = .io("\(connection.target): \(full.description)")
                }
            case .failed:
                state.fatal = state.fatal ?? .io("\(connection.target) cannot write chunks: check its disk (full, read-only or failing) and run the backup again")
            }
            let room = state.roomWaiters
            state.roomWaiters = []
            var done: [CheckedContinuation<Void, Never>] = []
            if state.scheduler.isDone || state.fatal != nil {
                done = state.doneWaiters
                state.doneWaiters = []
            }
            return (room, done)
        }
        for continuation in room { continuation.resume(returning: false) }
        for continuation in done { continuation.resume() }
        dispatch()
    }
}
