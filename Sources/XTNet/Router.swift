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

    public var description: String {
        switch self {
        case .idInUse(let id): "node id \(id) is in use by another key: give this node its own id"
        case .nameInUse(let name): "node name '\(name)' is in use by another node: give this node its own name"
        case .identityMismatch(let claimed, let registered):
            "this key is registered as \(registered) but claimed \(claimed): fix the node's id and name or the host's node list"
        }
    }
}

/// What the host must do for a routed message.
public enum RouterAction: Hashable, Sendable {
    /// Send `message` to the connected node `to`.
    case send(NetMessage, to: NodeID)
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
    }

    public private(set) var members: [NodeID: Member] = [:]
    private var byName: [String: NodeID] = [:]
    private var subscribers: [UInt16: Set<NodeID>] = [:]

    public init() {}

    /// Admits a node that completed the handshake. `registered` is the id and name the host's
    /// node list gives its key, if it lists it; a claim that differs is refused.
    public mutating func join(id: NodeID, name: String, key: PublicKey,
                              registered: (id: NodeID, name: String)? = nil) throws(JoinRefusal) {
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
    }

    /// Forgets a node (it left, or it was found dead).
    public mutating func leave(_ id: NodeID) {
        guard let member = members.removeValue(forKey: id) else { return }
        byName[member.name] = nil
        for channel in member.channels { subscribers[channel]?.remove(id) }
    }

    /// The node with `name`, if connected.
    public func node(named name: String) -> NodeID? { byName[name] }

    /// Handles a message from connected node `from`.
    public mutating func handle(_ message: NetMessage, from: NodeID) -> [RouterAction] {
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
        case .data(var envelope):
            envelope.route.from = from  // the host vouches for the sender: no spoofed sources
            return route(envelope, from: from)
        case .accepted, .undeliverable:
            return []  // host → node only
        }
    }

    private func route(_ envelope: NetEnvelope, from: NodeID) -> [RouterAction] {
        let refuse = { (reason: String) in [RouterAction.send(.undeliverable(id: envelope.id, reason: reason), to: from)] }
        var destinations: [NodeID] = []
        switch envelope.route.routeCode {
        case .unicast, .port:
            let target: NodeID
            if let name = envelope.toName {
                guard let named = byName[name] else { return refuse("no node named '\(name)' is connected") }
                target = named
            } else {
                guard members[envelope.route.to] != nil else { return refuse("node \(envelope.route.to) is not connected") }
                target = envelope.route.to
            }
            if envelope.route.routeCode == .port, members[target]?.ports[envelope.route.channel] == nil {
                return refuse("\(members[target]!.name) (\(target)) serves nothing on port \(envelope.route.channel)")
            }
            destinations = [target]
        case .channel, .multicast:
            // Multicast falls back to host fan-out here: the subscribers of the group's channel.
            destinations = (subscribers[envelope.route.channel] ?? []).filter { $0 != from }.sorted { ($0.area, $0.local) < ($1.area, $1.local) }
        }
        var outbound = envelope
        if let target = destinations.first, destinations.count == 1 { outbound.route.to = target }
        return destinations.map { RouterAction.send(.data(outbound), to: $0) } + [.send(.accepted(id: envelope.id), to: from)]
    }
}
