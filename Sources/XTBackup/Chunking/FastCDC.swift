// Content-defined chunking: where a file is cut depends on its bytes, not on their offsets, so
// inserting a byte early in a file moves one cut, not every cut after it, and the chunks after
// the change are the same chunks as before (deduplicated by name on the Pis).
import XTransport
#if canImport(Glibc)
import Glibc
#endif

/// FastCDC (Xia et al., "FastCDC: a Fast and Efficient Content-Defined Chunking Approach for
/// Data Deduplication", USENIX ATC 2016; normalized chunking level 2 from their 2020 TPDS
/// paper): a gear hash rolled over the bytes, a cut where its top bits are zero, a stricter
/// mask before the average size and a looser one after it (so sizes cluster round the
/// average), and no hashing at all below the minimum.
///
/// Sizes are in bytes. The gear table is fixed (SplitMix64 from a constant seed), so the same
/// bytes cut the same way on every machine and in every version: changing it would make every
/// chunk new.
public struct FastCDC: Sendable, Hashable {
    /// Smallest chunk, except a file's last.
    public let minimumSize: Int
    /// The size chunks cluster round.
    public let averageSize: Int
    /// Largest chunk: a cut is forced here.
    public let maximumSize: Int
    private let strictMask: UInt64
    private let looseMask: UInt64

    /// 256 KiB minimum, 1 MiB average, 4 MiB maximum: restic's and borg's sizes.
    public static let standard = FastCDC(minimumSize: 256 << 10, averageSize: 1 << 20, maximumSize: 4 << 20)!

    /// - Returns: nil unless `averageSize` is a power of two from 64 bytes to 2^30, and
    ///   `0 < minimumSize ≤ averageSize ≤ maximumSize`.
    public init?(minimumSize: Int, averageSize: Int, maximumSize: Int) {
        guard averageSize >= 64, averageSize <= 1 << 30, averageSize & (averageSize - 1) == 0,
              minimumSize > 0, minimumSize <= averageSize, averageSize <= maximumSize else { return nil }
        self.minimumSize = minimumSize
        self.averageSize = averageSize
        self.maximumSize = maximumSize
        let bits = averageSize.trailingZeroBitCount
        // Level 2: two bits more before the average, two fewer after. The mask is over the top
        // bits, which have seen the last 64 bytes (the low bits only the last few).
        strictMask = ~UInt64(0) << UInt64(64 - (bits + 2))
        looseMask = ~UInt64(0) << UInt64(64 - max(1, bits - 2))
    }

    /// The length of the next chunk at the start of `bytes`.
    /// - Parameters:
    ///   - bytes: what is left of the input; at least `maximumSize` bytes unless it is the end.
    /// - Returns: 1…min(bytes.count, maximumSize); 0 only for empty input.
    public func cut(_ bytes: UnsafeRawBufferPointer) -> Int {
        let count = bytes.count
        if count <= minimumSize { return count }
        let end = min(count, maximumSize)
        let normal = min(end, averageSize)
        let gear = Self.gear
        var hash: UInt64 = 0
        var index = minimumSize
        return gear.withUnsafeBufferPointer { table -> Int in
            while index < normal {
                hash = (hash << 1) &+ table[Int(bytes[index])]
                if hash & strictMask == 0 { return index + 1 }
                index += 1
            }
            while index < end {
                hash = (hash << 1) &+ table[Int(bytes[index])]
                if hash & looseMask == 0 { return index + 1 }
                index += 1
            }
            return end
        }
    }

    /// Cuts a whole buffer in memory.
    /// - Returns: the chunk lengths, in order; they sum to `bytes.count`.
    public func lengths(of bytes: [UInt8]) -> [Int] {
        bytes.withUnsafeBytes { buffer in
            var lengths: [Int] = []
            var offset = 0
            while offset < buffer.count {
                let length = cut(UnsafeRawBufferPointer(rebasing: buffer[offset...]))
                lengths.append(length)
                offset += length
            }
            return lengths
        }
    }

    /// The gear table: 256 pseudo-random 64-bit values (SplitMix64, seed "xtbackup").
    static let gear: [UInt64] = {
        var generator = SplitMix64(seed: 0x7874_6261_636b_7570)
        return (0..<256).map { _ in generator.next() }
    }()
}

/// Reads a file (or any source of bytes) and hands out its chunks, holding at most two
/// maximum-size chunks (and a read) in memory.
///
/// The bytes are read straight into one window that lives as long as the reader, and each
/// chunk is copied out of it once. (Reading into `Data`, then an array, then a growing buffer
/// that shifted at every read copied each byte four times, onto fresh pages: a fifth of an
/// incremental backup's time went to the kernel zeroing them.)
public struct ChunkReader {
    private let chunker: FastCDC
    private let window: Window
    private var ended = false
    /// Reads up to `count` bytes into the pointer given; 0 at the end.
    private let read: (UnsafeMutableRawPointer, Int) throws -> Int

    /// - Parameter read: returns up to the given number of bytes; empty at the end.
    public init(chunker: FastCDC = .standard, read: @escaping (Int) throws -> [UInt8]) {
        self.init(chunker: chunker) { target, count in
            let bytes = try read(count)
            let taken = min(bytes.count, count)
            bytes.withUnsafeBytes { if let base = $0.baseAddress { target.copyMemory(from: base, byteCount: taken) } }
            return taken
        }
    }

    /// Reads from an open file descriptor (left open), from where it stands.
    /// - Throws: from ``next()``, ``BackupError/io(_:)`` when the system cannot read it.
    public init(chunker: FastCDC = .standard, fileDescriptor: Int32, name: String) {
        self.init(chunker: chunker) { target, count in
            while true {
                let got = Glibc.read(fileDescriptor, target, count)
                if got >= 0 { return got }
                if errno == EINTR { continue }
                throw BackupError.io("cannot read \(name): \(String(cString: strerror(errno)))")
            }
        }
    }

    private init(chunker: FastCDC, reader: @escaping (UnsafeMutableRawPointer, Int) throws -> Int) {
        self.chunker = chunker
        read = reader
        window = Window(capacity: 2 * chunker.maximumSize + Self.readSize(chunker))
    }

    private static func readSize(_ chunker: FastCDC) -> Int { max(chunker.maximumSize, 1 << 20) }

    /// The next chunk, or nil at the end of the input.
    /// - Throws: what the source throws.
    public mutating func next() throws -> [UInt8]? {
        let readSize = Self.readSize(chunker)
        while !ended && window.end - window.start < chunker.maximumSize {
            if window.capacity - window.end < readSize { window.compact() }
            let got = try read(window.base + window.end, min(readSize, window.capacity - window.end))
            if got == 0 { ended = true } else { window.end += got }
        }
        guard window.start < window.end else { return nil }
        let available = UnsafeRawBufferPointer(start: window.base + window.start, count: window.end - window.start)
        let length = chunker.cut(available)
        defer { window.start += length }
        return Array(UnsafeBufferPointer(start: window.base + window.start, count: length))
    }

    /// The bytes read and not yet handed out: `base[start..<end]`.
    private final class Window {
        let base: UnsafeMutablePointer<UInt8>
        let capacity: Int
        var start = 0
        var end = 0

        init(capacity: Int) {
            self.capacity = capacity
            base = .allocate(capacity: capacity)
        }

        deinit { base.deallocate() }

        /// Moves what is left to the front (at most a maximum chunk, once per read).
        func compact() {
            guard start > 0 else { return }
            if end > start { memmove(base, base + start, end - start) }
            end -= start
            start = 0
        }
    }
}
