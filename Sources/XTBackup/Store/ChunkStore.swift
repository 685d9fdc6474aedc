// A Pi's content-addressed store: one file per chunk, named by the SHA-256 of its (sealed)
// bytes, under a folder per owner key. Every write goes to a temporary file, is fsynced, renamed
// into place and its folder fsynced, so kill -9 or a power cut at any point leaves either the
// whole chunk or none of it.
import Crypto
import Foundation
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// What happened to a chunk sent to the store.
public enum PutResult: UInt8, Sendable, Equatable {
    /// Written and durable.
    case stored = 0
    /// The store had it already (nothing written).
    case present = 1
    /// Its bytes do not hash to its name: damaged on the way; send it again.
    case mismatch = 2
    /// No room under the quota.
    case quotaFull = 3
    /// The disk refused the write (full, read-only, failing).
    case failed = 4
}

/// A chunk store on disk. Thread-safe; its methods block on the disk, so call them from a
/// thread pool, not the event loop.
///
/// Layout under `root`: `<owner>/chunks/<2 hex>/<64 hex>`, `<owner>/snapshots/<64 hex>`,
/// `<owner>/damaged/<64 hex>` (chunks a check found bad, kept for inspection, not counted),
/// and `tmp/` (partial writes; emptied at open). `<owner>` is the first 16 hex digits of the
/// SHA-256 of the node's public key.
public final class ChunkStore: Sendable {
    public let root: String
    /// Most bytes of chunks and snapshots the store holds, over all owners.
    public let quota: UInt64
    private let state: Mutex<State>
    private let temporaryCounter = Atomic<UInt64>(0)

    struct State {
        var used: UInt64 = 0
        var chunks = 0
        var written: UInt64 = 0
        var mismatches: UInt64 = 0
        var refusedQuota: UInt64 = 0
    }

    /// Figures for status and metrics.
    public struct Figures: Sendable, Equatable, Codable {
        public var usedBytes: UInt64
        public var quotaBytes: UInt64
        public var chunks: Int
        public var bytesWritten: UInt64
        public var mismatches: UInt64
        public var refusedForQuota: UInt64
    }

    /// Opens (creating) the store at `root`, counts what it holds and removes partial writes.
    /// - Throws: ``BackupError/io(_:)`` if `root` cannot be created or read.
    public init(root: String, quota: UInt64) throws(BackupError) {
        self.root = root
        self.quota = quota
        let manager = FileManager.default
        do {
            try manager.createDirectory(atPath: root, withIntermediateDirectories: true)
            let tmp = root + "/tmp"
            try? manager.removeItem(atPath: tmp)
            try manager.createDirectory(atPath: tmp, withIntermediateDirectories: true)
        } catch {
            throw .io("cannot create the backup store at \(root): \(error.localizedDescription); check the path and permissions")
        }
        var initial = State()
        let owners = (try? manager.contentsOfDirectory(atPath: root)) ?? []
        for owner in owners where owner.count == 16 {
            for (_, size) in Self.listChunks(root + "/" + owner) {
                initial.used += size
                initial.chunks += 1
            }
            for name in (try? manager.contentsOfDirectory(atPath: root + "/" + owner + "/snapshots")) ?? [] {
                initial.used += Self.size(of: root + "/" + owner + "/snapshots/" + name) ?? 0
            }
        }
        state = Mutex(initial)
    }

    /// The folder name of an owner's key.
    public static func ownerFolder(for key: [UInt8]) -> String { String(ChunkID(of: key).hex.prefix(16)) }

    public var figures: Figures {
        state.withLock { Figures(usedBytes: $0.used, quotaBytes: quota, chunks: $0.chunks, bytesWritten: $0.written,
                                 mismatches: $0.mismatches, refusedForQuota: $0.refusedQuota) }
    }

    // MARK: chunks

    func chunkPath(_ owner: String, _ id: ChunkID) -> String {
        let hex = id.hex
        return "\(root)/\(owner)/chunks/\(hex.prefix(2))/\(hex)"
    }

    /// Which of `ids` the owner's store holds. Each one held is touched (its mtime set to now):
    /// a backup that relies on it being here is protected from a concurrent prune's grace period.
    public func has(_ ids: [ChunkID], owner: String) -> [Bool] {
        ids.map { utimensat(AT_FDCWD, chunkPath(owner, $0), nil, 0) == 0 }
    }

    /// Stores a chunk after checking its bytes against its name.
    public func put(_ id: ChunkID, _ bytes: [UInt8], owner: String) -> PutResult {
        guard ChunkID(of: bytes) == id else {
            state.withLock { $0.mismatches += 1 }
            return .mismatch
        }
        let path = chunkPath(owner, id)
        if utimensat(AT_FDCWD, path, nil, 0) == 0 { return .present }
        return install(bytes, at: path)
    }

    /// A chunk's sealed bytes, or nil if the store does not hold it.
    public func get(_ id: ChunkID, owner: String) -> [UInt8]? {
        FileManager.default.contents(atPath: chunkPath(owner, id)).map { Array($0) }
    }

    /// Every chunk the owner has here, and its size in bytes; with `olderThan` (seconds), only
    /// those written at least that long ago (so a prune never takes a running backup's chunks).
    public func list(owner: String, olderThan: Int = 0) -> [(ChunkID, UInt64)] {
        let all = Self.listChunks(root + "/" + owner)
        guard olderThan > 0 else { return all }
        let cutoff = time(nil) - olderThan
        return all.filter { id, _ in
            var info = stat()
            return stat(chunkPath(owner, id), &info) == 0 && info.st_mtim.tv_sec <= cutoff
        }
    }

    /// Deletes chunks (those not held are skipped).
    /// - Returns: how many were deleted, and their bytes.
    public func delete(_ ids: [ChunkID], owner: String) -> (count: Int, bytes: UInt64) {
        var count = 0
        var bytes: UInt64 = 0
        for id in ids {
            let path = chunkPath(owner, id)
            guard let size = Self.size(of: path), unlink(path) == 0 else { continue }
            count += 1
            bytes += size
        }
        state.withLock {
            $0.used -= min($0.used, bytes)
            $0.chunks -= min($0.chunks, count)
        }
        return (count, bytes)
    }

    /// Checks the owner's chunks: each is re-hashed (`readAll`) or its size checked (a sealed
    /// chunk is at least ``RepositoryKey/overhead`` bytes). A bad one moves to `damaged/`, so
    /// the store no longer claims it and the client sends it again.
    /// - Returns: chunks checked, bytes read, and the damaged ones.
    public func verify(owner: String, readAll: Bool) -> (checked: Int, bytesRead: UInt64, damaged: [ChunkID]) {
        var damaged: [ChunkID] = []
        var checked = 0
        var bytesRead: UInt64 = 0
        for (id, size) in list(owner: owner) {
            checked += 1
            var good = size >= UInt64(RepositoryKey.overhead)
            if good && readAll {
                let path = chunkPath(owner, id)
                if let data = FileManager.default.contents(atPath: path) {
                    bytesRead += UInt64(data.count)
                    good = ChunkID(of: Array(data)) == id
                } else {
                    good = false
                }
            }
            if !good {
                damaged.append(id)
                quarantine(id, owner: owner, size: size)
            }
        }
        return (checked, bytesRead, damaged)
    }

    private func quarantine(_ id: ChunkID, owner: String, size: UInt64) {
        let folder = "\(root)/\(owner)/damaged"
        try? FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        if rename(chunkPath(owner, id), folder + "/" + id.hex) == 0 {
            state.withLock {
                $0.used -= min($0.used, size)
                $0.chunks -= min($0.chunks, 1)
            }
        }
    }

    // MARK: snapshots

    /// Stores a sealed snapshot record under its name.
    public func putSnapshot(_ bytes: [UInt8], owner: String) -> (ChunkID, PutResult) {
        let id = ChunkID(of: bytes)
        let path = "\(root)/\(owner)/snapshots/\(id.hex)"
        if access(path, F_OK) == 0 { return (id, .present) }
        return (id, install(bytes, at: path, countsAsChunk: false))
    }

    /// Every snapshot record the owner has here.
    public func snapshots(owner: String) -> [(ChunkID, [UInt8])] {
        let folder = "\(root)/\(owner)/snapshots"
        return ((try? FileManager.default.contentsOfDirectory(atPath: folder)) ?? []).sorted().compactMap { name in
            guard let id = ChunkID(hex: name), let data = FileManager.default.contents(atPath: folder + "/" + name) else { return nil }
            return (id, Array(data))
        }
    }

    /// Deletes a snapshot record. - Returns: whether it was here.
    public func deleteSnapshot(_ id: ChunkID, owner: String) -> Bool {
        let path = "\(root)/\(owner)/snapshots/\(id.hex)"
        guard let size = Self.size(of: path), unlink(path) == 0 else { return false }
        state.withLock { $0.used -= min($0.used, size) }
        return true
    }

    // MARK: writing

    /// Writes `bytes` to a temporary file, fsyncs it, renames it to `path` and fsyncs the folder.
    private func install(_ bytes: [UInt8], at path: String, countsAsChunk: Bool = true) -> PutResult {
        let size = UInt64(bytes.count)
        let admitted = state.withLock { state -> Bool in
            guard state.used + size <= quota else { state.refusedQuota += 1; return false }
            state.used += size  // reserved now, so concurrent writers cannot overshoot
            return true
        }
        guard admitted else { return .quotaFull }
        func release() { state.withLock { $0.used -= min($0.used, size) } }
        let folder = (path as NSString).deletingLastPathComponent
        if access(folder, F_OK) != 0 {
            try? FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
            Self.syncDirectory((folder as NSString).deletingLastPathComponent)
        }
        let temporary = "\(root)/tmp/\(getpid())-\(temporaryCounter.wrappingAdd(1, ordering: .relaxed).newValue)"
        let fd = open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        guard fd >= 0 else { release(); return .failed }
        let wrote = bytes.withUnsafeBytes { buffer -> Bool in
            var offset = 0
            while offset < buffer.count {
                let n = write(fd, buffer.baseAddress! + offset, buffer.count - offset)
                if n < 0 { if errno == EINTR { continue }; return false }
                offset += n
            }
            return true
        }
        let synced = wrote && fsync(fd) == 0
        close(fd)
        guard synced else { unlink(temporary); release(); return .failed }
        // A concurrent put of the same chunk may have landed first: rename replaces it with the
        // same bytes, so only the accounting must not count it twice.
        let existed = access(path, F_OK) == 0
        guard rename(temporary, path) == 0 else { unlink(temporary); release(); return .failed }
        Self.syncDirectory(folder)
        if existed { release(); return .present }
        state.withLock {
            $0.written += size
            if countsAsChunk { $0.chunks += 1 }
        }
        return .stored
    }

    static func syncDirectory(_ path: String) {
        let fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard fd >= 0 else { return }
        _ = fsync(fd)
        close(fd)
    }

    static func size(of path: String) -> UInt64? {
        var info = stat()
        guard stat(path, &info) == 0 else { return nil }
        return UInt64(info.st_size)
    }

    static func listChunks(_ ownerFolder: String) -> [(ChunkID, UInt64)] {
        let manager = FileManager.default
        let chunks = ownerFolder + "/chunks"
        var out: [(ChunkID, UInt64)] = []
        for prefix in ((try? manager.contentsOfDirectory(atPath: chunks)) ?? []).sorted() where prefix.count == 2 {
            for name in ((try? manager.contentsOfDirectory(atPath: chunks + "/" + prefix)) ?? []).sorted() {
                guard let id = ChunkID(hex: name), name.hasPrefix(prefix), let size = size(of: chunks + "/" + prefix + "/" + name) else { continue }
                out.append((id, size))
            }
        }
        return out
    }
}
