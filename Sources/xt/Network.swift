// The node network from the command line: `xt host` runs a host; `xt msg`, `xt pub` and
// `xt sub` join as a node for one job. Node settings come from Config/node.conf, then the
// XT_NODE_* environment, then these options.
import ArgumentParser
import Foundation
import XTNet
import XTransport
import XTransportNIO

/// Options every node command shares.
struct NetNodeOptions: ParsableArguments {
    @Option(name: .long, help: "Node settings file (key = value).")
    var config = "Config/node.conf"

    @Option(name: .long, help: "This node's id, area.local (overrides the file).")
    var id: String?

    @Option(name: .long, help: "This node's name (overrides the file).")
    var name: String?

    @Option(name: .long, help: "The host, host:port (overrides the file).")
    var host: String?

    @Option(name: .long, help: "The host's public key (base64), or @FILE.")
    var hostKey: String

    /// File, then environment, then options.
    func configuration() throws -> NodeConfiguration {
        var configuration = NodeConfiguration()
        do {
            if let text = try? String(contentsOfFile: config, encoding: .utf8) {
                try configuration.apply(file: text, source: config)
            }
            try configuration.apply(environment: ProcessInfo.processInfo.environment)
            if let id { try configuration.set("id", id) }
            if let name { try configuration.set("name", name) }
            if let host { try configuration.set("host", host) }
        } catch {
            throw CLIError(error.description)
        }
        return configuration
    }

    func key() throws -> PublicKey {
        try PeerOptions.parseKey(hostKey)
    }

    /// Starts a node and waits for its first connection (or the connect timeout).
    func start(node options: NodeOptions) async throws -> NetNode {
        let configuration = try configuration()
        var session = try options.sessionConfiguration()
        session = try configuration.sessionConfiguration(base: session)
        let node = NetNode(configuration: configuration, identity: try options.identity(), hostKey: try key(),
                           session: session, logger: options.logger())
        try await node.start(waitForConnection: false)
        let deadline = ContinuousClock.now + .seconds(options.connectTimeout)
        while !(await node.isConnected), await node.refusal == nil, ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(50))
        }
        if let refusal = await node.refusal {
            await node.stop()
            throw CLIError("the host refused this node: \(refusal)")
        }
        guard await node.isConnected else {
            await node.stop()
            throw CLIError("no answer from the host at \(configuration.host):\(configuration.hostPort): check that `xt host` runs there and has this node's key")
        }
        return node
    }
}

struct Host: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Run a host: nodes connect to it and it routes their messages.")

    @Option(name: .long, help: "Address to listen on.")
    var bind = "0.0.0.0"

    @Option(name: .long, help: "Ports to try, first-last (the first free one is used).")
    var ports = "9000-9000"

    @Option(name: .long, help: "Node keys, one per line, each with a name and optionally an id (KEY name area.local).")
    var authorizedKeys = "Config/authorized_keys"

    @Flag(name: .long, help: "Admit any key (names and ids are then first come, first served).")
    var open = false

    @Option(name: .long, help: "Seconds a message waits for a node that is reconnecting.")
    var holdTime = 8

    @Option(name: .long, help: "Seconds of silence after which a node is declared dead and cleaned up (the seed's 8).")
    var deadNodeInterval = 8

    @OptionGroup var node: NodeOptions

    func run() async throws {
        try await XT.run {
            let parts = ports.split(separator: "-").compactMap { UInt16($0) }
            guard parts.count == 2 || parts.count == 1, parts.first! <= parts.last! else {
                throw CLIError("--ports '\(ports)' is not a range: use first-last, e.g. 9000-9010")
            }
            let keys: AuthorizedKeys? = open ? nil : try AuthorizedKeys.load(path: authorizedKeys)
            let directory = try keys.map { keys in
                do { return try NodeDirectory(keys) } catch { throw CLIError("\(authorizedKeys): \(error)") }
            }
            var session = try node.sessionConfiguration()
            session.deadPeerTimeout = .seconds(deadNodeInterval)
            let configuration = EndpointConfiguration(identity: try node.identity(), admission: keys.map { .authorized($0) } ?? .open,
                                                      session: session)
            let host = try await NetHost.start(host: bind, ports: parts.first!...parts.last!, configuration: configuration,
                                               directory: directory, holdTime: .seconds(holdTime), logger: node.logger())
            print("host listening on \(host.endpoint.localAddress) as \(configuration.identity.publicKey)\(open ? " (open mode)" : "")")
            for await event in host.events {
                switch event {
                case .joined(let id, let name): print("joined: \(name) (\(id))")
                case .left(let id, let name, let reason): print("left: \(name) (\(id)): \(reason)")
                case .refused(let name, let reason): print("refused: \(name): \(reason)")
                }
            }
        }
    }
}

struct Msg: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Send a message to the node NAME through the host.")

    @Argument(help: "The destination node's name.")
    var to: String

    @Argument(help: "The message.")
    var text: String

    @Option(name: .long, help: "Send it this many times, numbered (\"TEXT 0\", \"TEXT 1\", …), one after another.")
    var `repeat`: Int = 1

    @Option(name: .long, help: "Milliseconds between repeated messages.")
    var interval: Int = 0

    @OptionGroup var net: NetNodeOptions
    @OptionGroup var node: NodeOptions

    func run() async throws {
        try await XT.run {
            let member = try await net.start(node: node)
            let count = max(`repeat`, 1)
            for index in 0..<count {
                let payload = count > 1 ? "\(text) \(index)" : text
                do {
                    // Waits while the host is away: the message is sent again once the node is back.
                    try await member.send(Array(payload.utf8), toName: to)
                } catch let error as UndeliverableError {
                    await member.stop()
                    throw CLIError("not delivered to \(to): \(error.reason)")
                }
                if interval > 0 { try await Task.sleep(for: .milliseconds(interval)) }
            }
            print(count > 1 ? "delivered \(count) messages to \(to)" : "delivered to \(to)")
            await member.stop()
        }
    }
}

struct Pub: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Publish a message on a channel; every subscriber gets it.")

    @Option(name: .long, help: "The channel.")
    var channel: UInt16

    @Argument(help: "The message.")
    var text: String

    @OptionGroup var net: NetNodeOptions
    @OptionGroup var node: NodeOptions

    func run() async throws {
        try await XT.run {
            let member = try await net.start(node: node)
            try await member.publish(Array(text.utf8), channel: channel)
            print("published on channel \(channel)")
            await member.stop()
        }
    }
}

struct Sub: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Subscribe to channels and print what arrives (and messages sent to this node).")

    @Option(name: .long, help: "A channel to subscribe to (repeatable).")
    var channel: [UInt16] = []

    @Option(name: .long, help: "Exit after this many messages.")
    var count: Int?

    @OptionGroup var net: NetNodeOptions
    @OptionGroup var node: NodeOptions

    func run() async throws {
        try await XT.run {
            let member = try await net.start(node: node)
            for channel in channel { await member.subscribe(channel) }
            print("subscribed to \(channel.map(String.init).joined(separator: ", "))")
            var received = 0
            for await envelope in member.messages {
                let kind = envelope.route.routeCode == .channel ? "channel \(envelope.route.channel)" : "direct"
                print("[\(kind)] from \(envelope.route.from): \(String(decoding: envelope.payload, as: UTF8.self))")
                received += 1
                if let count, received >= count { break }
            }
            await member.stop()
        }
    }
}

struct Status: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "List the nodes connected to the host, their channels and links.")

    @Flag(name: .long, help: "Print JSON instead of a table.")
    var json = false

    @OptionGroup var net: NetNodeOptions
    @OptionGroup var node: NodeOptions

    func run() async throws {
        try await XT.run {
            let member = try await net.start(node: node)
            let nodes: [NodeStatus]
            do {
                nodes = try await member.status()
            } catch let error as UndeliverableError {
                throw CLIError("no status from the host: \(error.reason)")
            }
            if json {
                let encoder = JSONEncoder()
                encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
                print(String(decoding: try encoder.encode(nodes), as: UTF8.self))
            } else {
                print(NodeStatus.table(nodes))
            }
            await member.stop()
        }
    }
}

struct Node: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run a node: stay connected to the host (reconnecting as needed), subscribe to the configured channel and print what arrives.")

    @OptionGroup var net: NetNodeOptions
    @OptionGroup var node: NodeOptions

    func run() async throws {
        try await XT.run {
            let member = try await net.start(node: node)
            let configuration = member.configuration
            await member.subscribe(configuration.channel)
            print("node \(configuration.name) (\(configuration.id)) joined \(configuration.host):\(configuration.hostPort), channel \(configuration.channel)")
            for await envelope in member.messages {
                let kind = envelope.route.routeCode == .channel ? "channel \(envelope.route.channel)" : "direct"
                print("[\(kind)] from \(envelope.route.from): \(String(decoding: envelope.payload, as: UTF8.self))")
            }
        }
    }
}
