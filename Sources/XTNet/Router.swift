// The host's routing core, sans-IO: which nodes are connected (by id, name and key), what
// they subscribe to and which ports they serve, and where each routed message goes. The host
// role feeds it joins, leaves and messages and carries out the actions it returns.
public import XTransport

/// Why the host refuses a node.
public enum JoinRefusal: Error, Hashable, Sendable, CustomStringConvertible {
    /// Another key holds this node id right now.
    case idInUse(NodeID)
    /// Another node holds this name right now.
    case nameInUse(String)
    /// The key is registered for a different id or name (a spoofed identity).
    case identityMismatch(claimed: String, registered: String)
    /// The id or name is the host's own.
    case reserved(String)

    public var description: String {
        switch self {
        case .idInUse(let id): "node id \(id) is in use by another key: give this node its own id"
        case .nameInUse(let name): "node name '\(name)' is in use by another node: give this node its own name"
        case .identityMismatch(let claimed, let registered):
            "this key is registered as \(registered) but claimed \(claimed): fix the node's id and name or the host's node list"
        case .reserved(let reason): reason
        }
    }
}

/// What the host must do for a routed message.
public enum RouterAction: Hashable, Sendable {
    /// Send `message` to the connected node `to`.
    case send(NetMessage, to: NodeID)
    /// Put `envelope` on its channel's multicast stream (the IP group, and relays where the
    /// group does not reach): see ``MulticastFanout``.
    case multicast(NetEnvelope)
    /// Hand `envelope` to the host's own application (the recorder).
    case local(NetEnvelope)
}

extension NodeID {
    /// The host's own address: unicast to it (or to the name ``Router/hostName``) goes to the
    /// host's application. No node can take it.
    public static let host = NodeID(area: 0, local: 0)
}

/// The routing table and its rules.
public struct Router: Sendable {
    /// A connected node.
    public struct Member: Hashable, Sendable {
        public var id: NodeID
        public var name: String
        public var key: PublicKey
        public var channels: Set<UInt16> = []
        /// Ports this node serves, with their service names.
        public var ports: [UInt16: String] = [:]
        /// What the node says it is doing (``NetMessage/activity(_:)``).
        public var activity = ""
    }

    public private(set) var members: [NodeID: Member] = [:]
    private var byName: [String: NodeID] = [:]
    private var subscribers: [UInt16: Set<NodeID>] = [:]
    /// Channels the host's own application subscribed to.
    public private(set) var localChannels: Set<UInt16> = []
    /// The name that addresses the host's own application.
    public static let hostName = "host"
    /// Messages for a node that is probably reconnecting: held until it joins or `holdTime` passes.
    private var held: [(envelope: NetEnvelope, from: NodeID, deadline: Timestamp)] = []
    /// Nodes that left recently (by name and by id), and when.
    private var recentlyLeft: [String: Timestamp] = [:]
    private var recentlyLeftIDs: [NodeID: Timestamp] = [:]
    private let startedAt: Timestamp
    private let holdTime: Int64

    /// - Parameters:
    ///   - now: when the host started; for `holdTime` after it, unknown destinations are held
    ///     (nodes are still reconnecting after a host restart).
    ///   - holdTime: how long a message waits for a destination that left recently, or that has
    ///     not come back since the host started. Other unknown destinations are refused at once.
    public init(now: Timestamp = .zero, holdTime: Duration = .zero) {
        startedAt = now
        self.holdTime = holdTime.nanoseconds
    }

    /// Messages held now.
    public var heldCount: Int { held.count }

    /// Admits a node that completed the handshake. `registered` is the id and name the host's
    /// node list gives its key, if it lists it; a claim that differs is refused.
    /// - Returns: held messages that can go to it now.
    @discardableResult
    public mutating func join(id: NodeID, name: String, key: PublicKey,
                              registered: (id: NodeID, name: String)? = nil) throws(JoinRefusal) -> [RouterAction] {
        if id == .host { throw .reserved("node id \(id) is the host's own: give this node an id such as 1.1") }
        if name == Self.hostName { throw .reserved("node name '\(name)' addresses the host itself: give this node another name") }
        if let registered, registered.id != id || registered.name != name {
            throw .identityMismatch(claimed: "\(name) (\(id))", registered: "\(registered.name) (\(registered.id))")
        }
        if let holder = members[id], holder.key != key { throw .idInUse(id) }
        if let holder = byName[name], holder != id { throw .nameInUse(name) }
        if let previous = members[id] {
            // The same node again (it reconnected before its old session was found dead).
            byName[previous.name] = nil
        }
        members[id] = Member(id: id, name: name, key: key, channels: members[id]?.channels ?? [], ports: members[id]?.ports ?? [:])
        byName[name] = id
        recentlyLeft[name] = nil
        recentlyLeftIDs[id] = nil
        // Held messages for this node go now (a port message still needs its port offered:
        // those wait for `expire`, or until the offer arrives and they are retried).
        var actions: [RouterAction] = []
        var keep: [(envelope: NetEnvelope, from: NodeID, deadline: Timestamp)] = []
        for entry in held {
            let forThis = entry.envelope.toName.map { $0 == name } ?? (entry.envelope.route.to == id)
            if forThis && entry.envelope.route.routeCode == .unicast {
                actions += route(entry.envelope, from: entry.from, now: nil)
            } else {
                keep.append(entry)
            }
        }
        held = keep
        return actions
    }

    /// Refuses held messages whose time is up.
    public mutating func expire(now: Timestamp) -> [RouterAction] {
        var actions: [RouterAction] = []
        held.removeAll { entry in
            guard entry.deadline <= now else { return false }
            let seconds = Double(holdTime) / 1e9
            let reason: String
            if let name = entry.envelope.toName {
                reason = recentlyLeft[name] != nil
                    ? "node '\(name)' left and did not come back within \(seconds) s"
                    : "no node named '\(name)' is connected"
            } else {
                let id = entry.envelope.route.to
                reason = recentlyLeftIDs[id] != nil
                    ? "node \(id) left and did not come back within \(seconds) s"
                    : "node \(id) is not connected"
            }
            actions.append(.send(.undeliverable(id: entry.envelope.id, reason: reason), to: entry.from))
            return true
        }
        recentlyLeft = recentlyLeft.filter { now.nanoseconds(since: $0.value) < holdTime }
        recentlyLeftIDs = recentlyLeftIDs.filter { now.nanoseconds(since: $0.value) < holdTime }
        return actions
    }

    /// Forgets a node (it left, or it was found dead).
    public mutating func leave(_ id: NodeID, now: Timestamp = .zero) {
        guard let member = members.removeValue(forKey: id) else { return }
        byName[member.name] = nil
        recentlyLeft[member.name] = now
        recentlyLeftIDs[id] = now
        for channel in member.channels { subscribers[channel]?.remove(id) }
    }

    /// Delivers `channel` to the host's own application as well.
    public mutating func subscribeLocally(_ channel: UInt16) { localChannels.insert(channel) }
    public mutating func unsubscribeLocally(_ channel: UInt16) { localChannels.remove(channel) }

    /// The node with `name`, if connected.
    public func node(named name: String) -> NodeID? { byName[name] }

    /// Handles a message from connected node `from`.
    public mutating func handle(_ message: NetMessage, from: NodeID, now: Timestamp = .zero) -> [RouterAction] {
        guard members[from] != nil else { return [] }
        switch message {
        case .subscribe(let channel):
            members[from]!.channels.insert(channel)
            subscribers[channel, default: []].insert(from)
            return []
        case .unsubscribe(let channel):
            members[from]!.channels.remove(channel)
            subscribers[channel]?.remove(from)
            return []
        case .offerPort(let port, let service):
            members[from]!.ports[port] = service
            return []
        case .activity(let text):
            members[from]!.activity = text
            return []
        case .data(var envelope):
            envelope.route.from = from  // the host vouches for the sender: no spoofed sources
            return route(envelope, from: from, now: now)
        case .accepted, .undeliverable, .welcome, .statusRequest, .statusReport, .multicastJoin, .relay,
             .multicastReception, .nack:
            return []  // host → node, or answered by the host role itself
        }
    }

    /// Routes one message; `now` nil means do not hold it again.
    private mutating func route(_ envelope: NetEnvelope, from: NodeID, now: Timestamp?) -> [RouterAction] {
        let refuse = { (reason: String) in [RouterAction.send(.undeliverable(id: envelope.id, reason: reason), to: from)] }
        func holdable(name: String?, id: NodeID) -> Bool {
            guard let now, holdTime > 0 else { return false }
            if now.nanoseconds(since: startedAt) < holdTime { return true }
            if let name { return recentlyLeft[name] != nil }
            return recentlyLeftIDs[id] != nil
        }
        var destinations: [NodeID] = []
        switch envelope.route.routeCode {
        case .unicast where envelope.toName == Self.hostName || (envelope.toName == nil && envelope.route.to == .host):
            var local = envelope
            local.route.to = .host
            return [.local(local), .send(.accepted(id: envelope.id), to: from)]
        case .unicast, .port:
            let target: NodeID
            if let name = envelope.toName {
                guard let named = byName[name] else {
                    if holdable(name: name, id: envelope.route.to), let now { return hold(envelope, from: from, now: now) }
                    return refuse("no node named '\(name)' is connected")
                }
                target = named
            } else {
                guard members[envelope.route.to] != nil else {
                    if holdable(name: nil, id: envelope.route.to), let now { return hold(envelope, from: from, now: now) }
                    return refuse("node \(envelope.route.to) is not connected")
                }
                target = envelope.route.to
            }
            if envelope.route.routeCode == .port, members[target]?.ports[envelope.route.channel] == nil {
                return refuse("\(members[target]!.name) (\(target)) serves nothing on port \(envelope.route.channel)")
            }
            destinations = [target]
        case .multicast:
            // A live stream: no answer to the sender; the multicast fan-out takes it from here.
            return (localChannels.contains(envelope.route.channel) ? [.local(envelope)] : []) + [.multicast(envelope)]
        case .channel:
            destinations = (subscribers[envelope.route.channel] ?? []).filter { $0 != from }.sorted { ($0.area, $0.local) < ($1.area, $1.local) }
        }
        var outbound = envelope
        if let target = destinations.first, destinations.count == 1 { outbound.route.to = target }
        let local: [RouterAction] = envelope.route.routeCode == .channel && localChannels.contains(envelope.route.channel)
            ? [.local(envelope)] : []
        return local + destinations.map { RouterAction.send(.data(outbound), to: $0) } + [.send(.accepted(id: envelope.id), to: from)]
    }

    private mutating func hold(_ envelope: NetEnvelope, from: NodeID, now: Timestamp) -> [RouterAction] {
        held.append((envelope, from, now.adding(nanoseconds: holdTime)))
        return []
    }
}
