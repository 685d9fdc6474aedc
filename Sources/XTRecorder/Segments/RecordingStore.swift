// The recorder's storage: every camera's segments under the storage root and the index that
// lists them. Frames come in (live and backfilled) and go to their camera; every tick the
// index learns what reached the disk, and frames waiting in fill journals are moved into
// place on the timeline. At start-up, what an unclean stop left is repaired first.
import Foundation
public import Logging
public import XTMedia

/// Counts of what the store did, for reports and metrics.
public struct StoreReport: Sendable, Codable, Equatable {
    public var segmentsOpened = 0
    public var segmentsFilled = 0
    /// Frames moved from fill journals into segments.
    public var framesFilled = 0
    /// Frames that could never be decoded (video with no keyframe before it anywhere).
    public var framesUndecodable = 0
    public var framesDuplicate = 0
    /// Frames of cameras whose recording was switched off (not written; counted as held).
    public var framesPaused = 0
    public var writeFailures = 0
    /// Segments repaired at start-up (a torn last fragment cut off).
    public var segmentsRepaired = 0
}

/// What a camera sent over a stretch of time.
public struct CameraTraffic: Sendable, Equatable {
    public var videoFrames = 0
    public var bytes = 0
    /// Media time that came by backfill (video frames' durations, or audio's without video).
    public var backfilledNanoseconds: Int64 = 0
}

/// Segments and index of every camera.
public actor RecordingStore {
    public let root: String
    public let index: any RecorderIndex
    public let settings: SegmentSettings
    let logger: Logger

    struct StreamState {
        var header: MediaStreamHeader
        /// Held (written, staged, or in a fragment not yet on disk).
        var received = SequenceSet()
        /// On disk.
        var durable = SequenceSet()
        var dirty = true
    }

    private var streams: [MediaStreamID: StreamState] = [:]
    private var cameras: [String: CameraRecorder] = [:]
    private var cameraSeen: [String: (first: Int64, last: Int64)] = [:]
    private var savedCameras: Set<String> = []
    private(set) var report = StoreReport()
    private var ticking = false
    private var lastCamerasSaved: Int64 = .min / 2
    /// What each camera sent since metrics last asked.
    private var traffic: [String: CameraTraffic] = [:]
    private var unplaceable: [String: FillState] = [:]
    private var indexFailing = false
    /// A write failed for want of space: retention frees some at the next tick.
    var needsSpace = false
    /// What is kept how long.
    public let retention: RetentionPolicy
    var retentionReport = RetentionReport()
    private var lastRetention: Int64 = .min / 2

    /// Opens the storage root and its index, repairing what an unclean stop left.
    /// - Throws: ``StorageError`` when the root cannot be used or the index cannot be opened.
    public static func open(root: String, index: (any RecorderIndex)? = nil, settings: SegmentSettings = SegmentSettings(),
                            retention: RetentionPolicy = RetentionPolicy(), logger: Logger) async throws(StorageError) -> RecordingStore {
        try prepareRoot(root)
        let chosen: any RecorderIndex
        if let index { chosen = index } else { chosen = try SQLiteIndex(path: defaultIndexPath(root: root)) }
        let store = RecordingStore(root: root, index: chosen, settings: settings, retention: retention, logger: logger)
        try await store.recover()
        return store
    }

    /// `<root>/index.sqlite`.
    public static func defaultIndexPath(root: String) -> String { (root as NSString).appendingPathComponent("index.sqlite") }

    /// Creates the storage root if needed and checks it can be written.
    /// - Throws: ``StorageError`` (``StorageError/Code/storageRoot``) saying what is wrong with it.
    public static func prepareRoot(_ root: String) throws(StorageError) {
        var isDirectory: ObjCBool = false
        if FileManager.default.fileExists(atPath: root, isDirectory: &isDirectory), !isDirectory.boolValue {
            throw .storageRoot("the storage root \(root) is a file, not a directory: choose another --storage")
        }
        do {
            try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
        } catch {
            throw .storageRoot("the storage root \(root) cannot be created (\(error.localizedDescription)): choose another --storage or fix its permissions")
        }
        guard FileManager.default.isWritableFile(atPath: root) else {
            throw .storageRoot("the storage root \(root) is not writable: choose another --storage or fix its permissions")
        }
    }

    private init(root: String, index: any RecorderIndex, settings: SegmentSettings, retention: RetentionPolicy, logger: Logger) {
        self.root = root
        self.index = index
        self.settings = settings
        self.retention = retention
        self.logger = logger
    }

    private func absolute(_ relative: String) -> String { (root as NSString).appendingPathComponent(relative) }
    private var temporaryDirectory: String { absolute(".tmp") }

    // MARK: start-up

    private func recover() async throws(StorageError) {
        // Rewrites whose index switch committed but whose files were not yet renamed.
        let moves = try await index.pendingMoves()
        for move in moves where FileManager.default.fileExists(atPath: absolute(move.from)) {
            try? FileManager.default.createDirectory(atPath: (absolute(move.to) as NSString).deletingLastPathComponent,
                                                     withIntermediateDirectories: true)
            rename(absolute(move.from), absolute(move.to))
        }
        try await index.completeMoves(moves)
        // Anything else written aside belongs to a rewrite that never committed.
        try? FileManager.default.removeItem(atPath: temporaryDirectory)
        try? FileManager.default.createDirectory(atPath: temporaryDirectory, withIntermediateDirectories: true)

        // Segments a crash left open: cut the torn fragment, record what is whole.
        for segment in try await index.openSegments() {
            let path = absolute(segment.path)
            guard let structure = try? FragmentedMP4.repair(path), structure.fragments > 0,
                  let contents = try? SegmentFile.read(path, withData: false), !contents.frames.isEmpty else {
                unlink(path)
                try await index.deleteSegments([segment.path])
                logger.warning("removed an empty segment an unclean stop left", metadata: ["segment": "\(segment.path)"])
                continue
            }
            var repaired = segment
            repaired.end = contents.end
            repaired.videoFrames = contents.videoFrames
            repaired.audioFrames = contents.audioFrames
            repaired.bytes = Int64(structure.completeLength)
            repaired.isOpen = false
            try await index.saveSegment(repaired)
            report.segmentsRepaired += 1
            logger.notice("repaired a segment an unclean stop left", metadata: [
                "segment": "\(segment.path)", "seconds": "\(repaired.seconds)",
                "cut bytes": "\(structure.fileLength - structure.completeLength)",
            ])
        }

        for record in try await index.streams() {
            guard case .header(let header)? = try? MediaMessage.decode(record.header) else { continue }
            let held = SequenceSet(record.received)
            streams[header.stream] = StreamState(header: header, received: held, durable: held, dirty: false)
        }
        // Frames still waiting in fill journals.
        for name in (try? FileManager.default.contentsOfDirectory(atPath: root)) ?? []
        where FileManager.default.fileExists(atPath: (absolute(name) as NSString).appendingPathComponent("fill.xtm")) {
            let camera = try recorder(for: name)
            for header in camera.fill.streamHeaders where streams[header.stream] == nil {
                streams[header.stream] = StreamState(header: header)
            }
            for entry in camera.fill.entries {
                streams[entry.stream]?.received.insert(entry.sequence)
                streams[entry.stream]?.durable.insert(entry.sequence)
            }
        }
        for camera in try await index.cameras() { savedCameras.insert(camera.name) }
        // Retention deletes files before rows: rows a crash left between point at nothing.
        for use in try await index.storageUse() {
            let oldest = try await index.oldestSegments(camera: use.camera, limit: 20)
            let missing = oldest.prefix { !FileManager.default.fileExists(atPath: absolute($0.path)) }
            if !missing.isEmpty { try await index.deleteSegments(missing.map(\.path)) }
        }
    }

    private func recorder(for name: String) throws(StorageError) -> CameraRecorder {
        if let camera = cameras[name] { return camera }
        let camera = try CameraRecorder(name: name, root: root, settings: settings, logger: logger)
        cameras[name] = camera
        return camera
    }

    // MARK: frames in

    /// Streams known (from the index, the fill journals, or heard of since).
    public var streamCount: Int { streams.count }

    /// Whether a stream's header is known.
    public func knows(_ stream: MediaStreamID) -> Bool { streams[stream] != nil }

    /// Learns a stream's header (sent before its keyframes and every second).
    public func note(_ header: MediaStreamHeader) throws(StorageError) {
        let camera = try recorder(for: header.camera)
        if streams[header.stream] == nil {
            streams[header.stream] = StreamState(header: header)
            logger.info("new stream", metadata: ["camera": "\(header.camera)", "codec": "\(header.description.codec)", "stream": "\(header.stream)"])
        }
        camera.note(header)
    }

    /// What happened to a frame handed to ``take(_:)``.
    public enum Taken: Sendable, Equatable {
        case recorded
        /// Held already.
        case duplicate
        /// Its stream's header has not come yet.
        case unknownStream
        /// Recorded; the live recording waits for a keyframe of this camera.
        case needsKeyframe(camera: String)
        /// Not written: the camera's recording is switched off (``setRecording(camera:on:)``).
        case paused
        case failed(StorageError)
    }

    /// Records frames in order (one call for a burst: fewer hops between threads).
    public func take(_ frames: [MediaFrame]) -> [Taken] { frames.map { take($0) } }

    /// Records one frame.
    public func take(_ frame: MediaFrame) -> Taken {
        guard var state = streams[frame.stream] else { return .unknownStream }
        if state.received.contains(frame.sequence) {
            report.framesDuplicate += 1
            return .duplicate
        }
        if paused.contains(state.header.camera) {
            // Held, so that the agent does not send it again once recording is back on.
            state.received.insert(frame.sequence)
            streams[frame.stream] = state
            report.framesPaused += 1
            cameras[state.header.camera]?.keep(frame, header: state.header)
            var sent = traffic[state.header.camera] ?? CameraTraffic()
            sent.bytes += frame.frame.data.count
            if frame.frame.codec == .h264 { sent.videoFrames += 1 }
            traffic[state.header.camera] = sent
            return .paused
        }
        let camera: CameraRecorder
        do { camera = try recorder(for: state.header.camera) } catch { return .failed(error) }
        let outcome = camera.take(frame, header: state.header)
        let time = frame.frame.captureTime.nanoseconds
        let seen = cameraSeen[camera.name]
        cameraSeen[camera.name] = (min(seen?.first ?? time, time), max(seen?.last ?? time, time))
        switch outcome {
        case .failed(let error):
            report.writeFailures += 1
            if error.code == .diskFull {
                needsSpace = true
                retentionReport.diskFull += 1
            }
            absorb(camera)
            return .failed(error)
        case .written, .staged, .stagedAwaitingKeyframe:
            state.received.insert(frame.sequence)
            streams[frame.stream] = state
            var sent = traffic[camera.name] ?? CameraTraffic()
            sent.bytes += frame.frame.data.count
            if frame.frame.codec == .h264 { sent.videoFrames += 1 }
            if frame.isBackfill, frame.frame.codec == .h264 || camera.headers[.video] == nil { sent.backfilledNanoseconds += frame.frame.duration }
            traffic[camera.name] = sent
            absorb(camera)
            return outcome == .stagedAwaitingKeyframe ? .needsKeyframe(camera: camera.name) : .recorded
        }
    }

    /// Cameras whose recording is switched off (MQTT's `CAMERA/recordings/set`). Run-time
    /// only: a restart records every camera again, as Frigate's switch does.
    private var paused: Set<String> = []

    /// Whether `camera`'s frames are recorded now.
    public func records(_ camera: String) -> Bool { !paused.contains(camera) }

    /// Switches recording of `camera` on or off. Off closes its open segment; its frames are
    /// then answered as held (the agent's ring does not backfill them) but not written, and
    /// still reach the live view and motion. Returns the state now.
    @discardableResult
    public func setRecording(camera: String, on: Bool) -> Bool {
        guard records(camera) != on else { return on }
        if on {
            paused.remove(camera)
        } else {
            paused.insert(camera)
            if let recorder = cameras[camera] {
                recorder.closeAll()
                absorb(recorder)
            }
        }
        logger.info("recording turned \(on ? "on" : "off")", metadata: ["camera": "\(camera)"])
        return on
    }

    /// The cameras this store has heard of (now or in the index), by name.
    public func knownCameras() async -> [String] {
        let indexed = (try? await index.cameras().map(\.name)) ?? []
        return Array(Set(indexed).union(cameras.keys)).sorted()
    }

    /// Moves a camera's news about durable and lost frames into the stream states.
    private func absorb(_ camera: CameraRecorder) {
        report.segmentsOpened += camera.segmentsOpened
        camera.segmentsOpened = 0
        for (stream, sequence) in camera.madeDurable {
            streams[stream]?.durable.insert(sequence)
            streams[stream]?.dirty = true
        }
        camera.madeDurable.removeAll(keepingCapacity: true)
        for (stream, sequence) in camera.lost {
            streams[stream]?.received.remove(sequence)
            streams[stream]?.durable.remove(sequence)
        }
        camera.lost.removeAll()
    }

    /// Which frames of each stream are held, for an agent's inventory.
    public func receipt(for entries: [InventoryEntry]) -> [ReceiptEntry] {
        entries.map { entry in
            let held = streams[entry.header.stream]?.received.ranges ?? []
            // Only what overlaps the agent's ring matters to it.
            return ReceiptEntry(stream: entry.header.stream, ranges: held.filter { $0.upperBound >= entry.first && $0.lowerBound <= entry.last })
        }
    }

    /// The live video of a camera needed to show the picture captured at `time`: from the
    /// keyframe before it to the frame nearest it (empty when the store has none so recent).
    public func recentVideo(camera: String, at time: Int64) -> (description: StreamDescription, frames: [EncodedFrame])? {
        guard let recorder = cameras[camera], let description = recorder.recentVideoDescription else { return nil }
        let frames = recorder.recentVideo.prefix { $0.captureTime.nanoseconds <= time + 20_000_000 }
        guard frames.first?.isKeyframe == true else { return nil }
        return (description, Array(frames))
    }

    /// The camera a stream belongs to.
    public func camera(of stream: MediaStreamID) -> String? { streams[stream]?.header.camera }

    /// The description of a stream, as known.
    public func header(of stream: MediaStreamID) -> MediaStreamHeader? { streams[stream]?.header }

    /// The current report.
    public func currentReport() -> StoreReport { report }

    /// What each camera sent since the last call (for rates).
    public func takeTraffic() -> [String: CameraTraffic] {
        defer { traffic.removeAll(keepingCapacity: true) }
        return traffic
    }

    /// What retention has done, and the disk.
    public func currentRetention() -> RetentionReport { retentionReport }

    // MARK: ticks

    /// Flushes due fragments, tells the index what reached the disk, and fills in waiting
    /// frames. Called about four times a second; `force` fills everything in (stopping).
    public func tick(force: Bool = false) async {
        guard !ticking else { return }
        ticking = true
        defer { ticking = false }
        for camera in cameras.values {
            camera.tick()
            absorb(camera)
        }
        await saveIndexUpdates()
        let now = CaptureTime.monotonicNow
        if needsSpace || now - lastRetention >= retention.interval.nanoseconds {
            lastRetention = now
            await applyRetention()
        }
        for camera in cameras.values.sorted(by: { $0.name < $1.name }) { await fillPass(camera, force: force) }
        await saveIndexUpdates(force: force)
    }

    /// Tells the index what changed, in one transaction. What it cannot take (a full disk)
    /// stays queued for the next tick.
    private func saveIndexUpdates(force: Bool = false) async {
        let now = CaptureTime.monotonicNow
        // Cameras' last-seen times need not be exact to the tick.
        let seenDue = force || now - lastCamerasSaved >= 5_000_000_000
        var cameraRecords: [CameraRecord] = []
        if seenDue || cameraSeen.keys.contains(where: { !savedCameras.contains($0) }) {
            for (name, seen) in cameraSeen {
                let header = { (kind: MediaKind) in self.cameras[name]?.headers[kind].map { Self.summary($0.description) } }
                cameraRecords.append(CameraRecord(name: name, firstSeen: seen.first, lastSeen: seen.last, video: header(.video), audio: header(.audio)))
            }
        }
        var segmentRecords: [SegmentRecord] = []
        for camera in cameras.values { segmentRecords += camera.segmentUpdates.values }
        segmentRecords.sort { $0.start < $1.start }
        var streamRecords: [StreamRecord] = []
        for (id, state) in streams where state.dirty {
            streamRecords.append(StreamRecord(stream: id.value, camera: state.header.camera, kind: state.header.description.codec.kind.description,
                                              header: MediaMessage.header(state.header).encoded(), received: state.durable.ranges))
            streams[id]?.dirty = false
        }
        do throws(StorageError) {
            do {
                try await index.save(cameras: cameraRecords, segments: segmentRecords, streams: streamRecords)
            } catch {
                for record in streamRecords { streams[MediaStreamID(record.stream)]?.dirty = true }
                throw error
            }
            if !cameraRecords.isEmpty {
                lastCamerasSaved = now
                for record in cameraRecords {
                    savedCameras.insert(record.name)
                    if let seen = cameraSeen[record.name], seen.first == record.firstSeen, seen.last == record.lastSeen {
                        cameraSeen.removeValue(forKey: record.name)
                    }
                }
            }
            // A newer state that came meanwhile stays queued.
            for segment in segmentRecords {
                if let camera = cameras[segment.camera], camera.segmentUpdates[segment.path] == segment {
                    camera.segmentUpdates.removeValue(forKey: segment.path)
                }
            }
            for camera in cameras.values where !camera.removedSegments.isEmpty {
                let removed = camera.removedSegments
                try await index.deleteSegments(removed)
                camera.removedSegments.removeAll { removed.contains($0) }
            }
            indexFailing = false
        } catch {
            if !indexFailing { logger.error("cannot update the index; retrying every tick", metadata: ["reason": "\(error.reason)"]) }
            indexFailing = true
            if error.code == .diskFull || error.reason.contains("full") { needsSpace = true }
        }
    }

    /// Marks a video summary whose H.264 browsers cannot play.
    static let unplayableMark = ", not playable in browsers"

    /// "H.264 640x360@30", "H.264 High 4:2:2 1920x1080@25, not playable in browsers", "Opus 48000 Hz 1 ch".
    static func summary(_ description: StreamDescription) -> String {
        guard description.codec == .h264 else { return "Opus \(description.sampleRate) Hz \(description.channels) ch" }
        let size = "\(description.width)x\(description.height)@\(description.frameRate)"
        guard !description.isBrowserPlayable, let profile = description.h264Profile else { return "H.264 \(size)" }
        return "H.264 \(H264StreamShape.profileName(profile)) \(size)\(unplayableMark)"
    }

    /// Closes every live segment and fills in all waiting frames (the recorder is stopping).
    public func stop() async {
        for camera in cameras.values {
            camera.closeAll()
            absorb(camera)
        }
        await tick(force: true)
    }

    // MARK: filling in

    /// A run of waiting frames and the segment they continue (nil: they start their own).
    struct FillUnit {
        var owner: SegmentRecord?
        var frames: [MediaFrame] = []
        var entries: [FillJournal.Entry] = []
        var reach: Int64
        var video: StreamDescription?
        var audio: StreamDescription?
        /// Audio-only segments within its reach, merged into it.
        var absorbed: [SegmentRecord] = []
    }

    /// Frames within this much of a segment's end continue it.
    static let continuation: Int64 = 2_000_000_000

    private func fillPass(_ camera: CameraRecorder, force: Bool) async {
        let journal = camera.fill
        guard !journal.entries.isEmpty else { return }
        let quiet = CaptureTime.monotonicNow - journal.lastAdded >= settings.fillSettle.nanoseconds
        guard force || quiet || journal.bytes >= settings.fillBytes else { return }
        // Frames that could not be placed last time wait for news (more frames, a closed segment).
        let state = FillState(entries: journal.entries.count, lastAdded: journal.lastAdded, liveFrom: camera.liveFrom)
        guard force || unplaceable[camera.name] != state else { return }
        // Frames that belong to a segment still being written wait until it closes.
        let liveFrom = camera.liveFrom
        var waiting = journal.entries.filter { liveFrom == nil || $0.captureTime.nanoseconds < liveFrom! }
        guard !waiting.isEmpty else { return }
        waiting.sort { $0.captureTime < $1.captureTime }
        let first = waiting.first!.captureTime.nanoseconds, last = waiting.last!.captureTime.nanoseconds
        let segments: [SegmentRecord]
        do {
            segments = try await index.segments(camera: camera.name, from: first - Self.continuation, to: last).filter { !$0.isOpen }
        } catch {
            logger.error("cannot fill in frames", metadata: ["camera": "\(camera.name)", "reason": "\(error.reason)"])
            return
        }
        var units: [FillUnit] = []
        for entry in waiting {
            guard let frame = journal.frame(entry), let header = journal.header(entry.stream) else { continue }
            let time = entry.captureTime.nanoseconds
            // Video continues a segment with video; an audio-only segment on the way is merged.
            let owner = segments.last {
                $0.start <= time && time <= $0.end + Self.continuation && ($0.videoFrames > 0 || entry.kind == .audio)
            }
            let description = header.description
            if var unit = units.last, time <= unit.reach + Self.continuation,
               owner == nil || owner?.path == unit.owner?.path || owner!.videoFrames == 0
                || owner!.start <= (unit.frames.first?.frame.captureTime.nanoseconds ?? time),
               (entry.kind == .video ? unit.video : unit.audio).map({ CameraRecorder.sameShape($0, description) }) ?? true {
                unit.frames.append(frame)
                unit.entries.append(entry)
                unit.reach = max(unit.reach, time + frame.frame.duration)
                if entry.kind == .video, unit.video == nil { unit.video = description }
                if entry.kind == .audio, unit.audio == nil { unit.audio = description }
                units[units.count - 1] = unit
            } else {
                var unit = FillUnit(owner: owner, reach: max(owner?.end ?? time, time + frame.frame.duration))
                unit.frames = [frame]
                unit.entries = [entry]
                if entry.kind == .video { unit.video = description } else { unit.audio = description }
                units.append(unit)
            }
        }
        // Audio-only segments a unit reaches over (sound that came back before the picture) are
        // merged into it.
        for index in units.indices {
            let first = units[index].frames.first!.frame.captureTime.nanoseconds
            units[index].absorbed = segments.filter {
                $0.videoFrames == 0 && $0.path != units[index].owner?.path && $0.start > first && $0.start <= units[index].reach + Self.continuation
            }
        }
        var done: Set<FillKey> = []
        for unit in units {
            do {
                let kept = try await fill(unit, camera: camera, neighbours: segments)
                for entry in unit.entries where !kept.contains(FillKey(stream: entry.stream, sequence: entry.sequence)) {
                    done.insert(FillKey(stream: entry.stream, sequence: entry.sequence))
                }
            } catch {
                report.writeFailures += 1
                if error.code == .diskFull { needsSpace = true }
                logger.error("cannot fill frames into the recording; they wait and are tried again",
                             metadata: ["camera": "\(camera.name)", "reason": "\(error.reason)"])
                break
            }
        }
        do {
            try journal.remove { done.contains(FillKey(stream: $0.stream, sequence: $0.sequence)) }
        } catch {
            logger.error("cannot compact the fill journal", metadata: ["camera": "\(camera.name)", "reason": "\(error.reason)"])
        }
        unplaceable[camera.name] = journal.entries.isEmpty ? nil
            : FillState(entries: journal.entries.count, lastAdded: journal.lastAdded, liveFrom: camera.liveFrom)
    }

    /// What a camera's fill journal looked like when a pass could place nothing more of it.
    struct FillState: Equatable {
        var entries: Int
        var lastAdded: Int64
        var liveFrom: Int64?
    }

    struct FillKey: Hashable {
        var stream: MediaStreamID
        var sequence: UInt64
    }

    /// Writes one unit: its owner's frames and the waiting ones, merged and cut again. Returns
    /// the waiting frames it kept waiting (video whose keyframe has not come yet).
    private func fill(_ unit: FillUnit, camera: CameraRecorder, neighbours: [SegmentRecord]) async throws(StorageError) -> Set<FillKey> {
        var frames: [EncodedFrame] = []
        var video = unit.video, audio = unit.audio
        var existing: [MediaKind: [Int64]] = [.video: [], .audio: []]
        var owner = unit.owner
        var held: SegmentFile.Contents?
        if let segment = owner {
            let contents = try SegmentFile.read(absolute(segment.path))
            // A segment of another shape (the camera changed size or profile) never takes these
            // frames: they make segments of their own.
            if let wanted = unit.video, let shape = contents.video, !CameraRecorder.sameShape(shape, wanted) { owner = nil } else { held = contents }
        }
        if let owner, let contents = held {
            frames = contents.frames
            video = contents.video ?? video
            audio = contents.audio ?? audio
            for frame in frames { existing[frame.codec.kind]!.append(frame.captureTime.nanoseconds) }
            // Frames just after a cut may sit in the segment before (audio that ran ahead).
            if let before = neighbours.last(where: { $0.start < owner.start }),
               let earlier = try? SegmentFile.read(absolute(before.path), withData: false) {
                for frame in earlier.frames where frame.captureTime.nanoseconds >= owner.start - Self.continuation {
                    existing[frame.codec.kind]!.append(frame.captureTime.nanoseconds)
                }
            }
        }
        for segment in unit.absorbed {
            let contents = try SegmentFile.read(absolute(segment.path))
            audio = audio ?? contents.audio
            frames += contents.frames
            for frame in contents.frames { existing[frame.codec.kind]!.append(frame.captureTime.nanoseconds) }
        }
        for kind in [MediaKind.video, .audio] { existing[kind]!.sort() }
        // Video before the first keyframe of a run that continues no segment cannot be decoded
        // yet: it waits for the frames before it (backfill comes oldest first), within reason.
        var kept: Set<FillKey> = []
        var unitFrames = unit.frames
        if owner == nil {
            let firstKey = unitFrames.firstIndex { $0.frame.codec == .h264 && $0.frame.isKeyframe } ?? unitFrames.count
            let hold = CaptureTime.now.nanoseconds - settings.undecodableHold.nanoseconds
            for frame in unitFrames[..<firstKey] where frame.frame.codec == .h264 {
                if frame.frame.captureTime.nanoseconds > hold {
                    kept.insert(FillKey(stream: frame.stream, sequence: frame.sequence))
                } else {
                    report.framesUndecodable += 1
                }
            }
            unitFrames = unitFrames[..<firstKey].filter { $0.frame.codec == .opus } + unitFrames[firstKey...]
        }
        var added = 0
        for frame in unitFrames {
            let times = existing[frame.frame.codec.kind]!
            if Self.contains(times, frame.frame.captureTime.nanoseconds) {
                report.framesDuplicate += 1
                continue
            }
            frames.append(frame.frame)
            added += 1
        }
        guard added > 0 else { return kept }
        frames.sort { ($0.captureTime, $0.codec.rawValue) < ($1.captureTime, $1.codec.rawValue) }
        if video != nil, video!.configuration.isEmpty, let key = frames.first(where: { $0.codec == .h264 && $0.isKeyframe }) {
            video!.configuration = H264Bitstream.parameterSets(key.data)
        }
        var records: [SegmentRecord] = []
        var moves: [FileMove] = []
        var chosen: Set<String> = []
        for (number, piece) in SegmentFile.cut(frames, target: settings.segmentDuration.nanoseconds).enumerated() {
            let start = piece.first!.captureTime.nanoseconds
            let relative = number == 0 && owner?.start == start ? owner!.path
                : SegmentFile.uniquePath(camera: camera.name, start: start, root: root, taken: chosen)
            chosen.insert(relative)
            let aside = ".tmp/\(UInt64.random(in: 0...UInt64.max)).mp4"
            let written = try SegmentFile.write(piece, to: absolute(aside), camera: camera.name, video: video, audio: audio,
                                                fragment: settings.fragmentDuration.nanoseconds)
            let end = piece.map { $0.captureTime.nanoseconds + $0.duration }.max()!
            records.append(SegmentRecord(path: relative, camera: camera.name, start: written.start, end: end, bytes: written.bytes,
                                         videoFrames: piece.count { $0.codec == .h264 }, audioFrames: piece.count { $0.codec == .opus },
                                         isOpen: false))
            moves.append(FileMove(from: aside, to: relative))
        }
        let replaced = (owner.map { [$0] } ?? []) + unit.absorbed
        try await index.replaceSegments(replaced.map(\.path), with: records, moves: moves)
        for move in moves {
            try? FileManager.default.createDirectory(atPath: (absolute(move.to) as NSString).deletingLastPathComponent,
                                                     withIntermediateDirectories: true)
            guard rename(absolute(move.from), absolute(move.to)) == 0 else {
                throw .io("cannot move a filled segment into place at \(move.to): \(String(cString: strerror(errno)))")
            }
        }
        for old in replaced where !chosen.contains(old.path) { unlink(absolute(old.path)) }
        try await index.completeMoves(moves)
        report.segmentsFilled += 1
        report.framesFilled += added
        logger.info("filled frames into the recording", metadata: [
            "camera": "\(camera.name)", "frames": "\(added)", "segments": "\(records.count)",
            "from": "\(CaptureTime(nanoseconds: records.first!.start))",
        ])
        return kept
    }

    /// Whether sorted `times` holds one within a millisecond of `time`.
    static func contains(_ times: [Int64], _ time: Int64) -> Bool {
        var low = 0, high = times.count
        while low < high {
            let middle = (low + high) / 2
            if times[middle] < time - 1_000_000 { low = middle + 1 } else { high = middle }
        }
        return low < times.count && abs(times[low] - time) <= 1_000_000
    }
}
