// What a backup client and a Pi's store say to each other over an xtransport session. Requests
// and short answers go on the control channel; chunk bytes (a put, or a chunk read back) on the
// bulk channel, so a 4 MiB chunk never holds up an answer. Every message is checked where it
// enters: a bad one is a counted drop and an error back, never a trap.
public import XTransport

/// The channels of a backup session.
public enum BackupChannel {
    /// Requests and answers: reliable messages at control priority.
    public static let control: UInt16 = 1
    /// Chunk bytes: reliable messages at bulk priority.
    public static let bulk: UInt16 = 2
    /// The protocol version in the hello.
    public static let version: UInt8 = 1
    /// Most ids in one has, delete or list message.
    public static let maximumIDs = 100_000
    /// Largest chunk or record accepted (FastCDC's maximum plus the seal, with room).
    public static let maximumObject = 8 << 20
}

/// The store's figures as a Pi reports them.
public struct StoreFigures: Sendable, Equatable {
    public var usedBytes: UInt64
    public var quotaBytes: UInt64
    public var chunks: UInt64
    public init(usedBytes: UInt64, quotaBytes: UInt64, chunks: UInt64) {
        self.usedBytes = usedBytes
        self.quotaBytes = quotaBytes
        self.chunks = chunks
    }
}

/// One message of the backup protocol.
public enum BackupMessage: Sendable, Equatable {
    /// Client → Pi, first: the protocol version.
    case hello(version: UInt8)
    /// Pi → client: the answer to hello and to ``figures(request:)``.
    case welcome(request: UInt32, StoreFigures)
    /// Client → Pi: the store's figures now.
    case figures(request: UInt32)
    /// Client → Pi: which of these does the store hold?
    case has(request: UInt32, [ChunkID])
    /// Pi → client: one flag per id asked, in order.
    case have(request: UInt32, [Bool])
    /// Client → Pi (bulk): store this chunk.
    case put(ChunkID, [UInt8])
    /// Pi → client: what became of a put.
    case putDone(ChunkID, PutResult)
    /// Client → Pi: send this chunk's bytes.
    case get(ChunkID)
    /// Pi → client (bulk): a chunk's bytes.
    case chunk(ChunkID, [UInt8])
    /// Pi → client: the store does not hold it.
    case notFound(ChunkID)
    /// Client → Pi: store this sealed snapshot record.
    case putSnapshot(request: UInt32, [UInt8])
    /// Client → Pi: every snapshot record.
    case listSnapshots(request: UInt32)
    /// Pi → client: some records; `last` on the final page.
    case snapshots(request: UInt32, [[UInt8]], last: Bool)
    /// Client → Pi: delete a snapshot record.
    case deleteSnapshot(request: UInt32, ChunkID)
    /// Client → Pi: every chunk id the store holds that was written at least `olderThan` seconds ago.
    case listChunks(request: UInt32, olderThan: UInt32)
    /// Pi → client: some ids; `last` on the final page.
    case chunkList(request: UInt32, [ChunkID], last: Bool)
    /// Client → Pi: delete these chunks.
    case deleteChunks(request: UInt32, [ChunkID])
    /// Pi → client: a request that changes the store is done: how many items and bytes.
    case done(request: UInt32, count: UInt64, bytes: UInt64)
    /// Client → Pi: check the stored chunks (re-hash each with `readAll`).
    case verify(request: UInt32, readAll: Bool)
    /// Pi → client: what a check found; damaged chunks are set aside.
    case verified(request: UInt32, checked: UInt64, bytesRead: UInt64, damaged: [ChunkID])
    /// Pi → client: a request failed; the text says why and what to do.
    case failure(request: UInt32, String)

    enum Tag: UInt8 {
        case hello = 1, welcome, figures, has, have, put, putDone, get, chunk, notFound, putSnapshot, listSnapshots,
             snapshots, deleteSnapshot, listChunks, chunkList, deleteChunks, done, verify, verified, failure
    }

    /// The channel this message travels on.
    public var channel: UInt16 {
        switch self {
        case .put, .chunk: BackupChannel.bulk
        default: BackupChannel.control
        }
    }

    /// The message's bytes.
    public var encoded: [UInt8] {
        var w = ByteWriter(capacity: 64)
        func ids(_ list: [ChunkID]) {
            w.writeVarInt(UInt64(list.count))
            for id in list { w.writeBytes(id.bytes) }
        }
        func blob(_ bytes: [UInt8]) {
            w.writeVarInt(UInt64(bytes.count))
            w.writeBytes(bytes)
        }
        switch self {
        case .hello(let version):
            w.writeUInt8(Tag.hello.rawValue); w.writeUInt8(version)
        case .welcome(let request, let figures):
            w.writeUInt8(Tag.welcome.rawValue); w.writeUInt32(request)
            w.writeUInt64(figures.usedBytes); w.writeUInt64(figures.quotaBytes); w.writeUInt64(figures.chunks)
        case .figures(let request):
            w.writeUInt8(Tag.figures.rawValue); w.writeUInt32(request)
        case .has(let request, let list):
            w.writeUInt8(Tag.has.rawValue); w.writeUInt32(request); ids(list)
        case .have(let request, let flags):
            w.writeUInt8(Tag.have.rawValue); w.writeUInt32(request)
            w.writeVarInt(UInt64(flags.count))
            var byte: UInt8 = 0
            for (i, flag) in flags.enumerated() {
                if flag { byte |= 1 << UInt8(i % 8) }
                if i % 8 == 7 { w.writeUInt8(byte); byte = 0 }
            }
            if flags.count % 8 != 0 { w.writeUInt8(byte) }
        case .put(let id, let bytes):
            w = ByteWriter(capacity: bytes.count + 48)
            w.writeUInt8(Tag.put.rawValue); w.writeBytes(id.bytes); blob(bytes)
        case .putDone(let id, let result):
            w.writeUInt8(Tag.putDone.rawValue); w.writeBytes(id.bytes); w.writeUInt8(result.rawValue)
        case .get(let id):
            w.writeUInt8(Tag.get.rawValue); w.writeBytes(id.bytes)
        case .chunk(let id, let bytes):
            w = ByteWriter(capacity: bytes.count + 48)
            w.writeUInt8(Tag.chunk.rawValue); w.writeBytes(id.bytes); blob(bytes)
        case .notFound(let id):
            w.writeUInt8(Tag.notFound.rawValue); w.writeBytes(id.bytes)
        case .putSnapshot(let request, let bytes):
            w.writeUInt8(Tag.putSnapshot.rawValue); w.writeUInt32(request); blob(bytes)
        case .listSnapshots(let request):
            w.writeUInt8(Tag.listSnapshots.rawValue); w.writeUInt32(request)
        case .snapshots(let request, let records, let last):
            w.writeUInt8(Tag.snapshots.rawValue); w.writeUInt32(request); w.writeUInt8(last ? 1 : 0)
            w.writeVarInt(UInt64(records.count))
            for record in records { blob(record) }
        case .deleteSnapshot(let request, let id):
            w.writeUInt8(Tag.deleteSnapshot.rawValue); w.writeUInt32(request); w.writeBytes(id.bytes)
        case .listChunks(let request, let olderThan):
            w.writeUInt8(Tag.listChunks.rawValue); w.writeUInt32(request); w.writeUInt32(olderThan)
        case .chunkList(let request, let list, let last):
            w.writeUInt8(Tag.chunkList.rawValue); w.writeUInt32(request); w.writeUInt8(last ? 1 : 0); ids(list)
        case .deleteChunks(let request, let list):
            w.writeUInt8(Tag.deleteChunks.rawValue); w.writeUInt32(request); ids(list)
        case .done(let request, let count, let bytes):
            w.writeUInt8(Tag.done.rawValue); w.writeUInt32(request); w.writeUInt64(count); w.writeUInt64(bytes)
        case .verify(let request, let readAll):
            w.writeUInt8(Tag.verify.rawValue); w.writeUInt32(request); w.writeUInt8(readAll ? 1 : 0)
        case .verified(let request, let checked, let bytesRead, let damaged):
            w.writeUInt8(Tag.verified.rawValue); w.writeUInt32(request); w.writeUInt64(checked); w.writeUInt64(bytesRead); ids(damaged)
        case .failure(let request, let text):
            w.writeUInt8(Tag.failure.rawValue); w.writeUInt32(request); blob(Array(text.utf8.prefix(4096)))
        }
        return w.bytes
    }

    /// Parses one message.
    /// - Throws: ``BackupError/protocolViolation(_:)`` naming what is wrong (unknown type,
    ///   truncated, a length over the limits, trailing bytes).
    public init(_ bytes: [UInt8]) throws(BackupError) {
        do {
            self = try bytes.withUnsafeBytes { (buffer) throws -> BackupMessage in
                var r = ByteReader(buffer)
                func id() throws(WireError) -> ChunkID { ChunkID(bytes: try r.readBytes(32, "chunk id"))! }
                func ids() throws(WireError) -> [ChunkID] {
                    let count = try r.readLength("id count", limit: BackupChannel.maximumIDs)
                    var list: [ChunkID] = []
                    list.reserveCapacity(count)
                    for _ in 0..<count { list.append(try id()) }
                    return list
                }
                func blob(_ what: StaticString) throws(WireError) -> [UInt8] {
                    let count = try r.readLength(what, limit: BackupChannel.maximumObject)
                    return try r.readBytes(count, what)
                }
                let tagByte = try r.readUInt8("message type")
                guard let tag = Tag(rawValue: tagByte) else { throw ParseFailure(text: "unknown backup message type \(tagByte)") }
                let message: BackupMessage
                switch tag {
                case .hello: message = .hello(version: try r.readUInt8("version"))
                case .welcome:
                    message = .welcome(request: try r.readUInt32(), StoreFigures(usedBytes: try r.readUInt64(), quotaBytes: try r.readUInt64(), chunks: try r.readUInt64()))
                case .figures: message = .figures(request: try r.readUInt32())
                case .has: message = .has(request: try r.readUInt32(), try ids())
                case .have:
                    let request = try r.readUInt32()
                    let count = try r.readLength("flag count", limit: BackupChannel.maximumIDs)
                    let packed = try r.readBytes((count + 7) / 8, "flags")
                    message = .have(request: request, (0..<count).map { packed[$0 / 8] & (1 << UInt8($0 % 8)) != 0 })
                case .put: message = .put(try id(), try blob("chunk"))
                case .putDone:
                    let chunk = try id()
                    let raw = try r.readUInt8("put result")
                    guard let result = PutResult(rawValue: raw) else { throw ParseFailure(text: "unknown put result \(raw)") }
                    message = .putDone(chunk, result)
                case .get: message = .get(try id())
                case .chunk: message = .chunk(try id(), try blob("chunk"))
                case .notFound: message = .notFound(try id())
                case .putSnapshot: message = .putSnapshot(request: try r.readUInt32(), try blob("snapshot"))
                case .listSnapshots: message = .listSnapshots(request: try r.readUInt32())
                case .snapshots:
                    let request = try r.readUInt32()
                    let last = try r.readUInt8("last") != 0
                    let count = try r.readLength("record count", limit: BackupChannel.maximumIDs)
                    var records: [[UInt8]] = []
                    for _ in 0..<count { records.append(try blob("snapshot")) }
                    message = .snapshots(request: request, records, last: last)
                case .deleteSnapshot: message = .deleteSnapshot(request: try r.readUInt32(), try id())
                case .listChunks: message = .listChunks(request: try r.readUInt32(), olderThan: try r.readUInt32("age"))
                case .chunkList:
                    let request = try r.readUInt32()
                    let last = try r.readUInt8("last") != 0
                    message = .chunkList(request: request, try ids(), last: last)
                case .deleteChunks: message = .deleteChunks(request: try r.readUInt32(), try ids())
                case .done: message = .done(request: try r.readUInt32(), count: try r.readUInt64(), bytes: try r.readUInt64())
                case .verify: message = .verify(request: try r.readUInt32(), readAll: try r.readUInt8("read all") != 0)
                case .verified:
                    message = .verified(request: try r.readUInt32(), checked: try r.readUInt64(), bytesRead: try r.readUInt64(), damaged: try ids())
                case .failure:
                    let request = try r.readUInt32()
                    message = .failure(request: request, String(decoding: try blob("text"), as: UTF8.self))
                }
                guard r.isAtEnd else { throw ParseFailure(text: "\(r.remaining) bytes after a backup message of type \(tagByte)") }
                return message
            }
        } catch {
            throw .protocolViolation("a malformed backup message (\(error)): both ends must run the same xt version")
        }
    }
}

private struct ParseFailure: Error, CustomStringConvertible {
    let text: String
    var description: String { text }
}
