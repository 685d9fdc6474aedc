// Drives a sans-IO `Endpoint` from one SwiftNIO datagram channel. Everything here runs on
// the channel's event loop: received datagrams go straight into the core (no task hop), and
// after each batch the driver drains the core's transmit queue (batched with GSO where the
// kernel supports it), dispatches events to sessions, and re-arms one timer.
import Logging
import NIOCore
import XTransport
#if canImport(Glibc)
import Glibc
#endif

/// The loop-confined state behind a ``TransportEndpoint``.
final class EndpointDriver {
    let endpoint: Endpoint
    /// The socket now: replaced by ``channelClosed(_:)`` when SwiftNIO closes it after a send error.
    private(set) var channel: any Channel
    let eventLoop: any EventLoop
    /// Binds a new socket on the same address and port, with this driver's handler in it.
    var rebind: (() -> EventLoopFuture<any Channel>)?
    /// Set by ``shutdown()``: the socket's closing is ours, not a failure to recover from.
    private var closing = false
    /// Sockets reopened after SwiftNIO closed one (a send error it does not tolerate).
    private(set) var reopened = 0
    /// Datagrams not sent because the destination has no route from here (checked with a
    /// connected probe socket; rechecked every second).
    private(set) var droppedUnroutable: UInt64 = 0
    private var routes: [NetworkAddress: (routable: Bool, checked: Timestamp)] = [:]
    let logger: Logger
    private let origin: NIODeadline
    private let useGSO: Bool
    private let datagramCapacity: Int
    private var timer: Scheduled<Void>?
    private var timerDeadline: Timestamp?
    private var addressCache: [NetworkAddress: SocketAddress] = [:]
    private var outbound: ByteBuffer
    private var readyBatches: [Batch] = []

    /// Per-session application state.
    final class SessionState {
        let session: TransportSession
        let inbound: AsyncThrowingStream<Inbound, any Error>.Continuation
        var waitingWriters: [(bytes: [UInt8], channel: UInt16, route: RoutingHeader, continuation: CheckedContinuation<Void, any Error>)] = []
        var closeWaiters: [CheckedContinuation<Void, Never>] = []
        var bufferedInboundBytes = 0
        var paused = false
        var channelsSeen: Set<UInt16> = []

        init(session: TransportSession, inbound: AsyncThrowingStream<Inbound, any Error>.Continuation) {
            self.session = session
            self.inbound = inbound
        }
    }

    var sessions: [SessionID: SessionState] = [:]
    var pendingConnects: [SessionID: CheckedContinuation<TransportSession, any Error>] = [:]
    /// Keys refused at the handshake (not authorized), most recent 256.
    var refusedHandshakes: [PublicKey: RefusedHandshake] = [:]
    var incoming: AsyncStream<TransportSession>.Continuation
    weak var owner: TransportEndpoint?
    let inboundHighWater: Int
    let inboundLowWater: Int

    init(endpoint: Endpoint, channel: any Channel, origin: NIODeadline, logger: Logger,
         incoming: AsyncStream<TransportSession>.Continuation, inboundHighWater: Int) {
        self.endpoint = endpoint
        self.channel = channel
        self.eventLoop = channel.eventLoop
        self.origin = origin
        self.logger = logger
        self.incoming = incoming
        self.inboundHighWater = inboundHighWater
        self.inboundLowWater = inboundHighWater / 4
        self.useGSO = System.supportsUDPSegmentationOffload
        self.datagramCapacity = endpoint.configuration.session.maximumDatagramSize
        self.outbound = channel.allocator.buffer(capacity: max(datagramCapacity * 16, 256 * 1024))
    }

    var now: Timestamp {
        Timestamp(nanoseconds: UInt64(max(0, (NIODeadline.now() - origin).nanoseconds)))
    }

    // MARK: - Input

    /// Hands one received envelope (one datagram, or several coalesced by GRO) to the core.
    /// - Returns: how many datagrams it held.
    @discardableResult
    func received(_ envelope: AddressedEnvelope<ByteBuffer>, now: Timestamp) -> Int {
        guard let address = NetworkAddress(envelope.remoteAddress) else { return 0 }
        let data = envelope.data
        if let segmentSize = envelope.metadata?.segmentSize, segmentSize > 0, data.readableBytes > segmentSize {
            // GRO coalesced several datagrams of `segmentSize` (the last may be shorter).
            return data.withUnsafeReadableBytes { raw in
                var start = 0
                var count = 0
                while start < raw.count {
                    let end = min(start + segmentSize, raw.count)
                    endpoint.handle(datagram: UnsafeRawBufferPointer(rebasing: raw[start..<end]), from: address, now: now)
                    start = end
                    count += 1
                }
                return count
            }
        }
        data.withUnsafeReadableBytes { endpoint.handle(datagram: $0, from: address, now: now) }
        return 1
    }

    /// In the middle of a long read batch: send what is due (ACKs above all), so the peer's
    /// ACK clock does not stall for the whole batch.
    func flushDuringRead() {
        flushTransmits(now: now)
    }

    /// After input, a timer or an application call: send, dispatch, re-arm.
    func service() {
        let now = self.now
        flushTransmits(now: now)
        dispatchEvents()
        // Events may have produced writes (for example a waiting writer resumed).
        flushTransmits(now: now)
        armTimer()
    }

    func timerFired() {
        timer = nil
        timerDeadline = nil
        endpoint.handleTimeout(now: now)
        service()
    }

    // MARK: - Output

    private func socketAddress(_ address: NetworkAddress) -> SocketAddress {
        if let cached = addressCache[address] { return cached }
        if addressCache.count > 4096 { addressCache.removeAll() }
        let resolved = address.socketAddress
        addressCache[address] = resolved
        return resolved
    }

    /// Whether the kernel has a route to `address` from this socket's address. SwiftNIO closes a
    /// datagram socket on any send error but EMSGSIZE and EHOSTUNREACH, so one datagram to a
    /// network with no route (ENETUNREACH: a peer's address on a LAN this node is not on, a link
    /// that went down) took every session of the socket with it. A connected UDP probe socket
    /// asks the routing table without sending anything; the answer is kept for a second when
    /// negative, and until the socket has to be reopened when positive.
    private func isRoutable(_ address: NetworkAddress, now: Timestamp) -> Bool {
        if let known = routes[address], known.routable || now.nanoseconds(since: known.checked) < 1_000_000_000 {
            return known.routable
        }
        if routes.count > 4096 { routes.removeAll() }
        let routable = Self.probeRoute(to: socketAddress(address), from: channel.localAddress)
        if !routable, routes[address]?.routable != false {
            logger.notice("no route to a peer's address: datagrams to it are dropped until there is one", metadata: ["address": "\(address)"])
        }
        routes[address] = (routable, now)
        return routable
    }

    /// Connects a throwaway UDP socket (bound to `local`'s address) to `destination`: the
    /// kernel's route lookup, with no datagram sent.
    static func probeRoute(to destination: SocketAddress, from local: SocketAddress?) -> Bool {
        // An IPv4 socket cannot send to an IPv6 address at all (EAFNOSUPPORT).
        if local?.protocol == .inet, destination.protocol == .inet6 { return false }
        let family: Int32 = destination.protocol == .inet6 ? AF_INET6 : AF_INET
        let fd = socket(family, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { return true }  // cannot tell: let the send decide
        defer { Glibc.close(fd) }
        if var bindTo = local, bindTo.protocol == destination.protocol, bindTo.ipAddress.map({ $0 != "0.0.0.0" && $0 != "::" }) ?? false {
            bindTo = (try? SocketAddress(ipAddress: bindTo.ipAddress!, port: 0)) ?? bindTo
            let bound = bindTo.withSockAddr { pointer, size in Glibc.bind(fd, pointer, socklen_t(size)) }
            if bound != 0 { return errno != EADDRNOTAVAIL }  // the local address is gone
        }
        let connected = destination.withSockAddr { pointer, size in Glibc.connect(fd, pointer, socklen_t(size)) }
        if connected == 0 { return true }
        switch errno {
        case ENETUNREACH, EHOSTUNREACH, EADDRNOTAVAIL, EAFNOSUPPORT, EINVAL: return false
        default: return true
        }
    }

    /// SwiftNIO closed the socket (a send error it does not tolerate): bind a new one on the
    /// same address and port, so the sessions, which live in the core, carry on. Routes are
    /// checked afresh.
    func channelClosed(_ closed: any Channel) {
        guard !closing, closed === channel, let rebind else { return }
        reopened += 1
        routes.removeAll()
        logger.warning("the UDP socket was closed after a send error; reopening it on the same port", metadata: ["local": "\(closed.localAddress.map { "\($0)" } ?? "?")"])
        func attempt(_ delay: TimeAmount) {
            eventLoop.assumeIsolated().scheduleTask(in: delay) { [self] in
                guard !closing else { return }
                rebind().assumeIsolated().whenComplete { [self] result in
                    switch result {
                    case .success(let channel):
                        if closing {
                            channel.close(promise: nil)
                            return
                        }
                        self.channel = channel
                        service()
                    case .failure(let error):
                        logger.warning("cannot reopen the UDP socket; trying again", metadata: ["error": "\(error)"])
                        attempt(.milliseconds(200))
                    }
                }
            }
        }
        attempt(.milliseconds(1))
    }

    /// A run of datagrams in `outbound` for one destination, sent as one (GSO) write.
    private struct Batch {
        var destination: NetworkAddress
        var segmentSize: Int
        var count: Int
        var start: Int
        var end: Int
    }

    /// Drains the core's transmit queue. Consecutive datagrams to one destination are
    /// coalesced into one GSO write (equal segments, the last may be shorter).
    ///
    /// Datagrams are sealed straight into one long-lived buffer. Its batches go to the channel
    /// and are flushed together when the buffer is full or the queue is empty; a flushed write
    /// releases its slices, so `clear()` reuses the same memory. (A write into the buffer while
    /// the channel still held slices of it would copy the whole buffer.)
    private func flushTransmits(now: Timestamp) {
        var open: Batch?
        outbound.clear()
        while channel.isWritable {
            if outbound.writableBytes < datagramCapacity {
                if let batch = open { readyBatches.append(batch); open = nil }
                writeReadyBatches()
                outbound.clear()
            }
            let writerStart = outbound.writerIndex
            var transmit: Transmit?
            outbound.writeWithUnsafeMutableBytes(minimumWritableBytes: datagramCapacity) { raw in
                transmit = endpoint.pollTransmit(now: now, into: raw)
                return transmit?.size ?? 0
            }
            guard let transmit else { break }
            if transmit.isMTUProbe {
                if let batch = open { readyBatches.append(batch); open = nil }
                readyBatches.append(Batch(destination: transmit.destination, segmentSize: transmit.size, count: 1,
                                          start: writerStart, end: outbound.writerIndex))
                continue
            }
            if var batch = open, useGSO, batch.destination == transmit.destination,
               transmit.size <= batch.segmentSize, batch.count < 64,
               batch.end - batch.start + transmit.size <= 65_000 {
                batch.count += 1
                batch.end = outbound.writerIndex
                if transmit.size < batch.segmentSize {
                    readyBatches.append(batch)  // a short segment ends a GSO batch
                    open = nil
                } else {
                    open = batch
                }
                continue
            }
            if let batch = open { readyBatches.append(batch) }
            open = Batch(destination: transmit.destination, segmentSize: transmit.size, count: 1,
                         start: writerStart, end: outbound.writerIndex)
        }
        if let batch = open { readyBatches.append(batch) }
        writeReadyBatches()
    }

    /// Writes every ready batch to the channel and flushes.
    private func writeReadyBatches() {
        guard !readyBatches.isEmpty else { return }
        let now = self.now
        for batch in readyBatches {
            guard isRoutable(batch.destination, now: now) else {
                droppedUnroutable += UInt64(batch.count)
                continue
            }
            guard let slice = outbound.getSlice(at: batch.start, length: batch.end - batch.start) else { continue }
            let metadata = batch.count > 1
                ? AddressedEnvelope<ByteBuffer>.Metadata(ecnState: .transportNotCapable, packetInfo: nil, segmentSize: batch.segmentSize)
                : nil
            channel.write(AddressedEnvelope(remoteAddress: socketAddress(batch.destination), data: slice, metadata: metadata), promise: nil)
        }
        readyBatches.removeAll(keepingCapacity: true)
        channel.flush()
    }

    private func armTimer() {
        guard let next = endpoint.nextTimeout() else { return }
        if let scheduled = timerDeadline, scheduled <= next { return }
        timer?.cancel()
        timerDeadline = next
        let deadline = origin + .nanoseconds(Int64(next.nanoseconds))
        timer = eventLoop.scheduleTask(deadline: deadline) { [self] in timerFired() }
    }

    // MARK: - Events

    private func dispatchEvents() {
        while let event = endpoint.pollEvent() {
            switch event {
            case .connected(let id, let peer, let hello):
                let state = makeSession(id, peer: peer, hello: hello)
                pendingConnects.removeValue(forKey: id)?.resume(returning: state.session)
            case .accepted(let id, let peer, let address, let hello):
                logger.info("accepted session", metadata: ["peer": "\(peer)", "address": "\(address)", "session": "\(id)"])
                let state = makeSession(id, peer: peer, hello: hello)
                incoming.yield(state.session)
            case .connectFailed(let id, let error):
                pendingConnects.removeValue(forKey: id)?.resume(throwing: error)
            case .refused(let peer, let address):
                // Said once per key; every attempt is counted for `xt status` and the web UI.
                if refusedHandshakes[peer] == nil {
                    logger.warning("refused a handshake from a key not in the authorized keys (add it there to let the node in)",
                                   metadata: ["peer": "\(peer)", "address": "\(address)"])
                }
                var refused = refusedHandshakes[peer] ?? RefusedHandshake(key: peer, address: address.description, attempts: 0, last: 0)
                refused.attempts += 1
                refused.address = address.description
                refused.last = Date.unixNanoseconds
                refusedHandshakes[peer] = refused
                if refusedHandshakes.count > 256, let oldest = refusedHandshakes.min(by: { $0.value.last < $1.value.last })?.key {
                    refusedHandshakes[oldest] = nil
                }
            case .session(let id, let sessionEvent):
                guard let state = sessions[id] else { continue }
                handle(sessionEvent, id: id, state: state)
            }
        }
    }

    private func makeSession(_ id: SessionID, peer: PublicKey, hello: [UInt8]) -> SessionState {
        let (stream, continuation) = AsyncThrowingStream<Inbound, any Error>.makeStream()
        let session = TransportSession(id: id, peerKey: peer, hello: hello, endpoint: owner!, stream: stream)
        let state = SessionState(session: session, inbound: continuation)
        sessions[id] = state
        return state
    }

    private func handle(_ event: SessionEvent, id: SessionID, state: SessionState) {
        switch event {
        case .message(let message):
            deliver(.message(message), bytes: message.payload.count, channel: message.channel, id: id, state: state)
        case .streamData(let channel, let bytes):
            // The core has already joined what one read pass delivered into one chunk.
            deliver(.bytes(channel: channel, bytes), bytes: bytes.count, channel: channel, id: id, state: state)
        case .datagram(let message):
            // Datagrams are never held back: if the application is behind, they are dropped.
            if state.bufferedInboundBytes < inboundHighWater {
                deliver(.datagram(message), bytes: message.payload.count, channel: message.channel, id: id, state: state)
            }
        case .gap(let channel, let first, let count):
            state.inbound.yield(.gap(channel: channel, firstSequence: first, count: count))
        case .writable:
            resumeWriters(id, state: state)
        case .pathChanged(let address):
            logger.info("peer moved", metadata: ["session": "\(id)", "address": "\(address)"])
        case .closed(let reason):
            sessions[id] = nil
            switch reason {
            case .local, .peerClosed:
                state.inbound.finish()
            default:
                state.inbound.finish(throwing: TransportError(.sessionClosed, "session \(id) ended: \(reason)"))
            }
            for writer in state.waitingWriters {
                writer.continuation.resume(throwing: TransportError(.sessionClosed, "session \(id) ended before the write was accepted: \(reason)"))
            }
            state.waitingWriters.removeAll()
            state.session.markClosed(reason)
            for waiter in state.closeWaiters { waiter.resume() }
            state.closeWaiters.removeAll()
        }
    }

    private func deliver(_ item: Inbound, bytes: Int, channel: UInt16, id: SessionID, state: SessionState) {
        state.bufferedInboundBytes += bytes
        state.channelsSeen.insert(channel)
        state.inbound.yield(item)
        if !state.paused && state.bufferedInboundBytes > inboundHighWater {
            state.paused = true
            state.session.setInboundPaused(true)
            for channel in state.channelsSeen { endpoint.setPaused(true, channel: channel, session: id, now: now) }
        }
    }

    /// The application consumed `bytes` of inbound data.
    func consumed(_ bytes: Int, id: SessionID) {
        guard let state = sessions[id] else { return }
        state.bufferedInboundBytes -= bytes
        if state.paused && state.bufferedInboundBytes <= inboundLowWater {
            state.paused = false
            state.session.setInboundPaused(false)
            for channel in state.channelsSeen { endpoint.setPaused(false, channel: channel, session: id, now: now) }
            service()
        }
    }

    // MARK: - Application calls (on the loop)

    func write(_ bytes: [UInt8], channel: UInt16, route: RoutingHeader, id: SessionID,
               continuation: CheckedContinuation<Void, any Error>) {
        guard let state = sessions[id] else {
            continuation.resume(throwing: TransportError.sessionClosed())
            return
        }
        if state.waitingWriters.contains(where: { $0.channel == channel }) {
            // Keep a channel's writes in order: queue behind its writers already waiting. Other
            // channels go on (a live write is never held up behind a bulk backlog).
            state.waitingWriters.append((bytes, channel, route, continuation))
            return
        }
        do {
            switch try endpoint.write(bytes, channel: channel, route: route, session: id, now: now) {
            case .accepted: continuation.resume()
            case .bufferFull: state.waitingWriters.append((bytes, channel, route, continuation))
            }
        } catch {
            continuation.resume(throwing: error)
        }
        service()
    }

    private func resumeWriters(_ id: SessionID, state: SessionState) {
        guard !state.waitingWriters.isEmpty else { return }
        // In order per channel: once one of a channel's writers does not fit, its later ones wait.
        var blocked: Set<UInt16> = []
        var still: [(bytes: [UInt8], channel: UInt16, route: RoutingHeader, continuation: CheckedContinuation<Void, any Error>)] = []
        for writer in state.waitingWriters {
            if blocked.contains(writer.channel) {
                still.append(writer)
                continue
            }
            do {
                switch try endpoint.write(writer.bytes, channel: writer.channel, route: writer.route, session: id, now: now) {
                case .accepted:
                    writer.continuation.resume()
                case .bufferFull:
                    blocked.insert(writer.channel)
                    still.append(writer)
                }
            } catch {
                writer.continuation.resume(throwing: error)
            }
        }
        state.waitingWriters = still
    }

    func close(_ id: SessionID, continuation: CheckedContinuation<Void, Never>) {
        guard let state = sessions[id] else {
            continuation.resume()
            return
        }
        state.closeWaiters.append(continuation)
        endpoint.close(id, now: now)
        service()
    }

    func shutdown() {
        closing = true
        timer?.cancel()
        for (id, state) in sessions {
            endpoint.abort(id, reason: "endpoint shut down", now: now)
            state.inbound.finish()
            for writer in state.waitingWriters { writer.continuation.resume(throwing: TransportError.sessionClosed()) }
            for waiter in state.closeWaiters { waiter.resume() }
            state.session.markClosed(.aborted("endpoint shut down"))
        }
        flushTransmits(now: now)
        sessions.removeAll()
        for (_, connect) in pendingConnects { connect.resume(throwing: TransportError.sessionClosed()) }
        pendingConnects.removeAll()
        incoming.finish()
    }
}

/// The channel handler: hands every datagram to the driver and services it per read batch.
final class DatagramHandler: ChannelInboundHandler {
    typealias InboundIn = AddressedEnvelope<ByteBuffer>
    let driver: EndpointDriver
    private var pendingService = false
    private var batchNow: Timestamp?
    private var datagramsSinceFlush = 0
    private var bytesSinceFlush = 0
    /// Within one read batch, ACKs go out at least this often (datagrams, bytes).
    static let flushEveryDatagrams = 16
    static let flushEveryBytes = 256 * 1024

    init(driver: EndpointDriver) { self.driver = driver }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let now = batchNow ?? driver.now
        batchNow = now
        let envelope = unwrapInboundIn(data)
        datagramsSinceFlush += driver.received(envelope, now: now)
        bytesSinceFlush += envelope.data.readableBytes
        pendingService = true
        if datagramsSinceFlush >= Self.flushEveryDatagrams || bytesSinceFlush >= Self.flushEveryBytes {
            datagramsSinceFlush = 0
            bytesSinceFlush = 0
            batchNow = nil  // a long batch: take a fresh time for what follows
            driver.flushDuringRead()
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        batchNow = nil
        datagramsSinceFlush = 0
        bytesSinceFlush = 0
        if pendingService {
            pendingService = false
            driver.service()
        }
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable { driver.service() }
    }

    func channelInactive(context: ChannelHandlerContext) {
        driver.channelClosed(context.channel)
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        // A datagram socket survives send errors (EMSGSIZE from an MTU probe, ICMP
        // unreachable): the core's loss recovery copes; log and carry on.
        driver.logger.debug("datagram socket error", metadata: ["error": "\(error)"])
    }
}
