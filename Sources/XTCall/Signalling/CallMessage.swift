// Call signalling messages, as they travel node to node through the host (UltraSockets-style
// routing by name on the node network). Every field is checked where it enters: a malformed
// message is a typed error, never a trap.
public import XTransport

/// One call, named by the caller: random, so two callers never pick the same one in practice.
public struct CallID: Hashable, Sendable, CustomStringConvertible {
    public var raw: UInt64
    public init(_ raw: UInt64) { self.raw = raw }
    /// A fresh random id.
    public static func random() -> CallID { CallID(UInt64.random(in: 1...UInt64.max)) }
    public var description: String { String(raw, radix: 16) }
}

/// The secret of one call's relayed media: 32 random bytes the caller draws and sends in its
/// invitation, so only the parties can read what the host relays on the call's channel (the
/// way SDES hands SRTP its key in the signalling). Direct sessions have their own encryption.
public struct CallKey: Hashable, Sendable {
    public let bytes: [UInt8]
    /// - Precondition: 32 bytes (``CallMessage`` checks it on arrival).
    init(checked bytes: [UInt8]) { self.bytes = bytes }
    /// A fresh key from the system's random source.
    public static func random() -> CallKey {
        var generator = SystemRandomNumberGenerator()
        return CallKey(checked: (0..<32).map { _ in UInt8.random(in: 0...255, using: &generator) })
    }
}

/// What a party sends: audio, video or both.
public struct CallMedia: OptionSet, Hashable, Sendable, CustomStringConvertible {
    public let rawValue: UInt8
    public init(rawValue: UInt8) { self.rawValue = rawValue }
    public static let audio = CallMedia(rawValue: 1)
    public static let video = CallMedia(rawValue: 2)
    public var description: String { [contains(.audio) ? "audio" : nil, contains(.video) ? "video" : nil].compactMap { $0 }.joined(separator: "+") }
}

/// Why a party does not take a call.
public enum DeclineReason: UInt8, Sendable, Equatable, CustomStringConvertible {
    /// The user said no.
    case declined = 1
    /// Already in another call.
    case busy = 2
    /// The node cannot take calls (no audio device, calls turned off).
    case unavailable = 3
    public var description: String {
        switch self {
        case .declined: "declined"
        case .busy: "busy"
        case .unavailable: "unavailable"
        }
    }
}

/// A signalling message. `from` is the sender's node (or user) name; the receiver also knows
/// the authenticated sender from the node network and checks that the two agree.
public enum CallMessage: Equatable, Sendable {
    /// An invitation. `parties` is everyone invited, the caller first (2…8 names): a group call
    /// when more than two. `key` seals the call's relayed media (see ``CallKey``).
    case invite(call: CallID, from: String, parties: [String], media: CallMedia, key: CallKey)
    /// The callee is alerting its user.
    case ringing(call: CallID, from: String)
    /// The sender joins the call, sending `media`. Sent to every party, so all know who is in.
    case accept(call: CallID, from: String, media: CallMedia)
    /// The sender will not join.
    case decline(call: CallID, from: String, reason: DeclineReason)
    /// The sender leaves the call (or, before it was answered, withdraws the invitation).
    case hangup(call: CallID, from: String)
    /// An offer of a direct path (LRP2P): the sender's key and the IPv4 addresses its socket
    /// listens on (at most ``maximumAddresses``). The host vouches for the sender; the key is
    /// the one the receiver admits and expects when either opens the session.
    case direct(call: CallID, from: String, key: PublicKey, addresses: [NetworkAddress])

    public var call: CallID {
        switch self {
        case .invite(let call, _, _, _, _), .ringing(let call, _), .accept(let call, _, _), .decline(let call, _, _), .hangup(let call, _),
             .direct(let call, _, _, _): call
        }
    }

    public var from: String {
        switch self {
        case .invite(_, let from, _, _, _), .ringing(_, let from), .accept(_, let from, _), .decline(_, let from, _), .hangup(_, let from),
             .direct(_, let from, _, _): from
        }
    }

    /// Largest group call, the caller included.
    public static let maximumParties = 8
    /// Most addresses in a direct-path offer.
    public static let maximumAddresses = 8
    /// Longest name in bytes of UTF-8.
    public static let maximumNameLength = 64
    private static let magic: [UInt8] = [0x58, 0x43]  // "XC"
    private static let version: UInt8 = 2

    /// Whether `name` can name a party: 1…64 bytes of UTF-8, no control characters or commas.
    public static func isValidName(_ name: String) -> Bool {
        let count = name.utf8.count
        return count >= 1 && count <= maximumNameLength && !name.unicodeScalars.contains { $0.value < 0x20 || $0.value == 0x7f || $0 == "," }
    }

    /// The message as bytes: "XC", version 2, type, the call id (u64), the sender, then the
    /// type's fields. Names are a u8 length and UTF-8.
    public var encoded: [UInt8] {
        var writer = ByteWriter(capacity: 32)
        writer.writeBytes(Self.magic)
        writer.writeUInt8(Self.version)
        switch self {
        case .invite(let call, let from, let parties, let media, let key):
            Self.header(&writer, 1, call, from)
            writer.writeUInt8(media.rawValue)
            writer.writeBytes(key.bytes)
            writer.writeUInt8(UInt8(clamping: parties.count))
            for party in parties.prefix(Self.maximumParties) { Self.name(&writer, party) }
        case .ringing(let call, let from):
            Self.header(&writer, 2, call, from)
        case .accept(let call, let from, let media):
            Self.header(&writer, 3, call, from)
            writer.writeUInt8(media.rawValue)
        case .decline(let call, let from, let reason):
            Self.header(&writer, 4, call, from)
            writer.writeUInt8(reason.rawValue)
        case .hangup(let call, let from):
            Self.header(&writer, 5, call, from)
        case .direct(let call, let from, let key, let addresses):
            Self.header(&writer, 6, call, from)
            writer.writeBytes(key.bytes)
            let v4 = addresses.compactMap { address -> (UInt32, UInt16)? in
                if case .v4(let host) = address.host { (host, address.port) } else { nil }
            }.prefix(Self.maximumAddresses)
            writer.writeUInt8(UInt8(v4.count))
            for (host, port) in v4 {
                writer.writeUInt32(host)
                writer.writeUInt16(port)
            }
        }
        return writer.bytes
    }

    private static func header(_ writer: inout ByteWriter, _ type: UInt8, _ call: CallID, _ from: String) {
        writer.writeUInt8(type)
        writer.writeUInt64(call.raw)
        name(&writer, from)
    }

    private static func name(_ writer: inout ByteWriter, _ name: String) {
        let bytes = Array(name.utf8.prefix(maximumNameLength))
        writer.writeUInt8(UInt8(bytes.count))
        writer.writeBytes(bytes)
    }

    /// Reads a message.
    /// - Throws: ``CallMessageError`` for anything but a whole, well-formed version-2 message.
    public init(decoding bytes: [UInt8]) throws(CallMessageError) {
        let result = bytes.withUnsafeBytes { raw -> Result<CallMessage, CallMessageError> in
            var reader = ByteReader(raw)
            do throws(CallMessageError) {
                let decoded = try Self.decode(&reader)
                guard reader.isAtEnd else { return .failure(.malformed("\(reader.remaining) bytes after the message")) }
                return .success(decoded)
            } catch {
                return .failure(error)
            }
        }
        self = try result.get()
    }

    private static func decode(_ reader: inout ByteReader) throws(CallMessageError) -> CallMessage {
        do {
            guard try reader.readBytes(2, "magic") == magic else { throw CallMessageError.notSignalling }
            let version = try reader.readUInt8("version")
            guard version == Self.version else { throw CallMessageError.unsupportedVersion(version) }
            let type = try reader.readUInt8("type")
            let call = CallID(try reader.readUInt64("call id"))
            guard call.raw != 0 else { throw CallMessageError.malformed("call id 0") }
            let from = try readName(&reader, "sender")
            switch type {
            case 1:
                let media = try readMedia(&reader)
                let key = CallKey(checked: try reader.readBytes(32, "media key"))
                let count = Int(try reader.readUInt8("party count"))
                guard (2...maximumParties).contains(count) else {
                    throw CallMessageError.malformed("\(count) parties: a call has 2 to \(maximumParties)")
                }
                var parties: [String] = []
                for _ in 0..<count { parties.append(try readName(&reader, "party")) }
                guard parties.first == from else { throw CallMessageError.malformed("the caller \(from) is not the first party") }
                guard Set(parties).count == parties.count else { throw CallMessageError.malformed("a party is named twice") }
                return .invite(call: call, from: from, parties: parties, media: media, key: key)
            case 2:
                return .ringing(call: call, from: from)
            case 3:
                return .accept(call: call, from: from, media: try readMedia(&reader))
            case 4:
                let raw = try reader.readUInt8("reason")
                guard let reason = DeclineReason(rawValue: raw) else { throw CallMessageError.malformed("unknown decline reason \(raw)") }
                return .decline(call: call, from: from, reason: reason)
            case 5:
                return .hangup(call: call, from: from)
            case 6:
                let key = try PublicKey(bytes: try reader.readBytes(32, "key"))
                let count = Int(try reader.readUInt8("address count"))
                guard count <= maximumAddresses else { throw CallMessageError.malformed("\(count) addresses: at most \(maximumAddresses)") }
                var addresses: [NetworkAddress] = []
                for _ in 0..<count {
                    let host = try reader.readUInt32("address")
                    let port = try reader.readUInt16("port")
                    guard host != 0, host != UInt32.max, port != 0 else { throw CallMessageError.malformed("address \(NetworkAddress(host: .v4(host), port: port))") }
                    addresses.append(NetworkAddress(host: .v4(host), port: port))
                }
                return .direct(call: call, from: from, key: key, addresses: addresses)
            default:
                throw CallMessageError.malformed("unknown message type \(type)")
            }
        } catch let error as CallMessageError {
            throw error
        } catch {
            throw CallMessageError.malformed("\(error)")
        }
    }

    private static func readName(_ reader: inout ByteReader, _ what: StaticString) throws -> String {
        let length = Int(try reader.readUInt8(what))
        let bytes = try reader.readBytes(length, what)
        guard let name = String(validating: bytes, as: UTF8.self), isValidName(name) else {
            throw CallMessageError.malformed("a \(what) name that is not 1…\(maximumNameLength) bytes of printable UTF-8")
        }
        return name
    }

    private static func readMedia(_ reader: inout ByteReader) throws -> CallMedia {
        let media = CallMedia(rawValue: try reader.readUInt8("media"))
        guard !media.isEmpty, media.rawValue & ~0b11 == 0 else { throw CallMessageError.malformed("media \(media.rawValue): audio (1), video (2) or both") }
        return media
    }
}

/// A signalling message that could not be read.
public enum CallMessageError: Error, Equatable, Sendable, CustomStringConvertible {
    /// Not a call message at all (another application's bytes on the call port).
    case notSignalling
    /// A signalling or media version this node does not speak (another xt release).
    case unsupportedVersion(UInt8)
    /// Truncated, out of range or inconsistent.
    case malformed(String)

    public var description: String {
        switch self {
        case .notSignalling: "not a call signalling message"
        case .unsupportedVersion(let version): "call protocol version \(version) is not this node's: run the same xt release on every node"
        case .malformed(let why): "malformed call signalling message: \(why)"
        }
    }
}
