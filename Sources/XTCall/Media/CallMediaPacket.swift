// A call's media packet, as parties send each other audio and video (directly, or relayed by
// the host on the node network's live lanes).
public import XTransport

/// One packet of a call's audio (one 20 ms Opus frame) or video (one H.264 access unit), or a
/// request for a keyframe (its payload: the name of the party whose video lost a picture).
public struct CallMediaPacket: Equatable, Sendable {
    public enum Kind: UInt8, Sendable { case audio = 1, video = 2, keyframeRequest = 3 }

    /// Flag bits.
    public struct Flags: OptionSet, Hashable, Sendable {
        public let rawValue: UInt8
        public init(rawValue: UInt8) { self.rawValue = rawValue }
        /// Audio: the encoder was in DTX (silence); frames until the next normal one are skipped on purpose.
        public static let silence = Flags(rawValue: 1)
        /// Video: a keyframe (IDR), decodable on its own.
        public static let keyframe = Flags(rawValue: 2)
        /// Audio: the payload also carries the previous frame's Opus packet, whole (see
        /// ``CallMediaPacket/audio(call:sequence:captureMicroseconds:opus:previous:silence:)``).
        public static let redundant = Flags(rawValue: 4)
        /// Audio: a second copy of the packet sent just before it (the sender's link loses
        /// packets: see ``CallAudioSender/duplicating``). A receiver that has the frame drops it.
        public static let copy = Flags(rawValue: 8)
    }

    public var kind: Kind
    public var flags: Flags
    public var call: CallID
    /// Audio: the 20 ms frame's number since the sender joined. Video: the picture's number.
    public var sequence: UInt32
    /// The sender's capture time, microseconds on its monotonic clock (A/V sync; a reply
    /// carries it back for the round trip).
    public var captureMicroseconds: UInt64
    public var payload: [UInt8]

    /// Largest payload (a 1080p keyframe fits; anything larger is refused as malformed).
    public static let maximumPayload = 1 << 20

    public init(kind: Kind, flags: Flags = [], call: CallID, sequence: UInt32, captureMicroseconds: UInt64, payload: [UInt8]) {
        self.kind = kind
        self.flags = flags
        self.call = call
        self.sequence = sequence
        self.captureMicroseconds = captureMicroseconds
        self.payload = payload
    }

    /// An audio packet: frame `sequence`'s Opus packet, and with `previous` also frame
    /// `sequence − 1`'s, whole, so a single lost packet is repaired at full quality from the
    /// next (RFC 2198's redundancy at a distance of one frame, as WebRTC's opus/red). The payload
    /// is then: the frame's length u16, the frame, the previous frame.
    public static func audio(call: CallID, sequence: UInt32, captureMicroseconds: UInt64, opus: [UInt8], previous: [UInt8]? = nil,
                             silence: Bool = false) -> CallMediaPacket {
        var flags: Flags = silence ? .silence : []
        var payload = opus
        if let previous, !previous.isEmpty, opus.count <= Int(UInt16.max) {
            flags.insert(.redundant)
            payload = [UInt8(opus.count >> 8), UInt8(opus.count & 0xff)] + opus + previous
        }
        return CallMediaPacket(kind: .audio, flags: flags, call: call, sequence: sequence, captureMicroseconds: captureMicroseconds, payload: payload)
    }

    /// The frame itself: the payload, less a redundant copy of the previous frame.
    public var primary: ArraySlice<UInt8> { frames.primary }

    /// The previous frame's Opus packet, where the packet carries it.
    public var redundant: ArraySlice<UInt8>? { frames.redundant }

    /// The payload split at its length prefix (2 bytes, big-endian: the primary frame's length)
    /// when it carries a redundant copy; the whole payload otherwise.
    private var frames: (primary: ArraySlice<UInt8>, redundant: ArraySlice<UInt8>?) {
        guard flags.contains(.redundant), payload.count >= 2 else { return (payload[...], nil) }
        let end = min(payload.count, 2 + (Int(payload[0]) << 8 | Int(payload[1])))
        return (payload[2..<end], end < payload.count ? payload[end...] : nil)
    }

    /// This audio packet as its second copy (``Flags/copy``).
    public var secondCopy: CallMediaPacket {
        var packet = self
        packet.flags.insert(.copy)
        return packet
    }

    /// The packet without its redundant copy (for a receiver that does not use it: the browser).
    public var withoutRedundancy: CallMediaPacket {
        guard flags.contains(.redundant) else { return self }
        var packet = self
        packet.flags.remove(.redundant)
        packet.payload = Array(primary)
        return packet
    }

    /// "XM", version u8 (1), kind u8, flags u8, call id u64, sequence u32, capture time u64, payload.
    /// A request to `party` for a keyframe of its video in `call`.
    public static func keyframeRequest(call: CallID, to party: String) -> CallMediaPacket {
        CallMediaPacket(kind: .keyframeRequest, call: call, sequence: 0, captureMicroseconds: 0, payload: Array(party.utf8))
    }

    /// The party a keyframe request is for (nil for other kinds).
    public var keyframeRequestTarget: String? {
        kind == .keyframeRequest ? String(decoding: payload, as: UTF8.self) : nil
    }

    public var encoded: [UInt8] {
        var writer = ByteWriter(capacity: 25 + payload.count)
        writer.writeBytes([0x58, 0x4D, 1, kind.rawValue, flags.rawValue])
        writer.writeUInt64(call.raw)
        writer.writeUInt32(sequence)
        writer.writeUInt64(captureMicroseconds)
        writer.writeBytes(payload)
        return writer.bytes
    }

    /// - Throws: ``CallMessageError`` for anything but a well-formed version-1 packet.
    public init(decoding bytes: [UInt8]) throws(CallMessageError) {
        guard bytes.count >= 2, bytes[0] == 0x58, bytes[1] == 0x4D else { throw .notSignalling }
        guard bytes.count >= 25 else { throw .malformed("a media packet of \(bytes.count) bytes: its header alone is 25") }
        guard bytes[2] == 1 else { throw .unsupportedVersion(bytes[2]) }
        guard bytes.count - 25 <= Self.maximumPayload else { throw .malformed("a media payload of \(bytes.count - 25) bytes") }
        // The header's length is checked above, so these reads cannot run short.
        let header = bytes.withUnsafeBytes { raw -> (kind: UInt8, flags: UInt8, call: UInt64, sequence: UInt32, capture: UInt64)? in
            var reader = ByteReader(raw, position: 3)
            return try? (reader.readUInt8(), reader.readUInt8(), reader.readUInt64(), reader.readUInt32(), reader.readUInt64())
        }
        guard let header else { throw .malformed("a media packet's header did not read") }
        guard let kind = Kind(rawValue: header.kind) else { throw .malformed("media kind \(header.kind)") }
        let flags = Flags(rawValue: header.flags)
        guard flags.rawValue & ~0b1111 == 0 else { throw .malformed("media flags \(header.flags)") }
        guard kind == .audio || !flags.contains(.copy) else { throw .malformed("a second copy of a \(kind) packet") }
        if flags.contains(.redundant) {
            guard kind == .audio else { throw .malformed("a redundant copy in a \(kind) packet") }
            let length = bytes.count >= 27 ? Int(bytes[25]) << 8 | Int(bytes[26]) : -1
            guard length >= 1, 27 + length < bytes.count else {
                throw .malformed("a redundant audio packet whose frame length \(length) does not leave both frames in its \(bytes.count - 25) bytes")
            }
        }
        guard header.call != 0 else { throw .malformed("call id 0") }
        if kind == .keyframeRequest {
            guard let name = String(validating: bytes[25...], as: UTF8.self), CallMessage.isValidName(name) else {
                throw .malformed("a keyframe request for no valid party name")
            }
        }
        self.init(kind: kind, flags: flags, call: CallID(header.call), sequence: header.sequence, captureMicroseconds: header.capture,
                  payload: Array(bytes[25...]))
    }
}
