// The host role (xTransporter's SetSocket host, UltraSockets' relay): accepts nodes on one
// endpoint, checks their claimed id and name, and routes their messages with the `Router`.
// Every node has its own outbound queue and writer task, so a slow node never stalls another.
import Foundation
public import Logging
public import XTransport
public import XTransportNIO

/// The control channel every node talks to its host on (reliable messages, control priority).
public enum NetChannel {
    public static let control: UInt16 = 0

    static func configure(_ session: TransportSession) async throws {
        try await session.configure(channel: control, ChannelConfiguration(mode: .messages, priority: .control))
    }
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
    private let directory: NodeDirectory?
    private let logger: Logger
    private var router: Router
    private let origin = ContinuousClock.now
    private var now: Timestamp {
        let elapsed = ContinuousClock.now - origin
        return Timestamp(nanoseconds: UInt64(elapsed.components.seconds) * 1_000_000_000 + UInt64(elapsed.components.attoseconds / 1_000_000_000))
    }
    private var links: [NodeID: Link] = [:]
    private let eventContinuation: AsyncStream<HostEvent>.Continuation
    /// Joins, leaves and refusals, for status displays and tests.
    public nonisolated let events: AsyncStream<HostEvent>

    /// One node's session and its outbound queue.
    private struct Link {
        let session: TransportSession
        let name: String
        let outbound: AsyncStream<[UInt8]>.Continuation
    }

    private init(endpoint: TransportEndpoint, directory: NodeDirectory?, holdTime: Duration, logger: Logger) {
        self.endpoint = endpoint
        self.directory = directory
        self.logger = logger
        router = Router(now: .zero, holdTime: holdTime)
        (events, eventContinuation) = AsyncStream<HostEvent>.makeStream()
    }

    /// Binds the first free port of `ports` on `host` and starts accepting nodes.
    /// - Parameters:
    ///   - directory: names and ids pinned to keys; a node claiming another is refused.
    ///   - holdTime: how long a message waits for a node that is reconnecting (after it
    ///     dropped, or after this host started) before it is refused; the seed's 8 s.
    /// - Throws: ``TransportError`` if no port in the range can be bound.
    public static func start(host: String = "0.0.0.0", ports: ClosedRange<UInt16>, configuration: EndpointConfiguration,
                             directory: NodeDirectory? = nil, holdTime: Duration = .seconds(8),
                             logger: Logger = Logger(label: "xtnet.host")) async throws -> NetHost {
        var lastError: (any Error)?
        for port in ports {
            do {
                let endpoint = try await TransportEndpoint.bind(host: host, port: Int(port), configuration: configuration, logger: logger)
                let netHost = NetHost(endpoint: endpoint, directory: directory, holdTime: holdTime, logger: logger)
                Task { await netHost.acceptLoop() }
                Task { await netHost.expireLoop() }
                return netHost
            } catch {
                lastError = error
            }
        }
        throw lastError ?? TransportError(.io, "no port in \(ports) could be bound")
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
            nodes.append(NodeStatus(member: member, stats: stats ?? nil))
        }
        return nodes
    }

    /// Stops accepting and closes every session.
    public func stop() async {
        stopped = true
        for link in links.values { link.outbound.finish() }
        await endpoint.close()
        eventContinuation.finish()
    }

    private var stopped = false

    private func expireLoop() async {
        while !stopped {
            try? await Task.sleep(for: .milliseconds(250))
            perform(router.expire(now: now))
        }
    }

    private func perform(_ actions: [RouterAction]) {
        for action in actions {
            switch action {
            case .send(let message, let to): links[to]?.outbound.yield(message.encoded())
            }
        }
    }

    private func acceptLoop() async {
        for await session in endpoint.incomingSessions {
            Task { await self.serve(session) }
        }
    }

    private func serve(_ session: TransportSession) async {
        guard let hello = NodeHello(session.hello) else {
            session.abort(reason: "not a node: connect with `xt node` or a NetNode")
            eventContinuation.yield(.refused(name: "?", reason: "no node hello"))
            return
        }
        let released: [RouterAction]
        do {
            released = try router.join(id: hello.id, name: hello.name, key: session.peerKey, registered: directory?.registered(session.peerKey))
        } catch {
            logger.warning("refused node", metadata: ["name": "\(hello.name)", "id": "\(hello.id)", "reason": "\(error)"])
            session.abort(reason: error.description)
            eventContinuation.yield(.refused(name: hello.name, reason: error.description))
            return
        }
        if let previous = links[hello.id] {
            // The node reconnected before its old session was found dead.
            previous.outbound.finish()
            previous.session.abort(reason: "replaced by a new session from the same node")
        }
        let (outbound, continuation) = AsyncStream<[UInt8]>.makeStream()
        links[hello.id] = Link(session: session, name: hello.name, outbound: continuation)
        eventContinuation.yield(.joined(hello.id, name: hello.name))
        continuation.yield(NetMessage.welcome.encoded())
        perform(released)
        logger.info("node joined", metadata: ["name": "\(hello.name)", "id": "\(hello.id)"])
        Task {
            // The writer: this node's messages go out in order without holding up anyone else.
            for await bytes in outbound {
                do { try await session.send(bytes, on: NetChannel.control) } catch { break }
            }
        }
        var reason = "closed"
        do {
            try await NetChannel.configure(session)
            for try await item in session.inbound {
                guard case .message(let message) = item, message.channel == NetChannel.control else { continue }
                guard let decoded = try? NetMessage.decode(message.payload) else {
                    logger.warning("malformed net message dropped", metadata: ["node": "\(hello.name)"])
                    continue
                }
                if case .statusRequest(let id) = decoded {
                    let json = (try? JSONEncoder().encode(await status())).map { [UInt8]($0) } ?? Array("[]".utf8)
                    links[hello.id]?.outbound.yield(NetMessage.statusReport(id: id, json: json).encoded())
                    continue
                }
                perform(router.handle(decoded, from: hello.id, now: now))
            }
        } catch {
            reason = "\(error)"
        }
        if links[hello.id]?.session === session {
            links[hello.id]?.outbound.finish()
            links[hello.id] = nil
            router.leave(hello.id, now: now)
            eventContinuation.yield(.left(hello.id, name: hello.name, reason: reason))
            logger.info("node left", metadata: ["name": "\(hello.name)", "reason": "\(reason)"])
        }
    }
}
