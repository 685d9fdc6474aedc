// An append-only log of media messages, in memory or in a file: the ring buffer's segments
// and the recorder's fill journals. Records are length-prefixed media messages, so a file
// reads back after a restart; a torn last record (a crash mid-write) is ignored and cut off.
import Foundation

/// An append-only log of media messages.
public final class MediaRecordLog {
    public let number: Int
    private var memory: [UInt8]?
    private let descriptor: Int32
    public let path: String?
    public private(set) var size = 0
    /// Newest capture time of any frame in it (kept by its owner).
    public var newest = CaptureTime(nanoseconds: .min)
    /// Last sequence of each stream in it (kept by its owner).
    public var lastSequence: [MediaStreamID: UInt64] = [:]
    /// Who is writing, for error messages ("the ring buffer", "the recorder").
    private let owner: String

    /// A log in RAM.
    public init(number: Int) {
        self.number = number
        memory = []
        descriptor = -1
        path = nil
        owner = "the ring buffer"
    }

    /// A ring segment in `directory`, created (or, with `existing`, opened to be read back).
    convenience init(number: Int, directory: String, existing: Bool = false) throws(MediaError) {
        try self.init(path: (directory as NSString).appendingPathComponent(String(format: "ring-%08d.xtm", number)), number: number,
                      existing: existing, owner: "the ring buffer", hint: "check the ring directory exists and is writable, or use ring = ram")
    }

    /// A log file at `path`: created empty, or (`existing`) opened to be read and appended to.
    /// - Throws: ``MediaError`` naming the file when it cannot be opened.
    public init(path: String, number: Int = 0, existing: Bool, owner: String, hint: String) throws(MediaError) {
        self.number = number
        self.path = path
        self.owner = owner
        descriptor = existing ? open(path, O_RDWR | O_CLOEXEC) : open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard descriptor >= 0 else { throw .posix(.io, "\(owner) cannot open \(path)", hint: hint) }
        if existing { size = Int(lseek(descriptor, 0, SEEK_END)) }
    }

    deinit { if descriptor >= 0 { close(descriptor) } }

    /// Appends one record; returns where its message starts.
    /// - Throws: ``MediaError`` when the file cannot grow (a full disk): nothing of the record
    ///   is left behind.
    public func append(_ message: [UInt8]) throws(MediaError) -> Int {
        var record = [UInt8(message.count >> 24 & 0xFF), UInt8(message.count >> 16 & 0xFF), UInt8(message.count >> 8 & 0xFF),
                      UInt8(message.count & 0xFF)]
        record += message
        if memory != nil {
            memory! += record
        } else {
            let written = record.withUnsafeBytes { pwrite(descriptor, $0.baseAddress, $0.count, off_t(size)) }
            guard written == record.count else {
                if written > 0 { ftruncate(descriptor, off_t(size)) }  // no half record left behind
                throw .posix(.io, "\(owner) cannot write \(path ?? "")", errno: written < 0 ? errno : ENOSPC,
                             hint: owner == "the ring buffer" ? "free disk space, lower ring-minutes, or use ring = ram" : "free disk space")
            }
        }
        defer { size += record.count }
        return size + 4
    }

    /// The message stored at `offset` with `length` bytes.
    public func read(offset: Int, length: Int) -> [UInt8]? {
        guard offset >= 0, length >= 0, offset + length <= size else { return nil }
        if let memory { return Array(memory[offset..<(offset + length)]) }
        var bytes = [UInt8](repeating: 0, count: length)
        let count = bytes.withUnsafeMutableBytes { pread(descriptor, $0.baseAddress, length, off_t(offset)) }
        return count == length ? bytes : nil
    }

    /// Every whole record, with its offset (for reading a file back). A torn tail is cut off,
    /// so appends go on after the last whole record.
    public func records() -> [(offset: Int, message: [UInt8])] {
        var result: [(Int, [UInt8])] = []
        var offset = 0
        while offset + 4 <= size, let prefix = read(offset: offset, length: 4) {
            let length = prefix.reduce(0) { $0 << 8 | Int($1) }
            guard length > 0, let message = read(offset: offset + 4, length: length) else { break }  // a torn tail
            result.append((offset + 4, message))
            offset += 4 + length
        }
        if offset < size {
            if memory != nil { memory!.removeLast(size - offset) } else { ftruncate(descriptor, off_t(offset)) }
            size = offset
        }
        return result
    }

    /// Removes the file.
    public func delete() { if let path { unlink(path) } }
}
