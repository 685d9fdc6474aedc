// The recorder's ingest: media published by agents on the camera channels (live) and sent
// to the host (backfill) is recorded once, into the camera's segments. An agent's inventory is
// answered with a receipt of what the recorder holds, so the agent sends only the rest.
import Foundation
public import Logging
import XTMedia
public import XTNet
public import XTransport

/// Capture → ingest latency of live frames, and what arrived how.
public struct IngestReport: Sendable, Codable, Equatable {
    public struct Kind: Sendable, Codable, Equatable {
        public var live = 0
        public var backfilled = 0
        public var duplicates = 0
        /// Live frames that arrived after the deadline.
        public var late = 0
        public var latencyP50Milliseconds = 0.0
        public var latencyP99Milliseconds = 0.0
        public var latencyMaxMilliseconds = 0.0
    }

    public var video = Kind()
    public var audio = Kind()
    public var streams = 0
    public var receipts = 0
    public var keyframeRequests = 0
    /// Frames that came before their stream's header (dropped; the agent sends them again).
    public var withoutHeader = 0
    /// Frames the disk could not take (the agent sends them again).
    public var storeFailures = 0
    public var malformed = 0
    public var motionGrids = 0
    /// What the storage did with them.
    public var store = StoreReport()
}

/// The ingest, fed by the host's application inbox: decodes media messages, records frames in
/// the ``RecordingStore``, answers inventories with receipts and measures live latency.
public actor MediaIngest {
    public let store: RecordingStore
    /// Where motion grids go (none: they are dropped).
    public let monitor: MotionMonitor?
    /// Where the alarm channel's messages go.
    public let alarms: AlarmDispatcher?
    /// Where live frames go for the web UI's live view.
    public let live: LiveHub?
    private let host: NetHost?
    private let deadlineNanoseconds: Int64
    private let logger: Logger
    private var report = IngestReport()
    private var latencies: [MediaKind: [Int64]] = [.video: [], .audio: []]
    /// Latency samples kept per kind (about an hour of video at 30 fps).
    static let latencySamples = 100_000
    /// When a keyframe was last asked for per camera (monotonic ns): at most one a second.
    private var keyframeAsked: [String: Int64] = [:]
    /// The node each camera's live video last came from (where keyframe requests go).
    private var cameraSenders: [String: NodeID] = [:]
    /// Video streams by id: their camera and description (for the motion monitor).
    private var videoStreams: [MediaStreamID: MediaStreamHeader] = [:]
    /// When the monitor last heard of each camera's video (monotonic ns).
    private var videoNoted: [String: Int64] = [:]

    /// An ingest recording into `store`, answering through `host` (none in tests).
    public init(store: RecordingStore, monitor: MotionMonitor? = nil, alarms: AlarmDispatcher? = nil, live: LiveHub? = nil, host: NetHost?,
                deadline: Duration = .milliseconds(500), logger: Logger) {
        self.store = store
        self.monitor = monitor
        self.alarms = alarms
        self.live = live
        self.host = host
        deadlineNanoseconds = deadline.nanoseconds
        self.logger = logger
    }

    /// Takes deliveries until the host stops, ticking the store four times a second.
    public func run() async {
        guard let host else { return }
        let ticker = Task { [store] in
            while !Task.isCancelled {
                try? await Task.sleep(for: .milliseconds(250))
                await store.tick()
            }
        }
        // A burst is handled in one go; and while the last one was small, the next is gathered
        // for a few milliseconds, so a frame costs a thread wake-up only now and then.
        var iterator = host.messages.makeAsyncIterator()
        while let first = await iterator.next() {
            let batch = [first] + host.messages.drain(upTo: Self.batchLimit - 1)
            await handle(batch.map(\.envelope))
            if batch.count < Self.batchLimit / 4 { try? await Task.sleep(for: Self.gathering) }
        }
        ticker.cancel()
        _ = await ticker.value
        await store.stop()
    }

    /// Asks a camera's agent for a keyframe (a live viewer joined a long GOP), at most once a second.
    public func requestKeyframe(camera: String) async {
        guard let sender = cameraSenders[camera] else { return }
        await askForKeyframe(camera, from: sender)
    }

    private func askForKeyframe(_ camera: String, from sender: NodeID) async {
        let now = CaptureTime.monotonicNow
        guard now - (keyframeAsked[camera] ?? .min / 2) >= 1_000_000_000 else { return }
        keyframeAsked[camera] = now
        report.keyframeRequests += 1
        try? await host?.send(MediaMessage.keyframeRequest(camera: camera).encoded(), to: sender)
    }

    /// Messages handled in one go at most.
    static let batchLimit = 64
    /// How long a quiet ingest waits to gather the next messages.
    static let gathering = Duration.milliseconds(4)

    /// Handles one message for the recorder.
    public func handle(_ envelope: NetEnvelope) async { await handle([envelope]) }

    /// Handles messages in order; runs of frames go to the store in one call.
    public func handle(_ envelopes: [NetEnvelope]) async {
        var frames: [(MediaFrame, NodeID)] = []
        for envelope in envelopes {
            if envelope.route.channel != AlarmMessage.channel, case .frame(let frame)? = try? MediaMessage.decode(envelope.payload) {
                frames.append((frame, envelope.route.from))
                continue
            }
            await record(frames)
            frames.removeAll()
            await handleOther(envelope)
        }
        await record(frames)
    }

    private func record(_ frames: [(MediaFrame, NodeID)]) async {
        guard !frames.isEmpty else { return }
        let taken = await store.take(frames.map(\.0))
        for ((frame, sender), outcome) in zip(frames, taken) { await account(frame, outcome, from: sender) }
    }

    /// A message that is not a frame.
    private func handleOther(_ envelope: NetEnvelope) async {
        if envelope.route.channel == AlarmMessage.channel {
            await alarms?.handle(envelope)
            return
        }
        let message: MediaMessage
        do {
            message = try MediaMessage.decode(envelope.payload)
        } catch {
            report.malformed += 1
            return
        }
        switch message {
        case .header(let header):
            do {
                var header = header
                header.camera = Self.sanitized(header.camera)
                try await store.note(header)
                if header.description.codec == .h264 { videoStreams[header.stream] = header }
                live?.note(header)
            } catch {
                report.storeFailures += 1
                logger.error("cannot record a stream", metadata: ["camera": "\(header.camera)", "reason": "\(error.reason)"])
            }
        case .frame(let frame):
            await account(frame, await store.take(frame), from: envelope.route.from)
        case .inventory(_, let entries):
            report.receipts += 1
            let receipt = await store.receipt(for: entries)
            try? await host?.send(MediaMessage.receipt(receipt).encoded(), to: envelope.route.from, channel: envelope.route.channel)
        case .motion(let camera, let grid):
            report.motionGrids += 1
            await monitor?.take(camera: Self.sanitized(camera), grid: grid)
        case .receipt, .keyframeRequest:
            break
        }
    }

    /// Counts what became of a frame, and asks for a keyframe when the recording needs one.
    private func account(_ frame: MediaFrame, _ taken: RecordingStore.Taken, from sender: NodeID) async {
        let kind = frame.frame.codec.kind
        if kind == .video, !frame.isBackfill, let camera = videoStreams[frame.stream]?.camera { cameraSenders[camera] = sender }
        if let live, !frame.isBackfill {
            switch taken {
            case .unknownStream, .duplicate: break
            default: live.take(frame)
            }
        }
        switch taken {
        case .unknownStream:
            report.withoutHeader += 1
            return
        case .duplicate:
            update(kind) { $0.duplicates += 1 }
            return
        case .failed(let error):
            if report.storeFailures == 0 { logger.error("cannot store frames", metadata: ["reason": "\(error.reason)"]) }
            report.storeFailures += 1
            return
        case .needsKeyframe(let camera):
            // A stream heard of mid-GOP (a recorder that just started, a camera back from an
            // outage): ask its agent for a keyframe, so the live recording resumes now rather
            // than at the next GOP.
            if !frame.isBackfill { await askForKeyframe(camera, from: sender) }
        case .recorded, .paused:
            break
        }
        if frame.isBackfill {
            update(kind) { $0.backfilled += 1 }
        } else {
            if kind == .video, let monitor, let header = videoStreams[frame.stream] {
                let now = CaptureTime.monotonicNow
                if now - (videoNoted[header.camera] ?? .min / 2) >= 1_000_000_000 {
                    videoNoted[header.camera] = now
                    await monitor.noteVideo(camera: header.camera)
                }
                if monitor.wantsVideo(of: header.camera) {
                    monitor.decode(camera: header.camera, frame: frame.frame, description: header.description)
                }
            }
            let latency = CaptureTime.now.nanoseconds(since: frame.frame.captureTime)
            // The percentiles cover the latest samples: a recorder runs for months.
            if latencies[kind, default: []].count >= Self.latencySamples { latencies[kind]!.removeFirst(Self.latencySamples / 2) }
            latencies[kind, default: []].append(latency)
            update(kind) {
                $0.live += 1
                if latency > deadlineNanoseconds { $0.late += 1 }
            }
        }
    }

    /// The node each camera's live video comes from, by camera.
    public func cameraNodes() -> [String: NodeID] { cameraSenders }

    private func update(_ kind: MediaKind, _ change: (inout IngestReport.Kind) -> Void) {
        if kind == .video { change(&report.video) } else { change(&report.audio) }
    }

    /// Camera names become directory names: nothing that climbs out of the root.
    static func sanitized(_ camera: String) -> String {
        let cleaned = String(camera.map { $0.isLetter || $0.isNumber || $0 == "-" || $0 == "_" || $0 == "." ? $0 : "_" })
            .trimmingCharacters(in: ["."])
        return cleaned.isEmpty ? "camera" : cleaned
    }

    /// The report so far, with latency percentiles of live frames.
    public func currentReport() async -> IngestReport {
        var result = report
        for kind in [MediaKind.video, .audio] {
            let sorted = (latencies[kind] ?? []).sorted()
            guard !sorted.isEmpty else { continue }
            func percentile(_ fraction: Double) -> Double {
                Double(sorted[min(sorted.count - 1, Int(Double(sorted.count - 1) * fraction))]) / 1e6
            }
            let set = { (value: inout IngestReport.Kind) in
                value.latencyP50Milliseconds = percentile(0.5)
                value.latencyP99Milliseconds = percentile(0.99)
                value.latencyMaxMilliseconds = Double(sorted.last!) / 1e6
            }
            if kind == .video { set(&result.video) } else { set(&result.audio) }
        }
        result.streams = await store.streamCount
        result.store = await store.currentReport()
        return result
    }
}
