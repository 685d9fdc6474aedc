// Bounds-checked big-endian reading and writing for the media wire format (and the
// recorder's alarm messages, which are built the same way).

/// Appends big-endian fields.
public struct MediaWriter {
    public var bytes: [UInt8] = []

    public init(capacity: Int = 64) { bytes.reserveCapacity(capacity) }

    public mutating func u8(_ value: UInt8) { bytes.append(value) }
    public mutating func u16(_ value: UInt16) { bytes += [UInt8(value >> 8), UInt8(value & 0xFF)] }
    public mutating func u32(_ value: UInt32) { for shift in stride(from: 24, through: 0, by: -8) { bytes.append(UInt8((value >> UInt32(shift)) & 0xFF)) } }
    public mutating func u64(_ value: UInt64) { for shift in stride(from: 56, through: 0, by: -8) { bytes.append(UInt8((value >> UInt64(shift)) & 0xFF)) } }
    public mutating func i64(_ value: Int64) { u64(UInt64(bitPattern: value)) }
    /// A length-prefixed (16-bit) byte string.
    public mutating func short(_ value: [UInt8]) {
        u16(UInt16(min(value.count, 65_535)))
        bytes += value.prefix(65_535)
    }
    public mutating func text(_ value: String) { short(Array(value.utf8.prefix(255))) }
}

/// Reads big-endian fields; running past the end throws ``MediaError/Code/malformed``.
public struct MediaReader {
    let bytes: [UInt8]
    var offset = 0

    public init(_ bytes: [UInt8]) { self.bytes = bytes }

    public var remaining: Int { bytes.count - offset }

    private mutating func take(_ count: Int) throws(MediaError) -> ArraySlice<UInt8> {
        guard count >= 0, remaining >= count else {
            throw .malformed("a media message ends early (needs \(count) more bytes at \(offset) of \(bytes.count))")
        }
        defer { offset += count }
        return bytes[offset..<(offset + count)]
    }

    public mutating func u8() throws(MediaError) -> UInt8 { try take(1).first! }
    public mutating func u16() throws(MediaError) -> UInt16 { try take(2).reduce(0) { $0 << 8 | UInt16($1) } }
    public mutating func u32() throws(MediaError) -> UInt32 { try take(4).reduce(0) { $0 << 8 | UInt32($1) } }
    public mutating func u64() throws(MediaError) -> UInt64 { try take(8).reduce(0) { $0 << 8 | UInt64($1) } }
    public mutating func i64() throws(MediaError) -> Int64 { Int64(bitPattern: try u64()) }
    public mutating func short() throws(MediaError) -> [UInt8] { Array(try take(Int(try u16()))) }
    public mutating func text() throws(MediaError) -> String { String(decoding: try short(), as: UTF8.self) }
    public mutating func rest() -> [UInt8] {
        defer { offset = bytes.count }
        return Array(bytes[offset...])
    }
}
