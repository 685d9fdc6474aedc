// The node role (xTransporter's nodeclient): always connected to its host. When the host is
// lost it reconnects with backoff and jitter, restores its subscriptions and port offers, and
// sends again what the host had not accepted; the receiving side drops duplicates. What
// arrives for the application comes out of `messages`, an AsyncStream.
import Foundation
public import Logging
public import XTransport
public import XTransportNIO

/// Why a routed message was not delivered.
public struct UndeliverableError: Error, Sendable, Equatable, CustomStringConvertible {
    public let reason: String
    public init(reason: String) { self.reason = reason }
    public var description: String { reason }
}

/// A running node.
public actor NetNode {
    public nonisolated let configuration: NodeConfiguration
    private let endpointConfiguration: EndpointConfiguration
    private let hostKey: PublicKey
    private let logger: Logger
    private var endpoint: TransportEndpoint?
    private var session: TransportSession?
    private var ids = MessageIDs()
    private var outbox = Outbox()
    private var waiting: [UInt64: CheckedContinuation<Void, any Error>] = [:]
    private var statusWaiters: [UInt64: CheckedContinuation<[NodeStatus], any Error>] = [:]
    /// Answers that came while their sender was still sending.
    private var answers: [UInt64: Result<Void, UndeliverableError>] = [:]
    private var filter = DuplicateFilter()
    private var channels: Set<UInt16> = []
    private var ports: [UInt16: String] = [:]
    private var activity = ""
    private var stopped = false
    private var reception: MulticastReception
    /// Multicast sockets by group port, and the groups joined on each.
    private var multicastSockets: [UInt16: MulticastSocket] = [:]
    private var joinedGroups: Set<NetworkAddress> = []
    private var connectedWaiters: [CheckedContinuation<Void, Never>] = []
    /// Why the last connection attempt failed, as said in the log (each cause once, until the
    /// host is reached).
    private var diagnosed: TransportError.Code?
    private var lastConnectError: TransportError?
    /// Refusals and unanswered attempts since the host was last reached (for `xt status` and reports).
    public private(set) var failedAttempts = 0
    /// How long this node's live-lane messages may still be delivered.
    public nonisolated let liveDeadline: Duration
    /// Messages routed to this node, each once. Bounded: while it is full the node stops
    /// reading from the host, and the transport's flow control holds the host back.
    public nonisolated let messages: BoundedQueue<NetEnvelope>
    /// How many times the node (re)connected to its host.
    public private(set) var connections = 0
    /// Why the host refused this node, if it did (the node then stops trying).
    public private(set) var refusal: String?
    /// Direct sessions other nodes opened to this one (LRP2P), once their key was admitted.
    public nonisolated let peerLinks: BoundedQueue<PeerLink>
    /// Keys of nodes this one will take a direct session from, with their names.
    private var peerKeys: [PublicKey: String] = [:]

    /// Backoff between reconnection attempts: doubles from the first, up to the last, ±20%.
    static let firstBackoff = 0.1
    static let maximumBackoff = 1.0

    /// - Parameters:
    ///   - inboxCapacity: messages waiting for the application before the node stops reading.
    ///   - liveDeadline: how long messages sent on the live lanes (``NetLane/audio``,
    ///     ``NetLane/video``) are retransmitted before they are skipped.
    ///   - multicastDeadline: how long a multicast gap is waited for (NACK and repair) before
    ///     the messages in it are skipped.
    public init(configuration: NodeConfiguration, identity: NodeIdentity, hostKey: PublicKey,
                session: SessionConfiguration = SessionConfiguration(), inboxCapacity: Int = 1024,
                multicastDeadline: Duration = .milliseconds(500), liveDeadline: Duration = .milliseconds(500),
                logger: Logger = Logger(label: "xtnet.node")) {
        self.configuration = configuration
        self.liveDeadline = liveDeadline
        reception = MulticastReception(deadline: multicastDeadline)
        self.hostKey = hostKey
        self.logger = logger
        endpointConfiguration = EndpointConfiguration(identity: identity, admission: .authorized(AuthorizedKeys([hostKey: "host"])),
                                                      session: session,
                                                      hello: NodeHello(id: configuration.id, name: configuration.name).encoded())
        messages = BoundedQueue(capacity: inboxCapacity)
        peerLinks = BoundedQueue(capacity: 64)
    }

    /// Starts the connection loop; with `waitForConnection`, returns once the first
    /// connection is up (otherwise at once: see ``isConnected``).
    public func start(waitForConnection: Bool = true) async throws {
        endpoint = try await TransportEndpoint.bind(host: "0.0.0.0", port: 0, configuration: endpointConfiguration, logger: logger)
        Task { await self.connectionLoop() }
        Task { await self.multicastTimer() }
        Task { await self.acceptPeers() }
        if waitForConnection { await waitUntilConnected() }
    }

    /// Leaves the network.
    public func stop() async {
        stopped = true
        session?.abort(reason: "node stopping")
        await endpoint?.close()
        for socket in multicastSockets.values { await socket.close() }
        messages.finish()
        peerLinks.finish()
        for (_, waiter) in waiting { waiter.resume(throwing: UndeliverableError(reason: "the node stopped")) }
        waiting.removeAll()
        for (_, waiter) in statusWaiters { waiter.resume(throwing: UndeliverableError(reason: "the node stopped")) }
        statusWaiters.removeAll()
    }

    public var isConnected: Bool { session != nil }

    /// Waits until the node is connected to its host (or refused by it: see ``refusal``).
    public func waitUntilConnected() async {
        if session != nil || refusal != nil { return }
        await withCheckedContinuation { connectedWaiters.append($0) }
    }

    // MARK: - Addressing

    /// Sends to the node `name` through the host; returns when the host has routed it.
    /// - Throws: ``UndeliverableError`` when no such node is connected.
    public func send(_ payload: [UInt8], toName name: String, channel: UInt16 = 1) async throws {
        try await route(NetEnvelope(id: ids.next(), route: RoutingHeader(routeCode: .unicast, channel: channel), toName: name, payload: payload))
    }

    /// Sends to the node `id` through the host.
    public func send(_ payload: [UInt8], to id: NodeID, channel: UInt16 = 1) async throws {
        try await route(NetEnvelope(id: ids.next(), route: RoutingHeader(routeCode: .unicast, to: id, channel: channel), payload: payload))
    }

    /// Publishes on `channel`: every subscriber but this node receives it.
    public func publish(_ payload: [UInt8], channel: UInt16) async throws {
        try await route(NetEnvelope(id: ids.next(), route: RoutingHeader(routeCode: .channel, channel: channel), payload: payload))
    }

    /// Puts `payload` on `channel`'s multicast stream (routecode 2): the host sends it to the
    /// channel's IP group once, and relays it to subscribers the group does not reach. A live
    /// stream: returns once the host's session took it, with no answer from the host, and
    /// nothing is kept for a resend after a reconnect.
    /// - Parameter lane: the lane to the host (a live lane skips what misses its deadline).
    /// - Throws: ``UndeliverableError`` when not connected to the host.
    public func multicast(_ payload: [UInt8], channel: UInt16, lane: NetLane = .control) async throws {
        try await transmit(NetEnvelope(id: ids.next(), route: RoutingHeader(routeCode: .multicast, channel: channel), payload: payload),
                           lane: lane)
    }

    /// Sends `payload` on a lane with no answer from the host and nothing kept for a resend:
    /// for live media (``NetLane/audio``, ``NetLane/video``: retransmitted until the deadline,
    /// then skipped) and for bulk that the application acknowledges itself (``NetLane/bulk``).
    /// Routes by unicast (`to`, or `toName`; "host" is the host's own application), channel
    /// or multicast as `routeCode` says.
    /// - Throws: ``UndeliverableError`` when not connected to the host.
    public func send(_ payload: [UInt8], routeCode: RouteCode, to id: NodeID = .unassigned, toName name: String? = nil,
                     channel: UInt16, lane: NetLane) async throws {
        try await transmit(NetEnvelope(id: ids.next(), route: RoutingHeader(routeCode: routeCode, to: id, channel: channel),
                                       toName: name, payload: payload), lane: lane)
    }

    private func transmit(_ envelope: NetEnvelope, lane: NetLane) async throws {
        guard let session else { throw UndeliverableError(reason: "not connected to the host: the message was not sent") }
        var stamped = envelope
        stamped.route.from = configuration.id
        try await session.send(NetMessage.data(stamped).encoded(), on: lane.rawValue)
    }

    /// Statistics of the session to the host (RTT, loss, live messages skipped), if connected.
    public func sessionStats() async -> SessionStats? { try? await session?.stats() }

    /// Each multicast channel's reception counters (via group, via relay, repaired, lost).
    public var multicastStats: [UInt16: MulticastReceiverStats] { reception.stats }

    /// Sends to the service on `port` of the node `name`.
    public func send(_ payload: [UInt8], toName name: String, port: UInt16) async throws {
        try await route(NetEnvelope(id: ids.next(), route: RoutingHeader(routeCode: .port, channel: port), toName: name, payload: payload))
    }

    /// The network as the host sees it: every node, its channels and the host's link to it.
    /// - Throws: ``UndeliverableError`` when not connected to the host.
    public func status() async throws -> [NodeStatus] {
        guard let session else { throw UndeliverableError(reason: "not connected to the host") }
        let id = ids.next()
        try await session.send(NetMessage.statusRequest(id: id).encoded(), on: NetChannel.control)
        return try await withCheckedThrowingContinuation { statusWaiters[id] = $0 }
    }

    public func subscribe(_ channel: UInt16) async {
        channels.insert(channel)
        await control(.subscribe(channel: channel))
    }

    public func unsubscribe(_ channel: UInt16) async {
        channels.remove(channel)
        if let group = reception.descriptor(channel)?.group, joinedGroups.remove(group) != nil {
            try? await multicastSockets[group.port]?.leave(group)
        }
        reception.leave(channel)
        await control(.unsubscribe(channel: channel))
    }

    /// Tells the host what this node is doing now (shown by `xt status` and the web UI; kept
    /// across reconnects). Empty: nothing.
    public func setActivity(_ text: String) async {
        guard text != activity else { return }
        activity = text
        await control(.activity(text))
    }

    public func offer(port: UInt16, service: String) async {
        ports[port] = service
        await control(.offerPort(port: port, service: service))
    }

    private func control(_ message: NetMessage) async {
        guard let session else { return }  // restored on the next connection
        try? await session.send(message.encoded(), on: NetChannel.control)
    }

    private func route(_ envelope: NetEnvelope) async throws {
        var stamped = envelope
        stamped.route.from = configuration.id
        outbox.add(stamped)
        // Sent in order from here; if the host is away, the next connection sends the outbox.
        if let session { try? await session.send(NetMessage.data(stamped).encoded(), on: NetChannel.control) }
        if let answer = answers.removeValue(forKey: stamped.id) { return try answer.get() }
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
            waiting[stamped.id] = continuation
        }
    }

    // MARK: - Direct sessions (LRP2P)

    /// This node's public key (what a peer connecting directly expects).
    public nonisolated var publicKey: PublicKey { endpointConfiguration.identity.publicKey }

    /// Where other nodes may open a direct session to this one (each interface's address and
    /// this node's port).
    public func directAddresses() -> [NetworkAddress] { endpoint?.candidateAddresses() ?? [] }

    /// Lets the node `name` holding `key` open a direct session to this one.
    public func admitPeer(_ key: PublicKey, name: String) async {
        admitPeerKey(key, name: name)
        try? await endpoint?.updateAdmission(admission)
    }

    /// Stops taking direct sessions from `key` (open ones stay until closed).
    public func dismissPeer(_ key: PublicKey) async {
        guard peerKeys.removeValue(forKey: key) != nil else { return }
        try? await endpoint?.updateAdmission(admission)
    }

    var currentEndpoint: TransportEndpoint? { endpoint }

    func admitPeerKey(_ key: PublicKey, name: String) {
        if key != hostKey { peerKeys[key] = name }
    }

    /// The host's key and the admitted peers'.
    var admission: Admission {
        var keys: [PublicKey: String] = peerKeys
        keys[hostKey] = "host"
        return .authorized(AuthorizedKeys(keys))
    }

    /// Takes the direct sessions peers open: each must say, in its hello, the name its key was
    /// admitted as.
    private func acceptPeers() async {
        guard let endpoint else { return }
        for await session in endpoint.incomingSessions {
            guard let hello = NodeHello(session.hello), let name = peerKeys[session.peerKey], hello.name == name else {
                session.abort(reason: "not a peer this node expects")
                continue
            }
            do {
                try await NetChannel.configure(session, liveDeadline: liveDeadline)
            } catch {
                continue
            }
            await peerLinks.push(PeerLink(session: session, hello: hello, opened: false))
        }
    }

    // MARK: - Connection

    private func connectionLoop() async {
        var backoff = Self.firstBackoff
        while !stopped {
            if let session = await connectOnce() {
                diagnosed = nil
                failedAttempts = 0
                let welcomed = await serve(session)
                if stopped { break }
                if !welcomed, case .peerReset(let reason) = session.closedReason, reason != CloseReason.peerLostSession {
                    // The host refused us (name or id): said once; tried again now and then, so
                    // that fixing the host's authorized keys lets the node in without a restart.
                    if refusal != reason { logger.error("the host refused this node", metadata: ["reason": "\(reason)"]) }
                    refusal = reason
                    for waiter in connectedWaiters { waiter.resume() }
                    connectedWaiters.removeAll()
                    backoff = Self.maximumBackoff
                    failedAttempts += 1
                } else {
                    if welcomed {
                        backoff = Self.firstBackoff
                        refusal = nil
                    }
                    logger.notice("lost the host; reconnecting", metadata: ["host": "\(configuration.host):\(configuration.hostPort)"])
                }
            } else {
                failedAttempts += 1
                diagnose()
            }
            let jitter = Double.random(in: 0.8...1.2)
            try? await Task.sleep(for: .milliseconds(Int(backoff * jitter * 1000)))
            backoff = min(backoff * 2, Self.maximumBackoff)
        }
    }

    private func connectOnce() async -> TransportSession? {
        guard let endpoint else { return nil }
        let ports = [configuration.hostPort] + configuration.portRange.filter { $0 != configuration.hostPort }
        lastConnectError = nil
        for port in ports {
            guard let address = try? NetworkAddress.resolve("\(configuration.host):\(port)") else { continue }
            do {
                return try await endpoint.connect(to: address, peerKey: hostKey)
            } catch let error as TransportError {
                // A refusal is the most telling answer: it is kept over a silence on another port.
                if lastConnectError?.code != .refusedByPeer { lastConnectError = error }
            } catch {
                continue
            }
        }
        return nil
    }

    /// Says once, in the node's log, why it cannot reach its host and what fixes it: a refusal
    /// (the host proved its key and refused ours) or silence (a wrong host key or address, or
    /// no host running). It keeps trying either way.
    private func diagnose() {
        guard let error = lastConnectError, diagnosed != error.code else { return }
        diagnosed = error.code
        let host = "\(configuration.host):\(configuration.hostPort)"
        switch error.code {
        case .refusedByPeer:
            logger.error("the host refused this node's key; add this line to its authorized_keys, then it is let in: \(endpointConfiguration.identity.publicKey) \(configuration.name) \(configuration.id)",
                         metadata: ["host": "\(host)"])
        case .handshakeTimeout:
            logger.error("no answer from \(host) with the key you gave (\(hostKey)): check --host-key (the recorder's .pub file), the address, and that the recorder runs; trying again, less often",
                         metadata: ["host": "\(host)"])
        default:
            logger.error("cannot reach the host; trying again, less often", metadata: ["host": "\(host)", "reason": "\(error.reason)"])
        }
    }

    /// Serves one host session until it ends. Returns whether the host admitted this node.
    private func serve(_ session: TransportSession) async -> Bool {
        do {
            try await NetChannel.configure(session, liveDeadline: liveDeadline)
        } catch {
            return false
        }
        var welcomed = false
        do {
            for try await item in session.inbound {
                guard let message = item.laneMessage, let lane = NetLane(rawValue: message.channel),
                      let decoded = try? NetMessage.decode(message.payload) else { continue }
                if lane != .control {
                    // Lanes carry data only, never resent by this layer, so no duplicate filter
                    // (which would also misjudge ids reordered across lanes).
                    if case .data(let envelope) = decoded { await messages.push(envelope) }
                    continue
                }
                if case .welcome = decoded, !welcomed {
                    welcomed = true
                    await admitted(session)
                    continue
                }
                if case .data(let envelope) = decoded {
                    // Waits while the application is behind: this session is not read meanwhile.
                    if filter.accept(envelope.id, from: envelope.route.from) { await messages.push(envelope) }
                    continue
                }
                if case .relay(let datagram) = decoded {
                    await deliver(reception.receive(datagram, via: .relay, now: .monotonicNow))
                    continue
                }
                if case .multicastJoin(let descriptor) = decoded {
                    await follow(descriptor)
                    continue
                }
                handle(decoded)
            }
        } catch {
            logger.debug("host session ended", metadata: ["error": "\(error)"])
        }
        if self.session === session { self.session = nil }
        return welcomed
    }

    /// The host admitted us on `session`: restore what it forgot, send again what it never accepted.
    private func admitted(_ session: TransportSession) async {
        self.session = session
        connections += 1
        for channel in channels.sorted() { try? await session.send(NetMessage.subscribe(channel: channel).encoded(), on: NetChannel.control) }
        for (port, service) in ports.sorted(by: { $0.key < $1.key }) {
            try? await session.send(NetMessage.offerPort(port: port, service: service).encoded(), on: NetChannel.control)
        }
        if !activity.isEmpty { try? await session.send(NetMessage.activity(activity).encoded(), on: NetChannel.control) }
        for envelope in outbox.pending { try? await session.send(NetMessage.data(envelope).encoded(), on: NetChannel.control) }
        for waiter in connectedWaiters { waiter.resume() }
        connectedWaiters.removeAll()
    }

    private func handle(_ message: NetMessage) {
        switch message {
        case .data:
            break  // taken in `serve`, where it can wait for room
        case .accepted(let id):
            guard outbox.remove(id) != nil else { return }  // an answer to a resend already answered
            if let waiter = waiting.removeValue(forKey: id) { waiter.resume() } else { answers[id] = .success(()) }
        case .undeliverable(let id, let reason):
            guard outbox.remove(id) != nil else { return }
            let error = UndeliverableError(reason: reason)
            if let waiter = waiting.removeValue(forKey: id) { waiter.resume(throwing: error) } else { answers[id] = .failure(error) }
        case .statusReport(let id, let json):
            guard let waiter = statusWaiters.removeValue(forKey: id) else { return }
            do {
                waiter.resume(returning: try JSONDecoder().decode([NodeStatus].self, from: Data(json)))
            } catch {
                waiter.resume(throwing: UndeliverableError(reason: "the host's status report is not readable: \(error)"))
            }
        case .subscribe, .unsubscribe, .offerPort, .activity, .welcome, .statusRequest, .multicastJoin, .multicastReception, .nack, .relay:
            break
        }
    }

    // MARK: - Multicast

    /// Follows a multicast stream the host announced: joins its IP group on the interface
    /// that reaches the host. If the group cannot be joined the host keeps relaying.
    private func follow(_ descriptor: MulticastStreamDescriptor) async {
        guard channels.contains(descriptor.channel) else { return }
        do {
            try reception.join(descriptor)
        } catch {
            logger.warning("bad multicast stream from the host", metadata: ["error": "\(error)"])
            return
        }
        guard let group = descriptor.group, !joinedGroups.contains(group) else { return }
        do {
            let socket = try await multicastSocket(port: group.port)
            try await socket.join(group)
            joinedGroups.insert(group)
        } catch {
            logger.warning("cannot join the multicast group; the host relays the stream instead",
                           metadata: ["group": "\(group)", "error": "\(error)"])
        }
    }

    private func multicastSocket(port: UInt16) async throws -> MulticastSocket {
        if let socket = multicastSockets[port] { return socket }
        let hostAddress = try? NetworkAddress.resolve("\(configuration.host):\(configuration.hostPort)")
        let socket = try await MulticastSocket.open(port: port, interface: hostAddress?.localIPv4Route ?? 0)
        multicastSockets[port] = socket
        Task {
            for await datagram in socket.datagrams {
                await self.deliver(self.reception.receive(datagram, via: .group, now: .monotonicNow))
            }
        }
        return socket
    }

    /// Hands multicast messages to the application and tells the host what it must know.
    private func deliver(_ output: MulticastReception.Output) async {
        for message in output.control { await control(message) }
        for bytes in output.messages {
            guard case .data(let envelope)? = try? NetMessage.decode(bytes) else {
                logger.warning("malformed multicast message dropped")
                continue
            }
            guard envelope.route.from != configuration.id else { continue }  // our own, back from the group
            await messages.push(envelope)
        }
    }

    /// Gaps past their deadline, NACKs again, and reports of whether the group reaches us.
    private func multicastTimer() async {
        while !stopped {
            try? await Task.sleep(for: .milliseconds(25))
            await deliver(reception.tick(now: .monotonicNow))
        }
    }
}
