// Stateless reset (as in QUIC, RFC 9000 §10.3): an endpoint that restarted has lost its
// sessions, so a peer's packets for them carry connection ids it no longer knows. It answers
// such a packet with a short reset carrying a token only it can compute — an HMAC of the
// connection id under a key derived from its static private key, so the same after a
// restart — and which it gave the peer in the handshake. The peer, on a matching token, ends
// the session at once instead of waiting for its dead-peer timeout, and reconnects.
import Crypto

/// Computes and recognises reset tokens for one identity.
struct StatelessReset {
    private let key: SymmetricKey
    static let tokenSize = 16
    /// Byte 0, the connection id, the token.
    static let packetSize = 1 + 4 + tokenSize

    init(identity: NodeIdentity) {
        let secret = HMAC<SHA256>.authenticationCode(for: Array("xtransport stateless reset".utf8),
                                                     using: SymmetricKey(data: identity.privateKey.rawRepresentation))
        key = SymmetricKey(data: Array(secret))
    }

    /// The token for this endpoint's connection id `index`.
    func token(for index: UInt32) -> [UInt8] {
        let id = [UInt8(index >> 24), UInt8(index >> 16 & 0xff), UInt8(index >> 8 & 0xff), UInt8(index & 0xff)]
        return Array(HMAC<SHA256>.authenticationCode(for: id, using: key).prefix(Self.tokenSize))
    }

    /// The reset for a packet that arrived for the unknown connection id `index`.
    func packet(for index: UInt32) -> [UInt8] {
        var writer = ByteWriter(capacity: Self.packetSize)
        writer.writeUInt8(PacketHeader.firstByte(.statelessReset))
        writer.writeUInt32(index)
        writer.writeBytes(token(for: index))
        return writer.bytes
    }

    /// Reads a reset: the connection id it names and its token.
    static func parse(_ datagram: UnsafeRawBufferPointer) -> (index: UInt32, token: [UInt8])? {
        guard datagram.count == packetSize else { return nil }
        var reader = ByteReader(datagram, position: 1)
        guard let index = try? reader.readUInt32("connection id"), let token = try? reader.readBytes(tokenSize, "token") else { return nil }
        return (index, token)
    }

    /// Compares tokens in constant time.
    static func matches(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        guard a.count == b.count, !a.isEmpty else { return false }
        var difference: UInt8 = 0
        for (x, y) in zip(a, b) { difference |= x ^ y }
        return difference == 0
    }
}
