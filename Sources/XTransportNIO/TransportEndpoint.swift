// The async API over one UDP socket: bind, connect, accept. Many sessions share the socket
// (told apart by connection id) and every endpoint both connects and accepts.
public import Logging
public import NIOCore
public import NIOPosix
public import XTransport
#if canImport(Glibc)
import Glibc
#endif

/// An xtransport endpoint on a UDP socket.
public final class TransportEndpoint: Sendable {
    let channel: any Channel
    let driver: NIOLoopBound<EndpointDriver>
    /// The local address the socket is bound to.
    public let localAddress: NetworkAddress
    /// This node's public key.
    public let publicKey: PublicKey
    /// Sessions peers open to us.
    public let incomingSessions: AsyncStream<TransportSession>

    var eventLoop: any EventLoop { channel.eventLoop }

    private init(channel: any Channel, driver: NIOLoopBound<EndpointDriver>, localAddress: NetworkAddress,
                 publicKey: PublicKey, incoming: AsyncStream<TransportSession>) {
        self.channel = channel
        self.driver = driver
        self.localAddress = localAddress
        self.publicKey = publicKey
        self.incomingSessions = incoming
    }

    /// Binds a UDP socket and starts an endpoint on it.
    /// - Parameters:
    ///   - host: local address to bind (`0.0.0.0`, `127.0.0.1`, `::`).
    ///   - port: local port; 0 picks a free one.
    ///   - configuration: identity, admission and session settings.
    ///   - inboundHighWater: bytes of received data buffered for the application before the
    ///     session stops granting the peer credit (backpressure).
    /// - Throws: ``TransportError`` with code `io` if the port is in use or cannot be bound.
    public static func bind(host: String = "0.0.0.0", port: Int, configuration: EndpointConfiguration,
                            group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
                            inboundHighWater: Int = 8 << 20,
                            logger: Logger = Logger(label: "xtransport")) async throws -> TransportEndpoint {
        let bootstrap = Self.bootstrap(group: group, configuration: configuration).channelOption(.autoRead, value: false)
        let channel: any Channel
        do {
            channel = try await bootstrap.bind(host: host, port: port).get()
        } catch let error as IOError where error.errnoCode == EADDRINUSE {
            throw TransportError(.io, "UDP port \(port) is already in use on \(host): stop the other program or choose another port")
        } catch {
            throw TransportError(.io, "cannot bind UDP \(host):\(port): \(error)")
        }
        _ = try? await channel.setOption(Self.dontFragment, value: Int(IP_PMTUDISC_PROBE)).get()
        guard let local = channel.localAddress.flatMap(NetworkAddress.init) else {
            throw TransportError(.io, "bound socket has no IP address")
        }
        let origin = NIODeadline.now()
        var configuration = configuration
        configuration.wallClockOrigin = UInt64(Date.unixNanoseconds)
        let (incoming, incomingContinuation) = AsyncStream<TransportSession>.makeStream()
        let endpoint = try Endpoint(configuration: configuration, now: .zero)
        let loopBound = try await channel.eventLoop.submit {
            let driver = EndpointDriver(endpoint: endpoint, channel: channel, origin: origin, logger: logger,
                                        incoming: incomingContinuation, inboundHighWater: inboundHighWater)
            try channel.pipeline.syncOperations.addHandler(DatagramHandler(driver: driver))
            let bound = NIOLoopBound(driver, eventLoop: channel.eventLoop)
            // SwiftNIO closes a datagram socket on a send error it does not tolerate: the driver
            // binds a new one on the same address and port, on the same loop.
            let loop = channel.eventLoop
            let boundHost = local.socketAddress.ipAddress ?? host
            let boundPort = Int(local.port)
            let settings = configuration
            driver.rebind = {
                Self.bootstrap(group: loop, configuration: settings)
                    .channelInitializer { channel in
                        channel.eventLoop.makeCompletedFuture {
                            try channel.pipeline.syncOperations.addHandler(DatagramHandler(driver: bound.value))
                        }
                    }
                    .bind(host: boundHost, port: boundPort)
                    .flatMap { channel in
                        channel.setOption(Self.dontFragment, value: Int(IP_PMTUDISC_PROBE)).map { channel }.recover { _ in channel }
                    }
            }
            return bound
        }.get()
        let transport = TransportEndpoint(channel: channel, driver: loopBound, localAddress: local,
                                          publicKey: configuration.identity.publicKey, incoming: incoming)
        try await channel.eventLoop.submit { loopBound.value.owner = transport }.get()
        try await channel.setOption(.autoRead, value: true).get()
        return transport
    }

    /// Opens a session to the peer holding `peerKey` at `address`.
    /// - Throws: ``TransportError`` `handshakeTimeout` if the peer does not answer (unreachable,
    ///   not listening, or our key is not authorized there).
    public func connect(to address: NetworkAddress, peerKey: PublicKey) async throws -> TransportSession {
        try await withCheckedThrowingContinuation { continuation in
            eventLoop.execute { [driver] in
                let driver = driver.value
                let id = driver.endpoint.connect(to: address, peerKey: peerKey, now: driver.now)
                driver.pendingConnects[id] = continuation
                driver.service()
            }
        }
    }

    /// Runs `body` on the event loop with the driver.
    func onLoop<R: Sendable>(_ body: @escaping @Sendable (EndpointDriver) throws -> R) async throws -> R {
        try await eventLoop.submit { [driver] in try body(driver.value) }.get()
    }

    func execute(_ body: @escaping @Sendable (EndpointDriver) -> Void) {
        eventLoop.execute { [driver] in body(driver.value) }
    }

    /// Counters for the whole endpoint.
    public func stats() async throws -> EndpointStats {
        try await onLoop { $0.endpoint.stats }
    }

    /// Keys that tried to connect and were refused (not in the authorized keys), newest first.
    public func refusedHandshakes() async -> [RefusedHandshake] {
        (try? await onLoop { $0.refusedHandshakes.values.sorted { $0.last > $1.last } }) ?? []
    }

    /// Ids of the open sessions.
    public func sessionIDs() async throws -> [SessionID] {
        try await onLoop { $0.endpoint.sessionIDs }
    }

    /// Replaces the admission list (after the authorized-keys file changed).
    public func updateAdmission(_ admission: Admission) async throws {
        try await onLoop { $0.endpoint.updateAdmission(admission) }
    }

    /// The addresses a peer may reach this endpoint at: each up interface's IPv4 address with
    /// the bound port (loopback last), or the bound address itself when it is specific.
    /// Candidates for a direct session (LRP2P), offered to the peer through the host.
    public func candidateAddresses() -> [NetworkAddress] {
        if case .v4(let host) = localAddress.host, host != 0 { return [localAddress] }
        let devices = (try? System.enumerateDevices()) ?? []
        var addresses: [NetworkAddress] = []
        for device in devices {
            guard let address = device.address.flatMap(NetworkAddress.init), case .v4 = address.host else { continue }
            let candidate = NetworkAddress(host: address.host, port: localAddress.port)
            if !addresses.contains(candidate) { addresses.append(candidate) }
        }
        let loopback = { (address: NetworkAddress) in if case .v4(let value) = address.host { value >> 24 == 127 } else { false } }
        return addresses.filter { !loopback($0) } + addresses.filter(loopback)
    }

    /// Aborts every session and closes the socket.
    public func close() async {
        let current = try? await onLoop { driver -> any Channel in
            driver.shutdown()
            return driver.channel
        }
        try? await (current ?? channel).close().get()
    }

    /// Sockets reopened after a send error closed one, and datagrams dropped for want of a route.
    public func socketRecoveries() async -> (reopened: Int, droppedUnroutable: UInt64) {
        (try? await onLoop { ($0.reopened, $0.droppedUnroutable) }) ?? (0, 0)
    }

    /// Don't fragment: path-MTU probes must be dropped, not split, when too large.
    static let dontFragment = ChannelOptions.Types.SocketOption(level: SocketOptionLevel(IPPROTO_IP), name: SocketOptionName(IP_MTU_DISCOVER))

    /// The socket's options: big buffers, vectored reads, GRO where the kernel has it.
    static func bootstrap(group: any EventLoopGroup, configuration: EndpointConfiguration) -> DatagramBootstrap {
        let vectorCount = 32
        let receiveOffload = System.supportsUDPReceiveOffload
        // With GRO one read may carry up to 64 KiB; otherwise one datagram of at most the MTU.
        let slot = receiveOffload ? 65_536 : max(configuration.session.maximumDatagramSize, 2048)
        var bootstrap = DatagramBootstrap(group: group)
            .channelOption(.socketOption(.so_rcvbuf), value: 8 << 20)
            .channelOption(.socketOption(.so_sndbuf), value: 8 << 20)
            .channelOption(.datagramVectorReadMessageCount, value: vectorCount)
            .channelOption(.recvAllocator, value: FixedSizeRecvByteBufferAllocator(capacity: slot * vectorCount))
            .channelOption(.writeBufferWaterMark, value: .init(low: 4 << 20, high: 16 << 20))
        if receiveOffload {
            bootstrap = bootstrap
                .channelOption(.datagramReceiveOffload, value: true)
                .channelOption(.datagramReceiveSegmentSize, value: true)
        }
        return bootstrap
    }
}

enum Date {
    static var unixNanoseconds: UInt64 {
        var spec = timespec()
        clock_gettime(CLOCK_REALTIME, &spec)
        return UInt64(spec.tv_sec) * 1_000_000_000 + UInt64(spec.tv_nsec)
    }
}

/// A key refused at the handshake: who, from where, how often, and when last.
public struct RefusedHandshake: Sendable, Hashable {
    /// The node's public key (base64): the line to add to the authorized keys starts with it.
    public var key: PublicKey
    public var address: String
    public var attempts: Int
    /// When it last tried, in nanoseconds since 1970.
    public var last: UInt64
}
