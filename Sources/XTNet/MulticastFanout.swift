// The host's multicast fan-out, sans-IO. Each channel that has subscribers gets a multicast
// stream (routecode 2): the host puts every message on the channel's IP group once, keeps
// recent datagrams for repairs, and answers a node's NACK with the datagrams it missed,
// relayed over that node's own session, so a lossy node never slows the others. A node the
// group does not reach (it says so, or has not yet said it is receiving) gets the same sealed
// datagrams relayed: the host's unicast fan-out is the fallback, not a second format.
public import XTransport

/// How the host multicasts.
public struct MulticastOptions: Hashable, Sendable {
    /// Channel c's group is this address plus c (239.77.0.0 + 7 = 239.77.0.7), on `base.port`.
    public var base: NetworkAddress
    /// IPv4 address (host byte order) of the interface to send from; 0 lets the routing table pick.
    public var interface: UInt32
    /// Hops datagrams may cross; 1 keeps them on the LAN.
    public var ttl: UInt8
    /// Largest datagram (header and tag included); 1472 fits an Ethernet frame.
    public var maximumDatagram: Int

    public init(base: NetworkAddress, interface: UInt32 = 0, ttl: UInt8 = 1, maximumDatagram: Int = 1472) {
        self.base = base
        self.interface = interface
        self.ttl = ttl
        self.maximumDatagram = maximumDatagram
    }

    /// The group of `channel`.
    public func group(for channel: UInt16) -> NetworkAddress {
        guard case .v4(let address) = base.host else { return base }
        return NetworkAddress(host: .v4(address &+ UInt32(channel)), port: base.port)
    }

    /// Parses "239.77.0.0:5960".
    /// - Throws: ``TransportError`` unless it is an IPv4 multicast address with a port.
    public static func parse(_ text: String) throws(TransportError) -> NetworkAddress {
        let parts = text.split(separator: ":")
        let octets = parts.first.map { $0.split(separator: ".").compactMap { UInt8($0) } } ?? []
        guard parts.count == 2, octets.count == 4, (224...239).contains(octets[0]), let port = UInt16(parts[1]), port > 0 else {
            throw .invalidConfiguration("multicast '\(text)' is not an IPv4 multicast address with a port: write it like 239.77.0.0:5960")
        }
        return .ipv4(octets[0], octets[1], octets[2], octets[3], port: port)
    }
}

/// Counters of one channel's stream at the host, for `xt status` and the benchmarks.
public struct MulticastChannelStats: Hashable, Sendable, Codable {
    public var channel: UInt16
    public var sender: MulticastSenderStats
    /// Datagrams put on the group, and relayed to nodes the group does not reach.
    public var groupDatagrams: UInt64
    public var relayedDatagrams: UInt64
    public var members: Int
    public var membersViaGroup: Int
    /// New streams (new key) started because a subscriber went away.
    public var rekeys: UInt64
}

public struct MulticastFanout: Sendable {
    public enum Action: Hashable, Sendable {
        /// Put `datagram` on the IP group `group`.
        case group([UInt8], group: NetworkAddress)
        /// Send `message` to node `to` over its session.
        case send(NetMessage, to: NodeID)
    }

    private struct Stream: Sendable {
        var sender: MulticastSender
        /// Members, and whether the group reaches each (else it gets relays).
        var members: [NodeID: Bool] = [:]
        var lastHeartbeat: Timestamp
        var groupDatagrams: UInt64 = 0
        var relayedDatagrams: UInt64 = 0
        /// Members whose connection dropped, and when: if they do not come back within
        /// `rekeyAfter`, the stream gets a new key.
        var departed: [NodeID: Timestamp] = [:]
        var rekeys: UInt64 = 0
    }

    public let options: MulticastOptions?
    private var streams: [UInt16: Stream] = [:]
    private let rekeyAfter: Int64
    /// Time between heartbeats on each group.
    public static let heartbeatInterval: Int64 = 250_000_000

    /// - Parameters:
    ///   - options: nil when the host does not multicast: every member is relayed to.
    ///   - rekeyAfter: how long a member that dropped may come back and resume its stream;
    ///     after that (and at once on unsubscribe) the stream starts over with a new key, so
    ///     a node that is gone cannot read the group.
    public init(options: MulticastOptions?, rekeyAfter: Duration = .seconds(8)) {
        self.options = options
        self.rekeyAfter = rekeyAfter.nanoseconds
    }

    private func makeSender(_ channel: UInt16) -> MulticastSender {
        MulticastSender(channel: channel, maximumDatagram: options?.maximumDatagram ?? 1472)
    }

    /// A new stream (id and key) for `channel`'s remaining members, who are told; none left: gone.
    private mutating func rekey(_ channel: UInt16) -> [Action] {
        guard streams[channel]?.members.isEmpty == false else {
            streams[channel] = nil
            return []
        }
        streams[channel]!.sender = makeSender(channel)
        streams[channel]!.rekeys += 1
        let descriptor = streams[channel]!.sender.descriptor(group: options?.group(for: channel))
        return streams[channel]!.members.keys.sorted { ($0.area, $0.local) < ($1.area, $1.local) }
            .map { .send(.multicastJoin(descriptor), to: $0) }
    }

    /// `node` subscribed to `channel`: it gets the stream's key and position.
    public mutating func subscribe(_ node: NodeID, channel: UInt16, now: Timestamp) -> [Action] {
        if streams[channel] == nil {
            streams[channel] = Stream(sender: makeSender(channel), lastHeartbeat: now)
        }
        streams[channel]!.members[node] = streams[channel]!.members[node] ?? false
        streams[channel]!.departed[node] = nil
        let descriptor = streams[channel]!.sender.descriptor(group: options?.group(for: channel))
        return [.send(.multicastJoin(descriptor), to: node)]
    }

    /// `node` unsubscribed: the others get a new key at once.
    public mutating func unsubscribe(_ node: NodeID, channel: UInt16) -> [Action] {
        guard streams[channel]?.members.removeValue(forKey: node) != nil else { return [] }
        return rekey(channel)
    }

    /// `node`'s connection ended: it stops getting relays; if it does not subscribe again
    /// within `rekeyAfter`, its streams get new keys (see ``tick(now:)``).
    public mutating func leave(_ node: NodeID, now: Timestamp) {
        for channel in streams.keys where streams[channel]!.members.removeValue(forKey: node) != nil {
            streams[channel]!.departed[node] = now
        }
    }

    /// `node` says whether the group reaches it.
    public mutating func reception(_ node: NodeID, channel: UInt16, stream: UInt32, receiving: Bool) {
        guard options != nil, streams[channel]?.sender.stream == stream, streams[channel]?.members[node] != nil else { return }
        streams[channel]!.members[node] = receiving
    }

    /// One message on `channel`'s stream: on the group once if any member receives it there,
    /// and relayed to each member it does not reach but the sender.
    public mutating func publish(_ message: [UInt8], channel: UInt16, from: NodeID, now: Timestamp) -> [Action] {
        guard streams[channel]?.members.isEmpty == false else { return [] }
        // Changed in place: a copy of the stream would copy its whole repair store each time.
        return Self.publish(message, on: &streams[channel]!, from: from, options: options, now: now)
    }

    private static func publish(_ message: [UInt8], on stream: inout Stream, from: NodeID, options: MulticastOptions?,
                                now: Timestamp) -> [Action] {
        let datagrams = stream.sender.send(message, now: now)
        var actions: [Action] = []
        if let options, stream.members.values.contains(true) {
            let group = options.group(for: stream.sender.channel)
            for datagram in datagrams { actions.append(.group(datagram, group: group)) }
            stream.groupDatagrams += UInt64(datagrams.count)
        }
        for (member, viaGroup) in stream.members where !viaGroup && member != from {
            for datagram in datagrams { actions.append(.send(.relay(datagram: datagram), to: member)) }
            stream.relayedDatagrams += UInt64(datagrams.count)
        }
        return actions
    }

    /// `node` missed `ranges` of the stream: the kept ones go to it alone.
    public mutating func nack(_ node: NodeID, channel: UInt16, stream: UInt32, ranges: [Range<UInt64>]) -> [Action] {
        guard streams[channel]?.sender.stream == stream, streams[channel]?.members[node] != nil else { return [] }
        return streams[channel]!.sender.repair(ranges).map { .send(.relay(datagram: $0), to: node) }
    }

    /// New keys for streams whose departed members did not come back in time, and heartbeats
    /// due on the groups (receivers learn of lost tails, and that the group reaches them).
    public mutating func tick(now: Timestamp) -> [Action] {
        var actions: [Action] = []
        for channel in streams.keys.sorted() {
            let overdue = streams[channel]!.departed.filter { now.nanoseconds(since: $0.value) >= rekeyAfter }
            guard !overdue.isEmpty else { continue }
            for node in overdue.keys { streams[channel]!.departed[node] = nil }
            actions += rekey(channel)
        }
        guard let options else { return actions }
        for channel in streams.keys.sorted() where !streams[channel]!.members.isEmpty {
            guard now.nanoseconds(since: streams[channel]!.lastHeartbeat) >= Self.heartbeatInterval else { continue }
            streams[channel]!.lastHeartbeat = now
            actions.append(.group(streams[channel]!.sender.heartbeat(), group: options.group(for: channel)))
        }
        return actions
    }

    /// Channels `node` gets through the group.
    public func channelsViaGroup(of node: NodeID) -> [UInt16] {
        streams.filter { $0.value.members[node] == true }.keys.sorted()
    }

    public var stats: [MulticastChannelStats] {
        streams.keys.sorted().map { channel in
            let stream = streams[channel]!
            return MulticastChannelStats(channel: channel, sender: stream.sender.stats, groupDatagrams: stream.groupDatagrams,
                                         relayedDatagrams: stream.relayedDatagrams, members: stream.members.count,
                                         membersViaGroup: stream.members.values.filter { $0 }.count, rekeys: stream.rekeys)
        }
    }
}
