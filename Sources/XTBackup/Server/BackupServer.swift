// `xt backup serve`: a Pi's side. Each admitted node key gets its own folder in the store;
// each session is served in order (the disk work on a thread pool), and any number of sessions
// run at once, so a client's many connections write in parallel.
public import Logging
import NIOPosix
import Synchronization
public import XTransport
public import XTransportNIO

/// Serves a ``ChunkStore`` to the sessions an endpoint admits.
public final class BackupServer: Sendable {
    public let store: ChunkStore
    private let pool: NIOThreadPool
    private let tally = Mutex(Counters())
    private let logger: Logger

    /// What the server has seen, for status.
    public struct Counters: Sendable, Equatable {
        public var sessions: UInt64 = 0
        public var malformed: UInt64 = 0
        public var puts: UInt64 = 0
        public var gets: UInt64 = 0
    }

    public var counters: Counters { tally.withLock { $0 } }

    /// - Parameter threads: disk threads (hashing, writing, fsync).
    public init(store: ChunkStore, threads: Int = 4, logger: Logger = Logger(label: "xt.backup")) {
        self.store = store
        pool = NIOThreadPool(numberOfThreads: max(1, threads))
        pool.start()
        self.logger = logger
    }

    /// Serves every session the endpoint accepts until it closes.
    public func serve(_ endpoint: TransportEndpoint) async {
        await withDiscardingTaskGroup { group in
            for await session in endpoint.incomingSessions {
                group.addTask { await self.serve(session) }
            }
        }
    }

    /// Stops the disk threads (after ``serve(_:)`` returns).
    public func shutdown() async { try? await pool.shutdownGracefully() }

    private func disk<T: Sendable>(_ body: @escaping @Sendable () -> T) async -> T {
        (try? await pool.runIfActive(body)) ?? body()
    }

    /// Serves one session: its messages in order, until it ends.
    public func serve(_ session: TransportSession) async {
        tally.withLock { $0.sessions += 1 }
        let owner = ChunkStore.ownerFolder(for: session.peerKey.bytes)
        do {
            try await session.configure(channel: BackupChannel.control, .messages)
            try await session.configure(channel: BackupChannel.bulk, ChannelConfiguration(mode: .messages, priority: .bulk))
            for try await item in session.inbound {
                guard case .message(let raw) = item else { continue }
                let message: BackupMessage
                do {
                    message = try BackupMessage(raw.payload)
                } catch {
                    tally.withLock { $0.malformed += 1 }
                    logger.warning("backup: a malformed message from \(session.peerKey.base64.prefix(12)): \(error)")
                    try await send(.failure(request: 0, "malformed message: \(error)"), on: session)
                    continue
                }
                for answer in await handle(message, owner: owner) {
                    try await send(answer, on: session)
                }
            }
        } catch {
            logger.debug("backup: a session ended: \(error)")
        }
    }

    private func send(_ message: BackupMessage, on session: TransportSession) async throws {
        try await session.send(message.encoded, on: message.channel)
    }

    /// The answers to one message (several pages for a long list).
    func handle(_ message: BackupMessage, owner: String) async -> [BackupMessage] {
        let store = self.store
        switch message {
        case .hello(let version):
            guard version == BackupChannel.version else {
                return [.failure(request: 0, "this Pi speaks backup protocol \(BackupChannel.version), the client \(version): run the same xt version on both")]
            }
            return [.welcome(request: 0, figures())]
        case .figures(let request):
            return [.welcome(request: request, figures())]
        case .has(let request, let ids):
            return [.have(request: request, await disk { store.has(ids, owner: owner) })]
        case .put(let id, let bytes):
            tally.withLock { $0.puts += 1 }
            let result = await disk { store.put(id, bytes, owner: owner) }
            if result == .failed { logger.error("backup: cannot write a chunk under \(store.root): check the disk (full, read-only or failing)") }
            return [.putDone(id, result)]
        case .get(let id):
            tally.withLock { $0.gets += 1 }
            guard let bytes = await disk({ store.get(id, owner: owner) }) else { return [.notFound(id)] }
            return [.chunk(id, bytes)]
        case .putSnapshot(let request, let bytes):
            let (_, result) = await disk { store.putSnapshot(bytes, owner: owner) }
            switch result {
            case .stored, .present: return [.done(request: request, count: 1, bytes: UInt64(bytes.count))]
            case .quotaFull: return [.failure(request: request, BackupError.quotaFull(used: store.figures.usedBytes, quota: store.quota).description)]
            default: return [.failure(request: request, "cannot write the snapshot record under \(store.root): check the Pi's disk")]
            }
        case .listSnapshots(let request):
            let records = await disk { store.snapshots(owner: owner).map(\.1) }
            var pages: [BackupMessage] = []
            var page: [[UInt8]] = []
            var size = 0
            for record in records {
                if size + record.count > 4 << 20 || page.count >= BackupChannel.maximumIDs {
                    pages.append(.snapshots(request: request, page, last: false))
                    page = []
                    size = 0
                }
                page.append(record)
                size += record.count
            }
            pages.append(.snapshots(request: request, page, last: true))
            return pages
        case .deleteSnapshot(let request, let id):
            let deleted = await disk { store.deleteSnapshot(id, owner: owner) }
            return [.done(request: request, count: deleted ? 1 : 0, bytes: 0)]
        case .listChunks(let request, let olderThan):
            let ids = await disk { store.list(owner: owner, olderThan: Int(olderThan)).map(\.0) }
            var pages: [BackupMessage] = []
            for start in stride(from: 0, to: ids.count, by: BackupChannel.maximumIDs) {
                pages.append(.chunkList(request: request, Array(ids[start..<min(ids.count, start + BackupChannel.maximumIDs)]), last: false))
            }
            if case .chunkList(let r, let list, _) = pages.last { pages[pages.count - 1] = .chunkList(request: r, list, last: true) } else {
                pages.append(.chunkList(request: request, [], last: true))
            }
            return pages
        case .deleteChunks(let request, let ids):
            let (count, bytes) = await disk { store.delete(ids, owner: owner) }
            return [.done(request: request, count: UInt64(count), bytes: bytes)]
        case .verify(let request, let readAll):
            let result = await disk { store.verify(owner: owner, readAll: readAll) }
            if !result.damaged.isEmpty { logger.warning("backup: \(result.damaged.count) damaged chunks set aside under \(store.root)") }
            return [.verified(request: request, checked: UInt64(result.checked), bytesRead: result.bytesRead, damaged: result.damaged)]
        case .welcome, .have, .putDone, .chunk, .notFound, .snapshots, .chunkList, .done, .verified, .failure:
            tally.withLock { $0.malformed += 1 }
            return [.failure(request: 0, "a client sent an answer, not a request")]
        }
    }

    private func figures() -> StoreFigures {
        let figures = store.figures
        return StoreFigures(usedBytes: figures.usedBytes, quotaBytes: figures.quotaBytes, chunks: UInt64(figures.chunks))
    }
}
