// What a camera's recording holds: its timeline (checked for gaps) and an export of it into
// one playable file, audio and video aligned by capture time.
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
}

/// Reading recordings back.
public enum Recording {
    /// The timelines of every camera (or one) under `root`.
    public static func check(root: String, camera: String? = nil) -> [RecordingTimeline] {
        let journals = StreamJournal.load(root: root).filter { camera == nil || $0.header.camera == camera }
        let byCamera = Dictionary(grouping: journals) { $0.header.camera }
        var timelines: [RecordingTimeline] = []
        for name in byCamera.keys.sorted() {
            for kind in [MediaKind.video, .audio] {
                let streams = byCamera[name]!.filter { $0.header.description.codec.kind == kind }
                guard !streams.isEmpty else { continue }
                var frames: [EncodedFrame] = []
                var missing = 0
                for journal in streams {
                    missing += Int(journal.received.gaps.reduce(UInt64(0)) { $0 + UInt64($1.count) })
                    frames += journal.frames().map(\.frame)
                }
                frames.sort { $0.captureTime < $1.captureTime }
                var gaps: [RecordingTimeline.Gap] = []
                for (earlier, later) in zip(frames, frames.dropFirst()) {
                    let delta = later.captureTime.nanoseconds(since: earlier.captureTime)
                    if delta > 3 * max(earlier.duration, 10_000_000) {
                        gaps.append(RecordingTimeline.Gap(after: earlier.captureTime.description, milliseconds: Double(delta) / 1e6))
                    }
                }
                let seconds = frames.count > 1 ? Double(frames.last!.captureTime.nanoseconds(since: frames.first!.captureTime)) / 1e9 : 0
                timelines.append(RecordingTimeline(camera: name, kind: kind.description, streams: streams.count, frames: frames.count,
                                                   keyframes: frames.filter(\.isKeyframe).count,
                                                   firstCapture: frames.first?.captureTime.description,
                                                   lastCapture: frames.last?.captureTime.description, seconds: seconds,
                                                   missingFrames: missing, gaps: gaps))
            }
        }
        return timelines
    }

    /// What an export wrote.
    public struct ExportSummary: Sendable, Codable, Equatable {
        public var path: String
        public var videoFrames: Int
        public var audioFrames: Int
    }

    /// Writes one camera's recording (optionally a capture-time range) into `path` (MP4 or
    /// Matroska by its extension). Video starts at its first keyframe.
    /// - Throws: ``MediaError`` when there is nothing to export or the file cannot be written.
    public static func export(root: String, camera: String, to path: String, from start: CaptureTime? = nil,
                              to end: CaptureTime? = nil) throws(MediaError) -> ExportSummary {
        let journals = StreamJournal.load(root: root).filter { $0.header.camera == camera }
        guard !journals.isEmpty else {
            throw .deviceMissing("no recording of camera '\(camera)' under \(root): `xt recorder check --storage \(root)` lists the cameras")
        }
        func frames(_ kind: MediaKind) -> (StreamDescription, [EncodedFrame])? {
            let streams = journals.filter { $0.header.description.codec.kind == kind }.sorted { ($0.firstTime ?? .init(nanoseconds: 0)) < ($1.firstTime ?? .init(nanoseconds: 0)) }
            guard let first = streams.first else { return nil }
            // Tracks hold one shape: streams that changed size are left out.
            var frames = streams.filter { $0.header.description.width == first.header.description.width && $0.header.description.height == first.header.description.height }
                .flatMap { $0.frames().map(\.frame) }
                .filter { (start == nil || $0.captureTime >= start!) && (end == nil || $0.captureTime <= end!) }
            frames.sort { $0.captureTime < $1.captureTime }
            if kind == .video, let keyframe = frames.firstIndex(where: \.isKeyframe) { frames.removeFirst(keyframe) }
            var description = first.header.description
            if kind == .video, description.configuration.isEmpty, let key = frames.first(where: \.isKeyframe) {
                description.configuration = H264Bitstream.parameterSets(key.data)
            }
            return frames.isEmpty ? nil : (description, frames)
        }
        let video = frames(.video), audio = frames(.audio)
        guard video != nil || audio != nil else { throw .deviceMissing("camera '\(camera)' has no frames in that time range") }
        var descriptions: [StreamDescription] = []
        if let video { descriptions.append(video.0) }
        if let audio { descriptions.append(audio.0) }
        let origin = [video?.1.first?.captureTime, audio?.1.first?.captureTime].compactMap { $0 }.min()!
        let writer = try MediaFileWriter(path: path, streams: descriptions, origin: origin)
        // Interleave by capture time, as a player reads them.
        var merged: [(EncodedFrame, Int)] = (video?.1.map { ($0, 0) } ?? []) + (audio?.1.map { ($0, video == nil ? 0 : 1) } ?? [])
        merged.sort { $0.0.captureTime < $1.0.captureTime }
        for (frame, track) in merged { try writer.write(frame, stream: track) }
        try writer.finish()
        return ExportSummary(path: path, videoFrames: video?.1.count ?? 0, audioFrames: audio?.1.count ?? 0)
    }
}
