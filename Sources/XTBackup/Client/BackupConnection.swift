// One client connection to a Pi's store: an xtransport session with requests matched to their
// answers. A backup holds several to each Pi, over several local addresses (Multiplexity's
// inverse multiplexing); each is one of the bond's links.
import Synchronization
public import XTransport
public import XTransportNIO

/// A session to one Pi's store.
public final class BackupConnection: Sendable {
    /// The Pi's name.
    public let target: String
    /// The link it runs over: "local address → Pi address".
    public let link: String
    /// A number unique in this process.
    public let number: Int
    let session: TransportSession
    private let pending = Mutex(Pending())
    private static let counter = Atomic<Int>(0)

    struct Pending {
        var requests: [UInt32: CheckedContinuation<BackupMessage, any Error>] = [:]
        var puts: [ChunkID: [CheckedContinuation<PutResult, any Error>]] = [:]
        var gets: [ChunkID: [CheckedContinuation<[UInt8]?, any Error>]] = [:]
        var pages: [UInt32: [BackupMessage]] = [:]
        var nextRequest: UInt32 = 1
        var closed: BackupError?
    }

    /// The store's figures when the session opened.
    public let welcome: StoreFigures

    /// Opens a session and says hello.
    /// - Throws: ``BackupError/unreachable(_:)`` if the Pi does not answer or refuses the key.
    public static func open(endpoint: TransportEndpoint, to address: NetworkAddress, key: PublicKey, target: String) async throws(BackupError) -> BackupConnection {
        let link = "\(endpoint.localAddress) → \(address)"
        let session: TransportSession
        do {
            session = try await endpoint.connect(to: address, peerKey: key)
            try await session.configure(channel: BackupChannel.control, .messages)
            try await session.configure(channel: BackupChannel.bulk, ChannelConfiguration(mode: .messages, priority: .bulk))
            try await session.send(BackupMessage.hello(version: BackupChannel.version).encoded, on: BackupChannel.control)
        } catch {
            throw .unreachable("\(target) did not answer at \(address) (\(error)): check that `xt backup serve` runs there, its key, and that it lists this node's key")
        }
        var iterator = session.inbound.makeAsyncIterator()
        let first: BackupMessage
        do {
            guard let item = try await iterator.next(), case .message(let message) = item else {
                throw BackupError.unreachable("\(target) closed the session at once: it may not list this node's key")
            }
            first = try BackupMessage(message.payload)
        } catch let error as BackupError {
            session.abort()
            throw error
        } catch {
            session.abort()
            throw .unreachable("\(target) closed the session (\(error))")
        }
        switch first {
        case .welcome(_, let figures):
            let connection = BackupConnection(session: session, target: target, link: link, welcome: figures)
            connection.startReading(iterator)
            return connection
        case .failure(_, let text):
            session.abort()
            throw .unreachable("\(target) refused: \(text)")
        default:
            session.abort()
            throw .protocolViolation("\(target) answered hello with something else: both ends must run the same xt version")
        }
    }

    init(session: TransportSession, target: String, link: String, welcome: StoreFigures) {
        self.session = session
        self.target = target
        self.link = link
        self.welcome = welcome
        number = Self.counter.wrappingAdd(1, ordering: .relaxed).newValue
    }

    /// Whether the session has ended.
    public var isClosed: Bool { session.closedReason != nil || pending.withLock { $0.closed != nil } }

    /// The link's figures (RTT, loss, bytes acknowledged), while it is open.
    public func stats() async -> SessionStats? { try? await session.stats() }

    /// Whether requests are still waiting for their answers (at the end of a run: copies that
    /// another connection already landed, which a graceful close would send out to the end).
    public var isBusy: Bool {
        pending.withLock { !$0.requests.isEmpty || !$0.puts.isEmpty || !$0.gets.isEmpty }
    }

    /// Ends the session gracefully.
    public func close() async {
        await session.close()
        fail(.unreachable("the connection to \(target) was closed"))
    }

    /// Ends the session at once (the peer sees a reset).
    public func abort() {
        session.abort(reason: "backup connection dropped")
        fail(.unreachable("the connection to \(target) was aborted"))
    }

    // MARK: requests

    /// Stores a chunk on the Pi. Returns when the Pi says it is durable (or why not).
    /// - Throws: ``BackupError/unreachable(_:)`` if the session ends first.
    public func put(_ id: ChunkID, _ sealed: [UInt8]) async throws -> PutResult {
        try await withCheckedThrowingContinuation { continuation in
            let closed = pending.withLock { state -> BackupError? in
                if let closed = state.closed { return closed }
                state.puts[id, default: []].append(continuation)
                return nil
            }
            if let closed { continuation.resume(throwing: closed); return }
            Task {
                do { try await session.send(BackupMessage.put(id, sealed).encoded, on: BackupChannel.bulk) } catch { fail(.unreachable("lost \(target): \(error)")) }
            }
        }
    }

    /// A chunk's sealed bytes, or nil if the Pi does not hold it.
    public func get(_ id: ChunkID) async throws -> [UInt8]? {
        try await withCheckedThrowingContinuation { continuation in
            let closed = pending.withLock { state -> BackupError? in
                if let closed = state.closed { return closed }
                state.gets[id, default: []].append(continuation)
                return nil
            }
            if let closed { continuation.resume(throwing: closed); return }
            Task {
                do { try await session.send(BackupMessage.get(id).encoded, on: BackupChannel.control) } catch { fail(.unreachable("lost \(target): \(error)")) }
            }
        }
    }

    /// Which of `ids` the Pi holds (asked in batches of ``BackupChannel/maximumIDs``).
    public func has(_ ids: [ChunkID]) async throws -> [Bool] {
        var flags: [Bool] = []
        for start in stride(from: 0, to: ids.count, by: BackupChannel.maximumIDs) {
            let batch = Array(ids[start..<min(ids.count, start + BackupChannel.maximumIDs)])
            guard case .have(_, let answer) = try await request({ .has(request: $0, batch) }), answer.count == batch.count else {
                throw BackupError.protocolViolation("\(target) answered has with the wrong count")
            }
            flags += answer
        }
        return flags
    }

    /// Stores a sealed snapshot record.
    public func putSnapshot(_ sealed: [UInt8]) async throws {
        _ = try await request { .putSnapshot(request: $0, sealed) }
    }

    /// Every snapshot record the Pi holds (sealed).
    public func snapshots() async throws -> [[UInt8]] {
        try await pages { .listSnapshots(request: $0) }.flatMap { message -> [[UInt8]] in
            if case .snapshots(_, let records, _) = message { return records }
            return []
        }
    }

    /// Every chunk id the Pi holds, written at least `olderThan` seconds ago.
    public func chunkList(olderThan: UInt32 = 0) async throws -> [ChunkID] {
        try await pages { .listChunks(request: $0, olderThan: olderThan) }.flatMap { message -> [ChunkID] in
            if case .chunkList(_, let ids, _) = message { return ids }
            return []
        }
    }

    /// Deletes a snapshot record. - Returns: whether the Pi had it.
    public func deleteSnapshot(_ id: ChunkID) async throws -> Bool {
        guard case .done(_, let count, _) = try await request({ .deleteSnapshot(request: $0, id) }) else { return false }
        return count > 0
    }

    /// Deletes chunks. - Returns: how many the Pi deleted, and their bytes.
    public func deleteChunks(_ ids: [ChunkID]) async throws -> (count: UInt64, bytes: UInt64) {
        var total: (count: UInt64, bytes: UInt64) = (0, 0)
        for start in stride(from: 0, to: ids.count, by: BackupChannel.maximumIDs) {
            let batch = Array(ids[start..<min(ids.count, start + BackupChannel.maximumIDs)])
            if case .done(_, let count, let bytes) = try await request({ .deleteChunks(request: $0, batch) }) {
                total.count += count
                total.bytes += bytes
            }
        }
        return total
    }

    /// Has the Pi check its chunks. - Returns: chunks checked, bytes read, damaged ones (set aside).
    public func verify(readAll: Bool) async throws -> (checked: UInt64, bytesRead: UInt64, damaged: [ChunkID]) {
        guard case .verified(_, let checked, let bytesRead, let damaged) = try await request({ .verify(request: $0, readAll: readAll) }) else {
            throw BackupError.protocolViolation("\(target) answered verify with something else")
        }
        return (checked, bytesRead, damaged)
    }

    /// The store's figures now.
    public func figures() async throws -> StoreFigures {
        guard case .welcome(_, let figures) = try await request({ .figures(request: $0) }) else {
            throw BackupError.protocolViolation("\(target) answered figures with something else")
        }
        return figures
    }

    /// Sends a request and waits for its answer (the last page, for paged answers).
    /// - Throws: ``BackupError`` if the Pi answers with a failure or the session ends.
    private func request(number given: UInt32? = nil, _ make: (UInt32) -> BackupMessage) async throws -> BackupMessage {
        let number = given ?? allocateRequest()
        let message = make(number)
        let answer: BackupMessage = try await withCheckedThrowingContinuation { continuation in
            let closed = pending.withLock { state -> BackupError? in
                if let closed = state.closed { return closed }
                state.requests[number] = continuation
                return nil
            }
            if let closed { continuation.resume(throwing: closed); return }
            Task {
                do { try await session.send(message.encoded, on: BackupChannel.control) } catch { fail(.unreachable("lost \(target): \(error)")) }
            }
        }
        if case .failure(_, let text) = answer { throw BackupError.io("\(target): \(text)") }
        return answer
    }

    private func allocateRequest() -> UInt32 {
        pending.withLock { state -> UInt32 in
            defer { state.nextRequest &+= 1 }
            return state.nextRequest
        }
    }

    /// A paged request: every page, the last included.
    private func pages(_ make: (UInt32) -> BackupMessage) async throws -> [BackupMessage] {
        let number = allocateRequest()
        let last = try await request(number: number, make)
        let earlier = pending.withLock { $0.pages.removeValue(forKey: number) ?? [] }
        return earlier + [last]
    }

    // MARK: answers

    private func startReading(_ start: sending InboundSequence.AsyncIterator) {
        Task { [self] in
            var iterator = start
            do {
                while let item = try await iterator.next() {
                    guard case .message(let raw) = item else { continue }
                    guard let message = try? BackupMessage(raw.payload) else {
                        fail(.protocolViolation("\(target) sent a malformed message"))
                        session.abort(reason: "malformed backup message")
                        return
                    }
                    deliver(message)
                }
                fail(.unreachable("\(target) closed the connection"))
            } catch {
                fail(.unreachable("lost the connection to \(target) (\(error))"))
            }
        }
    }

    private func deliver(_ message: BackupMessage) {
        switch message {
        case .putDone(let id, let result):
            let waiting = pending.withLock { $0.puts.removeValue(forKey: id) ?? [] }
            for continuation in waiting { continuation.resume(returning: result) }
        case .chunk(let id, let bytes):
            let waiting = pending.withLock { $0.gets.removeValue(forKey: id) ?? [] }
            for continuation in waiting { continuation.resume(returning: bytes) }
        case .notFound(let id):
            let waiting = pending.withLock { $0.gets.removeValue(forKey: id) ?? [] }
            for continuation in waiting { continuation.resume(returning: nil) }
        case .snapshots(let request, _, false), .chunkList(let request, _, false):
            pending.withLock { $0.pages[request, default: []].append(message) }
        case .welcome(let request, _), .have(let request, _), .snapshots(let request, _, true), .chunkList(let request, _, true),
             .done(let request, _, _), .verified(let request, _, _, _), .failure(let request, _):
            let continuation = pending.withLock { $0.requests.removeValue(forKey: request) }
            continuation?.resume(returning: message)
        default:
            break  // a request from the Pi: not part of the protocol; ignored
        }
    }

    /// Fails everything waiting (the session ended).
    private func fail(_ error: BackupError) {
        let state = pending.withLock { state -> Pending in
            if state.closed == nil { state.closed = error }
            let taken = state
            state.requests = [:]
            state.puts = [:]
            state.gets = [:]
            return taken
        }
        for continuation in state.requests.values { continuation.resume(throwing: error) }
        for list in state.puts.values { for continuation in list { continuation.resume(throwing: error) } }
        for list in state.gets.values { for continuation in list { continuation.resume(throwing: error) } }
    }
}
