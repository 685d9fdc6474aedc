// The recorder's motion events: grids from each camera (its agent's, or — for a camera whose
// agent sends none, such as one that passes its camera's H.264 through — the recorder's own
// decoding of its live video) go through the camera's `MotionEvaluator`; an event that starts is saved in the
// index with its clip (pre-roll before, post-roll after) and a JPEG snapshot of the picture
// that set it off, and handed to whoever listens (the alarms); an event that ends is closed.
import Foundation
public import Logging
import Synchronization
public import XTMedia

/// What the motion monitor has done.
public struct MotionReport: Sendable, Codable, Equatable {
    public var grids = 0
    public var eventsStarted = 0
    public var eventsEnded = 0
    public var snapshots = 0
    public var snapshotFailures = 0
    /// Cameras whose video the recorder decodes for motion, and what that cost.
    public var decodedCameras = 0
    public var decodedPictures = 0
    public var analysedPictures = 0
    /// Video dropped because decoding fell behind.
    public var decodeDropped = 0
}

/// Motion events of every camera.
public actor MotionMonitor {
    public let store: RecordingStore
    private let defaults: MotionSettings
    private let cameraSettings: [String: MotionSettings]
    private let logger: Logger
    private var evaluators: [String: MotionEvaluator] = [:]
    /// Open events by camera and zone, as saved.
    private var open: [String: [String: EventRecord]] = [:]
    private var report = MotionReport()
    private var listeners: [@Sendable (EventRecord, _ started: Bool) async -> Void] = []
    private var encoder: JPEGEncoder?

    /// When each camera's last grid (from anywhere) came (monotonic).
    private var lastGrid: [String: Int64] = [:]

    /// Ends the events of cameras that went quiet (no grids for their cooldown): a camera
    /// that stops still gets its event ended, and its subscribers their alarm. Call about
    /// once a second.
    public func tick() async {
        let now = CaptureTime.monotonicNow
        for (camera, last) in lastGrid where now - last >= settings(for: camera).cooldown.nanoseconds + 1_000_000_000 {
            lastGrid.removeValue(forKey: camera)
            guard let evaluator = evaluators[camera] else { continue }
            for change in evaluator.finish() { await apply(change, picture: nil) }
        }
    }

    /// Cameras whose live video goes to a decoder here, and the queue into each.
    private let decoding = Mutex<[String: AsyncStream<(EncodedFrame, StreamDescription)>.Continuation]>([:])
    private var decoderTasks: [String: Task<Void, Never>] = [:]
    /// When each camera's agent last sent a grid, and when its video was first noticed (monotonic).
    private var lastAgentGrid: [String: Int64] = [:]
    private var videoSince: [String: Int64] = [:]
    /// An agent silent about motion for this long has the recorder detect for it.
    private let agentSilence: Int64
    /// Frames waiting per decoder (three seconds at 30 fps) before new ones are dropped.
    private let decodeQueue: Int
    /// Pictures analysed per second when the recorder decodes.
    public static let decodedAnalysisRate = 10

    /// A monitor using `settings` per camera and `defaults` for the rest.
    public init(store: RecordingStore, defaults: MotionSettings = MotionSettings(), settings: [String: MotionSettings] = [:],
                agentSilence: Duration = .seconds(3), decodeQueue: Int = 90, logger: Logger) {
        self.store = store
        self.decodeQueue = decodeQueue
        self.agentSilence = agentSilence.nanoseconds
        self.defaults = defaults
        cameraSettings = settings
        self.logger = logger
    }

    /// Calls `listener` for every event that starts (`true`) or ends (`false`).
    public func listen(_ listener: @escaping @Sendable (EventRecord, _ started: Bool) async -> Void) {
        listeners.append(listener)
    }

    /// Closes events a recorder that stopped uncleanly left open (at their last peak), and
    /// tells the listeners they ended.
    public func recover() async {
        do {
            for var event in try await store.index.openEvents() {
                event.end = event.peakTime
                event.clipEnd = event.peakTime + settings(for: event.camera).postRoll.nanoseconds
                let saved = try await store.index.saveEvent(event)
                for listener in listeners { await listener(saved, false) }
            }
        } catch {
            logger.error("cannot close the events an unclean stop left open", metadata: ["reason": "\(error.reason)"])
        }
    }

    /// A camera's settings, with detection on or off as last switched (``setDetection(camera:on:)``).
    func settings(for camera: String) -> MotionSettings {
        var settings = cameraSettings[camera] ?? defaults
        if let on = switched[camera] { settings.enabled = on }
        return settings
    }

    /// Detection switched on or off at run time (MQTT's `CAMERA/motion/set`), by camera; a
    /// restart goes back to the settings, as Frigate's switches do.
    private var switched: [String: Bool] = [:]

    /// Whether motion of `camera` is detected now.
    public func detects(_ camera: String) -> Bool { settings(for: camera).enabled }

    /// Turns motion detection of `camera` on or off; off ends its open events (their
    /// listeners hear of it) and stops decoding its video. Returns the state now.
    @discardableResult
    public func setDetection(camera: String, on: Bool) async -> Bool {
        guard detects(camera) != on else { return on }
        switched[camera] = on
        if let evaluator = evaluators.removeValue(forKey: camera) {
            for change in evaluator.finish() { await apply(change, picture: nil) }
        }
        if !on, decoding.withLock({ $0[camera] != nil }) { stopDecoding(camera) }
        logger.info("motion detection turned \(on ? "on" : "off")", metadata: ["camera": "\(camera)"])
        return on
    }

    /// Takes one grid of `camera` from its agent.
    public func take(camera: String, grid: MotionGrid) async {
        lastAgentGrid[camera] = CaptureTime.monotonicNow
        if decoding.withLock({ $0[camera] != nil }) { stopDecoding(camera) }
        await evaluate(camera: camera, grid: grid, picture: nil)
    }

    /// `picture`: the decoded picture the grid came from, when the recorder decoded it.
    private func evaluate(camera: String, grid: MotionGrid, picture: VideoFrame?) async {
        report.grids += 1
        lastGrid[camera] = CaptureTime.monotonicNow
        let evaluator = evaluators[camera] ?? MotionEvaluator(camera: camera, settings: settings(for: camera))
        evaluators[camera] = evaluator
        for change in evaluator.take(grid) { await apply(change, picture: picture) }
    }

    // MARK: decoding for cameras without grids

    /// Whether `camera`'s live video should be handed to ``decode(camera:frame:description:)``.
    public nonisolated func wantsVideo(of camera: String) -> Bool { decoding.withLock { $0[camera] != nil } }

    /// Tells the monitor `camera` is sending live video (the ingest calls it about once a
    /// second per camera): a camera whose agent sends no grids gets a decoder here.
    public func noteVideo(camera: String) {
        let now = CaptureTime.monotonicNow
        let since = videoSince[camera] ?? now
        videoSince[camera] = since
        let silent = now - (lastAgentGrid[camera] ?? since) >= agentSilence
        guard silent, settings(for: camera).enabled, decoding.withLock({ $0[camera] == nil }) else { return }
        startDecoding(camera)
    }

    /// Queues one live video frame of a camera the recorder decodes for; a frame that finds
    /// the queue full is dropped (the decoder picks up again at the next keyframe).
    public nonisolated func decode(camera: String, frame: EncodedFrame, description: StreamDescription) {
        let result = decoding.withLock { $0[camera]?.yield((frame, description)) }
        if case .dropped? = result { Task { await self.noteDropped() } }
    }

    private func noteDropped() { report.decodeDropped += 1 }

    private func startDecoding(_ camera: String) {
        let (frames, continuation) = AsyncStream<(EncodedFrame, StreamDescription)>.makeStream(bufferingPolicy: .bufferingOldest(decodeQueue))
        decoding.withLock { $0[camera] = continuation }
        report.decodedCameras += 1
        logger.info("the camera's agent sends no motion grids: the recorder decodes its video to detect motion", metadata: ["camera": "\(camera)"])
        // Detached: decoding is heavy, and cameras decode in parallel, off the monitor.
        decoderTasks[camera] = Task.detached { [weak self] in
            var decoder: VideoDecoder?
            let detector = MotionDetector()
            var lastAnalysis = Int64.min / 2
            var waitingForKeyframe = true
            let interval = 1_000_000_000 / Int64(Self.decodedAnalysisRate)
            for await (frame, description) in frames {
                if waitingForKeyframe && !frame.isKeyframe { continue }
                waitingForKeyframe = false
                if decoder == nil { decoder = try? VideoDecoder(codec: .h264, fast: true) }
                guard let decoder else { return }
                let data = frame.isKeyframe && H264Bitstream.parameterSets(frame.data).isEmpty ? description.configuration + frame.data : frame.data
                let pictures = decoder.decode(data, captureTime: frame.presentationTime)
                var grids: [(MotionGrid, VideoFrame)] = []
                for picture in pictures where picture.captureTime.nanoseconds - lastAnalysis >= interval - 5_000_000 {
                    lastAnalysis = picture.captureTime.nanoseconds
                    grids.append((detector.analyze(picture), picture))
                }
                await self?.decoded(camera: camera, pictures: pictures.count, grids: grids)
            }
        }
    }

    private func decoded(camera: String, pictures: Int, grids: [(MotionGrid, VideoFrame)]) async {
        report.decodedPictures += pictures
        report.analysedPictures += grids.count
        for (grid, picture) in grids { await evaluate(camera: camera, grid: grid, picture: picture) }
    }

    private func stopDecoding(_ camera: String) {
        decoding.withLock { $0.removeValue(forKey: camera) }?.finish()
        decoderTasks.removeValue(forKey: camera)
        guard detects(camera) else { return }
        logger.info("the camera's agent sends motion grids again: the recorder stops decoding its video", metadata: ["camera": "\(camera)"])
    }

    /// Waits until the decoders have analysed what they were given (tests, and stopping).
    public func drain() async {
        let tasks = decoding.withLock { queues in
            let all = queues
            queues.removeAll()
            return all
        }
        for (_, continuation) in tasks { continuation.finish() }
        for task in decoderTasks.values { await task.value }
        decoderTasks.removeAll()
    }

    /// Ends every open event (the recorder is stopping).
    public func finish() async {
        await drain()
        for evaluator in evaluators.values {
            for change in evaluator.finish() { await apply(change, picture: nil) }
        }
    }

    /// The report so far.
    public func currentReport() -> MotionReport { report }

    private func apply(_ change: MotionEvaluator.Change, picture: VideoFrame?) async {
        let camera: String
        switch change {
        case .started(let event), .ended(let event): camera = event.camera
        }
        let settings = settings(for: camera)
        do {
            switch change {
            case .started(let event):
                var record = EventRecord(camera: event.camera, zone: event.zone, start: event.start,
                                         clipStart: event.start - settings.preRoll.nanoseconds, peakTime: event.peakTime,
                                         peakScore: event.peakScore)
                record = try await store.index.saveEvent(record)
                if let snapshot = await snapshot(record, picture: picture) {
                    record.snapshot = snapshot
                    record = try await store.index.saveEvent(record)
                }
                open[event.camera, default: [:]][event.zone] = record
                report.eventsStarted += 1
                logger.info("motion", metadata: ["camera": "\(event.camera)", "zone": "\(event.zone)", "event": "\(record.id ?? 0)",
                                                 "from": "\(CaptureTime(nanoseconds: event.start))"])
                for listener in listeners { await listener(record, true) }
            case .ended(let event):
                guard var record = open[event.camera]?.removeValue(forKey: event.zone) else { return }
                record.end = event.end
                record.clipEnd = (event.end ?? event.start) + settings.postRoll.nanoseconds
                record.peakTime = event.peakTime
                record.peakScore = event.peakScore
                record = try await store.index.saveEvent(record)
                report.eventsEnded += 1
                for listener in listeners { await listener(record, false) }
            }
        } catch {
            logger.error("cannot save a motion event", metadata: ["reason": "\(error.reason)"])
        }
    }

    /// Writes the picture at the event's peak (`decoded`, or else decoded from the live video
    /// the store keeps) as `<camera>/events/<date>/<id>.jpg`; returns that path.
    private func snapshot(_ event: EventRecord, picture decoded: VideoFrame?) async -> String? {
        guard let id = event.id else { return nil }
        do {
            var picture = decoded
            if picture == nil, let (description, frames) = await store.recentVideo(camera: event.camera, at: event.peakTime) {
                let decoder = try VideoDecoder(codec: .h264)
                for frame in frames {
                    let data = frame.isKeyframe && !description.configuration.isEmpty && H264Bitstream.parameterSets(frame.data).isEmpty
                        ? description.configuration + frame.data : frame.data
                    if let decoded = decoder.decode(data, captureTime: frame.presentationTime).last { picture = decoded }
                }
                if let last = decoder.flush().last { picture = last }
            }
            guard let picture else { throw MediaError.codecFailed("no live picture of the camera is at hand") }
            if encoder == nil { encoder = try JPEGEncoder() }
            let jpeg = try encoder!.encode(picture)
            let day = String(SegmentFile.relativePath(camera: event.camera, start: event.peakTime).split(separator: "/")[1])
            let relative = "\(event.camera)/events/\(day)/\(id).jpg"
            let path = (store.root as NSString).appendingPathComponent(relative)
            try FileManager.default.createDirectory(atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
            try Data(jpeg).write(to: URL(fileURLWithPath: path))
            report.snapshots += 1
            return relative
        } catch {
            report.snapshotFailures += 1
            logger.warning("cannot take an event snapshot", metadata: ["camera": "\(event.camera)", "reason": "\(error)"])
            return nil
        }
    }
}
