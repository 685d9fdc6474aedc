// The browser as a phone: each call page open on the recorder is a node of the network, named
// after its user, in the recorder's own process (its key is let in by the host it runs
// beside, ``NetHost/admitLocal(_:name:id:)``). Its `CallAgent` runs in external mode: the page
// encodes and decodes (WebCodecs), and this bridge carries the page's messages to the agent
// and the parties' packets to the page. A page may also answer the doorbell: a call to "web"
// rings every open page (``WebDoorbell``), and the first to answer takes it.
//
// The page's WebSocket: text messages are JSON, both ways; binary messages are media.
//   page → here:  {"type":"call","names":["door"],"video":true} · {"type":"answer"} ·
//                 {"type":"decline"} · {"type":"hangup"}; binary: one "XM" packet (PROTOCOL.md,
//                 "Calls"), its call id ignored.
//   here → page:  {"type":"ready","name":"alice"} · {"type":"incoming","from":"door",
//                 "media":"audio+video","via":"alice"|"web"} · {"type":"parties","parties":[…]} ·
//                 {"type":"path","party":"door","path":"direct"} · {"type":"ended","reason":"…"} ·
//                 {"type":"error","message":"…"}; binary: name length u8, the party's name,
//                 then its "XM" packet.
import Foundation
public import Logging
public import XTNet
public import XTransport

/// What a page's socket carries to the page.
public enum WebCallOutput: Sendable, Equatable {
    case text(String)
    case binary([UInt8])
}

/// One call page: a node named after its user, and the way to its call agent.
public actor WebCallBridge {
    public nonisolated let name: String
    public nonisolated let output: AsyncStream<WebCallOutput>
    private let continuation: AsyncStream<WebCallOutput>.Continuation
    private let host: NetHost
    private let node: NetNode
    private let agent: CallAgent
    private let key: PublicKey
    private let doorbell: WebDoorbell?
    /// The page took the doorbell's call: its messages and media go to the "web" agent.
    private var onDoorbell = false
    private var tasks: [Task<Void, Never>] = []
    private let logger: Logger

    /// Makes the page's node (not yet connected: ``start()``).
    /// - Parameters:
    ///   - user: the logged-in user's name: the node's name.
    ///   - id: the node's id (unique among the host's nodes).
    ///   - hostAddress: where the host listens, host:port (loopback).
    public init(user: String, id: NodeID, host: NetHost, hostAddress: String, hostKey: PublicKey, session: SessionConfiguration,
                doorbell: WebDoorbell?, logger: Logger) throws(NodeConfigurationError) {
        name = user
        self.host = host
        self.doorbell = doorbell
        self.logger = logger
        (node, agent, key) = try Self.node(name: user, id: id, hostAddress: hostAddress, hostKey: hostKey, session: session, logger: logger)
        (output, continuation) = AsyncStream.makeStream(bufferingPolicy: .bufferingNewest(512))
    }

    /// A node of this process (a new key) with a call agent whose media is the page's.
    static func node(name: String, id: NodeID, hostAddress: String, hostKey: PublicKey, session: SessionConfiguration,
                     logger: Logger) throws(NodeConfigurationError) -> (NetNode, CallAgent, PublicKey) {
        var configuration = NodeConfiguration()
        try configuration.set("host", hostAddress)
        try configuration.set("name", name)
        configuration.id = id
        let identity = NodeIdentity()
        let node = NetNode(configuration: configuration, identity: identity, hostKey: hostKey, session: session, logger: logger)
        var settings = CallAgent.Configuration()
        settings.external = true
        return (node, CallAgent(node: node, configuration: settings, logger: logger), identity.publicKey)
    }

    /// Joins the network as the user's node and starts carrying the call's messages.
    /// - Throws: when the host cannot let the node in or it cannot connect within 5 s.
    public func start() async throws {
        try await host.admitLocal(key, name: name, id: node.configuration.id)
        try await node.start(waitForConnection: false)
        let deadline = ContinuousClock.now + .seconds(5)
        while await !node.isConnected {
            guard ContinuousClock.now < deadline else { throw WebCallError("the call page's node could not join the network") }
            try await Task.sleep(for: .milliseconds(20))
        }
        await agent.start()
        let (agent, node) = (self.agent, self.node)
        tasks.append(Task { for await envelope in node.messages { _ = await agent.handle(envelope) } })
        tasks.append(Task { for await event in agent.events { await self.forward(event, via: self.name) } })
        tasks.append(Task { for await (party, packet) in agent.externalMedia { self.media(packet, from: party) } })
        await doorbell?.attach(self)
        text(["type": "ready", "name": name])
    }

    /// Leaves: hangs up, the node leaves and its key is forgotten.
    public func stop() async {
        await doorbell?.detach(self)
        if onDoorbell { await doorbell?.hangUp(from: self) }
        await agent.stop()
        for task in tasks { task.cancel() }
        await node.stop()
        await host.dismissLocal(key)
        continuation.finish()
    }

    /// A text message from the page.
    public func handle(text: String) async {
        guard text.utf8.count <= 4096, let object = try? JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any],
              let type = object["type"] as? String else {
            self.text(["type": "error", "message": "not a call message: send JSON with a type"])
            return
        }
        switch type {
        case "call":
            guard let names = object["names"] as? [String], !names.isEmpty, names.count <= 7 else {
                self.text(["type": "error", "message": "call: give names, 1 to 7"])
                return
            }
            do {
                try await agent.call(names, media: (object["video"] as? Bool ?? false) ? [.audio, .video] : .audio)
            } catch {
                self.text(["type": "error", "message": error.description])
            }
        case "answer":
            if await agent.state == .incoming {
                await agent.answer()
            } else if let doorbell, await doorbell.take(for: self) {
                onDoorbell = true
            }
        case "decline":
            if await agent.state == .incoming { await agent.decline() }
        case "hangup":
            if onDoorbell { await doorbell?.hangUp(from: self) } else { await agent.hangUp() }
        default:
            self.text(["type": "error", "message": "unknown call message type '\(type.prefix(40))'"])
        }
    }

    /// A binary message from the page: one media packet of its own.
    public func handle(binary: [UInt8]) async {
        guard let packet = try? CallMediaPacket(decoding: binary) else { return }
        if onDoorbell {
            await doorbell?.sendMedia(packet, from: self)
        } else {
            await agent.sendMedia(packet)
        }
    }

    // MARK: - To the page

    func forward(_ event: CallEvent, via: String) {
        switch event {
        case .incoming(let from, let media, _):
            text(["type": "incoming", "from": from, "media": "\(media)", "via": via])
        case .stopRinging:
            text(["type": "stopRinging", "via": via])
        case .parties(let parties):
            text(["type": "parties", "parties": parties])
        case .path(let party, let path):
            text(["type": "path", "party": party, "path": path.rawValue])
        case .ended(let end):
            if via == "web" { onDoorbell = false }
            text(["type": "ended", "reason": "\(end)"])
        }
    }

    nonisolated func media(_ packet: CallMediaPacket, from party: String) {
        let name = Array(party.utf8.prefix(255))
        continuation.yield(.binary([UInt8(name.count)] + name + packet.encoded))
    }

    private nonisolated func text(_ object: [String: Any]) {
        guard let data = try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys]) else { return }
        continuation.yield(.text(String(decoding: data, as: UTF8.self)))
    }
}

/// The doorbell's name on the network, "web": a call to it rings every open call page, and the
/// first page to answer takes it (its media then goes through the "web" node's agent).
public actor WebDoorbell {
    private let node: NetNode
    private let agent: CallAgent
    private let host: NetHost
    private let key: PublicKey
    private var pages: [ObjectIdentifier: WebCallBridge] = [:]
    private var taker: WebCallBridge?
    private var tasks: [Task<Void, Never>] = []

    public init(host: NetHost, hostAddress: String, hostKey: PublicKey, id: NodeID, session: SessionConfiguration,
                logger: Logger) throws(NodeConfigurationError) {
        self.host = host
        (node, agent, key) = try WebCallBridge.node(name: "web", id: id, hostAddress: hostAddress, hostKey: hostKey, session: session, logger: logger)
    }

    /// Joins the network as "web".
    public func start() async throws {
        try await host.admitLocal(key, name: "web", id: node.configuration.id)
        try await node.start(waitForConnection: false)
        await agent.start()
        let (agent, node) = (self.agent, self.node)
        tasks.append(Task { for await envelope in node.messages { _ = await agent.handle(envelope) } })
        tasks.append(Task { for await event in agent.events { await self.event(event) } })
        tasks.append(Task { for await (party, packet) in agent.externalMedia { await self.taker?.media(packet, from: party) } })
    }

    public func stop() async {
        await agent.stop()
        for task in tasks { task.cancel() }
        await node.stop()
        await host.dismissLocal(key)
    }

    func attach(_ page: WebCallBridge) { pages[ObjectIdentifier(page)] = page }

    func detach(_ page: WebCallBridge) { pages[ObjectIdentifier(page)] = nil }

    /// `page` answers the ringing doorbell: true when it got the call (no other page did first).
    func take(for page: WebCallBridge) async -> Bool {
        guard taker == nil, await agent.state == .incoming else { return false }
        taker = page
        await agent.answer()
        for other in pages.values where other !== page { await other.forward(.stopRinging, via: "web") }
        return true
    }

    func sendMedia(_ packet: CallMediaPacket, from page: WebCallBridge) async {
        guard taker === page else { return }
        await agent.sendMedia(packet)
    }

    func hangUp(from page: WebCallBridge) async {
        guard taker === page else { return }
        await agent.hangUp()
    }

    private func event(_ event: CallEvent) async {
        switch event {
        case .incoming, .stopRinging:
            // Every page rings; the one that answers takes it.
            for page in pages.values { await page.forward(event, via: "web") }
        case .ended:
            if let taker { await taker.forward(event, via: "web") } else { for page in pages.values { await page.forward(event, via: "web") } }
            taker = nil
        case .parties, .path:
            await taker?.forward(event, via: "web")
        }
    }
}

/// Why a call page could not join.
public struct WebCallError: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}
