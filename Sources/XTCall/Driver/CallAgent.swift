// The call driver on the node network. It runs this node's CallBook: signalling goes by name
// through the host (UltraSockets' routing), so a call reaches any node or user the host knows
// and an unknown or offline name is answered at once. Once a party is in the call, the two
// offer each other a direct path (LRP2P: every endpoint connects and accepts); media flows
// through the host's relay until the direct session is up, and again if it fails.
// Relayed media is published on the call's channel: the host forwards each party's packets to
// the others (xTransporter's channel routing), and each node mixes what it hears.
public import Logging
import Synchronization
public import XTMedia
public import XTNet
import XTransport

/// Channels of the call protocol on the node network.
public enum CallChannel {
    /// Signalling: unicast by name through the host, on the control lane (reliable, in order).
    public static let signalling: UInt16 = 61
    /// The channel of call `id`'s relayed media: 32768…65535 (camera channels stay below).
    /// Two calls may share one; the call id in each packet tells them apart.
    public static func media(_ id: CallID) -> UInt16 { 0x8000 | UInt16(truncatingIfNeeded: id.raw & 0x7fff) }
    public static func isMedia(_ channel: UInt16) -> Bool { channel >= 0x8000 }
}

/// What happens in a call, for the CLI and the web UI.
public enum CallEvent: Sendable, Equatable {
    /// Someone calls this node (`parties`: everyone invited besides this node).
    case incoming(from: String, media: CallMedia, parties: [String])
    /// The incoming call stopped ringing (answered, declined, withdrawn or missed).
    case stopRinging
    /// The parties in the call with this node now (empty: nobody yet, or all left).
    case parties([String])
    /// How `party`'s media reaches this node now.
    case path(party: String, CallPath)
    case ended(CallEnd)
}

/// A node's calls: signalling, paths and media. One call at a time.
public actor CallAgent {
    public struct Configuration: Sendable {
        public var devices = CallAudioDevices()
        /// Answer every call at once (an intercom, a camera that takes calls).
        public var autoAnswer = false
        /// Offer and try direct paths (off: always through the host).
        public var direct = true
        public var timeouts = CallTimeouts()
        public var opus = OpusSettings.call()
        public var voice = VoiceProcessor.Settings()
        public var jitter = JitterBuffer.Configuration()
        /// The camera a video call sends (nil: none; others' video is still received and recorded).
        public var camera: CallCamera?
        public var video = CallVideoSettings()
        /// Record each call (both directions, audio and video) to this MP4; nil: no recording.
        public var recordPath: String?
        /// The media comes from and goes to the application (``externalMedia``, ``sendMedia(_:)``),
        /// not this process's sound devices and camera: a browser's call page, which encodes,
        /// decodes and buffers by itself.
        public var external = false
        /// Mumble's way, for comparison: media as bare datagrams (no retransmission), no FEC, a
        /// fixed 40 ms buffer that does not stretch; packet-loss concealment alone.
        public var plcOnly = false {
            didSet {
                guard plcOnly else { return }
                opus.expectedLoss = 0
                jitter.useFEC = false
                jitter.fixedTarget = .milliseconds(40)
                jitter.stretching = false
            }
        }
        public init() {}
    }

    public nonisolated let name: String
    public nonisolated let configuration: Configuration
    public nonisolated let events: AsyncStream<CallEvent>
    /// With ``Configuration/external``: each party's packets as they arrive (audio; video
    /// pictures a decoder can use; keyframe requests for this node's video).
    public nonisolated let externalMedia: AsyncStream<(party: String, packet: CallMediaPacket)>
    private let externalContinuation: AsyncStream<(party: String, packet: CallMediaPacket)>.Continuation
    private let eventContinuation: AsyncStream<CallEvent>.Continuation
    private let node: NetNode
    private let logger: Logger
    private var book: CallBook
    private var engine: CallAudioEngine?
    private var video: CallVideoEngine?
    private var recording: CallRecording?
    /// Each party's video: which pictures are usable, and when to ask for a keyframe.
    private var videoGates: [String: VideoReceiveGate] = [:]
    /// Each party's audio frames seen lately: the recording and the page take each frame once,
    /// whichever of its two copies came first (the jitter buffer sees both: a copy tells it the
    /// sender duplicates).
    private var audioSeen: [String: SequenceWindow] = [:]
    /// Packets sent and lost per path at the last link check (the loss over the last second).
    private var lossBaseline: [String: (sent: UInt64, lost: UInt64)] = [:]
    /// Names of the nodes media and signalling came from, by id (learnt from the host).
    private var names: [NodeID: String] = [:]
    private var lastLookup: Timestamp?
    /// Direct sessions to parties, their keys, and the parties a direct path was offered to.
    private var links: [String: PeerLink] = [:]
    /// Further sessions a party opened while its link was up. The party may keep a later
    /// handshake than the first one here (a second address answering first): the link then
    /// moves to the session still open when the one in use closes.
    private var spareLinks: [String: [PeerLink]] = [:]
    /// A party opens one session per address it tries, up to 8 (``NetNode/connectPeer``).
    private static let maximumSpares = 8
    private var keys: [String: PublicKey] = [:]
    private var offered: Set<String> = []
    private var paths: [String: CallPath] = [:]
    private var parties: [String] = []
    private var mediaChannel: UInt16?
    /// Each party's round trip (its direct session's, or twice this node's to the host), and
    /// the figures of the call that ended last, and of parties that left this call.
    private var roundTrips: [String: Duration] = [:]
    private var lastStats: [CallStats] = []
    private var departed: [CallStats] = []
    private let outgoing: AsyncStream<(CallMessage, String)>.Continuation
    private let outgoingStream: AsyncStream<(CallMessage, String)>
    private var tasks: [Task<Void, Never>] = []
    /// Signalling messages made and not yet answered by the host.
    private var unsent = 0
    /// Media packets dropped: undecodable, another call's, or from no party.
    public private(set) var droppedMedia = 0

    public init(node: NetNode, configuration: Configuration = Configuration(), logger: Logger = Logger(label: "xt.call")) {
        self.node = node
        name = node.configuration.name
        self.configuration = configuration
        self.logger = logger
        book = CallBook(me: node.configuration.name, timeouts: configuration.timeouts)
        (events, eventContinuation) = AsyncStream.makeStream()
        (externalMedia, externalContinuation) = AsyncStream.makeStream(bufferingPolicy: .bufferingNewest(256))
        (outgoingStream, outgoing) = AsyncStream.makeStream()
    }

    /// Starts sending signalling, taking direct sessions and keeping time.
    public func start() {
        let stream = outgoingStream
        tasks.append(Task { [node] in
            // One sender, so messages to a party leave in the order they were made.
            for await (message, name) in stream {
                do {
                    try await node.send(message.encoded, toName: name, channel: CallChannel.signalling)
                    self.sent()
                } catch {
                    self.sent()
                    self.undeliverable(to: name, reason: (error as? UndeliverableError)?.reason ?? "\(error)")
                }
            }
        })
        tasks.append(Task { [node] in
            for await link in node.peerLinks { await self.adopt(link) }
        })
        tasks.append(Task {
            while !Task.isCancelled {
                try? await Task.sleep(for: .milliseconds(100))
                await self.tick()
            }
        })
    }

    /// Hangs up and stops, once the hang-up reached the host (at most `grace` later).
    public func stop(grace: Duration = .seconds(2)) async {
        hangUp()
        let deadline = ContinuousClock.now + grace
        while unsent > 0, ContinuousClock.now < deadline { try? await Task.sleep(for: .milliseconds(20)) }
        outgoing.finish()
        for task in tasks { task.cancel() }
        endMedia()
        eventContinuation.finish()
    }

    /// Ends ``events`` (the CLI's loop) without stopping.
    public func finishEvents() { eventContinuation.finish() }

    // MARK: - The user

    /// Calls `names` (one node or user, or up to 7 for a group call).
    /// - Throws: ``CallError`` for a bad name, too many parties, or a call in progress.
    public func call(_ names: [String], media: CallMedia = .audio) throws(CallError) {
        perform(try book.place(to: names, media: media, now: .monotonicNow))
    }

    public func answer() { perform(book.answer(now: .monotonicNow)) }
    public func decline() { perform(book.decline(now: .monotonicNow)) }
    public func hangUp() { perform(book.hangUp(now: .monotonicNow)) }

    /// The call's state (nil: no call yet).
    public var state: CallSignalling.State? { book.current?.state }

    /// What this node hears of each party (during a call; after it, as it ended). A party
    /// that left the call keeps the figures it had when it left.
    public func stats() -> [CallStats] {
        guard let engine else { return lastStats }
        return departed.filter { !parties.contains($0.party) } + parties.compactMap { party in
            guard let figures = engine.figures(for: party) else { return nil }
            let path = paths[party] ?? (links[party] == nil ? .relayed : .direct)
            var stats = CallStats.estimate(party: party, path: path, buffer: figures.buffer, roundTrip: roundTrips[party] ?? .zero,
                                           playbackDelay: figures.playbackDelay)
            stats.video = videoGates[party].flatMap { $0.stats.received > 0 ? CallStats.VideoFigures($0.stats) : nil }
            return stats
        }
    }

    // MARK: - The network

    /// Takes a message the node received. Returns false if it is not call traffic.
    public func handle(_ envelope: NetEnvelope) async -> Bool {
        let channel = envelope.route.channel
        if channel == CallChannel.signalling {
            guard let message = try? CallMessage(decoding: envelope.payload), let sender = await name(of: envelope.route.from) else {
                logger.debug("call signalling dropped", metadata: ["from": "\(envelope.route.from)"])
                return true
            }
            perform(book.receive(message, from: sender, now: .monotonicNow))
            return true
        }
        guard CallChannel.isMedia(channel) else { return false }
        // Relayed media is sealed with the call's key: another call's, or a stranger's, does not open.
        guard let call = book.active, let opened = CallMediaSeal.open(envelope.payload, key: call.key, call: call.id),
              let packet = try? CallMediaPacket(decoding: opened), let sender = await name(of: envelope.route.from) else {
            droppedMedia += 1
            return true
        }
        media(packet, from: sender, path: .relayed)
        return true
    }

    private func media(_ packet: CallMediaPacket, from party: String, path: CallPath) {
        guard packet.call == book.active?.id, parties.contains(party) else {
            droppedMedia += 1
            return
        }
        if paths[party] != path {
            paths[party] = path
            eventContinuation.yield(.path(party: party, path))
            logger.info("call media path", metadata: ["party": "\(party)", "path": "\(path.rawValue)"])
            showActivity()
        }
        let firstCopy = packet.kind != .audio || audioSeen[party, default: SequenceWindow()].insert(packet.sequence)
        if configuration.external, packet.kind != .video {
            // The page plays the frame alone (its audio has no use for the redundant copy), once.
            if packet.kind == .audio ? firstCopy : packet.keyframeRequestTarget == name {
                externalContinuation.yield((party, packet.withoutRedundancy))
            }
            return
        }
        switch packet.kind {
        case .audio:
            engine?.receive(packet, from: party, arrival: .monotonicNow)
            if firstCopy { recording?.add(packet, from: party) }
        case .video:
            let now = Timestamp.monotonicNow
            var gate = videoGates[party] ?? VideoReceiveGate()
            if gate.receive(sequence: packet.sequence, isKeyframe: packet.flags.contains(.keyframe), now: now) == .use {
                recording?.add(packet, from: party)
                if configuration.external { externalContinuation.yield((party, packet)) }
            }
            let ask = gate.keyframeRequestDue(now: now)
            videoGates[party] = gate
            if ask, let call = book.active?.id {
                Task { await self.send(.keyframeRequest(call: call, to: party), only: party) }
            }
        case .keyframeRequest:
            if packet.keyframeRequestTarget == name { video?.requestKeyframe() }
        }
    }

    /// The authenticated name of node `id`, from the host's list (looked up at most every 200 ms).
    private func name(of id: NodeID) async -> String? {
        if let known = names[id] { return known }
        let now = Timestamp.monotonicNow
        if let lastLookup, now.nanoseconds(since: lastLookup) < 200_000_000 { return nil }
        lastLookup = now
        guard let nodes = try? await node.status() else { return nil }
        for status in nodes {
            let parts = status.id.split(separator: ".")
            if parts.count == 2, let area = UInt16(parts[0]), let local = UInt16(parts[1]) { names[NodeID(area: area, local: local)] = status.name }
        }
        if id == .host { names[id] = Router.hostName }
        return names[id]
    }

    private func undeliverable(to name: String, reason: String) {
        perform(book.undeliverable(to: name, reason: reason, now: .monotonicNow))
    }

    private func tick() async {
        let now = Timestamp.monotonicNow
        if let deadline = book.nextDeadline, deadline <= now { perform(book.handleTimeout(now: now)) }
        // A direct session that ended: back to the relay until a new one is up.
        for (party, link) in links where link.isClosed {
            let spares = (spareLinks.removeValue(forKey: party) ?? []).filter { !$0.isClosed }
            links[party] = spares.first
            if !spares.isEmpty {
                spareLinks[party] = Array(spares.dropFirst())
                logger.info("direct path moved to the party's other session", metadata: ["party": "\(party)"])
            } else {
                logger.notice("direct path lost; relaying through the host", metadata: ["party": "\(party)"])
            }
        }
        // A sound device that failed mid-call (unplugged, a hung driver): the call goes on
        // without it, and the user is told which and why.
        if let failure = engine?.failure, failure != reportedDeviceFailure {
            reportedDeviceFailure = failure
            logger.error("a sound device of the call stopped; the call goes on without it", metadata: ["error": "\(failure)"])
        }
        await followLink()
    }

    private var reportedDeviceFailure: String?

    private var lastLinkCheck: Timestamp?

    /// Once a second: FEC follows the worst path's loss over the session's life (steadier than
    /// the last second's, and as good: 5% random drop scored PESQ-WB 3.72–3.74 with it, 3.43–3.86
    /// with the last second's), and the video's bitrate the last second's
    /// (``VideoBitrateController``: loss, queueing delay, the transport's rate estimate as its
    /// ceiling). The voice's bitrate does not follow the
    /// session's rate estimate: a 48 kbit/s call never fills a path, so the estimate (from its
    /// own app-limited deliveries) is the call's rate, and following it spirals the bitrate
    /// down to the floor (measured: PESQ-WB 2.9 instead of 3.9 at 5% loss through a relay).
    private func followLink() async {
        guard engine != nil || video != nil, !configuration.plcOnly else { return }
        let now = Timestamp.monotonicNow
        let interval = lastLinkCheck.map { Duration.nanoseconds(now.nanoseconds(since: $0)) } ?? .seconds(1)
        if interval < .seconds(1), lastLinkCheck != nil { return }
        lastLinkCheck = now
        var sessions: [(key: String, stats: SessionStats)] = []
        let host = await node.sessionStats()
        for party in parties {
            if let stats = await links[party]?.stats() {
                sessions.append((party, stats))
                roundTrips[party] = stats.smoothedRTT
            } else if let host {
                // Relayed: this node's hop to the host, and the party's, taken as equal.
                roundTrips[party] = host.smoothedRTT * 2
            }
        }
        if parties.contains(where: { links[$0] == nil }), let host { sessions.append(("", host)) }
        // The worst path's loss since the last check (video), and over its life (voice FEC).
        var loss = 0.0
        var lifetimeLoss = 0.0
        var rate: Double?
        var smoothed = Duration.zero
        var minimum = Duration.zero
        for (key, stats) in sessions {
            let base = lossBaseline[key] ?? (0, 0)
            lossBaseline[key] = (stats.packetsSent, stats.pathLosses)
            let sent = stats.packetsSent &- base.sent
            let lost = stats.pathLosses &- min(stats.pathLosses, base.lost)
            if sent >= 20 { loss = max(loss, min(100, Double(lost) * 100 / Double(sent))) }
            lifetimeLoss = max(lifetimeLoss, stats.lossRate * 100)
            if stats.rateEstimate > 0 { rate = min(rate ?? .infinity, stats.rateEstimate * 8) }
            if stats.smoothedRTT - stats.minimumRTT > smoothed - minimum { (smoothed, minimum) = (stats.smoothedRTT, stats.minimumRTT) }
        }
        engine?.linkChanged(lossPercent: lifetimeLoss, rateBitsPerSecond: nil)
        video?.linkChanged(VideoBitrateController.LinkFigures(lossPercent: loss, rateEstimate: rate, smoothedRTT: smoothed, minimumRTT: minimum),
                           interval: interval)
    }

    // MARK: - Actions

    /// What `xt status` and the web UI show for this node: the call, each party and its path.
    private var activity: String {
        guard let call = book.active else { return "" }
        switch call.state {
        case .calling, .ringing: return "calling \(call.others.joined(separator: ", "))"
        case .incoming: return "ringing: a call from \(call.others.first ?? "?")"
        case .active:
            let each = parties.map { "\($0) (\((paths[$0] ?? (links[$0] == nil ? .relayed : .direct)).rawValue))" }
            return "in a call with " + (each.isEmpty ? "…" : each.joined(separator: ", "))
        case .ended: return ""
        }
    }

    private var shownActivity = ""

    private func showActivity() {
        let now = activity
        guard now != shownActivity else { return }
        shownActivity = now
        Task { [node] in await node.setActivity(now) }
    }

    private func perform(_ actions: [CallSignalling.Action]) {
        defer { showActivity() }
        for action in actions {
            switch action {
            case .send(let message, let names):
                for name in names { offer(message, to: name) }
            case .alert(let from, let media, let others):
                eventContinuation.yield(.incoming(from: from, media: media, parties: others))
                logger.info("incoming call", metadata: ["from": "\(from)", "media": "\(media)"])
                if configuration.autoAnswer { perform(book.answer(now: .monotonicNow)) }
            case .stopAlert:
                eventContinuation.yield(.stopRinging)
            case .media(let now):
                mediaParties(now)
            case .direct(let party, let key, let addresses):
                direct(party: party, key: key, addresses: addresses)
            case .ended(let end):
                eventContinuation.yield(.ended(end))
                logger.info("call ended", metadata: ["how": "\(end)"])
                endMedia()
            }
        }
    }

    private func mediaParties(_ now: [String]) {
        guard let call = book.current else { return }
        if now.isEmpty, !parties.isEmpty, engine != nil { lastStats = stats() }
        let leaving = Set(parties).subtracting(now)
        if !leaving.isEmpty, engine != nil {
            departed = departed.filter { !leaving.contains($0.party) } + stats().filter { leaving.contains($0.party) }
        }
        parties = now
        eventContinuation.yield(.parties(now))
        if now.isEmpty { return }
        if configuration.external {
            // The application's media: nothing to open here.
        } else if engine == nil {
            do {
                let engine = try CallAudioEngine(call: call.id, devices: configuration.devices, settings: configuration.opus,
                                                 voice: configuration.voice, jitter: configuration.jitter)
                self.engine = engine
                tasks.append(Task { for await packet in engine.packets { await self.send(packet) } })
            } catch {
                logger.error("cannot open the call's sound devices; the call goes on without them", metadata: ["error": "\(error)"])
            }
            startVideo(call)
        }
        recording?.expect(parties: now, localVideo: video != nil, localAudio: configuration.devices.microphone != nil,
                          partyVideo: call.media.contains(.video))
        engine?.setParties(now)
        if mediaChannel == nil {
            let channel = CallChannel.media(call.id)
            mediaChannel = channel
            Task { [node] in await node.subscribe(channel) }
        }
        // The party whose name sorts first offers first; the other admits its key, then
        // answers with its own offer, and the first opens the session: so each side has
        // admitted the other's key before a handshake arrives.
        guard configuration.direct else { return }
        for party in now where name < party { offerDirect(to: party, call: call.id) }
    }

    /// With ``Configuration/external``: a packet of this node's media (audio or video made by
    /// the application; its call id is set to the call's). Dropped when no call is active.
    public func sendMedia(_ packet: CallMediaPacket) async {
        guard configuration.external, let call = book.active?.id, !parties.isEmpty else { return }
        var packet = packet
        packet.call = call
        if packet.kind == .keyframeRequest, let target = packet.keyframeRequestTarget {
            await send(packet, only: target)
        } else {
            await send(packet)
        }
    }

    /// A video call with a camera here: the camera's thread starts; with a record path, the
    /// recording too (whether or not this node sends video).
    private func startVideo(_ call: CallSignalling) {
        if let path = configuration.recordPath, recording == nil {
            recording = CallRecording(path: path, me: name, audioSampleRate: configuration.opus.sampleRate)
        }
        guard call.media.contains(.video), video == nil, let camera = configuration.camera else { return }
        do {
            let engine = try CallVideoEngine(call: call.id, camera: camera, settings: configuration.video)
            video = engine
            tasks.append(Task { for await packet in engine.packets { await self.send(packet) } })
        } catch {
            logger.error("cannot open the camera; the call goes on without video", metadata: ["camera": "\(camera)", "error": "\(error)"])
        }
    }

    private func offerDirect(to party: String, call: CallID) {
        guard !offered.contains(party) else { return }
        offered.insert(party)
        let me = name
        Task { [node] in
            let offer = CallMessage.direct(call: call, from: me, key: node.publicKey, addresses: await node.directAddresses())
            self.offer(offer, to: party)
        }
    }

    private func offer(_ message: CallMessage, to party: String) {
        unsent += 1
        outgoing.yield((message, party))
    }

    private func sent() { unsent -= 1 }

    /// A party offered a direct path: admit its key; the party whose name sorts first opens the session.
    private func direct(party: String, key: PublicKey, addresses: [NetworkAddress]) {
        guard configuration.direct else { return }
        guard let call = book.active?.id else { return }
        keys[party] = key
        let me = name
        Task { [node] in
            await node.admitPeer(key, name: party)
            guard me < party else {
                self.offerDirect(to: party, call: call)
                return
            }
            do {
                let link = try await node.connectPeer(key, name: party, at: addresses)
                await self.adopt(link)
            } catch {
                self.directFailed(party, "\(error)")
            }
        }
    }

    private func directFailed(_ party: String, _ why: String) {
        logger.notice("no direct path; relaying through the host", metadata: ["party": "\(party)", "reason": "\(why)"])
    }

    /// Takes a direct session to a party of the call: the link if the party has none open, else
    /// a spare (up to ``maximumSpares``). Anything else is closed.
    private func adopt(_ link: PeerLink) async {
        guard let call = book.active, call.joined.contains(link.name), keys[link.name] == link.key,
              (spareLinks[link.name]?.count ?? 0) < Self.maximumSpares else {
            await link.close()
            return
        }
        if let current = links[link.name], !current.isClosed {
            spareLinks[link.name, default: []].append(link)
        } else {
            links[link.name] = link
            logger.info("direct path up", metadata: ["party": "\(link.name)"])
        }
        tasks.append(Task {
            await link.receive { lane, bytes in
                guard let packet = try? CallMediaPacket(decoding: bytes) else { return }
                await self.media(packet, from: link.name, path: .direct)
            }
        })
    }

    /// Sends a packet to every party: straight over each direct session, and once to the call's
    /// channel if any party has none (the host forwards it to them).
    /// `only`: to that party alone (a keyframe request; relayed, it reaches every party, and
    /// the others ignore it).
    private func send(_ packet: CallMediaPacket, only: String? = nil) async {
        guard let channel = mediaChannel else { return }
        if packet.kind != .keyframeRequest, !packet.flags.contains(.copy) {
            recording?.add(packet, from: nil, video: packet.kind == .video ? video?.description : nil)
        }
        let bytes = packet.encoded
        let lane: NetLane = configuration.plcOnly ? .callUnreliable : packet.kind == .video ? .callVideo : .callAudio
        var relay = false
        for party in parties where only == nil || party == only {
            if let link = links[party], !link.isClosed {
                try? await link.send(bytes, lane: lane)
            } else {
                relay = true
            }
        }
        if relay, let call = book.active {
            try? await node.send(CallMediaSeal.seal(bytes, key: call.key, call: call.id), routeCode: .channel, channel: channel, lane: lane)
        }
    }

    /// Stops the sound and, in the background, closes direct sessions, forgets their keys and
    /// leaves the call's channel.
    private func endMedia() {
        if engine != nil, !parties.isEmpty { lastStats = stats() }
        roundTrips = [:]
        engine?.stop()
        engine = nil
        video?.stop()
        video = nil
        if let recording {
            if let problem = recording.finish() {
                logger.error("the call's recording is incomplete", metadata: ["problem": "\(problem)"])
            } else {
                logger.notice("call recorded", metadata: ["path": "\(recording.path)", "frames": "\(recording.written)"])
            }
            self.recording = nil
        }
        videoGates = [:]
        audioSeen = [:]
        lossBaseline = [:]
        parties = []
        departed = []
        paths = [:]
        offered = []
        let (links, keys, channel) = (Array(self.links.values) + spareLinks.values.joined(), Array(self.keys.values), mediaChannel)
        self.links = [:]
        spareLinks = [:]
        self.keys = [:]
        mediaChannel = nil
        Task { [node] in
            for link in links { await link.close() }
            for key in keys { await node.dismissPeer(key) }
            if let channel { await node.unsubscribe(channel) }
        }
    }
}
