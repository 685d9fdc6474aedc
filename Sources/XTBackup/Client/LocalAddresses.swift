// The machine's own addresses, read again every few hundred milliseconds, so a network that
// comes up during a backup (a cable plugged in, Wi-Fi joined) joins the bond.
#if canImport(Glibc)
import Glibc
#endif
public import XTransport

/// One IPv4 address of an interface that is up.
public struct LocalAddress: Sendable, Hashable {
    public var interface: String
    /// Host byte order.
    public var address: UInt32
    public var netmask: UInt32

    /// Dotted form.
    public var text: String { "\(address >> 24).\(address >> 16 & 0xff).\(address >> 8 & 0xff).\(address & 0xff)" }

    /// Whether `remote` is on this address's subnet.
    public func sameSubnet(_ remote: NetworkAddress) -> Bool {
        guard case .v4(let other) = remote.host else { return false }
        return other & netmask == address & netmask
    }

    /// The IPv4 addresses of interfaces that are up and running.
    public static func current() -> [LocalAddress] {
        var list: UnsafeMutablePointer<ifaddrs>?
        guard getifaddrs(&list) == 0, let first = list else { return [] }
        defer { freeifaddrs(list) }
        var out: [LocalAddress] = []
        var cursor: UnsafeMutablePointer<ifaddrs>? = first
        while let entry = cursor {
            defer { cursor = entry.pointee.ifa_next }
            let flags = Int32(bitPattern: entry.pointee.ifa_flags)
            guard flags & Int32(IFF_UP) != 0, flags & Int32(IFF_RUNNING) != 0,
                  let address = entry.pointee.ifa_addr, address.pointee.sa_family == sa_family_t(AF_INET),
                  let mask = entry.pointee.ifa_netmask else { continue }
            let ip = address.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { UInt32(bigEndian: $0.pointee.sin_addr.s_addr) }
            let netmask = mask.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { UInt32(bigEndian: $0.pointee.sin_addr.s_addr) }
            out.append(LocalAddress(interface: String(cString: entry.pointee.ifa_name), address: ip, netmask: netmask))
        }
        return out
    }
}

/// What `--via` names: an interface (all its IPv4 addresses) or an address.
public enum LocalSource: Sendable, Hashable {
    case interface(String)
    case address(UInt32)

    /// - Throws: ``BackupError/badInput(_:)`` unless it is an interface name or an IPv4 address.
    public init(parsing text: String) throws(BackupError) {
        let octets = text.split(separator: ".", omittingEmptySubsequences: false)
        if text.allSatisfy({ $0.isNumber || $0 == "." }) {
            guard octets.count == 4 else { throw .badInput("--via \(text): not an IPv4 address") }
            let values = octets.compactMap { UInt8($0) }
            guard values.count == 4 else { throw .badInput("--via \(text): not an IPv4 address") }
            self = .address(values.reduce(0) { $0 << 8 | UInt32($1) })
        } else {
            guard !text.isEmpty, text.count <= 15, text.allSatisfy({ $0.isASCII && !$0.isWhitespace && $0 != "/" }) else {
                throw .badInput("--via \(text): give an interface name (eth0, wlan0) or an IPv4 address")
            }
            self = .interface(text)
        }
    }

    /// The addresses it names that are up now.
    public func resolve(in addresses: [LocalAddress]) -> [LocalAddress] {
        switch self {
        case .interface(let name): addresses.filter { $0.interface == name }
        case .address(let value): addresses.filter { $0.address == value }
        }
    }
}
