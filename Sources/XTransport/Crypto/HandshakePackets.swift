// The three handshake datagrams (initiation, response, cookie reply), their MACs, and the
// stateless cookie. mac1 is keyed by the responder's public key, so only a sender that knows
// it can make the responder do Diffie-Hellman work; mac2 carries a cookie bound to the
// sender's address, so under load only senders that proved their address get any work.
import Crypto
import Foundation

/// Noise IK message 1 on the wire.
struct InitiationPacket: Equatable {
    var senderIndex: UInt32
    var ephemeral: [UInt8]          // 32
    var encryptedStatic: [UInt8]    // 32 + 16
    var encryptedPayload: [UInt8]   // payload + 16
    var mac1: [UInt8] = Array(repeating: 0, count: 16)
    var mac2: [UInt8] = Array(repeating: 0, count: 16)

    static let minimumSize = 1 + 4 + 32 + 48 + 2 + 16 + 32
    static let maximumPayload = 1024

    /// Bytes covered by mac1 (everything before it).
    func encoded() -> [UInt8] {
        var writer = ByteWriter(capacity: Self.minimumSize + encryptedPayload.count)
        writer.writeUInt8(PacketHeader.firstByte(.initiation))
        writer.writeUInt32(senderIndex)
        writer.writeBytes(ephemeral)
        writer.writeBytes(encryptedStatic)
        writer.writeUInt16(UInt16(encryptedPayload.count))
        writer.writeBytes(encryptedPayload)
        writer.writeBytes(mac1)
        writer.writeBytes(mac2)
        return writer.bytes
    }

    static func decode(_ datagram: UnsafeRawBufferPointer) throws(WireError) -> InitiationPacket {
        guard datagram.count >= minimumSize else { throw WireError.badLength("initiation") }
        var reader = ByteReader(datagram, position: 1)
        let sender = try reader.readUInt32("sender index")
        let ephemeral = try reader.readBytes(32, "ephemeral key")
        let encryptedStatic = try reader.readBytes(48, "encrypted static key")
        let length = Int(try reader.readUInt16("payload length"))
        guard length >= 16, length <= maximumPayload + 16 else { throw WireError.valueOutOfRange("payload length") }
        let payload = try reader.readBytes(length, "encrypted payload")
        let mac1 = try reader.readBytes(16, "mac1")
        let mac2 = try reader.readBytes(16, "mac2")
        guard reader.isAtEnd else { throw WireError.badLength("initiation") }
        return InitiationPacket(senderIndex: sender, ephemeral: ephemeral, encryptedStatic: encryptedStatic,
                                encryptedPayload: payload, mac1: mac1, mac2: mac2)
    }
}

/// Noise IK message 2 on the wire.
struct ResponsePacket: Equatable {
    var senderIndex: UInt32
    var receiverIndex: UInt32
    var ephemeral: [UInt8]          // 32
    var encryptedPayload: [UInt8]   // payload + 16
    var mac1: [UInt8] = Array(repeating: 0, count: 16)
    var mac2: [UInt8] = Array(repeating: 0, count: 16)

    static let minimumSize = 1 + 4 + 4 + 32 + 2 + 16 + 32

    func encoded() -> [UInt8] {
        var writer = ByteWriter(capacity: Self.minimumSize + encryptedPayload.count)
        writer.writeUInt8(PacketHeader.firstByte(.response))
        writer.writeUInt32(senderIndex)
        writer.writeUInt32(receiverIndex)
        writer.writeBytes(ephemeral)
        writer.writeUInt16(UInt16(encryptedPayload.count))
        writer.writeBytes(encryptedPayload)
        writer.writeBytes(mac1)
        writer.writeBytes(mac2)
        return writer.bytes
    }

    static func decode(_ datagram: UnsafeRawBufferPointer) throws(WireError) -> ResponsePacket {
        guard datagram.count >= minimumSize else { throw WireError.badLength("response") }
        var reader = ByteReader(datagram, position: 1)
        let sender = try reader.readUInt32("sender index")
        let receiver = try reader.readUInt32("receiver index")
        let ephemeral = try reader.readBytes(32, "ephemeral key")
        let length = Int(try reader.readUInt16("payload length"))
        guard length >= 16, length <= InitiationPacket.maximumPayload + 16 else { throw WireError.valueOutOfRange("payload length") }
        let payload = try reader.readBytes(length, "encrypted payload")
        let mac1 = try reader.readBytes(16, "mac1")
        let mac2 = try reader.readBytes(16, "mac2")
        guard reader.isAtEnd else { throw WireError.badLength("response") }
        return ResponsePacket(senderIndex: sender, receiverIndex: receiver, ephemeral: ephemeral,
                              encryptedPayload: payload, mac1: mac1, mac2: mac2)
    }
}

/// The responder's answer under load: a cookie, encrypted so only the initiator can use it.
struct CookieReplyPacket: Equatable {
    var receiverIndex: UInt32
    var nonce: [UInt8]              // 12
    var encryptedCookie: [UInt8]    // 16 + 16

    static let size = 1 + 4 + 12 + 32

    func encoded() -> [UInt8] {
        var writer = ByteWriter(capacity: Self.size)
        writer.writeUInt8(PacketHeader.firstByte(.cookieReply))
        writer.writeUInt32(receiverIndex)
        writer.writeBytes(nonce)
        writer.writeBytes(encryptedCookie)
        return writer.bytes
    }

    static func decode(_ datagram: UnsafeRawBufferPointer) throws(WireError) -> CookieReplyPacket {
        guard datagram.count == size else { throw WireError.badLength("cookie reply") }
        var reader = ByteReader(datagram, position: 1)
        return CookieReplyPacket(receiverIndex: try reader.readUInt32("receiver index"),
                                 nonce: try reader.readBytes(12, "nonce"),
                                 encryptedCookie: try reader.readBytes(32, "cookie"))
    }
}

/// MAC helpers shared by both sides.
enum HandshakeMAC {
    /// The key for mac1 on messages to the holder of `publicKey`.
    static func mac1Key(_ publicKey: PublicKey) -> SymmetricKey {
        SymmetricKey(data: Array(SHA256.hash(data: Array("mac1----".utf8) + publicKey.bytes)))
    }
    /// The key that seals cookie replies from the holder of `publicKey`.
    static func cookieKey(_ publicKey: PublicKey) -> SymmetricKey {
        SymmetricKey(data: Array(SHA256.hash(data: Array("cookie--".utf8) + publicKey.bytes)))
    }
    static func mac(_ data: ArraySlice<UInt8>, key: SymmetricKey) -> [UInt8] {
        Array(Array(HMAC<SHA256>.authenticationCode(for: data, using: key)).prefix(16))
    }
    static func constantTimeEqual(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        guard a.count == b.count else { return false }
        var difference: UInt8 = 0
        for i in a.indices { difference |= a[i] ^ b[i] }
        return difference == 0
    }

    /// Fills in mac1 and (given a cookie) mac2 of an encoded handshake packet in place.
    static func stamp(_ packet: inout [UInt8], mac1Key: SymmetricKey, cookie: [UInt8]?) {
        let mac1Start = packet.count - 32
        let mac1 = mac(packet[..<mac1Start], key: mac1Key)
        packet.replaceSubrange(mac1Start..<mac1Start + 16, with: mac1)
        if let cookie {
            let mac2 = mac(packet[..<(mac1Start + 16)], key: SymmetricKey(data: cookie))
            packet.replaceSubrange((mac1Start + 16)..., with: mac2)
        }
    }

    static func verifyMac1(_ packet: [UInt8], key: SymmetricKey) -> Bool {
        let mac1Start = packet.count - 32
        return constantTimeEqual(mac(packet[..<mac1Start], key: key), Array(packet[mac1Start..<mac1Start + 16]))
    }

    static func mac2(of packet: [UInt8], cookie: [UInt8]) -> [UInt8] {
        mac(packet[..<(packet.count - 16)], key: SymmetricKey(data: cookie))
    }
}

/// Issues and checks address-bound cookies without keeping per-source state. The secret
/// rotates every two minutes; cookies made with the previous secret are still accepted.
struct CookieJar {
    static let rotation: Int64 = 120 * Nanos.second
    private var secret: SymmetricKey
    private var previousSecret: SymmetricKey
    private var rotatedAt: Timestamp

    init(now: Timestamp) {
        secret = SymmetricKey(size: .bits256)
        previousSecret = SymmetricKey(size: .bits256)
        rotatedAt = now
    }

    private mutating func rotateIfDue(now: Timestamp) {
        if now.nanoseconds(since: rotatedAt) >= Self.rotation {
            previousSecret = secret
            secret = SymmetricKey(size: .bits256)
            rotatedAt = now
        }
    }

    mutating func cookie(for address: NetworkAddress, now: Timestamp) -> [UInt8] {
        rotateIfDue(now: now)
        return HandshakeMAC.mac(address.identityBytes[...], key: secret)
    }

    /// Whether mac2 of `packet` was made with a current cookie for `address`.
    mutating func verifyMac2(_ packet: [UInt8], from address: NetworkAddress, now: Timestamp) -> Bool {
        rotateIfDue(now: now)
        let received = Array(packet.suffix(16))
        for key in [secret, previousSecret] {
            let cookie = HandshakeMAC.mac(address.identityBytes[...], key: key)
            if HandshakeMAC.constantTimeEqual(HandshakeMAC.mac2(of: packet, cookie: cookie), received) { return true }
        }
        return false
    }

    /// A cookie reply for an initiation whose mac1 was `mac1`.
    mutating func reply(to initiation: InitiationPacket, from address: NetworkAddress, sealedFor localKey: PublicKey, now: Timestamp) -> CookieReplyPacket {
        let cookie = cookie(for: address, now: now)
        let nonce = ChaChaPoly.Nonce()
        let box = try! ChaChaPoly.seal(cookie, using: HandshakeMAC.cookieKey(localKey), nonce: nonce, authenticating: initiation.mac1)
        return CookieReplyPacket(receiverIndex: initiation.senderIndex, nonce: Array(nonce),
                                 encryptedCookie: Array(box.ciphertext) + Array(box.tag))
    }

    /// Opens a cookie reply at the initiator.
    static func open(_ reply: CookieReplyPacket, from responderKey: PublicKey, mac1: [UInt8]) -> [UInt8]? {
        guard let nonce = try? ChaChaPoly.Nonce(data: reply.nonce),
              let box = try? ChaChaPoly.SealedBox(nonce: nonce, ciphertext: reply.encryptedCookie.prefix(16), tag: reply.encryptedCookie.suffix(16)),
              let cookie = try? ChaChaPoly.open(box, using: HandshakeMAC.cookieKey(responderKey), authenticating: mac1)
        else { return nil }
        return Array(cookie)
    }
}

/// Transport parameters and application hello bytes carried inside the handshake payloads.
public struct HandshakeParameters: Hashable, Sendable {
    /// Wall-clock nanoseconds at the initiator (replay protection for message 1).
    var timestamp: UInt64
    /// The receive window the sender grants each channel at first.
    public var initialChannelWindow: UInt64
    /// Application bytes (the node network puts node id and name here).
    public var hello: [UInt8]
    /// Packet ciphers: the initiator's offer in its order of preference; in the response, the
    /// one chosen.
    public var ciphers: [PacketCipher] = [.chacha20Poly1305]
    /// The sender's stateless-reset token for its connection id (16 bytes; empty if none).
    var resetToken: [UInt8] = []

    func encoded() -> [UInt8] {
        var writer = ByteWriter(capacity: 40 + hello.count)
        writer.writeUInt64(timestamp)
        writer.writeVarInt(initialChannelWindow)
        writer.writeVarInt(UInt64(hello.count))
        writer.writeBytes(hello)
        writer.writeVarInt(UInt64(ciphers.count))
        for cipher in ciphers { writer.writeUInt8(cipher.rawValue) }
        writer.writeVarInt(UInt64(resetToken.count))
        writer.writeBytes(resetToken)
        return writer.bytes
    }

    static func decode(_ bytes: [UInt8]) throws(WireError) -> HandshakeParameters {
        try bytes.withUnsafeBytesTyped { (raw) throws(WireError) -> HandshakeParameters in
            var reader = ByteReader(raw)
            let timestamp = try reader.readUInt64("timestamp")
            let window = try reader.readVarInt("initial window")
            let length = try reader.readLength("hello length", limit: reader.remaining)
            let hello = try reader.readBytes(length, "hello")
            let count = try reader.readLength("cipher count", limit: min(reader.remaining, 16))
            // Ciphers this version does not know are passed over, so a newer peer can offer more.
            let ciphers = try reader.readBytes(count, "ciphers").compactMap(PacketCipher.init(rawValue:))
            let tokenLength = try reader.readLength("reset token length", limit: min(reader.remaining, StatelessReset.tokenSize))
            let token = try reader.readBytes(tokenLength, "reset token")
            return HandshakeParameters(timestamp: timestamp, initialChannelWindow: window, hello: hello, ciphers: ciphers, resetToken: token)
        }
    }
}
