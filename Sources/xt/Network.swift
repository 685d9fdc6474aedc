// The node network from the command line: `xt host` runs a host; `xt msg`, `xt pub` and
// `xt sub` join as a node for one job. Node settings come from Config/node.conf, then the
// XT_NODE_* environment, then these options.
import ArgumentParser
import Foundation
import Logging
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

/// Options of every command that runs a host (`xt host`, `xt recorder`).
struct HostOptions: ParsableArguments {
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

    @Option(name: .long, help: "Multicast streams (routecode 2) go to this IPv4 group plus the channel number, e.g. 239.77.0.0:5960 (channel 7 → 239.77.0.7). Without it, streams are relayed to each node.")
    var multicast: String?

    @Option(name: .long, help: "Hops multicast datagrams may cross (1 keeps them on the LAN).")
    var multicastTTL: UInt8 = 1

    /// Starts the host these options describe.
    func start(node: NodeOptions, liveDeadline: Duration = .milliseconds(500), logger: Logger) async throws -> (NetHost, EndpointConfiguration) {
        let parts = ports.split(separator: "-").compactMap { UInt16($0) }
        guard parts.count == 2 || parts.count == 1, parts.first! <= parts.last! else {
            throw CLIError("--ports '\(ports)' is not a range: use first-last, e.g. 9000-9010")
        }
        let keys: AuthorizedKeys? = open ? nil : try AuthorizedKeys.load(path: authorizedKeys)
        let directory = try keys.map { keys in
            do { return try NodeDirectory(keys) } catch { throw CLIError("\(authorizedKeys): \(error)") }
        }
        try Checked.integer(holdTime, "--hold-time", in: 0...3600)
        try Checked.integer(deadNodeInterval, "--dead-node-interval", in: 2...86_400)
        var session = try node.sessionConfiguration()
        session.deadPeerTimeout = .seconds(deadNodeInterval)
        let configuration = EndpointConfiguration(identity: try node.identity(), admission: keys.map { .authorized($0) } ?? .open,
                                                  session: session)
        let multicastOptions: MulticastOptions?
        do {
            multicastOptions = try multicast.map { MulticastOptions(base: try MulticastOptions.parse($0), ttl: multicastTTL, maximumDatagram: 1472) }
        } catch {
            throw CLIError("--multicast: \(error)")
        }
        let host = try await NetHost.start(host: bind, ports: parts.first!...parts.last!, configuration: configuration,
                                           directory: directory, holdTime: .seconds(holdTime), multicast: multicastOptions,
                                           liveDeadline: liveDeadline, logger: logger)
        return (host, configuration)
    }

    /// Prints joins, leaves and refusals as they happen.
    static func printEvents(of host: NetHost) async {
        for await event in host.events {
            switch event {
            case .joined(let id, let name): print("joined: \(name) (\(id))")
            case .left(let id, let name, let reason): print("left: \(name) (\(id)): \(reason)")
            case .refused(let name, let reason): print("refused: \(name): \(reason)")
            }
        }
    }
}

struct Host: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Run a host: nodes connect to it and it routes their messages.")

    @OptionGroup var host: HostOptions
    @OptionGroup var node: NodeOptions

    func run() async throws {
        try await XT.run {
            let (host, configuration) = try await self.host.start(node: node, logger: node.logger())
            print("host listening on \(host.endpoint.localAddress) as \(configuration.identity.publicKey)\(self.host.open ? " (open mode)" : "")")
            if let multicast = self.host.multicast { print("multicast streams go to \(multicast) + channel") }
            await HostOptions.printEvents(of: host)
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
    static let configuration = CommandConfiguration(
        abstract: "Publish on a channel: one message, or with --rate a live stream of stamped messages.",
        discussion: "Without --multicast every subscriber gets the message through the host (routecode 3). With it the message goes on the channel's multicast stream (routecode 2): once on the IP group, relayed where the group does not reach.")

    @Option(name: .long, help: "The channel.")
    var channel: UInt16

    @Argument(help: "The message (not needed with --rate).")
    var text: String?

    @Flag(name: .long, help: "Use the channel's multicast stream (routecode 2).")
    var multicast = false

    @Option(name: .long, help: "Send a live stream at this many kbit/s of payload instead of one message.")
    var rate: Int?

    @Option(name: .long, help: "Payload bytes per stream message (each starts with its send time and number).")
    var size = 1000

    @Option(name: .long, help: "Seconds the stream lasts (a publisher that cannot keep the rate stops then).")
    var seconds = 10.0

    @Option(name: .long, help: "Send exactly this many stream messages at the rate, however long it takes (instead of --seconds).")
    var messages: Int?

    @OptionGroup var net: NetNodeOptions
    @OptionGroup var node: NodeOptions

    func run() async throws {
        try await XT.run {
            if let rate {
                try Checked.integer(rate, "--rate", in: 1...100_000_000)
                try Checked.integer(size, "--size", in: StampedPayload.headerLength...16 << 20)
                _ = try Checked.seconds(seconds, "--seconds", in: 0...31_536_000)
                if let messages { try Checked.integer(messages, "--messages", in: 0...1_000_000_000) }
            }
            let member = try await net.start(node: node)
            if let rate {
                let sent = try await stream(member, kilobits: rate)
                print("sent \(sent) messages on channel \(channel) (\(multicast ? "multicast" : "channel"))")
            } else {
                guard let text else { throw CLIError("give the message, or --rate for a stream") }
                if multicast {
                    try await member.multicast(Array(text.utf8), channel: channel)
                } else {
                    try await member.publish(Array(text.utf8), channel: channel)
                }
                print("published on channel \(channel)")
            }
            await member.stop()
        }
    }

    /// Paced messages, each stamped with its send time and number; returns how many went.
    private func stream(_ member: NetNode, kilobits: Int) async throws -> Int {
        let interval = Double(size * 8) / Double(kilobits * 1000)
        let total = messages ?? Int(min(seconds / interval, 1e9))
        let start = ContinuousClock.now
        let end = start + .nanoseconds(Int64(seconds * 1e9))
        for index in 0..<total {
            // A publisher that cannot keep the rate stops at the time limit: it reports what it sent.
            if messages == nil, ContinuousClock.now >= end { return index }
            let due = start + .nanoseconds(Int64(Double(index) * interval * 1e9))
            if due > ContinuousClock.now { try await Task.sleep(until: due, clock: .continuous) }
            let payload = StampedPayload.make(sequence: UInt64(index), size: size)
            if multicast {
                try await member.multicast(payload, channel: channel)
            } else {
                try await member.publish(payload, channel: channel)
            }
        }
        return total
    }
}

/// Stream payloads for measuring delivery: the wall-clock send time (ns), the message number,
/// then filler. Wall clock, so namespaces on one machine agree.
enum StampedPayload {
    static let headerLength = 16

    static func wallClock() -> UInt64 {
        var spec = timespec()
        clock_gettime(CLOCK_REALTIME, &spec)
        return UInt64(spec.tv_sec) * 1_000_000_000 + UInt64(spec.tv_nsec)
    }

    static func make(sequence: UInt64, size: Int) -> [UInt8] {
        var payload = [UInt8](repeating: 0x5A, count: size)
        withUnsafeBytes(of: wallClock().bigEndian) { payload.replaceSubrange(0..<8, with: $0) }
        withUnsafeBytes(of: sequence.bigEndian) { payload.replaceSubrange(8..<16, with: $0) }
        return payload
    }

    /// (sent at, number), or nil if the payload is not stamped.
    static func read(_ payload: [UInt8]) -> (sent: UInt64, sequence: UInt64)? {
        guard payload.count >= headerLength else { return nil }
        let sent = payload[0..<8].reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
        let sequence = payload[8..<16].reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
        return (sent, sequence)
    }
}

struct Sub: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Subscribe to channels and print what arrives (and messages sent to this node).")

    @Option(name: .long, help: "A channel to subscribe to (repeatable).")
    var channel: [UInt16] = []

    @Option(name: .long, help: "Exit after this many messages (per node).")
    var count: Int?

    @Option(name: .long, help: "Exit after this many seconds.")
    var seconds: Double?

    @Flag(name: .long, help: "Print no messages; at exit print one JSON report: messages, duplicates, delivery latency of stamped stream messages (`xt pub --rate`), multicast counters.")
    var report = false

    @Option(name: .long, help: "Run this many nodes in this process (named NAME-1, NAME-2, … with consecutive ids), for fan-out tests.")
    var nodes = 1

    @OptionGroup var net: NetNodeOptions
    @OptionGroup var node: NodeOptions

    func run() async throws {
        try await XT.run {
            try Checked.integer(nodes, "--nodes", in: 1...10_000)
            let stopAfter = try seconds.map { try Checked.seconds($0, "--seconds") }
            if let count { try Checked.integer(count, "--count", in: 0...Int.max) }
            var members: [NetNode] = []
            for index in 0..<nodes {
                var options = net
                if nodes > 1 {
                    let base = try net.configuration()
                    options.name = "\(base.name)-\(index + 1)"
                    guard let local = UInt16(exactly: Int(base.id.local) + index) else {
                        throw CLIError("--nodes \(nodes) from id \(base.id.area).\(base.id.local) runs past \(base.id.area).65535: start lower or run fewer")
                    }
                    options.id = "\(base.id.area).\(local)"
                }
                members.append(try await options.start(node: node))
            }
            for member in members {
                for channel in channel { await member.subscribe(channel) }
            }
            print("subscribed to \(channel.map(String.init).joined(separator: ", "))\(nodes > 1 ? " with \(nodes) nodes" : "")")
            // Each node's messages end at --count, or when the timer stops the nodes.
            let everyone = members
            var timer: Task<Void, any Error>?
            if let stopAfter {
                timer = Task {
                    try await Task.sleep(for: stopAfter)
                    for member in everyone { await member.stop() }
                }
            }
            let tally = await withTaskGroup(of: SubscriberTally.self) { group in
                for member in members {
                    group.addTask { await receive(member) }
                }
                var total = SubscriberTally()
                for await tally in group { total.merge(tally) }
                return total
            }
            timer?.cancel()
            var stats = MulticastReceiverStats()
            for member in members {
                for channelStats in await member.multicastStats.values { stats.add(channelStats) }
                await member.stop()
            }
            if report { print(tally.json(multicast: stats)) }
        }
    }

    private func receive(_ member: NetNode) async -> SubscriberTally {
        var tally = SubscriberTally()
        for await envelope in member.messages {
            tally.take(envelope)
            if !report {
                print(envelope.line)
            }
            if let count, tally.messages >= count { break }
        }
        return tally
    }
}

/// What subscribers received, for `xt sub --report`.
struct SubscriberTally: Sendable {
    var messages = 0
    var perNode: [Int] = []
    /// Stamped messages seen twice by one node.
    var duplicates = 0
    var latencies: [Double] = []
    /// Wall-clock nanoseconds of the first and last message taken.
    var first: UInt64 = .max
    var last: UInt64 = 0
    private var seen: Set<UInt64> = []

    mutating func take(_ envelope: NetEnvelope) {
        messages += 1
        let now = StampedPayload.wallClock()
        first = min(first, now)
        last = max(last, now)
        guard let stamp = StampedPayload.read(envelope.payload) else { return }
        if !seen.insert(stamp.sequence).inserted { duplicates += 1 }
        // Any publisher's bytes: the difference is taken in floating point, which cannot trap.
        latencies.append((Double(now) - Double(stamp.sent)) / 1e6)
    }

    mutating func merge(_ other: SubscriberTally) {
        messages += other.messages
        perNode.append(other.messages)
        duplicates += other.duplicates
        latencies += other.latencies
        first = min(first, other.first)
        last = max(last, other.last)
    }

    func json(multicast: MulticastReceiverStats) -> String {
        let sorted = latencies.sorted()
        func percentile(_ p: Double) -> Double { sorted.isEmpty ? 0 : sorted[min(sorted.count - 1, Int(Double(sorted.count) * p))] }
        let object: [String: Any] = [
            "messages": messages, "per_node": perNode.sorted(), "duplicates": duplicates,
            "first_to_last_s": last > first ? Double(last - first) / 1e9 : 0,
            "latency_ms": ["p50": percentile(0.5), "p99": percentile(0.99), "max": sorted.last ?? 0],
            "multicast": ["via_group": multicast.viaGroup, "via_relay": multicast.viaRelay, "duplicates": multicast.duplicates,
                          "nacked": multicast.nackedDatagrams, "nacks": multicast.nacks, "repaired": multicast.repaired,
                          "lost": multicast.lostDatagrams, "delivered": multicast.delivered, "rejected": multicast.rejected],
        ]
        let data = try! JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])
        return String(decoding: data, as: UTF8.self)
    }
}

extension MulticastReceiverStats {
    mutating func add(_ other: MulticastReceiverStats) {
        viaGroup += other.viaGroup
        viaRelay += other.viaRelay
        duplicates += other.duplicates
        nackedDatagrams += other.nackedDatagrams
        nacks += other.nacks
        repaired += other.repaired
        lostDatagrams += other.lostDatagrams
        delivered += other.delivered
        rejected += other.rejected
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
                print(envelope.line)
            }
        }
    }
}

extension NetEnvelope {
    /// How `xt sub` and `xt node` print a message: "[channel 30] from 1.1: text".
    var line: String {
        let kind = switch route.routeCode {
        case .channel: "channel \(route.channel)"
        case .multicast: "multicast \(route.channel)"
        default: "direct"
        }
        return "[\(kind)] from \(route.from): \(String(decoding: payload, as: UTF8.self))"
    }
}
