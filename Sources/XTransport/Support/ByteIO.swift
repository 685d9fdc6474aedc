// Bounds-checked big-endian readers and writers for the wire format. A reader never traps
// on short input: it throws `WireError.truncated`, so a hostile datagram is a counted drop.
import struct Foundation.Data

/// Reads big-endian integers and QUIC-style variable-length integers from a byte buffer.
public struct ByteReader {
    @usableFromInline let bytes: UnsafeRawBufferPointer
    /// Offset of the next unread byte.
    public private(set) var position: Int

    /// Creates a reader over `bytes`; the caller keeps the memory alive while reading.
    public init(_ bytes: UnsafeRawBufferPointer, position: Int = 0) {
        self.bytes = bytes
        self.position = position
    }

    /// Bytes left to read.
    public var remaining: Int { bytes.count - position }
    public var isAtEnd: Bool { position >= bytes.count }

    @inline(__always)
    mutating func need(_ count: Int, _ what: StaticString) throws(WireError) {
        if count < 0 || count > remaining { throw WireError.truncated(what) }
    }

    public mutating func readUInt8(_ what: StaticString = "byte") throws(WireError) -> UInt8 {
        try need(1, what)
        defer { position += 1 }
        return bytes[position]
    }

    public mutating func readUInt16(_ what: StaticString = "u16") throws(WireError) -> UInt16 {
        try need(2, what)
        defer { position += 2 }
        return UInt16(bytes[position]) << 8 | UInt16(bytes[position + 1])
    }

    public mutating func readUInt32(_ what: StaticString = "u32") throws(WireError) -> UInt32 {
        try need(4, what)
        var value: UInt32 = 0
        for i in 0..<4 { value = value << 8 | UInt32(bytes[position + i]) }
        position += 4
        return value
    }

    public mutating func readUInt64(_ what: StaticString = "u64") throws(WireError) -> UInt64 {
        try need(8, what)
        var value: UInt64 = 0
        for i in 0..<8 { value = value << 8 | UInt64(bytes[position + i]) }
        position += 8
        return value
    }

    /// Reads a variable-length integer: the top two bits of the first byte give its length
    /// (1, 2, 4 or 8 bytes), as in QUIC (RFC 9000 §16).
    public mutating func readVarInt(_ what: StaticString = "varint") throws(WireError) -> UInt64 {
        try need(1, what)
        let first = bytes[position]
        let length = 1 << Int(first >> 6)
        try need(length, what)
        var value = UInt64(first & 0x3f)
        for i in 1..<length { value = value << 8 | UInt64(bytes[position + i]) }
        position += length
        return value
    }

    /// Reads a varint that must fit in `Int` and be at most `limit`.
    public mutating func readLength(_ what: StaticString, limit: Int) throws(WireError) -> Int {
        let value = try readVarInt(what)
        if value > UInt64(limit) { throw WireError.valueOutOfRange(what) }
        return Int(value)
    }

    /// Returns the next `count` bytes without copying; valid while the underlying memory is.
    public mutating func readSlice(_ count: Int, _ what: StaticString = "bytes") throws(WireError) -> UnsafeRawBufferPointer {
        try need(count, what)
        defer { position += count }
        return UnsafeRawBufferPointer(rebasing: bytes[position..<position + count])
    }

    public mutating func readBytes(_ count: Int, _ what: StaticString = "bytes") throws(WireError) -> [UInt8] {
        [UInt8](try readSlice(count, what))
    }

    public mutating func skip(_ count: Int, _ what: StaticString = "bytes") throws(WireError) {
        try need(count, what)
        position += count
    }
}

/// Appends big-endian integers and varints to a growable byte array.
public struct ByteWriter {
    public var bytes: [UInt8]

    public init(capacity: Int = 64) {
        bytes = []
        bytes.reserveCapacity(capacity)
    }

    public var count: Int { bytes.count }

    public mutating func writeUInt8(_ value: UInt8) { bytes.append(value) }
    public mutating func writeUInt16(_ value: UInt16) {
        bytes.append(UInt8(truncatingIfNeeded: value >> 8))
        bytes.append(UInt8(truncatingIfNeeded: value))
    }
    public mutating func writeUInt32(_ value: UInt32) {
        for shift in stride(from: 24, through: 0, by: -8) { bytes.append(UInt8(truncatingIfNeeded: value >> UInt32(shift))) }
    }
    public mutating func writeUInt64(_ value: UInt64) {
        for shift in stride(from: 56, through: 0, by: -8) { bytes.append(UInt8(truncatingIfNeeded: value >> UInt64(shift))) }
    }
    public mutating func writeVarInt(_ value: UInt64) {
        precondition(value < 1 << 62, "varint out of range")
        switch VarInt.encodedLength(value) {
        case 1: bytes.append(UInt8(value))
        case 2: writeUInt16(UInt16(value) | 0x4000)
        case 4: writeUInt32(UInt32(value) | 0x8000_0000)
        default: writeUInt64(value | 0xC000_0000_0000_0000)
        }
    }
    public mutating func writeBytes<C: Collection>(_ data: C) where C.Element == UInt8 { bytes.append(contentsOf: data) }
}

/// Sizes of QUIC-style varints.
public enum VarInt {
    /// The largest value a varint can carry.
    public static let max: UInt64 = (1 << 62) - 1

    @inline(__always)
    public static func encodedLength(_ value: UInt64) -> Int {
        if value < 64 { return 1 }
        if value < 16_384 { return 2 }
        if value < 1 << 30 { return 4 }
        return 8
    }
}

/// Writes into caller-provided memory, as used on the packet hot path (no allocation).
/// Every write is bounds-checked against the capacity; the caller sizes frames first.
struct BufferCursor {
    let base: UnsafeMutableRawBufferPointer
    var position: Int

    init(_ base: UnsafeMutableRawBufferPointer, position: Int = 0) {
        self.base = base
        self.position = position
    }

    var remaining: Int { base.count - position }

    @inline(__always) mutating func writeUInt8(_ value: UInt8) {
        base[position] = value
        position += 1
    }
    @inline(__always) mutating func writeUInt32(_ value: UInt32) {
        for i in 0..<4 { base[position + i] = UInt8(truncatingIfNeeded: value >> UInt32(24 - 8 * i)) }
        position += 4
    }
    @inline(__always) mutating func writeUInt16(_ value: UInt16) {
        base[position] = UInt8(truncatingIfNeeded: value >> 8)
        base[position + 1] = UInt8(truncatingIfNeeded: value)
        position += 2
    }
    @inline(__always) mutating func writeUInt64(_ value: UInt64) {
        for i in 0..<8 { base[position + i] = UInt8(truncatingIfNeeded: value >> UInt64(56 - 8 * i)) }
        position += 8
    }
    @inline(__always) mutating func writeVarInt(_ value: UInt64) {
        switch VarInt.encodedLength(value) {
        case 1: writeUInt8(UInt8(value))
        case 2: writeUInt16(UInt16(value) | 0x4000)
        case 4: writeUInt32(UInt32(value) | 0x8000_0000)
        default: writeUInt64(value | 0xC000_0000_0000_0000)
        }
    }
    @inline(__always) mutating func writeBytes(_ source: UnsafeRawBufferPointer) {
        guard source.count > 0 else { return }
        UnsafeMutableRawBufferPointer(rebasing: base[position..<position + source.count]).copyMemory(from: source)
        position += source.count
    }
    mutating func writeBytes(_ source: [UInt8]) {
        source.withUnsafeBytes { writeBytes($0) }
    }
    mutating func fill(_ value: UInt8, count: Int) {
        guard count > 0 else { return }
        UnsafeMutableRawBufferPointer(rebasing: base[position..<position + count]).initializeMemory(as: UInt8.self, repeating: value)
        position += count
    }
}

extension Array where Element == UInt8 {
    /// `withUnsafeBytes` for a typed-throwing body (the standard one only rethrows `any Error`).
    func withUnsafeBytesTyped<R, E: Error>(_ body: (UnsafeRawBufferPointer) throws(E) -> R) throws(E) -> R {
        let result: Result<R, E> = withUnsafeBytes { raw in Result { () throws(E) -> R in try body(raw) } }
        return try result.get()
    }
}

extension Data {
    /// `withUnsafeBytes` for a typed-throwing body.
    func withUnsafeBytesTyped<R, E: Error>(_ body: (UnsafeRawBufferPointer) throws(E) -> R) throws(E) -> R {
        let result: Result<R, E> = withUnsafeBytes { raw in Result { () throws(E) -> R in try body(raw) } }
        return try result.get()
    }
}
