// A UDP address without NIO: the sans-IO core compares and hashes addresses (path
// validation, cookies), so it needs its own allocation-free value type.

/// An IPv4 or IPv6 address and UDP port.
public struct NetworkAddress: Hashable, Sendable, CustomStringConvertible {
    public enum Host: Hashable, Sendable {
        /// IPv4, host byte order (127.0.0.1 is 0x7f000001).
        case v4(UInt32)
        /// IPv6, the 16 bytes as two big-endian halves.
        case v6(high: UInt64, low: UInt64)
    }

    public var host: Host
    public var port: UInt16

    public init(host: Host, port: UInt16) {
        self.host = host
        self.port = port
    }

    /// An IPv4 address from four octets.
    public static func ipv4(_ a: UInt8, _ b: UInt8, _ c: UInt8, _ d: UInt8, port: UInt16) -> NetworkAddress {
        NetworkAddress(host: .v4(UInt32(a) << 24 | UInt32(b) << 16 | UInt32(c) << 8 | UInt32(d)), port: port)
    }

    /// Bytes that identify the address, for cookie MACs: host then port.
    var identityBytes: [UInt8] {
        var writer = ByteWriter(capacity: 18)
        switch host {
        case .v4(let value): writer.writeUInt32(value)
        case .v6(let high, let low):
            writer.writeUInt64(high)
            writer.writeUInt64(low)
        }
        writer.writeUInt16(port)
        return writer.bytes
    }

    public var description: String {
        switch host {
        case .v4(let value):
            return "\(value >> 24).\(value >> 16 & 0xff).\(value >> 8 & 0xff).\(value & 0xff):\(port)"
        case .v6(let high, let low):
            let groups = (0..<8).map { index -> String in
                let half = index < 4 ? high : low
                return String(UInt16(truncatingIfNeeded: half >> UInt64(48 - 16 * (index % 4))), radix: 16)
            }
            return "[\(groups.joined(separator: ":"))]:\(port)"
        }
    }
}
