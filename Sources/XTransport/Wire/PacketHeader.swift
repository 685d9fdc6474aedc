// The cleartext front of every datagram: version, packet type and, for data packets, the
// receiver's connection id and the packet number. For data packets these 13 bytes are the
// AEAD's associated data, so they cannot be altered in flight.

/// The kinds of datagram on the wire.
public enum PacketType: UInt8, Hashable, Sendable {
    /// Noise IK message 1 (initiator → responder).
    case initiation = 1
    /// Noise IK message 2 (responder → initiator).
    case response = 2
    /// A stateless cookie the responder sends instead of doing the handshake under load.
    case cookieReply = 3
    /// An encrypted data packet sealed with key phase 0.
    case dataPhase0 = 4
    /// An encrypted data packet sealed with key phase 1.
    case dataPhase1 = 5
    /// A restarted endpoint's answer to a packet for a session it no longer has.
    case statelessReset = 6
}

/// The header of a data packet.
public struct PacketHeader: Hashable, Sendable {
    /// The protocol version this build speaks (the high nibble of byte 0).
    public static let version: UInt8 = 1
    /// Size of a data packet's header.
    public static let dataHeaderSize = 13
    /// Size of the AEAD tag that follows every sealed payload.
    public static let tagSize = 16

    /// Key phase (0 or 1): flips on every key rotation.
    public var keyPhase: UInt8
    /// The receiver's connection id for this session.
    public var connectionID: UInt32
    /// Monotonic per direction; also the AEAD nonce, so never reused under one key.
    public var packetNumber: UInt64

    public init(keyPhase: UInt8, connectionID: UInt32, packetNumber: UInt64) {
        self.keyPhase = keyPhase
        self.connectionID = connectionID
        self.packetNumber = packetNumber
    }

    /// Reads byte 0 and returns the packet type, checking the version.
    public static func peekType(_ datagram: UnsafeRawBufferPointer) throws(WireError) -> PacketType {
        guard let first = datagram.first else { throw WireError.truncated("packet type") }
        let version = first >> 4
        guard version == PacketHeader.version else { throw WireError.unsupportedVersion(version) }
        guard let type = PacketType(rawValue: first & 0x0f) else { throw WireError.unknownPacketType(first & 0x0f) }
        return type
    }

    /// Byte 0 for a packet of `type`.
    @inline(__always)
    static func firstByte(_ type: PacketType) -> UInt8 { version << 4 | type.rawValue }

    /// Decodes a data packet's header. The payload that follows is sealed.
    public static func decodeData(_ datagram: UnsafeRawBufferPointer) throws(WireError) -> PacketHeader {
        let type = try peekType(datagram)
        guard type == .dataPhase0 || type == .dataPhase1 else { throw WireError.unknownPacketType(type.rawValue) }
        guard datagram.count >= dataHeaderSize + tagSize else { throw WireError.truncated("sealed payload") }
        var reader = ByteReader(datagram, position: 1)
        let connectionID = try reader.readUInt32("connection id")
        let packetNumber = try reader.readUInt64("packet number")
        return PacketHeader(keyPhase: type == .dataPhase1 ? 1 : 0, connectionID: connectionID, packetNumber: packetNumber)
    }

    func encode(into cursor: inout BufferCursor) {
        cursor.writeUInt8(PacketHeader.firstByte(keyPhase == 0 ? .dataPhase0 : .dataPhase1))
        cursor.writeUInt32(connectionID)
        cursor.writeUInt64(packetNumber)
    }

    /// The header as bytes.
    public var encoded: [UInt8] {
        [UInt8](unsafeUninitializedCapacity: Self.dataHeaderSize) { buffer, count in
            var cursor = BufferCursor(UnsafeMutableRawBufferPointer(buffer))
            encode(into: &cursor)
            count = Self.dataHeaderSize
        }
    }
}
