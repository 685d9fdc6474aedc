// Conversions between NIO's SocketAddress and the core's allocation-free NetworkAddress.
public import NIOCore
public import XTransport
#if canImport(Glibc)
import Glibc
#endif

extension NetworkAddress {
    /// The core's form of a NIO socket address (nil for Unix-domain addresses).
    public init?(_ address: SocketAddress) {
        switch address {
        case .v4(let v4):
            self.init(host: .v4(UInt32(bigEndian: v4.address.sin_addr.s_addr)), port: UInt16(bigEndian: v4.address.sin_port))
        case .v6(let v6):
            var storage = v6.address.sin6_addr
            let (high, low) = withUnsafeBytes(of: &storage) { raw -> (UInt64, UInt64) in
                var high: UInt64 = 0
                var low: UInt64 = 0
                for i in 0..<8 { high = high << 8 | UInt64(raw[i]) }
                for i in 8..<16 { low = low << 8 | UInt64(raw[i]) }
                return (high, low)
            }
            self.init(host: .v6(high: high, low: low), port: UInt16(bigEndian: v6.address.sin6_port))
        case .unixDomainSocket:
            return nil
        }
    }

    /// The NIO form of this address.
    public var socketAddress: SocketAddress {
        switch host {
        case .v4(let value):
            var address = sockaddr_in()
            address.sin_family = sa_family_t(AF_INET)
            address.sin_port = port.bigEndian
            address.sin_addr.s_addr = value.bigEndian
            return SocketAddress(address, host: "")
        case .v6(let high, let low):
            var address = sockaddr_in6()
            address.sin6_family = sa_family_t(AF_INET6)
            address.sin6_port = port.bigEndian
            withUnsafeMutableBytes(of: &address.sin6_addr) { raw in
                for i in 0..<8 { raw[i] = UInt8(truncatingIfNeeded: high >> UInt64(56 - 8 * i)) }
                for i in 0..<8 { raw[8 + i] = UInt8(truncatingIfNeeded: low >> UInt64(56 - 8 * i)) }
            }
            return SocketAddress(address, host: "")
        }
    }

    /// Resolves "host:port", "[v6]:port" or a bare host with `defaultPort`.
    /// - Throws: ``TransportError`` with code `invalidConfiguration` if it cannot be parsed or resolved.
    public static func resolve(_ text: String, defaultPort: Int? = nil) throws(TransportError) -> NetworkAddress {
        var host = text
        var port = defaultPort
        if text.hasPrefix("["), let close = text.firstIndex(of: "]") {
            host = String(text[text.index(after: text.startIndex)..<close])
            let rest = text[text.index(after: close)...]
            if rest.hasPrefix(":") { port = Int(rest.dropFirst()) }
        } else if let colon = text.lastIndex(of: ":"), text.firstIndex(of: ":") == colon {
            host = String(text[..<colon])
            port = Int(text[text.index(after: colon)...])
        }
        guard let port, (1...65_535).contains(port) else {
            throw .invalidConfiguration("'\(text)' has no valid port: write it as host:port, for example 127.0.0.1:9000")
        }
        let resolved: SocketAddress
        do {
            resolved = try SocketAddress.makeAddressResolvingHost(host.isEmpty ? "0.0.0.0" : host, port: port)
        } catch {
            throw .invalidConfiguration("cannot resolve host '\(host)': check the name or use an IP address")
        }
        guard let address = NetworkAddress(resolved) else {
            throw .invalidConfiguration("'\(text)' is not an IP address")
        }
        return address
    }
}
