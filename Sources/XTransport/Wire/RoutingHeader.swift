// The routing header from xTransporter, carried by every message and datagram. The node
// network (next layer up) routes on it; point-to-point sessions fill it with defaults.

/// Where a message goes, as xTransporter's routecodes name it.
public enum RouteCode: UInt8, Hashable, Sendable, CaseIterable {
    /// To one node (`toArea`/`toLocal`), relayed by the host when not direct.
    case unicast = 1
    /// To an IP multicast group.
    case multicast = 2
    /// To every subscriber of the message's channel.
    case channel = 3
    /// To a named service (port) on a node.
    case port = 10
}

/// A node's address in the network: an area and a local id within it.
public struct NodeID: Hashable, Sendable, CustomStringConvertible {
    public var area: UInt16
    public var local: UInt16
    public init(area: UInt16, local: UInt16) {
        self.area = area
        self.local = local
    }
    /// The id of a node that has not been given one.
    public static let unassigned = NodeID(area: 0, local: 0)
    public var description: String { "\(area).\(local)" }
}

/// xTransporter's routing header: routecode, destination (toarea, tolocal), channel, source
/// (fromarea, fromid), netcode and controlcode.
///
/// On the wire the channel travels in the frame that carries the message, so the header
/// itself is ``encodedSize`` = 11 bytes: routecode, toarea, tolocal, fromarea, fromid,
/// netcode, controlcode.
public struct RoutingHeader: Hashable, Sendable {
    public var routeCode: RouteCode
    public var to: NodeID
    public var channel: UInt16
    public var from: NodeID
    /// The network this message belongs to; lets several networks share hosts.
    public var netCode: UInt8
    /// 0 for application data; other values mark the node network's control messages.
    public var controlCode: UInt8

    public init(routeCode: RouteCode = .unicast, to: NodeID = .unassigned, channel: UInt16 = 0,
                from: NodeID = .unassigned, netCode: UInt8 = 0, controlCode: UInt8 = 0) {
        self.routeCode = routeCode
        self.to = to
        self.channel = channel
        self.from = from
        self.netCode = netCode
        self.controlCode = controlCode
    }

    /// Bytes on the wire (the channel is carried by the enclosing frame).
    public static let encodedSize = 11

    func encode(into cursor: inout BufferCursor) {
        cursor.writeUInt8(routeCode.rawValue)
        cursor.writeUInt16(to.area)
        cursor.writeUInt16(to.local)
        cursor.writeUInt16(from.area)
        cursor.writeUInt16(from.local)
        cursor.writeUInt8(netCode)
        cursor.writeUInt8(controlCode)
    }

    /// Encodes into a new 11-byte array.
    public var encoded: [UInt8] {
        [UInt8](unsafeUninitializedCapacity: Self.encodedSize) { buffer, count in
            var cursor = BufferCursor(UnsafeMutableRawBufferPointer(buffer))
            encode(into: &cursor)
            count = Self.encodedSize
        }
    }

    /// Decodes the 11 bytes at the reader's position; `channel` comes from the frame.
    public static func decode(from reader: inout ByteReader, channel: UInt16) throws(WireError) -> RoutingHeader {
        let rawCode = try reader.readUInt8("routecode")
        guard let code = RouteCode(rawValue: rawCode) else { throw WireError.valueOutOfRange("routecode") }
        let toArea = try reader.readUInt16("toarea")
        let toLocal = try reader.readUInt16("tolocal")
        let fromArea = try reader.readUInt16("fromarea")
        let fromLocal = try reader.readUInt16("fromid")
        let net = try reader.readUInt8("netcode")
        let control = try reader.readUInt8("controlcode")
        return RoutingHeader(routeCode: code, to: NodeID(area: toArea, local: toLocal), channel: channel,
                             from: NodeID(area: fromArea, local: fromLocal), netCode: net, controlCode: control)
    }
}
