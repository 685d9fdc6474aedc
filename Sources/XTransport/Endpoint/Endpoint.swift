// The sans-IO endpoint: one UDP socket's worth of sessions. It runs the Noise IK handshake
// (with mac1, stateless cookies under load, and a replay guard on initiation timestamps),
// routes data packets to sessions by connection id, and gives the driver one queue of
// datagrams to send, one queue of events and one next deadline for all sessions.
import Crypto

/// Identifies a session within its endpoint (the local connection id).
public struct SessionID: Hashable, Sendable, CustomStringConvertible {
    public let rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }
    public var description: String { String(rawValue, radix: 16) }
}

/// What an endpoint reports to the application.
public enum EndpointEvent: Sendable {
    /// A session we initiated is up.
    case connected(SessionID, peer: PublicKey, hello: [UInt8])
    /// A peer opened a session to us.
    case accepted(SessionID, peer: PublicKey, address: NetworkAddress, hello: [UInt8])
    /// A session we initiated could not be set up.
    case connectFailed(SessionID, TransportError)
    /// A handshake from a key that is not authorized was refused.
    case refused(peer: PublicKey, address: NetworkAddress)
    /// Something happened on an established session.
    case session(SessionID, SessionEvent)
}

public final class Endpoint {
    public private(set) var configuration: EndpointConfiguration
    public private(set) var stats = EndpointStats()

    private struct PendingHandshake {
        var initiator: NoiseInitiator
        var peerKey: PublicKey
        var address: NetworkAddress
        var deadline: Timestamp
        var nextRetry: Timestamp
        var retryInterval: Int64
        var mac1: [UInt8]
        var cookie: (value: [UInt8], received: Timestamp)?
        /// Data packets that came for this session before the response that opens it (the path
        /// reordered them): handled once the response is (at most ``maximumEarlyDatagrams``).
        var early: [(bytes: [UInt8], address: NetworkAddress)] = []
    }

    /// Data packets held per handshake while its response is still on the way.
    static let maximumEarlyDatagrams = 8

    private var sessions: [UInt32: Session] = [:]
    private var pending: [UInt32: PendingHandshake] = [:]
    /// Responder sessions not yet confirmed by a data packet, by (peer key, initiator index),
    /// so a retried initiation replaces its predecessor instead of adding one.
    private var unconfirmed: [PublicKey: [UInt32: UInt32]] = [:]
    private var handshakeOutbox = RingBuffer<(address: NetworkAddress, bytes: [UInt8])>()
    private var events = RingBuffer<EndpointEvent>()
    /// Sessions holding stream bytes not yet turned into events.
    private var sessionsWithPendingStreams: [UInt32] = []
    private var ready = RingBuffer<UInt32>()
    private var readySet = Set<UInt32>()
    private var timers = TimerHeap()
    private var scheduled: [UInt32: Timestamp] = [:]
    private var cookies: CookieJar
    private var replayGuard = HandshakeReplayGuard()
    private var random: any RandomNumberGenerator
    private var lastTimestamp: UInt64 = 0
    private var loadWindowStart = Timestamp.zero
    private var initiationsInWindow = 0
    private let mac1Key: SymmetricKey
    private let reset: StatelessReset
    /// Our sessions by the peer's connection id (a stateless reset names that id).
    private var byRemoteIndex: [UInt32: [UInt32]] = [:]
    private var resetWindowStart = Timestamp.zero
    private var resetsInWindow = 0
    /// Most stateless resets sent per second (they answer unauthenticated packets).
    static let maximumResetsPerSecond = 100
    /// Where data packets are decrypted: one buffer for every session (the endpoint is
    /// confined to one thread), as large as any UDP datagram.
    private let plaintext = UnsafeMutableRawBufferPointer.allocate(byteCount: 65_536, alignment: 16)

    /// Creates an endpoint.
    /// - Throws: ``TransportError`` if the session configuration is invalid.
    public init(configuration: EndpointConfiguration, now: Timestamp) throws(TransportError) {
        try configuration.session.validate()
        self.configuration = configuration
        cookies = CookieJar(now: now)
        if let seed = configuration.seed {
            random = SplitMix64(seed: seed)
        } else {
            random = SystemRandomNumberGenerator()
        }
        mac1Key = HandshakeMAC.mac1Key(configuration.identity.publicKey)
        reset = StatelessReset(identity: configuration.identity)
    }

    deinit { plaintext.deallocate() }

    public var publicKey: PublicKey { configuration.identity.publicKey }

    /// The packet ciphers this endpoint offers or accepts, most preferred first.
    private var localCiphers: [PacketCipher] { configuration.session.packetCiphers ?? PacketCipher.preferred }
    public var sessionCount: Int { sessions.count }
    public var sessionIDs: [SessionID] { sessions.keys.sorted().map(SessionID.init(rawValue:)) }

    /// Replaces the list of admitted keys (for example after the file changed).
    public func updateAdmission(_ admission: Admission) { configuration.admission = admission }

    // MARK: - Connecting

    /// Starts a handshake with the peer holding `peerKey` at `address`.
    /// - Returns: the id the session will have; ``EndpointEvent/connected(_:peer:hello:)`` or
    ///   ``EndpointEvent/connectFailed(_:_:)`` follows.
    public func connect(to address: NetworkAddress, peerKey: PublicKey, now: Timestamp) -> SessionID {
        let index = newIndex()
        let handshake = PendingHandshake(
            initiator: NoiseInitiator(localStatic: configuration.identity.privateKey, remoteStatic: peerKey),
            peerKey: peerKey, address: address,
            deadline: now.adding(configuration.session.handshakeTimeout),
            nextRetry: now, retryInterval: Self.firstHandshakeRetry, mac1: [])
        pending[index] = handshake
        stats.handshakesInitiated += 1
        sendInitiation(index, now: now)
        return SessionID(rawValue: index)
    }

    /// A lost initiation is sent again after this, then after twice as long each time (at most
    /// 4 s): on a LAN one lost packet should cost a fraction of a second, not a whole one.
    static let firstHandshakeRetry: Int64 = 250 * Nanos.millisecond

    private func sendInitiation(_ index: UInt32, now: Timestamp) {
        guard var handshake = pending[index] else { return }
        // A fresh initiation every time: a repeated timestamp would be refused as a replay.
        handshake.initiator = NoiseInitiator(localStatic: configuration.identity.privateKey, remoteStatic: handshake.peerKey)
        var parameters = HandshakeParameters(timestamp: nextTimestamp(now: now),
                                             initialChannelWindow: UInt64(configuration.session.channelWindow),
                                             hello: configuration.hello, ciphers: localCiphers)
        parameters.resetToken = reset.token(for: index)
        guard let message = try? handshake.initiator.writeMessage1(payload: parameters.encoded()) else {
            pending[index] = nil
            events.append(.connectFailed(SessionID(rawValue: index), .invalidKey("peer key \(handshake.peerKey) is not a usable X25519 key")))
            return
        }
        var bytes = InitiationPacket(senderIndex: index, ephemeral: message.ephemeral,
                                     encryptedStatic: message.encryptedStatic,
                                     encryptedPayload: message.encryptedPayload).encoded()
        let cookie = handshake.cookie.flatMap { now.nanoseconds(since: $0.received) < CookieJar.rotation ? $0.value : nil }
        HandshakeMAC.stamp(&bytes, mac1Key: HandshakeMAC.mac1Key(handshake.peerKey), cookie: cookie)
        handshake.mac1 = Array(bytes[(bytes.count - 32)..<(bytes.count - 16)])
        handshake.nextRetry = now.adding(nanoseconds: handshake.retryInterval)
        handshake.retryInterval = min(handshake.retryInterval * 2, 4 * Nanos.second)
        pending[index] = handshake
        handshakeOutbox.append((handshake.address, bytes))
        schedule(index, at: min(handshake.nextRetry, handshake.deadline))
    }

    private func nextTimestamp(now: Timestamp) -> UInt64 {
        lastTimestamp = max(lastTimestamp + 1, configuration.wallClockOrigin &+ now.nanoseconds)
        return lastTimestamp
    }

    private func newIndex() -> UInt32 {
        while true {
            let candidate = UInt32(truncatingIfNeeded: random.next())
            if candidate != 0, sessions[candidate] == nil, pending[candidate] == nil { return candidate }
        }
    }

    // MARK: - Receiving

    /// Handles one received datagram.
    public func handle(datagram: UnsafeRawBufferPointer, from address: NetworkAddress, now: Timestamp) {
        stats.datagramsReceived += 1
        let type: PacketType
        do {
            type = try PacketHeader.peekType(datagram)
        } catch {
            stats.datagramsMalformed += 1
            return
        }
        switch type {
        case .dataPhase0, .dataPhase1:
            guard let header = try? PacketHeader.decodeData(datagram) else {
                stats.datagramsMalformed += 1
                return
            }
            guard let session = sessions[header.connectionID] else {
                if var handshake = pending[header.connectionID] {
                    // The responder's first data overtook its response (jitter reorders them):
                    // the session is on its way, not lost, so hold the packet rather than reset
                    // the session it belongs to.
                    stats.datagramsBeforeHandshake += 1
                    if handshake.early.count < Self.maximumEarlyDatagrams {
                        handshake.early.append((Array(datagram), address))
                        pending[header.connectionID] = handshake
                    }
                    return
                }
                stats.datagramsUnknownSession += 1
                sendReset(for: header.connectionID, to: address, answering: datagram.count, now: now)
                return
            }
            if session.receive(datagram, header: header, from: address, now: now, scratch: plaintext) {
                confirm(session)
            }
            afterActivity(session, now: now)
        case .initiation:
            handleInitiation(datagram, from: address, now: now)
        case .response:
            handleResponse(datagram, from: address, now: now)
        case .cookieReply:
            handleCookieReply(datagram, now: now)
        case .statelessReset:
            handleReset(datagram, from: address, now: now)
        }
    }

    /// Answers a data packet for a session this endpoint does not have (it restarted, or the
    /// session ended) with a stateless reset — never larger than what came in, and rate-limited,
    /// so it cannot amplify or be turned into a flood.
    private func sendReset(for index: UInt32, to address: NetworkAddress, answering size: Int, now: Timestamp) {
        guard size > StatelessReset.packetSize else { return }
        if now.nanoseconds(since: resetWindowStart) >= Nanos.second {
            resetWindowStart = now
            resetsInWindow = 0
        }
        guard resetsInWindow < Self.maximumResetsPerSecond else { return }
        resetsInWindow += 1
        stats.statelessResetsSent += 1
        handshakeOutbox.append((address, reset.packet(for: index)))
    }

    /// A peer says it no longer has the session we know by its connection id: if the token is
    /// the one it gave us, the session is over.
    private func handleReset(_ datagram: UnsafeRawBufferPointer, from address: NetworkAddress, now: Timestamp) {
        guard let (remote, token) = StatelessReset.parse(datagram) else {
            stats.datagramsMalformed += 1
            return
        }
        for index in byRemoteIndex[remote] ?? [] {
            guard let session = sessions[index], StatelessReset.matches(session.peerResetToken, token) else { continue }
            // A session already closing or draining ends on its own; its peer just got there first.
            guard session.state == .established || session.state == .finishing else { return }
            stats.statelessResetsReceived += 1
            session.finish(.peerReset(CloseReason.peerLostSession))
            afterActivity(session, now: now)
            return
        }
        stats.statelessResetsIgnored += 1
    }

    private func handleInitiation(_ datagram: UnsafeRawBufferPointer, from address: NetworkAddress, now: Timestamp) {
        guard let packet = try? InitiationPacket.decode(datagram) else {
            stats.datagramsMalformed += 1
            return
        }
        let bytes = [UInt8](datagram)
        guard HandshakeMAC.verifyMac1(bytes, key: mac1Key) else {
            stats.handshakeMACFailures += 1
            return
        }
        // Under load, or in open mode, only senders that proved their address get any work.
        if now.nanoseconds(since: loadWindowStart) >= Nanos.second {
            loadWindowStart = now
            initiationsInWindow = 0
        }
        initiationsInWindow += 1
        let demandCookie = configuration.admission == .open || initiationsInWindow > configuration.cookieThreshold
        if demandCookie && !cookies.verifyMac2(bytes, from: address, now: now) {
            let reply = cookies.reply(to: packet, from: address, sealedFor: publicKey, now: now)
            handshakeOutbox.append((address, reply.encoded()))
            stats.cookieRepliesSent += 1
            return
        }
        var responder = NoiseResponder(localStatic: configuration.identity.privateKey)
        let payload: [UInt8]
        do {
            payload = try responder.readMessage1(ephemeral: packet.ephemeral, encryptedStatic: packet.encryptedStatic,
                                                 encryptedPayload: packet.encryptedPayload)
        } catch {
            stats.handshakeDecryptFailures += 1
            return
        }
        guard let peerKey = try? PublicKey(bytes: responder.initiatorStatic),
              let parameters = try? HandshakeParameters.decode(payload)
        else {
            stats.handshakeDecryptFailures += 1
            return
        }
        guard replayGuard.accept(peerKey, timestamp: parameters.timestamp) else {
            stats.handshakesRefusedReplay += 1
            return
        }
        if case .authorized(let keys) = configuration.admission, !keys.contains(peerKey) {
            stats.handshakesRefusedUnauthorized += 1
            events.append(.refused(peer: peerKey, address: address))
            // An authenticated refusal (message 2 proves this end's key; no cipher chosen means
            // "refused"), so that a misconfigured node can say what is wrong. No state is kept;
            // the sender has already proved its address when cookies are due, and each
            // initiation (a fresh timestamp) is answered once.
            let refusal = HandshakeParameters(timestamp: 0, initialChannelWindow: 0, hello: Array("key not authorized".utf8), ciphers: [])
            if let message = try? responder.writeMessage2(payload: refusal.encoded()) {
                var response = ResponsePacket(senderIndex: 0, receiverIndex: packet.senderIndex, ephemeral: message.ephemeral,
                                              encryptedPayload: message.encryptedPayload).encoded()
                HandshakeMAC.stamp(&response, mac1Key: HandshakeMAC.mac1Key(peerKey), cookie: nil)
                handshakeOutbox.append((address, response))
            }
            return
        }
        guard let cipher = PacketCipher.choose(offered: parameters.ciphers, local: localCiphers) else {
            stats.handshakesRefusedCipher += 1
            return
        }
        guard sessions.count < configuration.maximumSessions else { return }
        // A retried initiation replaces the unconfirmed session it retries.
        if let previous = unconfirmed[peerKey]?[packet.senderIndex] {
            removeSession(previous)
        }
        let index = newIndex()
        let reply = HandshakeParameters(timestamp: 0, initialChannelWindow: UInt64(configuration.session.channelWindow),
                                        hello: configuration.hello, ciphers: [cipher], resetToken: reset.token(for: index))
        guard let message = try? responder.writeMessage2(payload: reply.encoded()) else {
            stats.handshakeDecryptFailures += 1
            return
        }
        let session = Session(localIndex: index, remoteIndex: packet.senderIndex, peerKey: peerKey, peerAddress: address,
                              peerHello: parameters.hello, peerInitialWindow: parameters.initialChannelWindow,
                              isInitiator: false, cipher: cipher, sendSecret: message.sendKey, receiveSecret: message.receiveKey,
                              configuration: configuration.session, random: SplitMix64(seed: random.next()), now: now)
        session.peerResetToken = parameters.resetToken
        sessions[index] = session
        byRemoteIndex[packet.senderIndex, default: []].append(index)
        unconfirmed[peerKey, default: [:]][packet.senderIndex] = index
        stats.handshakesAccepted += 1
        stats.sessionsOpen = sessions.count
        var response = ResponsePacket(senderIndex: index, receiverIndex: packet.senderIndex,
                                      ephemeral: message.ephemeral, encryptedPayload: message.encryptedPayload).encoded()
        HandshakeMAC.stamp(&response, mac1Key: HandshakeMAC.mac1Key(peerKey), cookie: nil)
        handshakeOutbox.append((address, response))
        events.append(.accepted(SessionID(rawValue: index), peer: peerKey, address: address, hello: parameters.hello))
        afterActivity(session, now: now)
    }

    private func confirm(_ session: Session) {
        guard !session.isInitiator, var byIndex = unconfirmed[session.peerKey] else { return }
        byIndex = byIndex.filter { $0.value != session.localIndex }
        unconfirmed[session.peerKey] = byIndex.isEmpty ? nil : byIndex
    }

    private func handleResponse(_ datagram: UnsafeRawBufferPointer, from address: NetworkAddress, now: Timestamp) {
        guard let packet = try? ResponsePacket.decode(datagram) else {
            stats.datagramsMalformed += 1
            return
        }
        guard var handshake = pending[packet.receiverIndex] else {
            stats.datagramsUnknownSession += 1
            return
        }
        guard HandshakeMAC.verifyMac1([UInt8](datagram), key: mac1Key) else {
            stats.handshakeMACFailures += 1
            return
        }
        let result: (payload: [UInt8], sendKey: [UInt8], receiveKey: [UInt8])
        do {
            result = try handshake.initiator.readMessage2(ephemeral: packet.ephemeral, encryptedPayload: packet.encryptedPayload)
        } catch {
            // Possibly the answer to an earlier attempt; the current one may still succeed.
            stats.handshakeDecryptFailures += 1
            return
        }
        guard let parameters = try? HandshakeParameters.decode(result.payload) else {
            stats.handshakeDecryptFailures += 1
            return
        }
        // No cipher chosen: the peer (authenticated by message 2) refused this node's key.
        if parameters.ciphers.isEmpty {
            pending[packet.receiverIndex] = nil
            stats.handshakesRefusedByPeer += 1
            events.append(.connectFailed(SessionID(rawValue: packet.receiverIndex),
                                         .refusedByPeer(address.description, key: configuration.identity.publicKey.description)))
            return
        }
        guard parameters.ciphers.count == 1, let cipher = parameters.ciphers.first, localCiphers.contains(cipher) else {
            stats.handshakesRefusedCipher += 1
            return
        }
        pending[packet.receiverIndex] = nil
        let session = Session(localIndex: packet.receiverIndex, remoteIndex: packet.senderIndex, peerKey: handshake.peerKey,
                              peerAddress: address, peerHello: parameters.hello,
                              peerInitialWindow: parameters.initialChannelWindow, isInitiator: true, cipher: cipher,
                              sendSecret: result.sendKey, receiveSecret: result.receiveKey,
                              configuration: configuration.session, random: SplitMix64(seed: random.next()), now: now)
        session.peerResetToken = parameters.resetToken
        sessions[packet.receiverIndex] = session
        byRemoteIndex[packet.senderIndex, default: []].append(packet.receiverIndex)
        stats.handshakesCompleted += 1
        stats.sessionsOpen = sessions.count
        events.append(.connected(SessionID(rawValue: packet.receiverIndex), peer: handshake.peerKey, hello: parameters.hello))
        afterActivity(session, now: now)
        for early in handshake.early {
            early.bytes.withUnsafeBytes { handle(datagram: $0, from: early.address, now: now) }
        }
    }

    private func handleCookieReply(_ datagram: UnsafeRawBufferPointer, now: Timestamp) {
        guard let reply = try? CookieReplyPacket.decode(datagram) else {
            stats.datagramsMalformed += 1
            return
        }
        guard var handshake = pending[reply.receiverIndex],
              let cookie = CookieJar.open(reply, from: handshake.peerKey, mac1: handshake.mac1)
        else {
            stats.handshakeMACFailures += 1
            return
        }
        handshake.cookie = (cookie, now)
        pending[reply.receiverIndex] = handshake
        sendInitiation(reply.receiverIndex, now: now)
    }

    // MARK: - Timers

    /// The earliest deadline of any session or handshake.
    public func nextTimeout() -> Timestamp? {
        while let top = timers.top {
            if scheduled[top.key] == top.deadline { return top.deadline }
            timers.pop()
        }
        return nil
    }

    /// Runs every deadline that has passed.
    public func handleTimeout(now: Timestamp) {
        // Collect first: handling a deadline may re-arm one that is already due, which must
        // wait for the driver to send (a keepalive, say) before it is looked at again.
        var due: [UInt32] = []
        while let top = timers.top, top.deadline <= now {
            timers.pop()
            guard scheduled[top.key] == top.deadline else { continue }
            scheduled[top.key] = nil
            due.append(top.key)
        }
        for key in due {
            let top = (key: key, deadline: now)
            if let session = sessions[top.key] {
                session.handleTimeout(now: now)
                afterActivity(session, now: now)
            } else if let handshake = pending[top.key] {
                if now >= handshake.deadline {
                    pending[top.key] = nil
                    events.append(.connectFailed(SessionID(rawValue: top.key), .handshakeTimeout(handshake.address.description)))
                } else if now >= handshake.nextRetry {
                    sendInitiation(top.key, now: now)
                } else {
                    schedule(top.key, at: min(handshake.nextRetry, handshake.deadline))
                }
            }
        }
    }

    private func schedule(_ key: UInt32, at deadline: Timestamp?) {
        guard let deadline else {
            scheduled[key] = nil
            return
        }
        if scheduled[key] == deadline { return }
        scheduled[key] = deadline
        timers.push(deadline, key)
    }

    /// After anything touched a session: collect its events, queue it to send, re-arm its timer.
    private func afterActivity(_ session: Session, now: Timestamp) {
        moveEvents(of: session)
        if session.hasPendingStreams, !sessionsWithPendingStreams.contains(session.localIndex) {
            sessionsWithPendingStreams.append(session.localIndex)
        }
        if session.isClosed {
            removeSession(session.localIndex)
            return
        }
        if readySet.insert(session.localIndex).inserted { ready.append(session.localIndex) }
        schedule(session.localIndex, at: session.nextTimeout())
    }

    /// Moves a session's events to the endpoint's queue.
    private func moveEvents(of session: Session) {
        guard !session.events.isEmpty else { return }
        let id = SessionID(rawValue: session.localIndex)
        for event in session.events { events.append(.session(id, event)) }
        session.events.removeAll(keepingCapacity: true)
    }

    private func removeSession(_ index: UInt32) {
        guard let session = sessions.removeValue(forKey: index) else { return }
        byRemoteIndex[session.remoteIndex]?.removeAll { $0 == index }
        if byRemoteIndex[session.remoteIndex]?.isEmpty == true { byRemoteIndex[session.remoteIndex] = nil }
        scheduled[index] = nil
        readySet.remove(index)
        if var byIndex = unconfirmed[session.peerKey] {
            byIndex = byIndex.filter { $0.value != index }
            unconfirmed[session.peerKey] = byIndex.isEmpty ? nil : byIndex
        }
        stats.sessionsOpen = sessions.count
    }

    // MARK: - Output

    /// The next datagram to send, written into `buffer`, which must hold at least
    /// `configuration.session.maximumDatagramSize` bytes. Call until it returns nil.
    public func pollTransmit(now: Timestamp, into buffer: UnsafeMutableRawBufferPointer) -> Transmit? {
        if let (address, bytes) = handshakeOutbox.popFirst() {
            bytes.withUnsafeBytes { buffer.copyMemory(from: $0) }
            return Transmit(destination: address, size: bytes.count)
        }
        var attempts = ready.count
        while attempts > 0, let index = ready.popFirst() {
            attempts -= 1
            guard let session = sessions[index] else {
                readySet.remove(index)
                continue
            }
            if let transmit = session.pollTransmit(now: now, into: buffer) {
                ready.append(index)
                if session.isClosed || !session.events.isEmpty { afterActivity(session, now: now) }
                return transmit
            }
            readySet.remove(index)
            schedule(index, at: session.nextTimeout())
        }
        return nil
    }

    /// The next event for the application.
    public func pollEvent() -> EndpointEvent? {
        if events.isEmpty && !sessionsWithPendingStreams.isEmpty {
            // Stream bytes gathered over the read pass become events once everything else
            // has been taken: one chunk per channel instead of one per packet.
            for index in sessionsWithPendingStreams {
                guard let session = sessions[index] else { continue }
                session.flushStreams()
                moveEvents(of: session)
            }
            sessionsWithPendingStreams.removeAll(keepingCapacity: true)
        }
        return events.popFirst()
    }

    // MARK: - Application calls

    private func withSession<R>(_ id: SessionID, now: Timestamp, _ body: (Session) throws(TransportError) -> R) throws(TransportError) -> R {
        guard let session = sessions[id.rawValue] else { throw .sessionClosed() }
        let result = try body(session)
        afterActivity(session, now: now)
        return result
    }

    /// Sets a channel's mode, priority and live deadline on a session.
    public func configureChannel(_ channel: UInt16, _ configuration: ChannelConfiguration, session id: SessionID, now: Timestamp) throws(TransportError) {
        try withSession(id, now: now) { (session) throws(TransportError) in try session.configureChannel(channel, configuration) }
    }

    /// Queues a message (or stream bytes) on a channel.
    /// - Returns: ``WriteOutcome/bufferFull`` when the caller must wait for ``SessionEvent/writable``.
    public func write(_ bytes: [UInt8], channel: UInt16, route: RoutingHeader = RoutingHeader(), session id: SessionID, now: Timestamp) throws(TransportError) -> WriteOutcome {
        try withSession(id, now: now) { (session) throws(TransportError) in try session.write(bytes, channel: channel, route: route, now: now) }
    }

    /// Pauses or resumes delivery on a channel (backpressure from the application).
    public func setPaused(_ paused: Bool, channel: UInt16, session id: SessionID, now: Timestamp) {
        try? withSession(id, now: now) { session in session.setPaused(paused, channel: channel) }
    }

    /// Closes gracefully: buffered data is delivered first.
    public func close(_ id: SessionID, now: Timestamp) {
        try? withSession(id, now: now) { session in session.close(now: now) }
    }

    /// Aborts with RESET.
    public func abort(_ id: SessionID, reason: String, now: Timestamp) {
        try? withSession(id, now: now) { session in session.abort(reason: reason, now: now) }
    }

    /// A session's statistics.
    public func stats(for id: SessionID) -> SessionStats? { sessions[id.rawValue]?.snapshot() }

    /// The session itself (tests drive frames into it directly).
    func session(_ id: SessionID) -> Session? { sessions[id.rawValue] }

    /// The peer's current address.
    public func peerAddress(for id: SessionID) -> NetworkAddress? { sessions[id.rawValue]?.peerAddress }

    /// The peer's key.
    public func peerKey(for id: SessionID) -> PublicKey? { sessions[id.rawValue]?.peerKey }

    /// Largest payload an unreliable datagram may have.
    public func maximumDatagramPayload(for id: SessionID) -> Int? { sessions[id.rawValue]?.maximumDatagramPayload }

    /// Whether the session exists and is not closed.
    public func isOpen(_ id: SessionID) -> Bool { sessions[id.rawValue].map { !$0.isClosed } ?? false }
}

/// Refuses replayed handshake initiations: each key's timestamps must be new and not older
/// than a minute behind the newest seen. Tolerates reordering of concurrent handshakes.
struct HandshakeReplayGuard {
    static let window: UInt64 = 60_000_000_000
    static let maximumKeys = 100_000
    private var seen: [PublicKey: (newest: UInt64, recent: Set<UInt64>)] = [:]

    mutating func accept(_ key: PublicKey, timestamp: UInt64) -> Bool {
        var entry = seen[key] ?? (0, [])
        if entry.newest > Self.window && timestamp < entry.newest - Self.window { return false }
        if entry.recent.contains(timestamp) { return false }
        entry.recent.insert(timestamp)
        entry.newest = max(entry.newest, timestamp)
        if entry.recent.count > 64 {
            let floor = entry.newest > Self.window ? entry.newest - Self.window : 0
            entry.recent = entry.recent.filter { $0 >= floor }
            if entry.recent.count > 1024 { entry.recent = Set(entry.recent.sorted().suffix(512)) }
        }
        if seen.count >= Self.maximumKeys, seen[key] == nil { seen.removeAll() }
        seen[key] = entry
        return true
    }
}
