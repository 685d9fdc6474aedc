// What a camera's recording holds: its timeline (checked for gaps, the index checked against
// the files) and an export of it into one playable file that spans segment boundaries, audio
// and video aligned by capture time.
import Foundation
public import XTMedia

/// One camera's recording of one kind (video or audio), as checked.
public struct RecordingTimeline: Sendable, Codable, Equatable {
    /// A stretch of capture time with no frames.
    public struct Gap: Sendable, Codable, Equatable {
        public var after: String
        public var milliseconds: Double
    }

    public var camera: String
    public var kind: String
    public var streams: Int
    public var frames: Int
    public var keyframes: Int
    public var firstCapture: String?
    public var lastCapture: String?
    public var seconds: Double
    /// Holes in a stream's sequence numbers (frames never received).
    public var missingFrames: Int
    /// Stretches without frames longer than three frame intervals.
    public var gaps: [Gap]
    /// Segment files holding it.
    public var segments: Int
    /// Where the index and the files disagree (empty when they match).
    public var problems: [String]
}

/// Reading recordings back.
public enum Recording {
    /// The timelines of every camera (or one) in the index at `root`, checked against the files.
    /// - Throws: ``StorageError`` when the index cannot be read.
    public static func check(root: String, index: any RecorderIndex, camera: String? = nil) async throws(StorageError) -> [RecordingTimeline] {
        let segments = try await index.segments(camera: camera, from: nil, to: nil)
        let streams = try await index.streams()
        var names = Set(segments.map(\.camera))
        if let camera { names.formIntersection([camera]) }
        var timelines: [RecordingTimeline] = []
        for name in names.sorted() {
            var frames: [MediaKind: [EncodedFrame]] = [.video: [], .audio: []]
            var problems: [String] = []
            let own = segments.filter { $0.camera == name }
            for segment in own {
                let path = (root as NSString).appendingPathComponent(segment.path)
                do {
                    let contents = try SegmentFile.read(path, withData: false)
                    for frame in contents.frames { frames[frame.codec.kind]!.append(frame) }
                    if contents.videoFrames != segment.videoFrames || contents.audioFrames != segment.audioFrames {
                        problems.append("\(segment.path): the index says \(segment.videoFrames) video and \(segment.audioFrames) audio frames, the file has \(contents.videoFrames) and \(contents.audioFrames)")
                    }
                    let size = (try? FileManager.default.attributesOfItem(atPath: path)[.size] as? Int) ?? -1
                    if Int64(size) != segment.bytes && !segment.isOpen {
                        problems.append("\(segment.path): the index says \(segment.bytes) bytes, the file has \(size)")
                    }
                } catch {
                    problems.append(FileManager.default.fileExists(atPath: path) ? error.reason : "\(segment.path): in the index but not on disk")
                }
            }
            let indexed = Set(own.map(\.path))
            for file in segmentFiles(root: root, camera: name) where !indexed.contains(file) {
                problems.append("\(file): on disk but not in the index (`xt recorder --reindex` adds it)")
            }
            for kind in [MediaKind.video, .audio] {
                var list = frames[kind]!
                let kindStreams = streams.filter { $0.camera == name && $0.kind == kind.description }
                guard !list.isEmpty || !kindStreams.isEmpty else { continue }
                list.sort { $0.captureTime < $1.captureTime }
                var gaps: [RecordingTimeline.Gap] = []
                for (earlier, later) in zip(list, list.dropFirst()) {
                    let delta = later.captureTime.nanoseconds(since: earlier.captureTime)
                    if delta > 3 * max(earlier.duration, 10_000_000) {
                        gaps.append(RecordingTimeline.Gap(after: earlier.captureTime.description, milliseconds: Double(delta) / 1e6))
                    }
                }
                let missing = kindStreams.reduce(0) { total, stream in
                    total + Int(SequenceSet(stream.received).gaps.reduce(UInt64(0)) { $0 + UInt64($1.count) })
                }
                let seconds = list.count > 1 ? Double(list.last!.captureTime.nanoseconds(since: list.first!.captureTime)) / 1e9 : 0
                timelines.append(RecordingTimeline(camera: name, kind: kind.description, streams: kindStreams.count, frames: list.count,
                                                   keyframes: list.filter(\.isKeyframe).count,
                                                   firstCapture: list.first?.captureTime.description,
                                                   lastCapture: list.last?.captureTime.description, seconds: seconds,
                                                   missingFrames: missing, gaps: gaps, segments: own.count, problems: problems))
            }
        }
        return timelines
    }

    /// The segment files of a camera on disk, relative to the root.
    static func segmentFiles(root: String, camera: String) -> [String] {
        let directory = (root as NSString).appendingPathComponent(camera)
        guard let walker = FileManager.default.enumerator(atPath: directory) else { return [] }
        var files: [String] = []
        while let item = walker.nextObject() as? String {
            if item.hasSuffix(".mp4") { files.append("\(camera)/\(item)") }
        }
        return files.sorted()
    }

    /// What an export wrote.
    public struct ExportSummary: Sendable, Codable, Equatable {
        public var path: String
        public var videoFrames: Int
        public var audioFrames: Int
        public var segments: Int
        /// Capture times (ns) of the file's first and last frame.
        public var start: Int64
        public var end: Int64
        /// The video's picture sizes in order ("1280x720", "640x360"): more than one when the
        /// camera's stream changed within the range (each part is kept at its own size).
        public var videoSizes: [String] = []
        /// What the file could not hold as it was, each said once (sound whose channels changed).
        public var notes: [String] = []
        /// It ends early, where the camera's shape changed (`untilShapeChange`): more follows.
        public var continues = false
    }

    /// Writes one camera's recording (optionally a capture-time range) into `path` (MP4 or
    /// Matroska by its extension), across segment boundaries. Video starts at its first keyframe;
    /// with `fromKeyframeBefore`, at the last keyframe at or before `start`, so that the file
    /// holds the moment asked for (the web UI's playback). A stream that changed mid-way (size,
    /// profile) stays one file: every part keeps its own size, its parameter sets in front of
    /// each keyframe, and the track is marked `avc3` (parameter sets in the samples, ISO/IEC
    /// 14496-15), which players follow. With `untilShapeChange` the file ends where the shape
    /// changes instead (browsers show one size per file). With `transcode`, H.264 browsers cannot
    /// play (High 4:2:2, High 10, 4:4:4) is re-encoded as 8-bit 4:2:0 (``VideoTranscoder``).
    /// - Throws: ``StorageError`` when there is nothing to export or the file cannot be written.
    public static func export(root: String, index: any RecorderIndex, camera: String, to path: String, from start: CaptureTime? = nil,
                              to end: CaptureTime? = nil, fromKeyframeBefore: Bool = false,
                              untilShapeChange: Bool = false, transcode: Bool = false) async throws(StorageError) -> ExportSummary {
        var segments = try await index.segments(camera: camera, from: start?.nanoseconds, to: end?.nanoseconds)
        // Every video segment starts at a keyframe: the keyframe at or before `start` is in the
        // last one that starts by then (an earlier one may reach past `start` with sound only).
        if fromKeyframeBefore, let from = start?.nanoseconds, let latest = segments.lastIndex(where: { $0.start <= from && $0.videoFrames > 0 }) {
            segments.removeFirst(latest)
        }
        guard !segments.isEmpty else {
            throw .notFound("no recording of camera '\(camera)'\(start == nil ? "" : " in that time range") under \(root): `xt recorder check --storage \(root)` lists the cameras")
        }
        var video: StreamDescription?, audio: StreamDescription?
        var ordered: [(run: Int, frame: EncodedFrame)] = []
        var run = 0
        var lastShape: StreamDescription?
        var used = 0
        var start = start
        var videoSizes: [String] = []
        var notes: [String] = []
        var changedShape = false
        var continues = false
        for segment in segments {
            let contents: SegmentFile.Contents
            do {
                contents = try SegmentFile.read((root as NSString).appendingPathComponent(segment.path))
            } catch where segment.isOpen {
                // The segment being written may not have its first fragment on disk yet: what it
                // holds is at most the last second, which the next export will have.
                continue
            }
            if untilShapeChange, let video, let part = contents.video, ordered.contains(where: { $0.frame.codec == .h264 }),
               !CameraRecorder.sameShape(part, video) {
                continues = true
                break
            }
            video = video ?? contents.video
            audio = audio ?? contents.audio
            used += 1
            if fromKeyframeBefore, let from = start, used == 1,
               let keyframe = contents.frames.last(where: { $0.codec == .h264 && $0.isKeyframe && $0.captureTime <= from }) {
                start = keyframe.captureTime
            }
            var taken = contents.frames.filter {
                (start == nil || $0.captureTime >= start!) && (end == nil || $0.captureTime <= end!)
                    && ($0.codec == .h264 ? contents.video != nil : contents.audio != nil)
            }
            if let part = contents.video, taken.contains(where: { $0.codec == .h264 }) {
                // Each shape's frames stay together, in segment order, even where the camera's
                // clock let the two overlap at the change.
                if let lastShape, !CameraRecorder.sameShape(lastShape, part) { run += 1 }
                lastShape = part
                let size = "\(part.width)x\(part.height)"
                if videoSizes.last != size { videoSizes.append(size) }
                // Another shape: its keyframes must carry their own parameter sets.
                if let video, !CameraRecorder.sameShape(part, video) {
                    changedShape = true
                    for index in taken.indices where taken[index].codec == .h264 && taken[index].isKeyframe
                        && H264Bitstream.parameterSets(taken[index].data).isEmpty {
                        taken[index].data = part.configuration + taken[index].data
                    }
                }
            }
            // An Opus track cannot change its channels or rate: such sound is left out, and said so.
            if let audio, let part = contents.audio, part.channels != audio.channels || part.sampleRate != audio.sampleRate {
                let note = "sound recorded as \(part.sampleRate) Hz × \(part.channels) after \(audio.sampleRate) Hz × \(audio.channels) is left out: export that time range on its own"
                if !notes.contains(note) { notes.append(note) }
                taken.removeAll { $0.codec == .opus }
            }
            ordered += taken.map { (run, $0) }
        }
        var frames = ordered.sorted { ($0.0, $0.1.captureTime) < ($1.0, $1.1.captureTime) }.map(\.1)
        if let keyframe = frames.firstIndex(where: { $0.codec == .h264 && $0.isKeyframe }) {
            let leading = frames[..<keyframe].filter { $0.codec == .opus }
            frames = leading + frames[keyframe...]
        } else {
            frames.removeAll { $0.codec == .h264 }
            video = nil
        }
        if !frames.contains(where: { $0.codec == .opus }) { audio = nil }
        guard !frames.isEmpty else { throw .notFound("camera '\(camera)' has no frames in that time range") }
        if transcode, let original = video, !original.isBrowserPlayable, !changedShape {
            do {
                let transcoder = try VideoTranscoder(input: original)
                var converted: [EncodedFrame] = []
                for frame in frames {
                    if frame.codec == .h264 { converted += try transcoder.convert(frame) } else { converted.append(frame) }
                }
                converted += try transcoder.finish()
                frames = converted.sorted { ($0.captureTime, $0.codec.rawValue) < ($1.captureTime, $1.codec.rawValue) }
                video = transcoder.description
                notes.append("re-encoded from H.264 \(original.h264Profile.map(H264StreamShape.profileName) ?? "") for browsers (transcode = auto); the recording keeps the original")
            } catch {
                throw .media(error)
            }
        }
        let descriptions = [video, audio].compactMap { $0 }
        do {
            let writer = try MediaFileWriter(path: path, streams: descriptions, origin: frames.first!.captureTime,
                                             inBandParameterSets: changedShape)
            for frame in frames {
                try writer.write(frame, stream: frame.codec == .h264 || video == nil ? 0 : 1)
            }
            try writer.finish()
        } catch {
            throw .media(error)
        }
        return ExportSummary(path: path, videoFrames: frames.count { $0.codec == .h264 }, audioFrames: frames.count { $0.codec == .opus },
                             segments: used, start: frames.first!.captureTime.nanoseconds,
                             end: frames.map { $0.captureTime.nanoseconds + $0.duration }.max()!,
                             videoSizes: video == nil ? [] : videoSizes, notes: notes, continues: continues)
    }
}
