// One established, encrypted session with one peer: the sans-IO state machine. It takes
// decrypted-to-be datagrams, application writes and the time; it yields datagrams to send,
// events for the application and its next deadline. The `Endpoint` owns many of these and
// routes by connection id. Sending lives in Session+Send.swift, timers in Session+Timers.swift.

import struct Foundation.Data

/// Why a session ended.
public enum CloseReason: Sendable, Hashable, CustomStringConvertible {
    /// The reason of a ``peerReset(_:)`` from a stateless reset: the peer has no such session
    /// (it restarted). Nothing was refused; connecting again is the answer.
    public static let peerLostSession = "the peer lost this session (it restarted): connect again"

    /// We closed it and the peer acknowledged (or the close timed out).
    case local
    /// The peer closed it gracefully.
    case peerClosed
    /// The peer aborted it.
    case peerReset(String)
    /// We aborted it.
    case aborted(String)
    /// The peer was silent past the dead-peer timeout.
    case timedOut
    /// The peer broke the protocol.
    case protocolViolation(String)

    public var description: String {
        switch self {
        case .local: "closed"
        case .peerClosed: "closed by peer"
        case .peerReset(let reason): "reset by peer: \(reason)"
        case .aborted(let reason): "aborted: \(reason)"
        case .timedOut: "peer timed out"
        case .protocolViolation(let reason): "protocol violation: \(reason)"
        }
    }
}

/// What a session reports to the application.
public enum SessionEvent: Sendable {
    /// A whole message on a messages or live channel.
    case message(Message)
    /// In-order bytes on a stream channel.
    case streamData(channel: UInt16, bytes: [UInt8])
    /// An unreliable datagram.
    case datagram(Message)
    /// The sender skipped `count` live messages starting at `firstSequence` (deadline passed).
    case gap(channel: UInt16, firstSequence: UInt64, count: UInt64)
    /// The send buffer has room again after a write was refused.
    case writable
    /// The peer now talks from a new, validated address.
    case pathChanged(NetworkAddress)
    /// The session is over.
    case closed(CloseReason)
}

/// Result of an application write.
public enum WriteOutcome: Sendable, Equatable {
    case accepted
    /// The send buffer is full: wait for ``SessionEvent/writable`` and write again.
    case bufferFull
}

final class Session {
    enum State: Equatable {
        case established
        /// Close requested: sending what is buffered, then CLOSE.
        case finishing
        /// CLOSE sent; waiting for its acknowledgement.
        case closing(deadline: Timestamp)
        /// The peer closed; we linger to acknowledge its retransmissions.
        case draining(deadline: Timestamp)
        case closed
    }

    let localIndex: UInt32
    let remoteIndex: UInt32
    let peerKey: PublicKey
    let peerHello: [UInt8]
    let isInitiator: Bool
    let configuration: SessionConfiguration
    private(set) var peerAddress: NetworkAddress
    var state = State.established
    var closeReason: CloseReason?

    var protection: PacketProtection
    var nextPacketNumber: UInt64 = 0
    var sent = SentPacketQueue()
    var ackTracker: AckTracker
    var rtt: RTTEstimator
    var congestion: any CongestionController
    var pacer: Pacer
    var mtu: PathMTUProber

    var sendChannels: [UInt16: SendChannel] = [:]
    /// Send channels ordered by priority, for the scheduler.
    var sendOrder: [UInt16] = []
    var receiveChannels: [UInt16: ReceiveChannel] = [:]
    var datagrams = RingBuffer<(channel: UInt16, priority: ChannelPriority, route: RoutingHeader, bytes: [UInt8])>()
    let peerInitialWindow: UInt64

    /// Channels whose credit must be (re)sent, in order of need (an array: deterministic order).
    var pendingWindowUpdates: [UInt16] = []
    var pingPending = false
    var closeFramePending = false
    var closeFrameSent = false
    var resetPending: (code: UInt64, reason: String)?
    var pendingPathResponses: [(address: NetworkAddress, value: UInt64)] = []
    var candidatePath: (address: NetworkAddress, challenge: UInt64, attempts: Int, nextSend: Timestamp)?
    var largestReceivedPacketNumber: UInt64?

    // Loss-recovery timers and counters.
    var lossTime: Timestamp?
    var probeTimeoutCount = 0
    var probesToSend = 0
    var lastReceiveTime: Timestamp
    /// The peer's stateless-reset token for its connection id (from the handshake).
    var peerResetToken: [UInt8] = []
    /// When the peer last acknowledged something new.
    var lastAcknowledgmentTime: Timestamp
    var lastElicitingSendTime: Timestamp
    var lastKeyUpdate: Timestamp
    var pacingWakeup: Timestamp?
    var firstPacketOfKeyPhase: UInt64 = 0
    var serveCounter: UInt64 = 0

    // Delivery-rate sampling (BBR's bookkeeping).
    var delivered: UInt64 = 0
    var lostBytesTotal: UInt64 = 0
    var deliveredTime: Timestamp
    var firstSentTime: Timestamp
    var appLimitedUntil: UInt64 = 0

    // Backpressure.
    var bufferedBytes = 0
    var writerWaiting = false

    var stats = SessionStats()
    var events: [SessionEvent] = []
    /// Stream channels holding bytes not yet turned into events (see ``flushStreams()``).
    private var channelsWithPendingStream: [UInt16] = []
    var hasPendingStreams: Bool { !channelsWithPendingStream.isEmpty }
    /// Scratch space for receive-channel output, reused across packets.
    var receiveOutput: [ReceiveOutput] = []
    var random: any RandomNumberGenerator

    init(localIndex: UInt32, remoteIndex: UInt32, peerKey: PublicKey, peerAddress: NetworkAddress,
         peerHello: [UInt8], peerInitialWindow: UInt64, isInitiator: Bool, cipher: PacketCipher,
         sendSecret: [UInt8], receiveSecret: [UInt8], configuration: SessionConfiguration,
         random: any RandomNumberGenerator, now: Timestamp) {
        self.localIndex = localIndex
        self.remoteIndex = remoteIndex
        self.peerKey = peerKey
        self.peerAddress = peerAddress
        self.peerHello = peerHello
        self.peerInitialWindow = peerInitialWindow
        self.isInitiator = isInitiator
        self.configuration = configuration
        self.random = random
        protection = PacketProtection(cipher: cipher, sendSecret: sendSecret, receiveSecret: receiveSecret)
        ackTracker = AckTracker(ackFrequency: configuration.ackFrequency, maximumAckDelay: configuration.maximumAckDelay.nanoseconds)
        rtt = RTTEstimator(initial: configuration.initialRTT.nanoseconds)
        congestion = configuration.congestionControl.make(maximumDatagramSize: configuration.minimumDatagramSize,
                                                           initialRTT: configuration.initialRTT.nanoseconds)
        pacer = Pacer(packetBurst: configuration.packetBurst, netLatency: configuration.netLatency.nanoseconds,
                      maximumDatagramSize: configuration.minimumDatagramSize, now: now)
        mtu = PathMTUProber(minimum: configuration.minimumDatagramSize, maximum: configuration.maximumDatagramSize,
                            enabled: configuration.pathMTUProbing)
        lastReceiveTime = now
        lastAcknowledgmentTime = now
        lastElicitingSendTime = now
        lastKeyUpdate = now
        deliveredTime = now
        firstSentTime = now
        mtu.start(now: now)
        // The initiator confirms the handshake at once so the responder may send.
        if isInitiator { pingPending = true }
    }

    var isClosed: Bool { state == .closed }

    // MARK: - Application side

    /// Sets a channel's mode, priority and deadline. The mode is fixed once data is written.
    func configureChannel(_ id: UInt16, _ configuration: ChannelConfiguration) throws(TransportError) {
        if let existing = sendChannels[id] {
            guard existing.configuration.mode == configuration.mode || existing.messagesWritten == 0 else {
                throw TransportError(.channelModeMismatch, "channel \(id) already carries \(existing.configuration.mode) data; use another channel for \(configuration.mode)")
            }
            existing.configuration = configuration
        } else {
            sendChannels[id] = SendChannel(id: id, configuration: configuration, peerLimit: peerInitialWindow)
        }
        sendOrder = sendChannels.values.sorted { ($0.configuration.priority, $0.id) < ($1.configuration.priority, $1.id) }.map(\.id)
    }

    func channelConfiguration(_ id: UInt16) -> ChannelConfiguration? { sendChannels[id]?.configuration }

    /// The largest unreliable datagram payload that always fits a packet.
    var maximumDatagramPayload: Int {
        configuration.minimumDatagramSize - PacketHeader.dataHeaderSize - PacketHeader.tagSize
            - FrameSizes.datagramHeader(channel: UInt16.max, length: configuration.minimumDatagramSize) - 8
    }

    /// Queues application data on a channel (configured as `.messages` if never configured).
    func write(_ bytes: [UInt8], channel: UInt16, route: RoutingHeader, now: Timestamp) throws(TransportError) -> WriteOutcome {
        guard state == .established else { throw .sessionClosed() }
        if sendChannels[channel] == nil { try configureChannel(channel, .messages) }
        let configuration = sendChannels[channel]!.configuration
        switch configuration.mode {
        case .unreliable:
            guard bytes.count <= maximumDatagramPayload else { throw .messageTooLarge(bytes.count, limit: maximumDatagramPayload) }
            if datagrams.count >= self.configuration.datagramQueueLimit {
                datagrams.popFirst()
                stats.datagramsDropped += 1
            }
            var stamped = route
            stamped.channel = channel
            datagrams.append((channel, configuration.priority, stamped, bytes))
            return .accepted
        case .stream:
            guard !bytes.isEmpty else { return .accepted }
            guard admit(bytes.count) else { return .bufferFull }
            sendChannels[channel]!.write(bytes, now: now)
            bufferedBytes += bytes.count
        case .messages, .live:
            guard bytes.count <= self.configuration.maximumMessageSize else {
                throw .messageTooLarge(bytes.count, limit: self.configuration.maximumMessageSize)
            }
            let framed = ReceiveChannel.frameMessage(bytes, route: route)
            // Live messages always get in: they leave the buffer by their deadline at the latest,
            // and a bulk backlog must not hold live media back.
            guard configuration.mode == .live || admit(framed.count) else { return .bufferFull }
            sendChannels[channel]!.write(framed, now: now)
            bufferedBytes += framed.count
        }
        return .accepted
    }

    private func admit(_ count: Int) -> Bool {
        // An empty buffer takes any single write, so one large message cannot block forever.
        if bufferedBytes == 0 || bufferedBytes + count <= configuration.sendBufferLimit { return true }
        writerWaiting = true
        return false
    }

    /// Stops (or resumes) delivering a channel's data; while paused no credit is granted.
    func setPaused(_ paused: Bool, channel: UInt16) {
        guard let receiver = receiveChannels[channel], receiver.paused != paused else { return }
        receiver.paused = paused
        if !paused { drainReceiveChannel(channel) }
    }

    /// Graceful close: finish sending what is buffered, then CLOSE.
    func close(now: Timestamp) {
        guard state == .established else { return }
        state = .finishing
        checkFinished(now: now)
    }

    /// Abort at once, telling the peer with RESET.
    func abort(reason: String, now: Timestamp) {
        guard state != .closed else { return }
        resetPending = (1, reason)
        closeReason = .aborted(reason)
    }

    func checkFinished(now: Timestamp) {
        guard state == .finishing else { return }
        let drained = bufferedBytes == 0 && sendChannels.values.allSatisfy { $0.pendingSkips.isEmpty && $0.repeatSkips.isEmpty } && datagrams.isEmpty
        if drained {
            closeFramePending = true
            state = .closing(deadline: now.adding(configuration.closeTimeout))
        }
    }

    /// Turns the stream bytes gathered since the last call into events.
    func flushStreams() {
        for channel in channelsWithPendingStream {
            guard let receiver = receiveChannels[channel], receiver.hasPendingStream else { continue }
            let bytes = receiver.takePendingStream()
            stats.payloadBytesDelivered += UInt64(bytes.count)
            events.append(.streamData(channel: channel, bytes: bytes))
        }
        channelsWithPendingStream.removeAll(keepingCapacity: true)
    }

    func finish(_ reason: CloseReason) {
        guard state != .closed else { return }
        flushStreams()  // what was delivered comes before the close
        state = .closed
        closeReason = reason
        events.append(.closed(reason))
    }

    // MARK: - Receiving

    /// Handles an authenticated-to-be data packet for this session. `scratch` (at least the
    /// datagram's size) receives the plaintext; frames are read from it in place.
    /// - Returns: false if it was dropped (authentication, replay); counted in stats.
    @discardableResult
    func receive(_ datagram: UnsafeRawBufferPointer, header: PacketHeader, from address: NetworkAddress, now: Timestamp,
                 scratch: UnsafeMutableRawBufferPointer) -> Bool {
        guard state != .closed else { return false }
        let payloadLength: Int
        do {
            payloadLength = try protection.open(datagram, header: header, into: scratch)
        } catch {
            switch error {
            case .authentication: stats.packetsRejectedAuthentication += 1
            case .replayed: stats.packetsRejectedReplay += 1
            case .tooOld: stats.packetsRejectedTooOld += 1
            }
            return false
        }
        stats.peerKeyUpdates = protection.peerKeyUpdates
        stats.packetsReceived += 1
        stats.bytesReceived += UInt64(datagram.count)
        lastReceiveTime = now

        var ackEliciting = false
        do throws(TransportError) {
            // Frames are read in place from the decrypted buffer (no copy).
            var decoder = FrameDecoder(UnsafeRawBufferPointer(rebasing: scratch[0..<payloadLength]))
            while true {
                let frame: FrameView?
                do { frame = try decoder.next() } catch { throw .protocolViolation("malformed frame: \(error)") }
                guard let frame else { break }
                if try handle(frame, from: address, now: now) { ackEliciting = true }
            }
        } catch {
            abort(reason: error.reason, now: now)
            finish(.protocolViolation(error.reason))
            return true
        }
        ackTracker.onPacketReceived(header.packetNumber, ackEliciting: ackEliciting, now: now)

        // A newer packet from a new address: the peer moved (NAT rebinding, new network).
        if address != peerAddress, header.packetNumber >= (largestReceivedPacketNumber ?? 0) {
            if candidatePath?.address != address {
                candidatePath = (address, random.next(), 0, now)
            }
        }
        if header.packetNumber >= (largestReceivedPacketNumber ?? 0) { largestReceivedPacketNumber = header.packetNumber }
        if case .draining = state { ackTracker.makeImmediate() }
        return true
    }

    /// Handles one frame. Returns whether it was ack-eliciting.
    private func handle(_ frame: FrameView, from address: NetworkAddress, now: Timestamp) throws(TransportError) -> Bool {
        switch frame {
        case .padding:
            return false
        case .ping:
            return true
        case .ack(let ack):
            onAck(ack, now: now)
            return false
        case .stream(let mode, let channel, let offset, let data, let whole):
            guard case .established = state else { return true }
            let receiver = try receiveChannel(channel, mode: mode)
            receiveOutput.removeAll(keepingCapacity: true)
            let duplicate = try receiver.receive(offset: offset, data: data, whole: whole, maximumMessageSize: configuration.maximumMessageSize,
                                                 output: &receiveOutput)
            stats.payloadBytesDuplicate += UInt64(duplicate)
            emitReceiveOutput(channel)
            return true
        case .skip(let channel, let start, let end, let first, let count):
            try receiveSkip(channel: channel, skip: SkipRange(start: start, end: end, firstSequence: first, messageCount: count))
            return true
        case .datagram(let channel, let route, let data):
            guard case .established = state else { return true }
            stats.payloadBytesDelivered += UInt64(data.count)
            events.append(.datagram(Message(channel: channel, route: route, sequence: 0, payload: [UInt8](data))))
            return true
        case .window(let channel, let maximumOffset):
            if let sender = sendChannels[channel], maximumOffset > sender.peerLimit {
                sender.peerLimit = maximumOffset
            }
            return true
        case .close:
            if case .closing = state {
                finish(.local)
            } else if state == .established || state == .finishing {
                state = .draining(deadline: now.adding(nanoseconds: 3 * rtt.probeTimeout(maximumAckDelay: configuration.maximumAckDelay.nanoseconds)))
                closeReason = .peerClosed
                flushStreams()
                events.append(.closed(.peerClosed))
            }
            return true
        case .reset(_, let reason):
            finish(.peerReset(String(decoding: reason, as: UTF8.self)))
            return false
        case .pathChallenge(let value):
            pendingPathResponses.append((address, value))
            return true
        case .pathResponse(let value):
            if let candidate = candidatePath, candidate.challenge == value {
                peerAddress = candidate.address
                candidatePath = nil
                events.append(.pathChanged(peerAddress))
            }
            return true
        }
    }

    private func receiveChannel(_ id: UInt16, mode: DeliveryMode) throws(TransportError) -> ReceiveChannel {
        if let existing = receiveChannels[id] {
            guard existing.mode == mode else { throw .protocolViolation("channel \(id) changed mode from \(existing.mode) to \(mode)") }
            return existing
        }
        guard receiveChannels.count < configuration.maximumChannels else {
            throw .protocolViolation("more than \(configuration.maximumChannels) channels")
        }
        let created = ReceiveChannel(id: id, mode: mode, windowSize: UInt64(configuration.channelWindow))
        receiveChannels[id] = created
        return created
    }

    func receiveSkip(channel: UInt16, skip: SkipRange) throws(TransportError) {
        guard case .established = state else { return }
        let receiver = try receiveChannel(channel, mode: .live)
        receiveOutput.removeAll(keepingCapacity: true)
        try receiver.receiveSkip(skip, maximumMessageSize: configuration.maximumMessageSize, output: &receiveOutput)
        emitReceiveOutput(channel)
    }

    private func drainReceiveChannel(_ channel: UInt16) {
        guard let receiver = receiveChannels[channel] else { return }
        receiveOutput.removeAll(keepingCapacity: true)
        do {
            try receiver.drain(maximumMessageSize: configuration.maximumMessageSize, output: &receiveOutput)
        } catch {
            resetPending = (2, error.reason)
            finish(.protocolViolation(error.reason))
        }
        emitReceiveOutput(channel)
    }

    private func emitReceiveOutput(_ channel: UInt16) {
        for output in receiveOutput {
            switch output {
            case .message(let message):
                stats.payloadBytesDelivered += UInt64(message.payload.count)
                events.append(.message(message))
            case .bytes(let bytes):
                stats.payloadBytesDelivered += UInt64(bytes.count)
                events.append(.streamData(channel: channel, bytes: bytes))
            case .gap(let first, let count):
                stats.liveMessagesMissed += count
                events.append(.gap(channel: channel, firstSequence: first, count: count))
            }
        }
        if let receiver = receiveChannels[channel], receiver.hasPendingStream, !channelsWithPendingStream.contains(channel) {
            channelsWithPendingStream.append(channel)
        }
        if receiveChannels[channel]?.windowUpdate() != nil, !pendingWindowUpdates.contains(channel) {
            pendingWindowUpdates.append(channel)
        }
    }

    // MARK: - Acknowledgements and loss

    func onAck(_ ack: AckFrame, now: Timestamp) {
        var ackedBytes = 0
        var largestNewlyAcked: SentPacket?
        // The peer's delay is any varint: clamped before it is scaled, so no value overflows.
        let ackDelay = min(Int64(min(ack.delayMicroseconds, 1 << 40)) * Nanos.microsecond, configuration.maximumAckDelay.nanoseconds)
        sent.acknowledge(ack) { packet in
            if largestNewlyAcked == nil { largestNewlyAcked = packet }
            if packet.ackEliciting && packet.state != .lost && !packet.isMTUProbe { ackedBytes += packet.size }
            if packet.isMTUProbe && packet.state != .lost {
                mtu.onProbeAcknowledged(size: packet.size, now: now)
                congestion.onMaximumDatagramSizeChanged(mtu.current)
            }
            if let largestInFrame = packet.largestAckedInFrame { ackTracker.onAckAcknowledged(largest: largestInFrame) }
            packet.frames.forEach { onFrameAcknowledged($0, now: now) }
            if packet.ackEliciting {
                delivered += UInt64(packet.size)
                deliveredTime = now
                firstSentTime = packet.timeSent
            }
        }
        guard let largest = largestNewlyAcked else { return }
        if largest.packetNumber == ack.largest, largest.ackEliciting {
            rtt.update(sample: now.nanoseconds(since: largest.timeSent), ackDelay: ackDelay)
        }
        probeTimeoutCount = 0
        lastAcknowledgmentTime = now
        if appLimitedUntil > 0 && delivered > appLimitedUntil { appLimitedUntil = 0 }
        if ackedBytes > 0 {
            stats.payloadBytesAcknowledged += UInt64(ackedBytes)
            let interval = max(deliveredTime.nanoseconds(since: largest.deliveredTime), largest.timeSent.nanoseconds(since: largest.firstSentTime))
            let seconds = Double(interval) / 1e9
            let rate = interval > 0 ? Double(delivered - largest.delivered) / seconds : 0
            let lostDuring = lostBytesTotal >= largest.lostBefore ? lostBytesTotal - largest.lostBefore : 0
            let accepted = interval > 0 ? Double(delivered - largest.delivered + lostDuring) / seconds : 0
            congestion.onAck(AckSample(ackedBytes: ackedBytes, rttSample: largest.packetNumber == ack.largest ? rtt.latest : nil,
                                       minimumRTT: rtt.minimum, smoothedRTT: rtt.smoothed, deliveryRate: rate, acceptedRate: accepted,
                                       appLimited: largest.appLimited, bytesInFlight: sent.bytesInFlight, now: now))
        }
        detectLosses(now: now)
        for id in sendOrder { sendChannels[id]?.retireAcknowledgedLiveMessages() }
        releaseBuffer(now: now)
    }

    private func onFrameAcknowledged(_ frame: RetransmittableFrame, now: Timestamp) {
        switch frame {
        case .stream(let channel, let offset, let length):
            sendChannels[channel]?.acknowledge(offset..<offset + UInt64(length))
        case .close:
            if case .closing = state { finish(.local) }
        case .skip(let channel, let range):
            sendChannels[channel]?.confirmSkip(range.start..<range.end)
        case .window, .pathChallenge:
            break
        }
    }

    func detectLosses(now: Timestamp) {
        var lostBytes = 0
        var largestLostSentTime = Timestamp.zero
        let quantum = rtt.minimum == .max ? 0 : rtt.minimum / 4
        lossTime = sent.detectLosses(now: now, lossDelay: rtt.lossDelay, reorderQuantum: quantum, smoothedRTT: rtt.smoothed) { packet in
            onLost(packet, now: now)
            if packet.ackEliciting && !packet.isMTUProbe {
                lostBytes += packet.size
                largestLostSentTime = max(largestLostSentTime, packet.timeSent)
            }
        }
        if lostBytes > 0 {
            congestion.onLoss(lostBytes: lostBytes, largestLostSentTime: largestLostSentTime, bytesInFlight: sent.bytesInFlight, now: now)
        }
    }

    func onLost(_ packet: SentPacket, now: Timestamp) {
        if packet.isMTUProbe {
            mtu.onProbeLost(size: packet.size, now: now)
            return
        }
        if packet.ackEliciting {
            stats.packetsLost += 1
            lostBytesTotal += UInt64(packet.size)
        }
        packet.frames.forEach { frame in
            switch frame {
            case .stream(let channel, let offset, let length):
                sendChannels[channel]?.markLost(offset..<offset + UInt64(length))
            case .skip(let channel, let range):
                sendChannels[channel]?.pendingSkips.append(range)
            case .window(let channel):
                if !pendingWindowUpdates.contains(channel) { pendingWindowUpdates.append(channel) }
            case .close:
                if case .closing = state { closeFramePending = true }
            case .pathChallenge:
                break
            }
        }
    }

    /// Frees send-buffer accounting and wakes a waiting writer.
    func releaseBuffer(now: Timestamp) {
        var total = 0
        for channel in sendChannels.values { total += channel.unacknowledgedBytes }
        bufferedBytes = total
        if writerWaiting && bufferedBytes <= configuration.sendBufferLimit / 2 {
            writerWaiting = false
            events.append(.writable)
        }
        checkFinished(now: now)
    }

    // MARK: - Stats

    func snapshot() -> SessionStats {
        var snapshot = stats
        snapshot.smoothedRTT = .nanoseconds(rtt.smoothed)
        snapshot.minimumRTT = .nanoseconds(rtt.minimum == .max ? 0 : rtt.minimum)
        snapshot.latestRTT = .nanoseconds(rtt.latest)
        snapshot.congestionWindow = congestion.congestionWindow
        snapshot.spuriousLosses = UInt64(sent.spuriousLosses)
        snapshot.reorderWindowQuarters = sent.reorderingSeen ? sent.reorderMultiplier : 0
        snapshot.pacingRate = pacingRate
        snapshot.rateEstimate = congestion.rateEstimate
            ?? Double(congestion.congestionWindow) / (Double(max(rtt.smoothed, Nanos.millisecond)) / 1e9)
        snapshot.bytesInFlight = sent.bytesInFlight
        snapshot.sendBufferBytes = bufferedBytes
        snapshot.packetCipher = protection.cipher.description
        snapshot.congestionControl = congestion.name
        snapshot.congestionState = congestion.state
        snapshot.datagramSize = mtu.current
        snapshot.keyUpdates = stats.keyUpdates
        return snapshot
    }

    var pacingRate: Double {
        congestion.pacingRate ?? Double(congestion.congestionWindow) / (Double(max(rtt.smoothed, Nanos.millisecond)) / 1e9)
    }
}

