// One camera's recording. Live frames go straight into the segment being written (a
// fragmented MP4 cut at the first keyframe after ~10 s, its fragments put on disk every ~1 s).
// Anything that cannot go there in order — backfill after an outage, a frame that came too
// late, video before the first keyframe — waits in the camera's fill journal until the fill
// pass moves it into place on the timeline (see `RecordingStore`).
import Foundation
import Logging
import XTMedia

/// How segments are cut and flushed.
public struct SegmentSettings: Sendable, Equatable {
    /// Segments end at the first keyframe after this much capture time.
    public var segmentDuration: Duration = .seconds(10)
    /// A fragment goes to disk at least this often (wall clock).
    public var fragmentDuration: Duration = .seconds(1)
    /// After a cut, the previous segment still takes audio captured before the cut this long.
    public var audioGrace: Duration = .milliseconds(1500)
    /// Frames waiting to be filled in are moved once none has come for this long...
    public var fillSettle: Duration = .seconds(2)
    /// ...or once this many bytes wait.
    public var fillBytes = 32 << 20
    /// A camera that sends nothing for this long has its segment closed.
    public var idleClose: Duration = .seconds(10)
    /// A live frame this much later than the last one written ends the segment (the camera
    /// was away); it resumes at the next keyframe.
    public var hole: Duration = .seconds(1)
    /// Video that cannot be decoded yet (its keyframe has not come) waits this long for it.
    public var undecodableHold: Duration = .seconds(600)

    public init() {}
}

/// A segment being written live.
final class LiveSegment {
    let writer: MediaFileWriter
    var record: SegmentRecord
    /// The descriptions its tracks were made with (frames of other descriptions cannot join).
    let video: StreamDescription?
    let audio: StreamDescription?
    /// Capture time of the last frame written per kind.
    var last: [MediaKind: Int64] = [:]
    var lastFlush: Int64
    /// Capture time of the first frame after the last flush.
    var fragmentStart: Int64?
    /// Frames written since the last fragment went to disk.
    var unflushed: [(MediaStreamID, UInt64)] = []
    /// When it stopped taking video (monotonic): it takes audio a little longer.
    var closingSince: Int64?
    /// Capture time of the newest frame written.
    var newest: Int64 { last.values.max() ?? record.start }

    init(writer: MediaFileWriter, record: SegmentRecord, video: StreamDescription?, audio: StreamDescription?) {
        self.writer = writer
        self.record = record
        self.video = video
        self.audio = audio
        lastFlush = CaptureTime.monotonicNow
    }

    func track(of kind: MediaKind) -> Int? {
        switch kind {
        case .video: return video == nil ? nil : 0
        case .audio: return audio == nil ? nil : (video == nil ? 0 : 1)
        }
    }
}

/// What became of a frame.
enum FrameOutcome: Equatable {
    /// Written into the live segment.
    case written
    /// Kept in the fill journal, to be moved into place later.
    case staged
    /// Staged, and the live recording waits for a keyframe: ask the agent for one.
    case stagedAwaitingKeyframe
    /// The disk refused it.
    case failed(StorageError)
}

/// One camera's live segments and fill journal. Confined to its `RecordingStore`.
final class CameraRecorder {
    let name: String
    let root: String
    let settings: SegmentSettings
    private let logger: Logger
    let fill: FillJournal
    private(set) var current: LiveSegment?
    private(set) var previous: LiveSegment?
    /// Latest header per kind.
    private(set) var headers: [MediaKind: MediaStreamHeader] = [:]
    /// Segment rows to save at the next tick (latest state per path).
    var segmentUpdates: [String: SegmentRecord] = [:]
    /// Frames that reached the disk since the last tick.
    var madeDurable: [(MediaStreamID, UInt64)] = []
    /// Frames the disk refused after they were counted as received: to be asked for again.
    var lost: [(MediaStreamID, UInt64)] = []
    /// When the last frame came (monotonic).
    private(set) var lastFrame: Int64 = CaptureTime.monotonicNow
    /// The last video frame written live: a P-frame may only follow its predecessor.
    private var lastVideo: (stream: MediaStreamID, sequence: UInt64)?
    private var segmentNanoseconds: Int64 { settings.segmentDuration.nanoseconds }

    init(name: String, root: String, settings: SegmentSettings, logger: Logger) throws(StorageError) {
        self.name = name
        self.root = root
        self.settings = settings
        self.logger = logger
        fill = try FillJournal(directory: (root as NSString).appendingPathComponent(name))
    }

    func note(_ header: MediaStreamHeader) {
        headers[header.description.codec.kind] = header
    }

    /// Takes one frame of a stream whose header is `header`.
    /// The live video since the last keyframe, for snapshots and decoding: whole GOPs (a long
    /// one too), up to the live view's limit in bytes (``LiveHub/defaultGOPByteLimit``); past it
    /// the frames stop being kept (what is kept still decodes).
    private(set) var recentVideo: [EncodedFrame] = []
    private(set) var recentVideoDescription: StreamDescription?
    private var recentVideoBytes = 0

    private func remember(_ frame: EncodedFrame, description: StreamDescription) {
        if frame.isKeyframe || recentVideoDescription != description {
            recentVideo.removeAll(keepingCapacity: true)
            recentVideoDescription = description
            recentVideoBytes = 0
        }
        guard !recentVideo.isEmpty || frame.isKeyframe, recentVideoBytes + frame.data.count <= LiveHub.defaultGOPByteLimit else { return }
        if let last = recentVideo.last, frame.captureTime <= last.captureTime { return }
        recentVideo.append(frame)
        recentVideoBytes += frame.data.count
    }

    /// Keeps a live video frame that is not recorded (recording switched off) for snapshots.
    func keep(_ frame: MediaFrame, header: MediaStreamHeader) {
        if header.description.codec.kind == .video, !frame.isBackfill { remember(frame.frame, description: header.description) }
    }

    func take(_ frame: MediaFrame, header: MediaStreamHeader) -> FrameOutcome {
        lastFrame = CaptureTime.monotonicNow
        let kind = header.description.codec.kind
        if kind == .video, !frame.isBackfill { remember(frame.frame, description: header.description) }
        let time = frame.frame.captureTime.nanoseconds
        if headers[kind] == nil { headers[kind] = header }
        do {
            // The camera was away: its segment ends where its frames end.
            if let current, time - current.newest > max(settings.hole.nanoseconds, 3 * frame.frame.duration) {
                try closePrevious()
                self.current = nil
                try close(current)
            }
            if kind == .video {
                // A P-frame whose predecessor is missing cannot be decoded here yet.
                let follows = frame.frame.isKeyframe || (lastVideo?.stream == frame.stream && lastVideo?.sequence == frame.sequence &- 1)
                if let current, follows, current.video.map({ Self.sameShape($0, header.description) }) == true, time > current.last[.video] ?? .min {
                    // Cut at a keyframe after ~10 s — or at once when the camera's sound began after
                    // this segment did, so that the next one carries it.
                    if frame.frame.isKeyframe, time - current.record.start >= segmentNanoseconds || (current.audio == nil && headers[.audio] != nil) {
                        try rotate(at: frame, header: header)
                    } else {
                        try write(frame, kind: kind, into: current)
                    }
                    lastVideo = (frame.stream, frame.sequence)
                    return .written
                }
                // A new stream, a camera whose segment has no video yet, or none open: start at a keyframe.
                if frame.frame.isKeyframe, time > current?.last[.video] ?? .min, time >= current?.record.start ?? .min {
                    try rotate(at: frame, header: header)
                    lastVideo = (frame.stream, frame.sequence)
                    return .written
                }
                return try stage(frame, header: header, awaitingKeyframe: time > current?.last[.video] ?? .min)
            }
            if let current, current.audio.map({ Self.sameShape($0, header.description) }) == true,
               time >= current.record.start, time > current.last[.audio] ?? .min {
                try write(frame, kind: kind, into: current)
                // Audio has passed the cut: the previous segment is complete.
                if previous != nil { try closePrevious() }
                return .written
            }
            if let previous, let current, previous.audio.map({ Self.sameShape($0, header.description) }) == true,
               time < current.record.start, time > previous.last[.audio] ?? .min {
                try write(frame, kind: kind, into: previous)
                return .written
            }
            // A camera without video records audio-only segments.
            if headers[.video] == nil {
                if current == nil || current!.audio == nil || time - current!.record.start >= segmentNanoseconds,
                   time > current?.last[.audio] ?? .min {
                    try rotate(at: frame, header: header)
                    return .written
                }
            }
            return try stage(frame, header: header, awaitingKeyframe: false)
        } catch {
            return .failed(error)
        }
    }

    /// Same codec, size and configuration: frames of it can go in the same track.
    static func sameShape(_ a: StreamDescription, _ b: StreamDescription) -> Bool {
        a.codec == b.codec && a.width == b.width && a.height == b.height && a.sampleRate == b.sampleRate && a.channels == b.channels
            && (a.configuration.isEmpty || b.configuration.isEmpty || a.configuration == b.configuration)
    }

    private func stage(_ frame: MediaFrame, header: MediaStreamHeader, awaitingKeyframe: Bool) throws(StorageError) -> FrameOutcome {
        try fill.append(frame, header: header)
        madeDurable.append((frame.stream, frame.sequence))
        return awaitingKeyframe ? .stagedAwaitingKeyframe : .staged
    }

    /// Starts a new segment at `frame` (a keyframe, or any audio frame for audio-only cameras).
    private func rotate(at frame: MediaFrame, header: MediaStreamHeader) throws(StorageError) {
        if let previous { self.previous = nil; try close(previous) }
        if let current {
            self.current = nil
            if current.audio != nil && header.description.codec == .h264 {
                current.closingSince = CaptureTime.monotonicNow
                previous = current
            } else {
                try close(current)
            }
        }
        let start = frame.frame.captureTime.nanoseconds
        var video: StreamDescription?
        var audio: StreamDescription?
        if header.description.codec == .h264 {
            video = header.description
            if video!.configuration.isEmpty { video!.configuration = H264Bitstream.parameterSets(frame.frame.data) }
            audio = headers[.audio]?.description
        } else {
            audio = header.description
        }
        let relative = SegmentFile.uniquePath(camera: name, start: start, root: root)
        let path = (root as NSString).appendingPathComponent(relative)
        let writer = try SegmentFile.create(at: path, camera: name, start: start, video: video, audio: audio)
        let segment = LiveSegment(writer: writer, record: SegmentRecord(path: relative, camera: name, start: start, end: start, bytes: 0,
                                                                        videoFrames: 0, audioFrames: 0, isOpen: true),
                                  video: video, audio: audio)
        current = segment
        segmentsOpened += 1
        segmentUpdates[relative] = segment.record
        try write(frame, kind: header.description.codec.kind, into: segment)
    }

    private func write(_ frame: MediaFrame, kind: MediaKind, into segment: LiveSegment) throws(StorageError) {
        guard let track = segment.track(of: kind) else { return }
        do {
            try segment.writer.write(frame.frame, stream: track)
        } catch {
            fail(segment, error)
            throw .media(error)
        }
        let time = frame.frame.captureTime.nanoseconds
        segment.last[kind] = time
        segment.record.end = max(segment.record.end, time + frame.frame.duration)
        if kind == .video { segment.record.videoFrames += 1 } else { segment.record.audioFrames += 1 }
        segment.unflushed.append((frame.stream, frame.sequence))
        // About a second of media per fragment, and never more than a second of wall time.
        let fragment = settings.fragmentDuration.nanoseconds
        if segment.fragmentStart == nil { segment.fragmentStart = time }
        if time - segment.fragmentStart! >= fragment || CaptureTime.monotonicNow - segment.lastFlush >= fragment { try flush(segment) }
    }

    /// Puts a segment's pending fragment on disk.
    private func flush(_ segment: LiveSegment) throws(StorageError) {
        do {
            segment.record.bytes = Int64(try segment.writer.flushFragment())
        } catch {
            fail(segment, error)
            throw .media(error)
        }
        segment.lastFlush = CaptureTime.monotonicNow
        segment.fragmentStart = nil
        madeDurable += segment.unflushed
        segment.unflushed.removeAll(keepingCapacity: true)
        segmentUpdates[segment.record.path] = segment.record
    }

    private func close(_ segment: LiveSegment) throws(StorageError) {
        do {
            try segment.writer.finish()
        } catch {
            fail(segment, error)
            throw .media(error)
        }
        let path = (root as NSString).appendingPathComponent(segment.record.path)
        segment.record.bytes = Int64((try? FileManager.default.attributesOfItem(atPath: path)[.size] as? Int) ?? Int(segment.record.bytes))
        segment.record.isOpen = false
        madeDurable += segment.unflushed
        segment.unflushed.removeAll()
        segmentUpdates[segment.record.path] = segment.record
    }

    private func closePrevious() throws(StorageError) {
        guard let previous else { return }
        self.previous = nil
        try close(previous)
    }

    /// The disk refused a write: the segment ends at its last whole fragment, what was not
    /// yet flushed is lost (its agent is asked for it again), and the next keyframe opens a
    /// new segment.
    private func fail(_ segment: LiveSegment, _ error: MediaError) {
        logger.error("cannot write a segment; it ends here and recording resumes at the next keyframe",
                     metadata: ["camera": "\(name)", "segment": "\(segment.record.path)", "reason": "\(error.reason)"])
        lost += segment.unflushed
        segment.unflushed.removeAll()
        if current === segment { current = nil }
        if previous === segment { previous = nil }
        let path = (root as NSString).appendingPathComponent(segment.record.path)
        try? segment.writer.finish()
        // What is on disk is what counts: cut a torn tail, then read it back.
        if (try? FragmentedMP4.repair(path))?.fragments ?? 0 > 0, let contents = try? SegmentFile.read(path, withData: false) {
            segment.record.end = contents.end
            segment.record.videoFrames = contents.videoFrames
            segment.record.audioFrames = contents.audioFrames
            segment.record.bytes = Int64((try? FileManager.default.attributesOfItem(atPath: path)[.size] as? Int) ?? 0)
            segment.record.isOpen = false
            segmentUpdates[segment.record.path] = segment.record
        } else {
            unlink(path)
            segmentUpdates.removeValue(forKey: segment.record.path)
            removedSegments.append(segment.record.path)
        }
    }

    /// Segments opened since the store last looked.
    var segmentsOpened = 0

    /// Segments dropped because nothing of them reached the disk (to take out of the index).
    var removedSegments: [String] = []

    /// Flushes fragments that are due, and closes what has waited long enough.
    func tick(now: Int64 = CaptureTime.monotonicNow) {
        for segment in [previous, current].compactMap({ $0 }) where !segment.unflushed.isEmpty
            && now - segment.lastFlush >= settings.fragmentDuration.nanoseconds {
            try? flush(segment)
        }
        if let previous, let since = previous.closingSince, now - since >= settings.audioGrace.nanoseconds { try? closePrevious() }
        if let current, now - lastFrame >= settings.idleClose.nanoseconds {
            self.current = nil
            try? close(current)
        }
    }

    /// Closes the live segments (the recorder is stopping).
    func closeAll() {
        try? closePrevious()
        if let current {
            self.current = nil
            try? close(current)
        }
    }

    /// Capture time from which frames belong to a segment still being written (nil: none is).
    var liveFrom: Int64? { (previous ?? current)?.record.start }
}
