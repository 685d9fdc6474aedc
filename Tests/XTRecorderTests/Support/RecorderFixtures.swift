// What the recorder tests share: temporary storage roots, a camera's worth of real coded
// frames (H.264 from the synthetic camera, Opus from the synthetic microphone) on a virtual
// clock, and quiet stores.
import Foundation
import Logging
import XTMedia
@testable import XTRecorder

enum Fixtures {
    /// A clip made by ffmpeg from `arguments` (its input and codec options) into a new
    /// temporary directory as `name`; returns the directory (for the caller to remove) and the path.
    static func clip(_ name: String, _ arguments: [String]) throws -> (directory: String, path: String) {
        let directory = temporaryDirectory("clip")
        let path = (directory as NSString).appendingPathComponent(name)
        let ffmpeg = Process()
        ffmpeg.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        ffmpeg.arguments = ["ffmpeg", "-v", "error"] + arguments + [path]
        try ffmpeg.run()
        ffmpeg.waitUntilExit()
        return (directory, path)
    }

    /// The first `count` coded pictures of an H.264 clip as the agent passes them through
    /// (decode order, composition offsets), on a virtual clock; and the stream's description.
    static func passthrough(_ clip: String, count: Int) throws -> (frames: [EncodedFrame], description: StreamDescription?) {
        let source = try FileVideoSource(location: clip, clock: FileClock(pacing: .virtual(start: CaptureTime(nanoseconds: 1_800_000_000_000_000_000))))
        var frames: [EncodedFrame] = []
        for _ in 0..<count { if case .encoded(let frame) = try source.next() { frames.append(frame) } }
        return (frames, source.encodedDescription)
    }

    static func temporaryDirectory(_ name: String = "recorder") -> String {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("xt-\(name)-\(UInt32.random(in: 0...UInt32.max))").path
        try? FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }

    static var logger: Logger {
        var logger = Logger(label: "test")
        logger.logLevel = .critical
        return logger
    }

    /// A store that cuts segments of `segmentSeconds` and fills waiting frames as soon as asked.
    static func store(root: String, segmentSeconds: Int64 = 10) async throws -> RecordingStore {
        var settings = SegmentSettings()
        settings.segmentDuration = .seconds(segmentSeconds)
        settings.fillSettle = .zero
        return try await RecordingStore.open(root: root, settings: settings, logger: logger)
    }

    /// ffprobe's opinion of a file: whether it decodes, and frames per track.
    static func probe(_ path: String) -> (ok: Bool, video: Int, audio: Int) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/ffprobe")
        process.arguments = ["-v", "error", "-count_frames", "-show_entries", "stream=codec_type,nb_read_frames", "-of", "csv=p=0", path]
        let output = Pipe(), errors = Pipe()
        process.standardOutput = output
        process.standardError = errors
        guard (try? process.run()) != nil else { return (false, 0, 0) }
        let text = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        let complaints = String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        var video = 0, audio = 0
        for line in text.split(separator: "\n") {
            let parts = line.split(separator: ",")
            guard parts.count == 2, let count = Int(parts[1]) else { continue }
            if parts[0] == "video" { video = count } else if parts[0] == "audio" { audio = count }
        }
        return (process.terminationStatus == 0 && complaints.isEmpty, video, audio)
    }
}

/// A camera's coded media: stream headers and frames in capture order, as an agent sends them.
struct CameraFeed {
    var video: MediaStreamHeader
    var audio: MediaStreamHeader
    /// Video and audio interleaved by capture time.
    var frames: [MediaFrame]
    /// The motion detector's grids of the raw pictures, ten a second (when asked for).
    var grids: [MotionGrid] = []

    /// `seconds` of 160x120 30 fps H.264 (a keyframe every `gop` frames) and 20 ms Opus frames,
    /// captured from `start`.
    init(camera: String, seconds: Int, start: CaptureTime = CaptureTime(nanoseconds: 1_800_000_000_000_000_000), gop: Int = 60,
         script: MotionScript = MotionScript(), width: Int = 160, height: Int = 120, bitrate: Int = 200_000, detectMotion: Bool = false) throws {
        let source = try SyntheticVideoSource(width: width, height: height, frameRate: 30, script: script, pacing: .virtual(start: start))
        let microphone = SyntheticAudioSource(pacing: .virtual(start: start))
        let h264 = try H264Encoder(settings: H264Settings(width: width, height: height, frameRate: 30, bitrate: bitrate, gop: gop,
                                                          implementation: .libx264))
        let opus = try OpusEncoder(settings: OpusSettings())
        var coded: [EncodedFrame] = []
        let detector = MotionDetector()
        var grids: [MotionGrid] = []
        for number in 0..<(seconds * 30) {
            guard case .raw(let picture) = try source.next() else { throw MediaError.malformed("expected pictures") }
            if detectMotion, number % 3 == 0 { grids.append(detector.analyze(picture)) }
            coded += try h264.encode(picture)
        }
        self.grids = grids
        coded += try h264.flush()
        var sounds: [EncodedFrame] = []
        for _ in 0..<(seconds * 50) { sounds += try opus.encode(try microphone.next()) }
        let video = MediaStreamHeader(stream: .random(), camera: camera, description: h264.description)
        let audio = MediaStreamHeader(stream: .random(), camera: camera, description: opus.description)
        self.video = video
        self.audio = audio
        let videoFrames = coded.enumerated().map { MediaFrame(stream: video.stream, sequence: UInt64($0.offset), frame: $0.element) }
        let audioFrames = sounds.enumerated().map { MediaFrame(stream: audio.stream, sequence: UInt64($0.offset), frame: $0.element) }
        frames = (videoFrames + audioFrames).sorted { ($0.frame.captureTime, $0.frame.codec.rawValue) < ($1.frame.captureTime, $1.frame.codec.rawValue) }
    }

    /// Hands the headers and the frames (all, or those `filter` lets through) to a store.
    func feed(_ store: RecordingStore, where filter: (MediaFrame) -> Bool = { _ in true }, backfill: Bool = false) async throws {
        try await store.note(video)
        try await store.note(audio)
        for var frame in frames where filter(frame) {
            frame.isBackfill = backfill
            if case .failed(let error) = await store.take(frame) { throw error }
        }
    }
}
