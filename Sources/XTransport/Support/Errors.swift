// The module's errors. `WireError` is what the decoders throw for a malformed datagram (the
// endpoint counts and drops those); `TransportError` is what users of the library see.

/// Why a datagram or frame could not be decoded. Decoders never trap on hostile input.
public enum WireError: Error, Hashable, Sendable, CustomStringConvertible {
    /// The input ended before the named field.
    case truncated(StaticString)
    /// A field held a value outside its allowed range.
    case valueOutOfRange(StaticString)
    /// The version nibble names a protocol version this build does not speak.
    case unsupportedVersion(UInt8)
    /// The packet type is not one this build knows.
    case unknownPacketType(UInt8)
    /// A frame type byte is not one this build knows.
    case unknownFrameType(UInt8)
    /// A handshake packet does not have its type's fixed size.
    case badLength(StaticString)

    public static func == (lhs: WireError, rhs: WireError) -> Bool { lhs.description == rhs.description }
    public func hash(into hasher: inout Hasher) { hasher.combine(description) }

    public var description: String {
        switch self {
        case .truncated(let field): "packet truncated before \(field)"
        case .valueOutOfRange(let field): "\(field) out of range"
        case .unsupportedVersion(let version): "unsupported protocol version \(version) (this build speaks version \(PacketHeader.version))"
        case .unknownPacketType(let type): "unknown packet type \(type)"
        case .unknownFrameType(let type): "unknown frame type 0x\(String(type, radix: 16))"
        case .badLength(let what): "\(what) has the wrong length"
        }
    }
}

/// An error from the transport, with a reason that says what happened and what to do.
///
/// Equality compares the ``Code`` only, so tests can match on the kind of failure.
public struct TransportError: Error, Hashable, Sendable, CustomStringConvertible {
    /// The kind of failure.
    public enum Code: String, Hashable, Sendable {
        case invalidKey
        case unauthorizedPeer
        /// The peer answered the handshake, authenticated, and refused this node's key.
        case refusedByPeer
        case handshakeTimeout
        case peerUnreachable
        case timedOut
        case closedByPeer
        case resetByPeer
        case sessionClosed
        case messageTooLarge
        case channelModeMismatch
        case protocolViolation
        case invalidConfiguration
        case io
    }

    public let code: Code
    /// A sentence for a person: what happened and what to do about it.
    public let reason: String
    public let file: String
    public let line: Int

    public init(_ code: Code, _ reason: String, file: String = #fileID, line: Int = #line) {
        self.code = code
        self.reason = reason
        self.file = file
        self.line = line
    }

    public static func == (lhs: TransportError, rhs: TransportError) -> Bool { lhs.code == rhs.code }
    public func hash(into hasher: inout Hasher) { hasher.combine(code) }
    public var description: String { reason }

    public static func invalidKey(_ reason: String, file: String = #fileID, line: Int = #line) -> TransportError {
        TransportError(.invalidKey, reason, file: file, line: line)
    }
    public static func unauthorizedPeer(_ key: String, file: String = #fileID, line: Int = #line) -> TransportError {
        TransportError(.unauthorizedPeer, "peer key \(key) is not in the authorized keys file: add it there, or start the listener with --open", file: file, line: line)
    }
    /// The listener at `peer` proved it holds the key dialled, and refused ours: it is not in its
    /// authorized keys.
    public static func refusedByPeer(_ peer: String, key: String, file: String = #fileID, line: Int = #line) -> TransportError {
        TransportError(.refusedByPeer, "\(peer) refused this node's key \(key): add it to the listener's authorized keys", file: file, line: line)
    }
    public static func handshakeTimeout(_ peer: String, file: String = #fileID, line: Int = #line) -> TransportError {
        TransportError(.handshakeTimeout, "no handshake answer from \(peer): check the address, that `xt listen` runs there, and that it has your public key in its authorized keys", file: file, line: line)
    }
    public static func timedOut(_ seconds: Double, file: String = #fileID, line: Int = #line) -> TransportError {
        TransportError(.timedOut, "peer silent for \(seconds) s: it is dead or the path is down", file: file, line: line)
    }
    public static func protocolViolation(_ reason: String, file: String = #fileID, line: Int = #line) -> TransportError {
        TransportError(.protocolViolation, "protocol violation by peer: \(reason)", file: file, line: line)
    }
    public static func messageTooLarge(_ size: Int, limit: Int, file: String = #fileID, line: Int = #line) -> TransportError {
        TransportError(.messageTooLarge, "message of \(size) bytes exceeds the limit of \(limit) bytes for this channel mode: split it, or use a reliable or live channel", file: file, line: line)
    }
    public static func sessionClosed(file: String = #fileID, line: Int = #line) -> TransportError {
        TransportError(.sessionClosed, "the session is closed: open a new one", file: file, line: line)
    }
    public static func invalidConfiguration(_ reason: String, file: String = #fileID, line: Int = #line) -> TransportError {
        TransportError(.invalidConfiguration, reason, file: file, line: line)
    }
}
