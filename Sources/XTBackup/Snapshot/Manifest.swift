// A snapshot is a record (when, from where, which paths) naming its manifest, and the manifest
// is the list of files, each with the chunks that make it up. The record is JSON, the manifest
// a compact binary list (earlier snapshots' JSON manifests still read), both sealed with the
// owner's key; the manifest is cut into chunks like any file, so an incremental snapshot shares
// most of its manifest's chunks with the one before.
public import Foundation
import XTransport

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

        /// Its number in the stored manifest (PROTOCOL.md).
        var code: UInt8 {
            switch self {
            case .file: 1
            case .directory: 2
            case .symlink: 3
            }
        }

        init?(code: UInt8) {
            switch code {
            case 1: self = .file
            case 2: self = .directory
            case 3: self = .symlink
            default: return nil
            }
        }
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

/// The manifest's bytes as snapshots store them (PROTOCOL.md, Backup): "XTM" 2, then the
/// entries in a compact binary form. Manifests of snapshots made before are JSON and still read.
/// (JSON spent a no-change run of 4190 files most of its CPU on the coder's dynamic casts and
/// on chunk ids in hex.)
extension Manifest {
    static let magic: [UInt8] = [0x58, 0x54, 0x4D, 2]

    /// The bytes to store.
    public func encoded() -> [UInt8] {
        var writer = ByteWriter(capacity: 64 + entries.count * 96)
        writer.writeBytes(Self.magic)
        writer.writeVarInt(UInt64(entries.count))
        for entry in entries {
            let path = Array(entry.path.utf8)
            writer.writeVarInt(UInt64(path.count))
            writer.writeBytes(path)
            writer.writeUInt8(entry.kind.code)
            writer.writeVarInt(UInt64(entry.mode))
            writer.writeUInt64(UInt64(bitPattern: entry.mtime))
            writer.writeVarInt(min(entry.size, VarInt.max))
            writer.writeUInt64(entry.inode)
            if let target = entry.target {
                let bytes = Array(target.utf8)
                writer.writeUInt8(1)
                writer.writeVarInt(UInt64(bytes.count))
                writer.writeBytes(bytes)
            } else {
                writer.writeUInt8(0)
            }
            writer.writeVarInt(UInt64(entry.chunks.count))
            for chunk in entry.chunks {
                writer.writeBytes(chunk.id.bytes)
                writer.writeVarInt(UInt64(chunk.length))
            }
        }
        return writer.bytes
    }

    /// Reads a stored manifest: this binary form, or the JSON of earlier snapshots.
    /// - Throws: ``BackupError/badInput(_:)`` if it is neither, or is cut short.
    public init(stored bytes: [UInt8]) throws(BackupError) {
        let bad = BackupError.badInput("a manifest does not parse: restore another snapshot")
        guard bytes.starts(with: Self.magic) else {
            guard bytes.first == UInt8(ascii: "{"), let manifest = try? JSONDecoder().decode(Manifest.self, from: Data(bytes)) else { throw bad }
            self = manifest
            return
        }
        let parsed: [ManifestEntry]? = bytes.withUnsafeBytes { raw in
            var reader = ByteReader(raw, position: Self.magic.count)
            func string(_ reader: inout ByteReader) throws(WireError) -> String? {
                let length = try reader.readLength("string", limit: 65_536)
                return String(validating: try reader.readSlice(length), as: UTF8.self)
            }
            do throws(WireError) {
                // Each entry takes at least 20 bytes: a count above that cannot be right.
                let count = try reader.readLength("entries", limit: max(0, reader.remaining / 20))
                var entries: [ManifestEntry] = []
                entries.reserveCapacity(count)
                for _ in 0..<count {
                    guard let path = try string(&reader) else { return nil }
                    guard let kind = ManifestEntry.Kind(code: try reader.readUInt8("kind")) else { return nil }
                    let mode = try reader.readVarInt("mode")
                    let mtime = Int64(bitPattern: try reader.readUInt64("mtime"))
                    let size = try reader.readVarInt("size")
                    let inode = try reader.readUInt64("inode")
                    var target: String?
                    if try reader.readUInt8("target") == 1 {
                        guard let text = try string(&reader) else { return nil }
                        target = text
                    }
                    let chunkCount = try reader.readLength("chunks", limit: reader.remaining / 33)
                    var chunks: [ChunkRef] = []
                    chunks.reserveCapacity(chunkCount)
                    for _ in 0..<chunkCount {
                        guard let id = ChunkID(bytes: try reader.readSlice(32, "chunk id")) else { return nil }
                        chunks.append(ChunkRef(id: id, length: Int(try reader.readLength("chunk length", limit: 1 << 30))))
                    }
                    guard mode <= 0o7777 else { return nil }
                    entries.append(ManifestEntry(path: path, kind: kind, mode: UInt32(mode), mtime: mtime, size: size, inode: inode, target: target, chunks: chunks))
                }
                return reader.isAtEnd ? entries : nil
            } catch {
                return nil
            }
        }
        guard let parsed else { throw bad }
        self.init(entries: parsed)
    }
}
