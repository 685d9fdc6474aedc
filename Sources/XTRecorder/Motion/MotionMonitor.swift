// The recorder's motion events: grids from each camera (its agent's, or the recorder's own
// decoding) go through the camera's `MotionEvaluator`; an event that starts is saved in the
// index with its clip (pre-roll before, post-roll after) and a JPEG snapshot of the picture
// that set it off, and handed to whoever listens (the alarms); an event that ends is closed.
import Foundation
public import Logging
public import XTMedia

/// What the motion monitor has done.
public struct MotionReport: Sendable, Codable, Equatable {
    public var grids = 0
    public var eventsStarted = 0
    public var eventsEnded = 0
    public var snapshots = 0
    public var snapshotFailures = 0
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

    /// A monitor using `settings` per camera and `defaults` for the rest.
    public init(store: RecordingStore, defaults: MotionSettings = MotionSettings(), settings: [String: MotionSettings] = [:], logger: Logger) {
        self.store = store
        self.defaults = defaults
        cameraSettings = settings
        self.logger = logger
    }

    /// Calls `listener` for every event that starts (`true`) or ends (`false`).
    public func listen(_ listener: @escaping @Sendable (EventRecord, _ started: Bool) async -> Void) {
        listeners.append(listener)
    }

    /// Closes events a recorder that stopped uncleanly left open (at their last peak).
    public func recover() async {
        do {
            for var event in try await store.index.openEvents() {
                event.end = event.peakTime
                event.clipEnd = event.peakTime + settings(for: event.camera).postRoll.nanoseconds
                _ = try await store.index.saveEvent(event)
            }
        } catch {
            logger.error("cannot close the events an unclean stop left open", metadata: ["reason": "\(error.reason)"])
        }
    }

    func settings(for camera: String) -> MotionSettings { cameraSettings[camera] ?? defaults }

    /// Takes one grid of `camera`.
    public func take(camera: String, grid: MotionGrid) async {
        report.grids += 1
        let evaluator = evaluators[camera] ?? MotionEvaluator(camera: camera, settings: settings(for: camera))
        evaluators[camera] = evaluator
        for change in evaluator.take(grid) { await apply(change) }
    }

    /// Ends every open event (the recorder is stopping).
    public func finish() async {
        for evaluator in evaluators.values {
            for change in evaluator.finish() { await apply(change) }
        }
    }

    /// The report so far.
    public func currentReport() -> MotionReport { report }

    private func apply(_ change: MotionEvaluator.Change) async {
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
                if let snapshot = await snapshot(record) {
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

    /// Decodes the live picture nearest the event's peak and writes it as
    /// `<camera>/events/<date>/<id>.jpg`; returns that path.
    private func snapshot(_ event: EventRecord) async -> String? {
        guard let id = event.id, let (description, frames) = await store.recentVideo(camera: event.camera, at: event.peakTime) else {
            report.snapshotFailures += 1
            return nil
        }
        do {
            let decoder = try VideoDecoder(codec: .h264)
            var picture: VideoFrame?
            for frame in frames {
                let data = frame.isKeyframe && !description.configuration.isEmpty && H264Bitstream.parameterSets(frame.data).isEmpty
                    ? description.configuration + frame.data : frame.data
                if let decoded = decoder.decode(data, captureTime: frame.captureTime).last { picture = decoded }
            }
            if let last = decoder.flush().last { picture = last }
            guard let picture else { throw MediaError.codecFailed("no picture decoded") }
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
