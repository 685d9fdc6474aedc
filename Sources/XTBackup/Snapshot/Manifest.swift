// A snapshot is a record (when, from where, which paths) naming its manifest, and the manifest
// is the list of files, each with the chunks that make it up. Both are JSON, sealed with the
// owner's key; the manifest is cut into chunks like any file, so an incremental snapshot shares
// most of its manifest's chunks with the one before.
public import Foundation

/// A chunk as a file uses it: its name and its plaintext length in bytes.
public struct ChunkRef: Codable, Sendable, Hashable {
    public var id: ChunkID
    public var length: Int

    public init(id: ChunkID, length: Int) {
        self.id = id
        self.length = length
    }

    public init(from decoder: any Decoder) throws {
        var container = try decoder.unkeyedContainer()
        let hex = try container.decode(String.self)
        guard let id = ChunkID(hex: hex) else {
            throw DecodingError.dataCorruptedError(in: container, debugDescription: "a chunk id must be 64 hex digits")
        }
        self.id = id
        length = try container.decode(Int.self)
        guard length >= 0 else { throw DecodingError.dataCorruptedError(in: container, debugDescription: "a chunk length must not be negative") }
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.unkeyedContainer()
        try container.encode(id.hex)
        try container.encode(length)
    }
}

/// One file, folder or symbolic link in a snapshot.
public struct ManifestEntry: Codable, Sendable, Hashable {
    public enum Kind: String, Codable, Sendable {
        case file, directory, symlink
    }

    /// Relative to the restore folder: the backed-up path's last component, then the path below it.
    public var path: String
    public var kind: Kind
    /// Permission bits (mode & 0o7777).
    public var mode: UInt32
    /// Modification time, nanoseconds since 1970.
    public var mtime: Int64
    /// Bytes (files).
    public var size: UInt64
    /// The file's inode when backed up (with size and mtime, how the next run tells it is unchanged).
    public var inode: UInt64
    /// A link's target.
    public var target: String?
    /// A file's chunks in order (their lengths sum to `size`).
    public var chunks: [ChunkRef]

    public init(path: String, kind: Kind, mode: UInt32, mtime: Int64, size: UInt64, inode: UInt64, target: String? = nil, chunks: [ChunkRef] = []) {
        self.path = path
        self.kind = kind
        self.mode = mode
        self.mtime = mtime
        self.size = size
        self.inode = inode
        self.target = target
        self.chunks = chunks
    }
}

/// The file list of a snapshot.
public struct Manifest: Codable, Sendable, Hashable {
    public var entries: [ManifestEntry]

    public init(entries: [ManifestEntry]) { self.entries = entries }

    /// Checks what a manifest read back says before anything is written from it: relative
    /// paths without `..`, chunk lengths that sum to each file's size.
    /// - Throws: ``BackupError/badInput(_:)`` naming the entry.
    public func validate() throws(BackupError) {
        for entry in entries {
            let parts = entry.path.split(separator: "/", omittingEmptySubsequences: false)
            guard !entry.path.isEmpty, !entry.path.hasPrefix("/"), !parts.contains(where: { $0 == ".." || $0 == "." || $0.isEmpty }),
                  !entry.path.contains("\0") else {
                throw .badInput("the snapshot names an unsafe path \"\(entry.path)\": it was not written by xt backup; restore another snapshot")
            }
            if entry.kind == .file, entry.chunks.reduce(0, { $0 + UInt64($1.length) }) != entry.size {
                throw .badInput("the snapshot's entry for \(entry.path) does not add up (its chunks are not its size): restore another snapshot")
            }
        }
    }
}

/// A snapshot's record.
public struct SnapshotRecord: Codable, Sendable, Hashable {
    public var version = 1
    /// When the backup started, nanoseconds since 1970.
    public var time: Int64
    /// The machine it ran on.
    public var host: String
    /// The absolute paths backed up.
    public var paths: [String]
    /// The manifest's chunks, in order.
    public var manifest: [ChunkRef]
    public var files: Int
    public var bytes: UInt64
    /// Free-form labels (the recorder tags its own).
    public var tags: [String]
    /// How many Pis hold each of its chunks.
    public var copies: Int

    public init(time: Int64, host: String, paths: [String], manifest: [ChunkRef], files: Int, bytes: UInt64, tags: [String] = [], copies: Int) {
        self.time = time
        self.host = host
        self.paths = paths
        self.manifest = manifest
        self.files = files
        self.bytes = bytes
        self.tags = tags
        self.copies = copies
    }

    /// The time as a date.
    public var date: Date { Date(timeIntervalSince1970: Double(time) / 1e9) }
}
