// A node's settings: id, name, host, port range, channel and the transport knobs. Read from a
// `key = value` file under Config/, then environment variables (XT_NODE_…), then the command
// line, each overriding the one before. Unknown keys and bad values are errors that name the
// file, the line and what is expected.
import Foundation
public import XTransport

/// Settings read from `key = value` files and the environment: node, agent and recorder
/// configurations share the file format, the precedence and the error messages.
public protocol KeyValueSettings {
    /// Every key a file or the environment may set, with what it takes.
    static var keys: [(key: String, takes: String)] { get }
    /// Applies one `key = value` setting.
    /// - Throws: ``NodeConfigurationError`` naming the key and what it takes.
    mutating func set(_ key: String, _ value: String) throws(NodeConfigurationError)
}

extension KeyValueSettings {
    /// Reads `key = value` lines (`#` starts a comment).
    /// - Throws: ``NodeConfigurationError`` with the source and line.
    public mutating func apply(file text: String, source: String) throws(NodeConfigurationError) {
        for (index, rawLine) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = rawLine.split(separator: "#", maxSplits: 1, omittingEmptySubsequences: false).first.map(String.init) ?? ""
            if line.trimmingCharacters(in: .whitespaces).isEmpty { continue }
            guard let equals = line.firstIndex(of: "=") else {
                throw .atLine(source: source, line: index + 1, .malformed(line.trimmingCharacters(in: .whitespaces)))
            }
            let key = line[..<equals].trimmingCharacters(in: .whitespaces).lowercased()
            do {
                try set(key, String(line[line.index(after: equals)...]))
            } catch {
                throw .atLine(source: source, line: index + 1, error)
            }
        }
    }

    /// Applies `prefix` + each key in capitals with `-` as `_` (XT_NODE_PORT_RANGE, XT_AGENT_FPS).
    public mutating func apply(environment: [String: String], prefix: String) throws(NodeConfigurationError) {
        for (key, _) in Self.keys {
            let variable = prefix + key.uppercased().replacingOccurrences(of: "-", with: "_")
            guard let value = environment[variable] else { continue }
            do {
                try set(key, value)
            } catch {
                throw .atLine(source: "environment variable \(variable)", line: 0, error)
            }
        }
    }

    /// The error for a value that does not fit `key`.
    public static func badValue(_ key: String, _ value: String) -> NodeConfigurationError {
        .badValue(key: key, value: value, expected: keys.first { $0.key == key }?.takes ?? "")
    }
}

/// Where a node joins the network and how it talks.
public struct NodeConfiguration: KeyValueSettings, Hashable, Sendable {
    /// This node's address: area and local id (xTransporter's fromarea/fromid).
    public var id = NodeID(area: 1, local: 1)
    /// A human name, unique in the network (UltraSockets' named nodes).
    public var name = "node"
    /// The host's address and port.
    public var host = "127.0.0.1"
    public var hostPort: UInt16 = 9000
    /// Ports the host may listen on; a node tries them in order when the first is not answering.
    public var portRange: ClosedRange<UInt16> = 9000...9000
    /// The channel this node publishes on by default.
    public var channel: UInt16 = 1
    /// Pacing knobs (xTransporter's netlatency in µs, packetburst) and the MTU (setmtu).
    public var netLatencyMicroseconds = 200
    public var packetBurst = 32
    public var mtu = 65_000

    public init() {}

    /// Every key a file or the environment may set, with what it takes.
    public static let keys: [(key: String, takes: String)] = [
        ("id", "area.local, e.g. 1.2"), ("name", "a name without spaces"), ("host", "host:port"),
        ("port-range", "first-last, e.g. 9000-9010"), ("channel", "0…65535"), ("netlatency", "microseconds"),
        ("packetburst", "packets, 1…65536"), ("mtu", "1200…65507 bytes"),
    ]

    /// Applies one `key = value` setting.
    /// - Throws: ``NodeConfigurationError`` naming the key and what it takes.
    public mutating func set(_ key: String, _ value: String) throws(NodeConfigurationError) {
        let value = value.trimmingCharacters(in: .whitespaces)
        func bad() -> NodeConfigurationError { Self.badValue(key, value) }
        switch key {
        case "id":
            guard let id = Self.parseID(value) else { throw bad() }
            self.id = id
        case "name":
            guard !value.isEmpty, !value.contains(" "), value.utf8.count <= 64 else { throw bad() }
            name = value
        case "host":
            guard let colon = value.lastIndex(of: ":"), let port = UInt16(value[value.index(after: colon)...]),
                  colon != value.startIndex else { throw bad() }
            host = String(value[..<colon]).trimmingCharacters(in: ["[", "]"])
            hostPort = port
            if !portRange.contains(port) { portRange = port...port }
        case "port-range":
            let parts = value.split(separator: "-")
            guard parts.count == 2, let first = UInt16(parts[0]), let last = UInt16(parts[1]), first <= last else { throw bad() }
            portRange = first...last
        case "channel":
            guard let channel = UInt16(value) else { throw bad() }
            self.channel = channel
        case "netlatency":
            guard let micros = Int(value), (0...1_000_000).contains(micros) else { throw bad() }
            netLatencyMicroseconds = micros
        case "packetburst":
            guard let burst = Int(value), (1...65_536).contains(burst) else { throw bad() }
            packetBurst = burst
        case "mtu":
            guard let mtu = Int(value), (1200...65_507).contains(mtu) else { throw bad() }
            self.mtu = mtu
        default:
            throw .unknownKey(key, known: Self.keys.map(\.key))
        }
    }

    /// Applies `XT_NODE_ID`, `XT_NODE_NAME`, `XT_NODE_HOST`, `XT_NODE_PORT_RANGE`,
    /// `XT_NODE_CHANNEL`, `XT_NODE_NETLATENCY`, `XT_NODE_PACKETBURST` and `XT_NODE_MTU`.
    public mutating func apply(environment: [String: String]) throws(NodeConfigurationError) {
        try apply(environment: environment, prefix: "XT_NODE_")
    }

    /// The session settings these knobs give.
    public func sessionConfiguration(base: SessionConfiguration = SessionConfiguration()) throws(TransportError) -> SessionConfiguration {
        var session = base
        session.maximumDatagramSize = mtu
        session.netLatency = .microseconds(netLatencyMicroseconds)
        session.packetBurst = packetBurst
        try session.validate()
        return session
    }

    static func parseID(_ text: String) -> NodeID? {
        let parts = text.split(separator: ".")
        guard parts.count == 2, let area = UInt16(parts[0]), let local = UInt16(parts[1]) else { return nil }
        let id = NodeID(area: area, local: local)
        return id == .unassigned ? nil : id
    }
}

/// A configuration problem, worded for the person fixing it.
public indirect enum NodeConfigurationError: Error, Hashable, Sendable, CustomStringConvertible {
    case unknownKey(String, known: [String])
    case badValue(key: String, value: String, expected: String)
    case malformed(String)
    case atLine(source: String, line: Int, NodeConfigurationError)

    public var description: String {
        switch self {
        case .unknownKey(let key, let known):
            "unknown key '\(key)': known keys are \(known.joined(separator: ", "))"
        case .badValue(let key, let value, let expected):
            "'\(value)' is not a valid \(key): expected \(expected)"
        case .malformed(let line):
            "'\(line.prefix(60))' is not a setting: write key = value"
        case .atLine(let source, let line, let error):
            line > 0 ? "\(source) line \(line): \(error)" : "\(source): \(error)"
        }
    }
}
