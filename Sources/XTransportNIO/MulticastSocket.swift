// A UDP socket for IP multicast: the sending side puts each datagram on a group once, out of
// one chosen interface; the receiving side binds the group port (shared with other receivers
// on the same machine) and joins groups on the interface that reaches the sender, so joins
// never leak onto other networks. Datagrams come out of `datagrams` in arrival order.
public import NIOCore
public import NIOPosix
import Synchronization
public import XTransport
#if canImport(Glibc)
import Glibc
#endif

/// A multicast sender or receiver socket.
public final class MulticastSocket: Sendable {
    private let channel: any Channel
    /// The interface address (IPv4, host byte order) joins and sends use; 0 lets the routing table pick.
    public let interface: UInt32
    /// The port the socket is bound to.
    public let port: UInt16
    /// Datagrams received, in order. Up to 4096 wait for the reader; more are dropped (counted).
    public let datagrams: AsyncStream<[UInt8]>
    private let counters: Counters

    private init(channel: any Channel, interface: UInt32, port: UInt16, datagrams: AsyncStream<[UInt8]>,
                 counters: Counters) {
        self.channel = channel
        self.interface = interface
        self.port = port
        self.datagrams = datagrams
        self.counters = counters
    }

    /// Sends that failed (no route to the group, a full socket buffer), and received datagrams
    /// dropped because the reader was behind.
    public var sendFailures: Int { counters.withLock { $0.sendFailures } }
    public var dropped: Int { counters.withLock { $0.dropped } }

    /// Opens a multicast socket.
    /// - Parameters:
    ///   - port: the group port to receive on, or 0 for a sending socket.
    ///   - interface: IPv4 address of the interface to send from and join on (host byte
    ///     order); 0 lets the routing table pick.
    ///   - ttl: hops the datagrams may cross (1: this LAN only).
    /// - Throws: ``TransportError`` (`io`) if the socket cannot be opened or set up.
    public static func open(port: UInt16 = 0, interface: UInt32 = 0, ttl: UInt8 = 1,
                            group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton) async throws(TransportError) -> MulticastSocket {
        let (stream, continuation) = AsyncStream<[UInt8]>.makeStream(bufferingPolicy: .bufferingOldest(4096))
        let counters = Counters()
        let bootstrap = DatagramBootstrap(group: group)
            .channelOption(.socketOption(.so_reuseaddr), value: 1)
            .channelOption(.socketOption(.so_rcvbuf), value: 4 << 20)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(Reader(continuation: continuation, counters: counters))
                }
            }
        let channel: any Channel
        do {
            channel = try await bootstrap.bind(host: "0.0.0.0", port: Int(port)).get()
        } catch {
            throw TransportError(.io, "cannot open the multicast socket on port \(port): \(error) (is another program using it?)")
        }
        do {
            guard let options = channel as? any SocketOptionProvider else { throw TransportError(.io, "no socket options") }
            try await options.setIPMulticastTTL(ttl).get()
            try await options.setIPMulticastLoop(1).get()
            if interface != 0 { try await options.setIPMulticastIF(in_addr(s_addr: interface.bigEndian)).get() }
            // Only the groups this socket joined, not every group joined on the machine.
            try await options.unsafeSetSocketOption(level: .ip, name: NIOBSDSocket.Option(rawValue: 49 /* IP_MULTICAST_ALL */),
                                                    value: CInt(0)).get()
        } catch {
            try? await channel.close()
            throw TransportError(.io, "cannot set up multicast on the socket: \(error)")
        }
        channel.closeFuture.whenComplete { _ in continuation.finish() }
        let bound = UInt16(channel.localAddress?.port ?? Int(port))
        return MulticastSocket(channel: channel, interface: interface, port: bound, datagrams: stream, counters: counters)
    }

    /// Joins `group` (its host part) on this socket's interface.
    /// - Throws: ``TransportError`` (`io`) if the kernel refuses, e.g. no multicast route.
    public func join(_ group: NetworkAddress) async throws(TransportError) {
        try await membership(.ip_add_membership, group, "join")
    }

    /// Leaves `group`.
    public func leave(_ group: NetworkAddress) async throws(TransportError) {
        try await membership(.ip_drop_membership, group, "leave")
    }

    private func membership(_ option: NIOBSDSocket.Option, _ group: NetworkAddress, _ verb: String) async throws(TransportError) {
        guard case .v4(let address) = group.host else {
            throw TransportError(.invalidConfiguration, "multicast group \(group) is not IPv4: use an address in 239.0.0.0/8")
        }
        let request = ip_mreq(imr_multiaddr: in_addr(s_addr: address.bigEndian), imr_interface: in_addr(s_addr: interface.bigEndian))
        do {
            guard let options = channel as? any SocketOptionProvider else { throw TransportError(.io, "no socket options") }
            try await options.unsafeSetSocketOption(level: .ip, name: option, value: request).get()
        } catch {
            throw TransportError(.io, "cannot \(verb) multicast group \(group): \(error)")
        }
    }

    /// Sends one datagram to `destination` (a group, or one receiver). Failures are counted,
    /// not thrown: multicast is best effort and receivers ask for what they miss.
    public func send(_ datagram: [UInt8], to destination: NetworkAddress) {
        let buffer = channel.allocator.buffer(bytes: datagram)
        let counters = counters
        channel.writeAndFlush(AddressedEnvelope(remoteAddress: destination.socketAddress, data: buffer)).whenFailure { _ in
            counters.withLock { $0.sendFailures += 1 }
        }
    }

    public func close() async {
        try? await channel.close()
    }

    final class Counters: Sendable {
        private let state = Mutex((sendFailures: 0, dropped: 0))
        func withLock<R>(_ body: (inout sending (sendFailures: Int, dropped: Int)) -> sending R) -> sending R { state.withLock(body) }
    }

    private final class Reader: ChannelInboundHandler, Sendable {
        typealias InboundIn = AddressedEnvelope<ByteBuffer>
        let continuation: AsyncStream<[UInt8]>.Continuation
        let counters: Counters

        init(continuation: AsyncStream<[UInt8]>.Continuation, counters: Counters) {
            self.continuation = continuation
            self.counters = counters
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            let envelope = Self.unwrapInboundIn(data)
            if case .dropped = continuation.yield(Array(envelope.data.readableBytesView)) {
                counters.withLock { $0.dropped += 1 }
            }
        }

        func errorCaught(context: ChannelHandlerContext, error: any Error) {
            // ICMP errors for earlier sends surface here; the socket stays usable.
        }
    }
}

extension NetworkAddress {
    /// The local IPv4 address (host byte order) the routing table uses to reach `self`, found
    /// by connecting a UDP socket (nothing is sent); nil if there is no route.
    public var localIPv4Route: UInt32? {
        guard case .v4(let address) = host else { return nil }
        let fd = socket(AF_INET, Int32(SOCK_DGRAM.rawValue), 0)
        guard fd >= 0 else { return nil }
        defer { Glibc.close(fd) }
        var remote = sockaddr_in()
        remote.sin_family = sa_family_t(AF_INET)
        remote.sin_port = max(port, 9).bigEndian
        remote.sin_addr.s_addr = address.bigEndian
        let connected = withUnsafePointer(to: &remote) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard connected == 0 else { return nil }
        var local = sockaddr_in()
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let named = withUnsafeMutablePointer(to: &local) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        guard named == 0 else { return nil }
        return UInt32(bigEndian: local.sin_addr.s_addr)
    }
}
