// Storage for one stretch of the ring buffer: records appended in memory or to a file.
// Records are length-prefixed media messages, so a file can be read back after a restart.
import Foundation

/// One segment of the ring: appended to, read at offsets, dropped whole.
final class RingSegment {
    let number: Int
    private var memory: [UInt8]?
    private let descriptor: Int32
    let path: String?
    private(set) var size = 0
    /// Newest capture time of any frame in it.
    var newest = CaptureTime(nanoseconds: .min)
    /// Last sequence of each stream in it (what eviction removes from the index).
    var lastSequence: [MediaStreamID: UInt64] = [:]

    /// A segment in RAM.
    init(number: Int) {
        self.number = number
        memory = []
        descriptor = -1
        path = nil
    }

    /// A segment in `directory`, created (or, with `existing`, opened to be read back).
    init(number: Int, directory: String, existing: Bool = false) throws(MediaError) {
        self.number = number
        let path = (directory as NSString).appendingPathComponent(String(format: "ring-%08d.xtm", number))
        self.path = path
        descriptor = existing ? open(path, O_RDWR | O_CLOEXEC) : open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard descriptor >= 0 else {
            throw .posix(.io, "the ring buffer cannot open \(path)", hint: "check the ring directory exists and is writable, or use ring = ram")
        }
        if existing { size = Int(lseek(descriptor, 0, SEEK_END)) }
    }

    deinit { if descriptor >= 0 { close(descriptor) } }

    /// Appends one record; returns where its message starts.
    func append(_ message: [UInt8]) throws(MediaError) -> Int {
        var record = [UInt8(message.count >> 24 & 0xFF), UInt8(message.count >> 16 & 0xFF), UInt8(message.count >> 8 & 0xFF),
                      UInt8(message.count & 0xFF)]
        record += message
        if memory != nil {
            memory! += record
        } else {
            let written = record.withUnsafeBytes { pwrite(descriptor, $0.baseAddress, $0.count, off_t(size)) }
            guard written == record.count else {
                if written > 0 { ftruncate(descriptor, off_t(size)) }  // no half record left behind
                throw .posix(.io, "the ring buffer cannot write \(path ?? "")", errno: written < 0 ? errno : ENOSPC,
                             hint: "free disk space, lower ring-minutes, or use ring = ram")
            }
        }
        defer { size += record.count }
        return size + 4
    }

    /// The message stored at `offset` with `length` bytes.
    func read(offset: Int, length: Int) -> [UInt8]? {
        guard offset >= 0, length >= 0, offset + length <= size else { return nil }
        if let memory { return Array(memory[offset..<(offset + length)]) }
        var bytes = [UInt8](repeating: 0, count: length)
        let count = bytes.withUnsafeMutableBytes { pread(descriptor, $0.baseAddress, length, off_t(offset)) }
        return count == length ? bytes : nil
    }

    /// Every whole record in the segment, with its offset (for reading a file back).
    func records() -> [(offset: Int, message: [UInt8])] {
        var result: [(Int, [UInt8])] = []
        var offset = 0
        while offset + 4 <= size, let prefix = read(offset: offset, length: 4) {
            let length = prefix.reduce(0) { $0 << 8 | Int($1) }
            guard length > 0, let message = read(offset: offset + 4, length: length) else { break }  // a torn tail
            result.append((offset + 4, message))
            offset += 4 + length
        }
        return result
    }

    /// Removes the segment's file.
    func delete() { if let path { unlink(path) } }
}
