// The host role (xTransporter's SetSocket host, UltraSockets' relay): accepts nodes on one
// endpoint, checks their claimed id and name, and routes their messages with the `Router`.
// Every node has its own outbound queue and writer task, so a slow node never stalls another.
import Foundation
public import Logging
public import XTransport
public import XTransportNIO

/// The control channel every node talks to its host on (reliable messages, control priority).
public enum NetChannel {
    public static let control: UInt16 = NetLane.control.rawValue

    /// Sets up every lane on a node–host session (each side configures what it sends).
    static func configure(_ session: TransportSession, liveDeadline: Duration) async throws {
        for lane in NetLane.allCases { try await session.configure(channel: lane.rawValue, lane.configuration(liveDeadline: liveDeadline)) }
    }
}

/// The transport channels between a node and its host. Control carries everything the node
/// network says and reliable messages; media rides the live lanes (retransmitted until the
/// deadline, then skipped), audio ahead of video; bulk (backfill, files) gets what is left.
/// Messages on lanes other than control get no `accepted` answer: the sender does not wait.
public enum NetLane: UInt16, Hashable, Sendable, CaseIterable {
    case control = 0
    case audio = 1
    case video = 2
    case bulk = 3
    /// A call's audio: live, with a deadline that fits a conversation (``callDeadline``), and
    /// unordered: a frame is delivered when it arrives, not held behind a lost one being
    /// retransmitted (the jitter buffer puts frames in order, and plays a late one if it can).
    case callAudio = 4
    /// A call's video: live, behind call audio, with the same deadline.
    case callVideo = 5
    /// Call media as bare datagrams: no retransmission at all (Mumble's way; `xt call
    /// --plc-only`, the comparison the bench draws).
    case callUnreliable = 6

    /// How long call media is retransmitted on each hop before it is skipped: past this a
    /// frame would reach the far end's jitter buffer after its turn to play.
    public static let callDeadline: Duration = .milliseconds(200)

    func configuration(liveDeadline: Duration) -> ChannelConfiguration {
        switch self {
        case .control: ChannelConfiguration(mode: .messages, priority: .control)
        case .audio: .live(priority: .audio, deadline: liveDeadline)
        case .video: .live(priority: .video, deadline: liveDeadline)
        case .bulk: ChannelConfiguration(mode: .messages, priority: .bulk)
        case .callAudio: .live(priority: .audio, deadline: Self.callDeadline, unordered: true)
        case .callVideo: .live(priority: .video, deadline: Self.callDeadline)
        case .callUnreliable: .unreliable
        }
    }
}

extension Inbound {
    /// A message on a lane: reliable, live or (``NetLane/callUnreliable``) a datagram.
    var laneMessage: Message? {
        switch self {
        case .message(let message), .datagram(let message): message
        case .bytes, .gap: nil
        }
    }
}

/// A message for the host's own application (the recorder): routed to the host by name
/// ("host") or id (0.0), or published on a channel the host subscribed to.
public struct HostDelivery: Sendable {
    public var envelope: NetEnvelope
    /// The lane it arrived on.
    public var lane: NetLane
}

/// What the host reports about its nodes.
public enum HostEvent: Sendable, Equatable {
    case joined(NodeID, name: String)
    case left(NodeID, name: String, reason: String)
    case refused(name: String, reason: String)
}

/// A running host.
public actor NetHost {
    public nonisolated let endpoint: TransportEndpoint
    private var directory: NodeDirectory?
    /// Who the socket admits: the authorized keys (nil: anyone, `--open`) and the keys of this
    /// process's own nodes (``admitLocal(_:name:id:)``).
    private var authorized: AuthorizedKeys?
    private let logger: Logger
    private var router: Router
    private var fanout: MulticastFanout
    /// Where the fan-out's group datagrams go out; nil when the host does not multicast.
    private let multicastSocket: MulticastSocket?
    private var now: Timestamp { .monotonicNow }
    private var links: [NodeID: Link] = [:]
    private let eventContinuation: AsyncStream<HostEvent>.Continuation
    /// Joins, leaves and refusals, for status displays and tests.
    public nonisolated let events: AsyncStream<HostEvent>

    /// One node's session and its outbound queues, one per lane.
    private struct Link {
        let session: TransportSession
        let name: String
        let outbound: [NetLane: AsyncStream<[UInt8]>.Continuation]
        /// Bytes queued for this node and not yet taken by its session.
        var queued = 0

        func finish() { for continuation in outbound.values { continuation.finish() } }
    }

    /// Messages for the host's application: see ``subscribe(_:)`` and ``send(_:to:channel:lane:)``.
    /// Bounded: while it is full, the host stops reading the node that sends more.
    public nonisolated let messages: BoundedQueue<HostDelivery>
    /// How long live-lane messages from the host may still be delivered.
    public let liveDeadline: Duration
    private var messageIDs = MessageIDs()

    /// Most bytes queued for one node. Past it, messages for that node are refused (the sender
    /// is told), so a node that stopped reading costs bounded memory and stalls no one.
    public let maximumQueuedBytes: Int

    private init(endpoint: TransportEndpoint, directory: NodeDirectory?, holdTime: Duration, maximumQueuedBytes: Int,
                 multicast: MulticastOptions?, multicastSocket: MulticastSocket?, liveDeadline: Duration, inboxCapacity: Int,
                 logger: Logger) {
        self.endpoint = endpoint
        self.liveDeadline = liveDeadline
        messages = BoundedQueue(capacity: inboxCapacity)
        self.multicastSocket = multicastSocket
        fanout = MulticastFanout(options: multicastSocket == nil ? nil : multicast, rekeyAfter: holdTime)
        self.maximumQueuedBytes = maximumQueuedBytes
        self.directory = directory
        self.logger = logger
        router = Router(now: .monotonicNow, holdTime: holdTime)
        (events, eventContinuation) = AsyncStream<HostEvent>.makeStream()
    }

    /// Binds the first free port of `ports` on `host` and starts accepting nodes.
    /// - Parameters:
    ///   - directory: names and ids pinned to keys; a node claiming another is refused.
    ///   - holdTime: how long a message waits for a node that is reconnecting (after it
    ///     dropped, or after this host started) before it is refused; the seed's 8 s.
    ///   - maximumQueuedBytes: most bytes queued for one node before its messages are refused.
    ///   - multicast: the groups multicast streams go to (routecode 2); nil relays every
    ///     stream over each node's session (host fan-out). If the multicast socket cannot be
    ///     opened the host logs why and relays.
    ///   - liveDeadline: how long the host's live-lane messages may still be delivered.
    ///   - inboxCapacity: messages waiting for the host's application before it stops reading.
    /// - Throws: ``TransportError`` if no port in the range can be bound.
    public static func start(host: String = "0.0.0.0", ports: ClosedRange<UInt16>, configuration: EndpointConfiguration,
                             directory: NodeDirectory? = nil, holdTime: Duration = .seconds(8),
                             maximumQueuedBytes: Int = 16 << 20, multicast: MulticastOptions? = nil,
                             liveDeadline: Duration = .milliseconds(500), inboxCapacity: Int = 4096,
                             logger: Logger = Logger(label: "xtnet.host")) async throws -> NetHost {
        var lastError: (any Error)?
        for port in ports {
            do {
                let endpoint = try await TransportEndpoint.bind(host: host, port: Int(port), configuration: configuration, logger: logger)
                var socket: MulticastSocket?
                if var options = multicast {
                    if options.interface == 0, case .v4(let address)? = (try? NetworkAddress.resolve(host, defaultPort: 1))?.host {
                        options.interface = address  // send out of the interface the host listens on
                    }
                    do {
                        socket = try await MulticastSocket.open(interface: options.interface, ttl: options.ttl)
                    } catch {
                        logger.error("cannot multicast; relaying streams to each node instead", metadata: ["reason": "\(error)"])
                    }
                }
                let netHost = NetHost(endpoint: endpoint, directory: directory, holdTime: holdTime,
                                      maximumQueuedBytes: maximumQueuedBytes, multicast: multicast, multicastSocket: socket,
                                      liveDeadline: liveDeadline, inboxCapacity: inboxCapacity, logger: logger)
                if case .authorized(let keys) = configuration.admission { await netHost.setAuthorized(keys) }
                Task { await netHost.acceptLoop() }
                Task { await netHost.expireLoop() }
                return netHost
            } catch {
                lastError = error
            }
        }
        throw lastError ?? TransportError(.io, "no port in \(ports) could be bound")
    }

    private func setAuthorized(_ keys: AuthorizedKeys) { authorized = keys }

    /// Lets in a node of this process (the recorder's web users, each a node in a call): its
    /// key is admitted and pinned to `name` and `id`, as a line "KEY NAME ID" of the authorized
    /// keys would (so no other key can claim them while it is here).
    /// - Throws: ``TransportError`` when the socket is closed.
    public func admitLocal(_ key: PublicKey, name: String, id: NodeID) async throws {
        if var keys = authorized {
            keys.insert(key, name: "\(name) \(id)")
            authorized = keys
            try await endpoint.updateAdmission(.authorized(keys))
        }
        var pinned = directory ?? NodeDirectory()
        pinned.pin(key, name: name, id: id)
        directory = pinned
    }

    /// Forgets a key ``admitLocal(_:name:id:)`` let in (its node has left).
    public func dismissLocal(_ key: PublicKey) async {
        if var keys = authorized {
            keys.remove(key)
            authorized = keys
            try? await endpoint.updateAdmission(.authorized(keys))
        }
        directory?.unpin(key)
    }

    /// The nodes connected now.
    public var members: [Router.Member] { router.members.values.sorted { ($0.id.area, $0.id.local) < ($1.id.area, $1.id.local) } }

    /// The session of a connected node (for its link stats).
    public func session(of id: NodeID) -> TransportSession? { links[id]?.session }

    /// Every connected node with its channels, ports and link stats.
    public func status() async -> [NodeStatus] {
        var nodes: [NodeStatus] = []
        for member in members {
            let stats = try? await links[member.id]?.session.stats()
            var node = NodeStatus(member: member, stats: stats ?? nil)
            node.multicastViaGroup = fanout.channelsViaGroup(of: member.id)
            nodes.append(node)
        }
        // Then those refused: keys not authorized at the handshake, and names or ids claimed wrongly.
        for refused in await endpoint.refusedHandshakes() {
            nodes.append(NodeStatus(refused: NodeStatus.Refusal(key: refused.key.description, address: refused.address, attempts: refused.attempts,
                                                                lastMilliseconds: Int64(refused.last / 1_000_000),
                                                                reason: "its key is not in the authorized keys: add a line \(refused.key) NAME AREA.LOCAL")))
        }
        nodes += nodeRefusals.values.sorted { $0.refused!.lastMilliseconds > $1.refused!.lastMilliseconds }
        return nodes
    }

    /// Nodes refused after the handshake (a name or id pinned to another key), by key.
    private var nodeRefusals: [PublicKey: NodeStatus] = [:]

    private func noteRefusal(_ session: TransportSession, hello: NodeHello?, reason: String) {
        var entry = nodeRefusals[session.peerKey]
            ?? NodeStatus(refused: NodeStatus.Refusal(key: session.peerKey.description, address: "", attempts: 0, lastMilliseconds: 0, reason: reason),
                          name: hello?.name ?? "?", id: hello.map { "\($0.id)" } ?? "-")
        entry.refused!.attempts += 1
        entry.refused!.reason = reason
        entry.refused!.lastMilliseconds = Int64(Date().timeIntervalSince1970 * 1000)
        nodeRefusals[session.peerKey] = entry
        if nodeRefusals.count > 256, let oldest = nodeRefusals.min(by: { $0.value.refused!.lastMilliseconds < $1.value.refused!.lastMilliseconds })?.key {
            nodeRefusals[oldest] = nil
        }
    }

    /// Each multicast stream's counters (datagrams on the group, relays, repairs).
    public var multicastStats: [MulticastChannelStats] { fanout.stats }

    /// Group sends that failed (no route to the group).
    public nonisolated var multicastSendFailures: Int { multicastSocket?.sendFailures ?? 0 }

    /// Stops accepting and closes every session.
    public func stop() async {
        stopped = true
        for link in links.values { link.finish() }
        await multicastSocket?.close()
        await endpoint.close()
        eventContinuation.finish()
        messages.finish()
    }

    private var stopped = false

    // MARK: - The host's own application

    /// Delivers what nodes publish on `channel` (routecodes 3 and 2) to ``messages`` too.
    public func subscribe(_ channel: UInt16) { router.subscribeLocally(channel) }

    /// Stops delivering `channel` to ``messages``.
    public func unsubscribe(_ channel: UInt16) { router.unsubscribeLocally(channel) }

    /// Sends `payload` from the host to the connected node `id`. Nothing is kept for a node
    /// that is not connected: the caller decides whether to try again.
    /// - Throws: ``UndeliverableError`` when the node is not connected or not keeping up.
    public func send(_ payload: [UInt8], to id: NodeID, channel: UInt16 = 1, lane: NetLane = .control) throws {
        guard let link = links[id] else { throw UndeliverableError(reason: "node \(id) is not connected") }
        let envelope = NetEnvelope(id: messageIDs.next(), route: RoutingHeader(routeCode: .unicast, to: id, channel: channel, from: .host),
                                   payload: payload)
        let bytes = NetMessage.data(envelope).encoded()
        guard link.queued + bytes.count <= maximumQueuedBytes else {
            throw UndeliverableError(reason: "node \(link.name) (\(id)) is not keeping up: \(link.queued >> 20) MiB wait for it")
        }
        enqueue(bytes, to: id, lane: lane)
    }

    // MARK: - Routing

    private func expireLoop() async {
        while !stopped {
            try? await Task.sleep(for: .milliseconds(50))
            perform(router.expire(now: now))
            perform(fanout.tick(now: now))
        }
    }

    /// Carries out routing actions for a message that came on `lane`; returns the deliveries
    /// for the host's own application (the caller waits for room for them).
    @discardableResult
    private func perform(_ actions: [RouterAction], lane: NetLane = .control) -> [NetEnvelope] {
        var refused: [UInt64: String] = [:]  // unicast messages whose destination is full
        var local: [NetEnvelope] = []
        for action in actions {
            switch action {
            case .send(.data(let envelope), let to):
                guard let link = links[to] else { continue }
                let bytes = NetMessage.data(envelope).encoded()
                if link.queued + bytes.count > maximumQueuedBytes {
                    if envelope.route.routeCode == .unicast || envelope.route.routeCode == .port {
                        refused[envelope.id] = "node \(link.name) (\(to)) is not keeping up: \(link.queued >> 20) MiB wait for it"
                    }
                    continue
                }
                enqueue(bytes, to: to, lane: lane)
            case .send(.accepted, _) where lane != .control, .send(.undeliverable, _) where lane != .control:
                continue  // the sender of a lane message does not wait for an answer
            case .send(.accepted(let id), let to) where refused[id] != nil:
                enqueue(NetMessage.undeliverable(id: id, reason: refused[id]!).encoded(), to: to)
            case .send(let message, let to):
                enqueue(message.encoded(), to: to)
            case .multicast(let envelope):
                perform(fanout.publish(NetMessage.data(envelope).encoded(), channel: envelope.route.channel,
                                       from: envelope.route.from, now: now))
            case .local(let envelope):
                local.append(envelope)
            }
        }
        return local
    }

    private func perform(_ actions: [MulticastFanout.Action]) {
        for action in actions {
            switch action {
            case .group(let datagram, let group):
                multicastSocket?.send(datagram, to: group)
            case .send(let message, let to):
                let bytes = message.encoded()
                if case .relay = message, let link = links[to], link.queued + bytes.count > maximumQueuedBytes {
                    continue  // the node is not keeping up: it asks again for what it misses, or skips it
                }
                enqueue(bytes, to: to)
            }
        }
    }

    private func enqueue(_ bytes: [UInt8], to id: NodeID, lane: NetLane = .control) {
        guard let link = links[id] else { return }
        links[id]!.queued += bytes.count
        link.outbound[lane]?.yield(bytes)
    }

    private func taken(_ count: Int, by id: NodeID, session: TransportSession) {
        guard links[id]?.session === session else { return }
        links[id]!.queued -= count
    }

    private func acceptLoop() async {
        for await session in endpoint.incomingSessions {
            Task { await self.serve(session) }
        }
    }

    private func serve(_ session: TransportSession) async {
        guard let hello = NodeHello(session.hello) else {
            session.abort(reason: "not a node: connect with `xt node` or a NetNode")
            noteRefusal(session, hello: nil, reason: "not a node (no node hello)")
            eventContinuation.yield(.refused(name: "?", reason: "no node hello"))
            return
        }
        let released: [RouterAction]
        do {
            released = try router.join(id: hello.id, name: hello.name, key: session.peerKey, registered: directory?.registered(session.peerKey))
        } catch {
            logger.warning("refused node", metadata: ["name": "\(hello.name)", "id": "\(hello.id)", "reason": "\(error)"])
            session.abort(reason: error.description)
            noteRefusal(session, hello: hello, reason: error.description)
            eventContinuation.yield(.refused(name: hello.name, reason: error.description))
            return
        }
        if let previous = links[hello.id] {
            // The node reconnected before its old session was found dead.
            previous.finish()
            previous.session.abort(reason: "replaced by a new session from the same node")
        }
        var outbound: [NetLane: AsyncStream<[UInt8]>.Continuation] = [:]
        for lane in NetLane.allCases {
            let (stream, continuation) = AsyncStream<[UInt8]>.makeStream()
            outbound[lane] = continuation
            Task {
                // A writer per lane: this node's messages go out in order without holding up
                // anyone else, and a backlog of bulk never delays control or live media.
                for await bytes in stream {
                    do { try await session.send(bytes, on: lane.rawValue) } catch { break }
                    await self.taken(bytes.count, by: hello.id, session: session)
                }
            }
        }
        links[hello.id] = Link(session: session, name: hello.name, outbound: outbound)
        eventContinuation.yield(.joined(hello.id, name: hello.name))
        enqueue(NetMessage.welcome.encoded(), to: hello.id)
        perform(released)
        logger.info("node joined", metadata: ["name": "\(hello.name)", "id": "\(hello.id)"])
        var reason = "closed"
        do {
            try await NetChannel.configure(session, liveDeadline: liveDeadline)
            for try await item in session.inbound {
                guard let message = item.laneMessage, let lane = NetLane(rawValue: message.channel) else { continue }
                guard let decoded = try? NetMessage.decode(message.payload) else {
                    logger.warning("malformed net message dropped", metadata: ["node": "\(hello.name)"])
                    continue
                }
                if lane != .control {
                    // Lanes carry data only; control stays on the control channel.
                    guard case .data = decoded else { continue }
                    for envelope in perform(router.handle(decoded, from: hello.id, now: now), lane: lane) {
                        await messages.push(HostDelivery(envelope: envelope, lane: lane))
                    }
                    continue
                }
                if case .statusRequest(let id) = decoded {
                    let json = (try? JSONEncoder().encode(await status())).map { [UInt8]($0) } ?? Array("[]".utf8)
                    enqueue(NetMessage.statusReport(id: id, json: json).encoded(), to: hello.id)
                    continue
                }
                for envelope in perform(router.handle(decoded, from: hello.id, now: now)) {
                    await messages.push(HostDelivery(envelope: envelope, lane: .control))
                }
                switch decoded {
                case .subscribe(let channel): perform(fanout.subscribe(hello.id, channel: channel, now: now))
                case .unsubscribe(let channel): perform(fanout.unsubscribe(hello.id, channel: channel))
                case .multicastReception(let channel, let stream, let receiving):
                    fanout.reception(hello.id, channel: channel, stream: stream, receiving: receiving)
                    logger.info("multicast reception", metadata: ["node": "\(hello.name)", "channel": "\(channel)",
                                                                  "via": "\(receiving ? "group" : "relay")"])
                case .nack(let channel, let stream, let ranges):
                    perform(fanout.nack(hello.id, channel: channel, stream: stream, ranges: ranges))
                default: break
                }
            }
        } catch {
            reason = "\(error)"
        }
        if links[hello.id]?.session === session {
            links[hello.id]?.finish()
            links[hello.id] = nil
            router.leave(hello.id, now: now)
            fanout.leave(hello.id, now: now)
            eventContinuation.yield(.left(hello.id, name: hello.name, reason: reason))
            logger.info("node left", metadata: ["name": "\(hello.name)", "reason": "\(reason)"])
        }
    }
}
