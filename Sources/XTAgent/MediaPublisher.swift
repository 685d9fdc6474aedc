// Live publishing and backfill. Every coded frame gets the next sequence number of its stream,
// goes into the ring buffer, and — if it is still within its deadline and the host is there —
// out on its live lane. Once a second the agent tells the recorder what its ring holds; the
// recorder answers with what it has, and the agent sends the difference on the bulk lane,
// which the transport serves only after the live lanes.
import Foundation
public import Logging
public import XTMedia
public import XTNet
public import XTransport

/// What the publisher did, for `xt agent --report` and the logs.
public struct PublisherStats: Sendable, Equatable, Codable {
    /// Frames sent live, per kind.
    public var videoSent = 0
    public var audioSent = 0
    /// Frames not sent live because they were already past their deadline.
    public var lateSkipped = 0
    /// Frames not sent live because the host was away (they wait in the ring).
    public var offline = 0
    /// Frames the ring could not keep (full disk).
    public var ringFailures = 0
    /// Frames and bytes sent again from the ring.
    public var backfilledFrames = 0
    /// Motion grids sent.
    public var motionGrids = 0
    public var backfilledBytes = 0
    public var receipts = 0
    public var keyframeRequests = 0
    /// Frames the ring dropped for its limits.
    public var ringEvicted = 0
    public var ringBytes = 0
}

/// The agent's publisher: one per camera.
public actor MediaPublisher {
    private let node: NetNode
    private let ring: MediaRing
    private let camera: String
    private let videoChannel: UInt16
    private let audioChannel: UInt16
    private let deadlineNanoseconds: Int64
    private let routeCode: RouteCode
    private let logger: Logger
    private var streams: [MediaKind: Stream] = [:]
    public private(set) var stats = PublisherStats()
    /// When each backfilled frame was last sent (monotonic ns), so a receipt that crossed it
    /// in flight does not send it twice.
    private var sentAt: [MediaStreamID: [UInt64: Int64]] = [:]
    /// Called for a keyframe request from a viewer or the recorder.
    private let onKeyframeRequest: @Sendable () -> Void
    private var lastKeyframeRequest: Int64 = 0

    /// Bytes of backfill sent per receipt (one a second): 8 MiB/s at most, and in practice
    /// what the bulk lane takes after live media.
    static let backfillBudget = 8 << 20
    /// A backfilled frame is not sent again for this long.
    static let resendAfterNanoseconds: Int64 = 5_000_000_000

    private struct Stream {
        var header: MediaStreamHeader
        var nextSequence: UInt64 = 0
        var sinceHeader = 0
        /// The header reached the session since the host (re)connected.
        var headerSent = false
    }

    public init(node: NetNode, ring: MediaRing, camera: String, videoChannel: UInt16, audioChannel: UInt16, deadline: Duration,
                multicast: Bool, logger: Logger, onKeyframeRequest: @escaping @Sendable () -> Void) {
        self.node = node
        self.ring = ring
        self.camera = camera
        self.videoChannel = videoChannel
        self.audioChannel = audioChannel
        deadlineNanoseconds = deadline.nanoseconds
        routeCode = multicast ? .multicast : .channel
        self.logger = logger
        self.onKeyframeRequest = onKeyframeRequest
    }

    // MARK: - Live

    /// Numbers, keeps and (if in time and connected) sends one coded frame.
    /// Sends a motion grid to the recorder (dropped while it is away: motion is news only while fresh).
    public func publish(_ grid: MotionGrid) async {
        guard await node.isConnected else { return }
        do {
            try await node.send(MediaMessage.motion(camera: camera, grid).encoded(), routeCode: .unicast, toName: Router.hostName,
                                channel: videoChannel, lane: .control)
            stats.motionGrids += 1
        } catch {
            return
        }
    }

    public func publish(_ output: PipelineOutput) async {
        let kind = output.frame.codec.kind
        if streams[kind]?.header.description != output.description {
            // A new stream (first frame, or the source changed shape): a new id, from sequence 0.
            if let old = streams[kind] { ring.end(old.header.stream) }
            let header = MediaStreamHeader(stream: .random(), camera: camera, description: output.description)
            streams[kind] = Stream(header: header)
            do { try ring.begin(header) } catch { noteRingFailure(error) }
            logger.info("stream started", metadata: ["camera": "\(camera)", "kind": "\(kind)", "stream": "\(header.stream)"])
        }
        var stream = streams[kind]!
        let frame = MediaFrame(stream: stream.header.stream, sequence: stream.nextSequence, frame: output.frame)
        stream.nextSequence += 1
        do { try ring.append(frame) } catch { noteRingFailure(error) }
        stats.ringEvicted = ring.evictedFrames
        stats.ringBytes = ring.bytes

        let lane: NetLane = kind == .video ? .video : .audio
        let channel = kind == .video ? videoChannel : audioChannel
        let age = CaptureTime.now.nanoseconds(since: output.frame.captureTime)
        guard age <= deadlineNanoseconds else {
            stats.lateSkipped += 1
            streams[kind] = stream
            return
        }
        // The header goes ahead of every keyframe (video) or every second (audio), so a viewer
        // that joins can decode from there.
        let needsHeader = !stream.headerSent || (kind == .video ? output.frame.isKeyframe : stream.sinceHeader >= 50)
        if needsHeader { stream.sinceHeader = 0 } else { stream.sinceHeader += 1 }
        streams[kind] = stream
        do {
            if needsHeader {
                try await node.send(MediaMessage.header(stream.header).encoded(), routeCode: routeCode, channel: channel, lane: lane)
                streams[kind]?.headerSent = true
            }
            try await node.send(MediaMessage.frame(frame).encoded(), routeCode: routeCode, channel: channel, lane: lane)
            if kind == .video { stats.videoSent += 1 } else { stats.audioSent += 1 }
        } catch {
            stats.offline += 1
            // The host is away: the header goes again with the first frame it gets.
            streams[kind]?.headerSent = false
        }
    }

    private func noteRingFailure(_ error: MediaError) {
        if stats.ringFailures == 0 { logger.error("the ring buffer cannot keep frames", metadata: ["reason": "\(error.reason)"]) }
        stats.ringFailures += 1
    }

    // MARK: - Messages to the agent

    /// Handles a message routed to this agent (a receipt, a keyframe request).
    public func handle(_ envelope: NetEnvelope) async {
        guard let message = try? MediaMessage.decode(envelope.payload) else {
            logger.debug("not a media message; ignored", metadata: ["from": "\(envelope.route.from)"])
            return
        }
        switch message {
        case .receipt(let entries):
            stats.receipts += 1
            await backfill(entries)
        case .keyframeRequest:
            stats.keyframeRequests += 1
            let now = CaptureTime.monotonicNow
            // At most one forced keyframe a second, however many viewers ask.
            if now - lastKeyframeRequest > 1_000_000_000 {
                lastKeyframeRequest = now
                onKeyframeRequest()
            }
        case .header, .frame, .inventory, .motion:
            break
        }
    }

    // MARK: - Backfill

    /// What the ring holds now.
    public var inventory: [InventoryEntry] { ring.inventory }

    /// Set when the agent stops: the last round of backfill sends everything missing.
    private var flushing = false

    /// Before the agent stops: asks the recorder what it lacks and sends it, waiting up to
    /// `timeout` for the answer. Returns whether a receipt came.
    public func flush(timeout: Duration = .seconds(3)) async -> Bool {
        flushing = true
        let before = stats.receipts
        await sendInventory()
        let deadline = ContinuousClock.now + timeout
        while stats.receipts == before, ContinuousClock.now < deadline {
            try? await Task.sleep(for: .milliseconds(50))
        }
        return stats.receipts > before
    }

    /// Tells the recorder what the ring holds (it answers with a receipt).
    public func sendInventory() async {
        let inventory = ring.inventory
        guard !inventory.isEmpty else { return }
        try? await node.send(MediaMessage.inventory(camera: camera, inventory).encoded(), routeCode: .unicast,
                             toName: Router.hostName, channel: videoChannel, lane: .control)
    }

    /// Sends what the recorder is missing, oldest first, within this round's budget.
    private func backfill(_ receipt: [ReceiptEntry]) async {
        let now = CaptureTime.monotonicNow
        // While stopping nothing is on its way live any more: everything may go.
        let horizon = flushing ? CaptureTime.now : CaptureTime.now.adding(nanoseconds: -(deadlineNanoseconds + 1_000_000_000))
        var budget = Self.backfillBudget
        // Audio first: small, and a recording without its sound is the worse gap.
        let ordered = receipt.sorted { (ring.header(of: $0.stream)?.description.codec == .opus ? 0 : 1) < (ring.header(of: $1.stream)?.description.codec == .opus ? 0 : 1) }
        for entry in ordered {
            guard let held = ring.range(of: entry.stream), let header = ring.header(of: entry.stream) else { continue }
            sentAt[entry.stream] = sentAt[entry.stream]?.filter { now - $0.value < Self.resendAfterNanoseconds }
            let channel = header.description.codec == .h264 ? videoChannel : audioChannel
            var sentHeader = false
            for sequence in missing(in: held, received: entry.ranges) {
                guard budget > 0 else { return }
                if let sent = sentAt[entry.stream]?[sequence], now - sent < Self.resendAfterNanoseconds { continue }
                guard var frame = ring.frame(entry.stream, sequence) else { continue }
                // Frames this recent may still be on their way live.
                if frame.frame.captureTime > horizon { break }
                frame.isBackfill = true
                do {
                    if !sentHeader {
                        try await node.send(MediaMessage.header(header).encoded(), routeCode: .unicast, toName: Router.hostName,
                                            channel: channel, lane: .bulk)
                        sentHeader = true
                    }
                    let bytes = MediaMessage.frame(frame).encoded()
                    try await node.send(bytes, routeCode: .unicast, toName: Router.hostName, channel: channel, lane: .bulk)
                    budget -= bytes.count
                    stats.backfilledFrames += 1
                    stats.backfilledBytes += bytes.count
                    sentAt[entry.stream, default: [:]][sequence] = now
                } catch {
                    return  // the host went away again: the next receipt says where to resume
                }
            }
        }
    }

    /// The sequences in `held` not in `received` (ascending, disjoint ranges).
    func missing(in held: ClosedRange<UInt64>, received: [ClosedRange<UInt64>]) -> [UInt64] {
        var result: [UInt64] = []
        var next = held.lowerBound
        for range in received where range.upperBound >= next {
            if range.lowerBound > held.upperBound { break }
            if range.lowerBound > next { result += Array(next..<range.lowerBound) }
            next = max(next, range.upperBound &+ 1)
            if next > held.upperBound || next == 0 { return result }
        }
        if next <= held.upperBound { result += Array(next...held.upperBound) }
        return result
    }
}
