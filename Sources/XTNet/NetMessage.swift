// The node network's own messages, between a node and its host on the control channel:
// subscriptions, port offers, routed application messages and the host's answers. Application
// messages keep xTransporter's routing header; the host stamps the sender's id into it.
public import XTransport

/// An application message routed through the host.
public struct NetEnvelope: Hashable, Sendable {
    /// Unique per sending node and increasing: the receiver's duplicate filter and the
    /// sender's outbox key across reconnects.
    public var id: UInt64
    /// Routecode, destination, channel (or port), source, netcode, controlcode.
    public var route: RoutingHeader
    /// Unicast and port routing by node name instead of `route.to`.
    public var toName: String?
    public var payload: [UInt8]

    public init(id: UInt64, route: RoutingHeader, toName: String? = nil, payload: [UInt8]) {
        self.id = id
        self.route = route
        self.toName = toName
        self.payload = payload
    }
}

/// What nodes and the host say to each other on the control channel.
public enum NetMessage: Hashable, Sendable {
    /// Node → host: deliver messages published on `channel` to me.
    case subscribe(channel: UInt16)
    /// Node → host: stop delivering `channel`.
    case unsubscribe(channel: UInt16)
    /// Node → host: I serve `port` (port routing), under a service name.
    case offerPort(port: UInt16, service: String)
    /// Either way: an application message (node → host to be routed, host → node delivered).
    case data(NetEnvelope)
    /// Host → node: your message `id` was handed to every destination.
    case accepted(id: UInt64)
    /// Host → node: your message `id` could not be routed, and why.
    case undeliverable(id: UInt64, reason: String)
    /// Host → node: you are admitted under the id and name you claimed.
    case welcome
    /// Node → host: describe the network (`xt status`).
    case statusRequest(id: UInt64)
    /// Host → node: the answer, JSON (an array of ``NodeStatus``).
    case statusReport(id: UInt64, json: [UInt8])
    /// Host → node: `channel`'s multicast stream: its key, first sequence and IP group.
    case multicastJoin(MulticastStreamDescriptor)
    /// Node → host: whether the group reaches me (if not, the host relays the stream to me).
    case multicastReception(channel: UInt16, stream: UInt32, receiving: Bool)
    /// Node → host: these datagrams of the stream are missing here; send them to me.
    case nack(channel: UInt16, stream: UInt32, ranges: [Range<UInt64>])
    /// Host → node: one sealed multicast datagram over the session (a repair, or the stream
    /// itself while the group does not reach the node).
    case relay(datagram: [UInt8])
    /// Node → host: what the node is doing now, one line for `xt status` and the web UI (a
    /// call and its path, say); empty: nothing to say.
    case activity(String)

    private enum Kind: UInt8 {
        case subscribe = 1, unsubscribe, offerPort, data, accepted, undeliverable, welcome, statusRequest, statusReport
        case multicastJoin, multicastReception, nack, relay, activity
    }

    /// Most ranges in one NACK.
    static let maximumRanges = 1024

    /// Largest name or reason carried (bytes of UTF-8).
    static let maximumText = 255

    public func encoded() -> [UInt8] {
        var writer = ByteWriter(capacity: 32)
        switch self {
        case .subscribe(let channel):
            writer.writeUInt8(Kind.subscribe.rawValue)
            writer.writeUInt16(channel)
        case .unsubscribe(let channel):
            writer.writeUInt8(Kind.unsubscribe.rawValue)
            writer.writeUInt16(channel)
        case .offerPort(let port, let service):
            writer.writeUInt8(Kind.offerPort.rawValue)
            writer.writeUInt16(port)
            Self.writeText(service, into: &writer)
        case .data(let envelope):
            writer.writeUInt8(Kind.data.rawValue)
            writer.writeVarInt(envelope.id)
            Self.writeRoute(envelope.route, into: &writer)
            Self.writeText(envelope.toName ?? "", into: &writer)
            writer.writeVarInt(UInt64(envelope.payload.count))
            writer.writeBytes(envelope.payload)
        case .accepted(let id):
            writer.writeUInt8(Kind.accepted.rawValue)
            writer.writeVarInt(id)
        case .undeliverable(let id, let reason):
            writer.writeUInt8(Kind.undeliverable.rawValue)
            writer.writeVarInt(id)
            Self.writeText(reason, into: &writer)
        case .welcome:
            writer.writeUInt8(Kind.welcome.rawValue)
        case .statusRequest(let id):
            writer.writeUInt8(Kind.statusRequest.rawValue)
            writer.writeVarInt(id)
        case .statusReport(let id, let json):
            writer.writeUInt8(Kind.statusReport.rawValue)
            writer.writeVarInt(id)
            writer.writeVarInt(UInt64(json.count))
            writer.writeBytes(json)
        case .multicastJoin(let stream):
            writer.writeUInt8(Kind.multicastJoin.rawValue)
            writer.writeUInt16(stream.channel)
            writer.writeUInt32(stream.stream)
            writer.writeBytes(stream.key)
            writer.writeVarInt(stream.firstSequence)
            if let group = stream.group, case .v4(let address) = group.host {
                writer.writeUInt8(4)
                writer.writeUInt32(address)
                writer.writeUInt16(group.port)
            } else {
                writer.writeUInt8(0)
            }
        case .multicastReception(let channel, let stream, let receiving):
            writer.writeUInt8(Kind.multicastReception.rawValue)
            writer.writeUInt16(channel)
            writer.writeUInt32(stream)
            writer.writeUInt8(receiving ? 1 : 0)
        case .nack(let channel, let stream, let ranges):
            writer.writeUInt8(Kind.nack.rawValue)
            writer.writeUInt16(channel)
            writer.writeUInt32(stream)
            let kept = ranges.prefix(Self.maximumRanges)
            writer.writeVarInt(UInt64(kept.count))
            for range in kept {
                writer.writeVarInt(range.lowerBound)
                writer.writeVarInt(UInt64(range.count))
            }
        case .relay(let datagram):
            writer.writeUInt8(Kind.relay.rawValue)
            writer.writeVarInt(UInt64(datagram.count))
            writer.writeBytes(datagram)
        case .activity(let text):
            writer.writeUInt8(Kind.activity.rawValue)
            Self.writeText(text, into: &writer)
        }
        return writer.bytes
    }

    /// Decodes one message.
    /// - Throws: ``WireError`` for a truncated message, an unknown kind or a bad field.
    public static func decode(_ bytes: [UInt8]) throws(WireError) -> NetMessage {
        var result: Result<NetMessage, WireError> = .failure(.truncated("net message"))
        bytes.withUnsafeBytes { raw in
            do throws(WireError) {
                var reader = ByteReader(raw)
                result = .success(try decode(&reader))
            } catch {
                result = .failure(error)
            }
        }
        return try result.get()
    }

    private static func decode(_ reader: inout ByteReader) throws(WireError) -> NetMessage {
        let kindByte = try reader.readUInt8("net message kind")
        guard let kind = Kind(rawValue: kindByte) else { throw WireError.valueOutOfRange("net message kind") }
        let message: NetMessage
        switch kind {
        case .subscribe: message = .subscribe(channel: try reader.readUInt16("channel"))
        case .unsubscribe: message = .unsubscribe(channel: try reader.readUInt16("channel"))
        case .offerPort:
            let port = try reader.readUInt16("port")
            message = .offerPort(port: port, service: try readText(&reader, "service name"))
        case .data:
            let id = try reader.readVarInt("message id")
            let route = try readRoute(&reader)
            let name = try readText(&reader, "destination name")
            let length = try reader.readLength("payload length", limit: reader.remaining)
            let payload = try reader.readBytes(length, "payload")
            message = .data(NetEnvelope(id: id, route: route, toName: name.isEmpty ? nil : name, payload: payload))
        case .accepted: message = .accepted(id: try reader.readVarInt("message id"))
        case .undeliverable:
            let id = try reader.readVarInt("message id")
            message = .undeliverable(id: id, reason: try readText(&reader, "reason"))
        case .welcome: message = .welcome
        case .statusRequest: message = .statusRequest(id: try reader.readVarInt("request id"))
        case .statusReport:
            let id = try reader.readVarInt("request id")
            let length = try reader.readLength("report length", limit: reader.remaining)
            message = .statusReport(id: id, json: try reader.readBytes(length, "report"))
        case .multicastJoin:
            let channel = try reader.readUInt16("channel")
            let stream = try reader.readUInt32("stream")
            let key = try reader.readBytes(32, "group key")
            let first = try reader.readVarInt("first sequence")
            let group: NetworkAddress?
            switch try reader.readUInt8("group family") {
            case 0: group = nil
            case 4:
                let address = try reader.readUInt32("group address")
                group = NetworkAddress(host: .v4(address), port: try reader.readUInt16("group port"))
            default: throw WireError.valueOutOfRange("group family")
            }
            message = .multicastJoin(MulticastStreamDescriptor(channel: channel, stream: stream, key: key, firstSequence: first, group: group))
        case .multicastReception:
            let channel = try reader.readUInt16("channel")
            let stream = try reader.readUInt32("stream")
            let receiving = try reader.readUInt8("receiving")
            guard receiving <= 1 else { throw WireError.valueOutOfRange("receiving") }
            message = .multicastReception(channel: channel, stream: stream, receiving: receiving == 1)
        case .nack:
            let channel = try reader.readUInt16("channel")
            let stream = try reader.readUInt32("stream")
            let count = try reader.readLength("range count", limit: maximumRanges)
            var ranges: [Range<UInt64>] = []
            for _ in 0..<count {
                let start = try reader.readVarInt("range start")
                let length = try reader.readVarInt("range length")
                guard length > 0, length <= UInt64(MulticastReceiver.window), start <= UInt64.max - length else {
                    throw WireError.valueOutOfRange("range length")
                }
                ranges.append(start..<start + length)
            }
            message = .nack(channel: channel, stream: stream, ranges: ranges)
        case .relay:
            let length = try reader.readLength("datagram length", limit: reader.remaining)
            message = .relay(datagram: try reader.readBytes(length, "datagram"))
        case .activity:
            message = .activity(try readText(&reader, "activity"))
        }
        guard reader.isAtEnd else { throw WireError.badLength("net message (stray bytes after it)") }
        return message
    }

    /// A u8 length and UTF-8, cut to ``maximumText`` bytes at a character's edge (so what is
    /// cut still reads as UTF-8).
    private static func writeText(_ text: String, into writer: inout ByteWriter) {
        var bytes: [UInt8] = []
        for scalar in text.unicodeScalars {
            let encoded = Array(String(scalar).utf8)
            guard bytes.count + encoded.count <= maximumText else { break }
            bytes += encoded
        }
        writer.writeUInt8(UInt8(bytes.count))
        writer.writeBytes(bytes)
    }

    private static func readText(_ reader: inout ByteReader, _ what: StaticString) throws(WireError) -> String {
        let length = Int(try reader.readUInt8(what))
        let bytes = try reader.readBytes(length, what)
        guard let text = String(validating: bytes, as: UTF8.self) else { throw .valueOutOfRange(what) }
        return text
    }

    // The routing header as the transport encodes it (11 bytes), then the channel: inside a
    // net message the channel is not carried by a frame.
    private static func writeRoute(_ route: RoutingHeader, into writer: inout ByteWriter) {
        writer.writeBytes(route.encoded)
        writer.writeUInt16(route.channel)
    }

    private static func readRoute(_ reader: inout ByteReader) throws(WireError) -> RoutingHeader {
        var route = try RoutingHeader.decode(from: &reader, channel: 0)
        route.channel = try reader.readUInt16("channel")
        return route
    }
}
