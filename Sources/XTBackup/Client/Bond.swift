// The bond: N connections to each Pi over each of M local addresses (Multiplexity: one transfer
// over many sockets and networks). It keeps them open: every half second it re-reads the
// machine's addresses, binds a socket on any new one, and redials what is missing, so a network
// that comes up mid-run carries data within a couple of seconds (xTransporter's always-on
// reconnect).
public import Logging
import Synchronization
public import XTransport
import XTransportNIO

/// How the bond is built.
public struct BondSettings: Sendable {
    /// Connections per link (one local address to one Pi address).
    public var connectionsPerLink = 4
    /// Local interfaces or addresses to send from; empty lets the system choose (one socket).
    public var via: [LocalSource] = []
    /// Congestion control for the bond's sessions: LEDBAT by default, so live camera traffic on
    /// the same links keeps its latency (uTP, BEP 29).
    public var congestionControl: CongestionControlAlgorithm = .ledbat
    /// How often missing connections are redialled and addresses re-read.
    public var redial: Duration = .milliseconds(500)
    /// How long one dial waits for the Pi's answer.
    public var handshakeTimeout: Duration = .seconds(2)
    /// Silence after which a connection is declared dead (its chunks were handed back long before).
    public var deadPeerTimeout: Duration = .seconds(4)

    public init() {}
}

/// Keeps the connections of a backup or restore open.
public final class Bond: Sendable {
    public let targets: [BackupTarget]
    public let settings: BondSettings
    private let identity: NodeIdentity
    private let logger: Logger
    private let state = Mutex(State())
    /// Every connection as it opens.
    public let opened: AsyncStream<BackupConnection>
    private let openedContinuation: AsyncStream<BackupConnection>.Continuation

    struct Pair: Hashable {
        var local: String
        var target: String
        var remote: NetworkAddress
    }

    struct State {
        var endpoints: [String: TransportEndpoint] = [:]
        var connections: [Pair: [BackupConnection]] = [:]
        var dialling: Set<Pair> = []
        var failures: [String: String] = [:]
        var stopped = false
        var task: Task<Void, Never>?
    }

    public init(identity: NodeIdentity, targets: [BackupTarget], settings: BondSettings, logger: Logger = Logger(label: "xt.backup")) {
        self.identity = identity
        self.targets = targets
        self.settings = settings
        self.logger = logger
        (opened, openedContinuation) = AsyncStream.makeStream()
    }

    /// Starts keeping connections open.
    public func start() {
        let task = Task { [self] in
            while !Task.isCancelled && !state.withLock({ $0.stopped }) {
                await maintain()
                try? await Task.sleep(for: settings.redial)
            }
        }
        state.withLock { $0.task = task }
    }

    /// Closes every connection and socket.
    public func stop() async {
        let (task, endpoints, connections) = state.withLock { state in
            state.stopped = true
            return (state.task, Array(state.endpoints.values), state.connections.values.flatMap { $0 })
        }
        task?.cancel()
        openedContinuation.finish()
        // What the caller waited for has been answered by now; anything still out is a copy
        // that landed elsewhere first (the endgame's), and a graceful close would send it to the
        // end first: 2 MiB on a 50 Mbit/s link is a third of a second for nothing. Those end at
        // once (the Pi drops the part it has, as after a cut link).
        await withDiscardingTaskGroup { group in
            for connection in connections {
                if connection.isBusy { connection.abort() } else { group.addTask { await connection.close() } }
            }
        }
        for endpoint in endpoints { await endpoint.close() }
    }

    /// Connections open now.
    public var connections: [BackupConnection] {
        state.withLock { $0.connections.values.flatMap { $0 }.filter { !$0.isClosed } }
    }

    /// Why the Pis that have no connection could not be reached, by name.
    public var failures: [String: String] { state.withLock { $0.failures } }

    /// Waits until every target has a connection, or `timeout` passes.
    /// - Returns: the names of targets still without one.
    public func waitForTargets(timeout: Duration) async -> Set<String> {
        let deadline = ContinuousClock.now + timeout
        while true {
            let missing = Set(targets.map(\.name)).subtracting(connections.map(\.target))
            if missing.isEmpty || ContinuousClock.now >= deadline { return missing }
            try? await Task.sleep(for: .milliseconds(5))
        }
    }

    private func endpointConfiguration() -> EndpointConfiguration {
        var session = SessionConfiguration()
        session.congestionControl = settings.congestionControl
        session.handshakeTimeout = settings.handshakeTimeout
        session.deadPeerTimeout = settings.deadPeerTimeout
        session.keepaliveInterval = .milliseconds(500)
        // Nobody connects to a backup client: it admits no key.
        return EndpointConfiguration(identity: identity, admission: .authorized(AuthorizedKeys()), session: session)
    }

    /// One round: addresses re-read, sockets bound or closed, connections redialled.
    func maintain() async {
        let locals: [String]
        if settings.via.isEmpty {
            locals = ["0.0.0.0"]
        } else {
            let current = LocalAddress.current()
            locals = Array(Set(settings.via.flatMap { $0.resolve(in: current) }.map(\.text))).sorted()
        }
        let subnets = LocalAddress.current()
        // Sockets on addresses that went away are closed; their sessions end with them.
        let gone = state.withLock { state -> [TransportEndpoint] in
            let stale = state.endpoints.filter { !locals.contains($0.key) }
            for key in stale.keys {
                state.endpoints[key] = nil
                for pair in state.connections.keys where pair.local == key {
                    for connection in state.connections[pair] ?? [] { connection.abort() }
                    state.connections[pair] = nil
                }
            }
            return Array(stale.values)
        }
        for endpoint in gone { await endpoint.close() }
        for local in locals where state.withLock({ $0.endpoints[local] == nil }) {
            do {
                let endpoint = try await TransportEndpoint.bind(host: local, port: 0, configuration: endpointConfiguration())
                state.withLock { $0.endpoints[local] = endpoint }
            } catch {
                logger.debug("backup: cannot bind \(local): \(error)")
            }
        }
        for local in locals {
            guard let endpoint = state.withLock({ $0.endpoints[local] }) else { continue }
            let localAddress = subnets.first { $0.text == local }
            for target in targets {
                let onLink = localAddress.map { address in target.addresses.filter { address.sameSubnet($0) } } ?? []
                for remote in onLink.isEmpty ? target.addresses : onLink {
                    let pair = Pair(local: local, target: target.name, remote: remote)
                    let missing = state.withLock { state -> Int in
                        state.connections[pair] = (state.connections[pair] ?? []).filter { !$0.isClosed }
                        guard !state.dialling.contains(pair) else { return 0 }
                        let count = settings.connectionsPerLink - (state.connections[pair]?.count ?? 0)
                        if count > 0 { state.dialling.insert(pair) }
                        return count
                    }
                    guard missing > 0 else { continue }
                    Task { await dial(pair, count: missing, endpoint: endpoint, target: target) }
                }
            }
        }
    }

    private func dial(_ pair: Pair, count: Int, endpoint: TransportEndpoint, target: BackupTarget) async {
        defer { _ = state.withLock { $0.dialling.remove(pair) } }
        await withDiscardingTaskGroup { group in
            for _ in 0..<count {
                group.addTask { [self] in
                    do {
                        let connection = try await BackupConnection.open(endpoint: endpoint, to: pair.remote, key: target.key, target: target.name)
                        let kept = state.withLock { state -> Bool in
                            guard !state.stopped, state.endpoints[pair.local] === endpoint else { return false }
                            state.connections[pair, default: []].append(connection)
                            state.failures[target.name] = nil
                            return true
                        }
                        if kept { openedContinuation.yield(connection) } else { connection.abort() }
                    } catch {
                        state.withLock { $0.failures[target.name] = "\(error)" }
                    }
                }
            }
        }
    }
}
