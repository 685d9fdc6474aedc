// Multicast datagrams: one transmission to an IP group reaches every receiver on the LAN.
// Each stream (one per multicast channel at its sender) has its own random 32-byte group key,
// handed to subscribers over their authenticated sessions; every datagram is sealed with it
// (ChaCha20-Poly1305, which a Raspberry Pi runs fast in software). Layout, 16-byte header
// in the clear and authenticated as associated data:
//
//   kind u8 | stream u32 | sequence u64 | channel u16 | flags u8 | sealed body + 16-byte tag
//
// A data datagram carries one fragment of a message (flags: first, last); its nonce is the
// sequence. A heartbeat carries the next data sequence, so receivers notice a lost tail; its
// nonce is its own counter with the top bit set, so the two never share a nonce.
import Crypto

/// What a stream's receivers need to open and order its datagrams: sent by the stream's sender
/// (the host) to each subscriber over its session.
public struct MulticastStreamDescriptor: Hashable, Sendable {
    /// The node-network channel the stream carries.
    public var channel: UInt16
    /// Random per stream: a new sender (a host restart) starts a new stream.
    public var stream: UInt32
    /// The group key (32 bytes).
    public var key: [UInt8]
    /// The first sequence this receiver is given: earlier datagrams are not for it.
    public var firstSequence: UInt64
    /// The IP group and port the datagrams go to; nil when the sender does not multicast
    /// (every datagram then comes relayed over the receiver's session).
    public var group: NetworkAddress?

    public init(channel: UInt16, stream: UInt32, key: [UInt8], firstSequence: UInt64, group: NetworkAddress?) {
        self.channel = channel
        self.stream = stream
        self.key = key
        self.firstSequence = firstSequence
        self.group = group
    }
}

/// The cleartext header of a multicast datagram.
public struct MulticastHeader: Hashable, Sendable {
    public enum Kind: UInt8, Sendable {
        case data = 0xD1
        case heartbeat = 0xD2
    }

    /// Fragment flags of a data datagram.
    public struct Flags: OptionSet, Hashable, Sendable {
        public let rawValue: UInt8
        public init(rawValue: UInt8) { self.rawValue = rawValue }
        /// The message's first fragment.
        public static let first = Flags(rawValue: 1)
        /// The message's last fragment.
        public static let last = Flags(rawValue: 2)
    }

    public static let length = 16
    public static let tagLength = 16

    public var kind: Kind
    public var stream: UInt32
    /// Data: the datagram's sequence. Heartbeat: the heartbeat's own counter.
    public var sequence: UInt64
    public var channel: UInt16
    public var flags: Flags

    public init(kind: Kind, stream: UInt32, sequence: UInt64, channel: UInt16, flags: Flags = []) {
        self.kind = kind
        self.stream = stream
        self.sequence = sequence
        self.channel = channel
        self.flags = flags
    }

    func write(into writer: inout ByteWriter) {
        writer.writeUInt8(kind.rawValue)
        writer.writeUInt32(stream)
        writer.writeUInt64(sequence)
        writer.writeUInt16(channel)
        writer.writeUInt8(flags.rawValue)
    }

    /// Reads the header of `datagram` (it is not authenticated until the body opens).
    /// - Throws: ``WireError`` for a short datagram or an unknown kind.
    public static func decode(_ datagram: [UInt8]) throws(WireError) -> MulticastHeader {
        guard datagram.count >= length + tagLength else { throw .truncated("multicast datagram") }
        guard let kind = Kind(rawValue: datagram[0]) else { throw .unknownPacketType(datagram[0]) }
        var result: Result<MulticastHeader, WireError> = .failure(.truncated("multicast header"))
        datagram.withUnsafeBytes { raw in
            do throws(WireError) {
                var reader = ByteReader(raw)
                _ = try reader.readUInt8("kind")
                let stream = try reader.readUInt32("stream")
                let sequence = try reader.readUInt64("sequence")
                let channel = try reader.readUInt16("channel")
                let flags = Flags(rawValue: try reader.readUInt8("flags"))
                result = .success(MulticastHeader(kind: kind, stream: stream, sequence: sequence, channel: channel, flags: flags))
            } catch {
                result = .failure(error)
            }
        }
        return try result.get()
    }
}

/// A stream's group key: seals and opens its datagrams. Owns the C AEAD context.
public final class MulticastKey: Sendable {
    private nonisolated(unsafe) let key: PacketKey
    public let bytes: [UInt8]

    /// A fresh random key.
    public convenience init() {
        let random = SymmetricKey(size: .bits256).withUnsafeBytes { [UInt8]($0) }
        try! self.init(bytes: random)
    }

    /// - Throws: ``TransportError`` unless `bytes` is 32 bytes long.
    public init(bytes: [UInt8]) throws(TransportError) {
        guard bytes.count == 32 else { throw .invalidKey("a multicast group key is 32 bytes, got \(bytes.count)") }
        self.bytes = bytes
        key = PacketKey(cipher: .chacha20Poly1305, secret: bytes)
    }

    static let heartbeatNonce: UInt64 = 1 << 63

    private static func nonce(_ header: MulticastHeader) -> UInt64 {
        header.kind == .heartbeat ? header.sequence | heartbeatNonce : header.sequence
    }

    /// A sealed datagram: `header`, then `body` encrypted, then the tag.
    public func seal(_ header: MulticastHeader, body: some Collection<UInt8>) -> [UInt8] {
        var writer = ByteWriter(capacity: MulticastHeader.length + body.count + MulticastHeader.tagLength)
        header.write(into: &writer)
        writer.writeBytes(body)
        writer.writeBytes(repeatElement(0, count: MulticastHeader.tagLength))
        var datagram = writer.bytes
        let bodyLength = body.count
        datagram.withUnsafeMutableBytes { raw in
            let headerBytes = UnsafeRawBufferPointer(rebasing: raw[0..<MulticastHeader.length])
            key.seal(raw.baseAddress! + MulticastHeader.length, length: bodyLength, header: headerBytes,
                     packetNumber: Self.nonce(header))
        }
        return datagram
    }

    /// The body of `datagram` if it authenticates under this key, else nil.
    public func open(_ datagram: [UInt8], header: MulticastHeader) -> [UInt8]? {
        guard datagram.count >= MulticastHeader.length + MulticastHeader.tagLength else { return nil }
        let bodyLength = datagram.count - MulticastHeader.length - MulticastHeader.tagLength
        var body = [UInt8](repeating: 0, count: max(bodyLength, 1))
        let opened = datagram.withUnsafeBytes { raw in
            body.withUnsafeMutableBytes { out in
                key.open(UnsafeRawBufferPointer(rebasing: raw[MulticastHeader.length...]),
                         header: UnsafeRawBufferPointer(rebasing: raw[0..<MulticastHeader.length]),
                         packetNumber: Self.nonce(header), into: out.baseAddress!)
            }
        }
        guard opened else { return nil }
        body.removeLast(body.count - bodyLength)
        return body
    }
}
