// Recorded clips and network cameras through libavformat: a clip's H.264 passes through in
// Annex B with its keyframes, its AAC audio comes out as 20 ms blocks at 48 kHz, a stream
// served over the network (ffmpeg's own HTTP server standing in for an IP camera) is read
// live, and a missing file is a clear error. A camera whose stream changes mid-way (size,
// profile) gets a new description at the first keyframe of the new shape, with one log line;
// the shape (size, profile, chroma, bit depth) is read from the parameter sets.
import Foundation
import Synchronization
import Testing
@testable import XTMedia

@Suite(.serialized) struct FileSourceTests {
    @Test func aClipPassesThroughAndItsAudioIsResampled() throws {
        let directory = TestSupport.temporaryDirectory("xt-file")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let clip = (directory as NSString).appendingPathComponent("clip.mp4")
        #expect(TestSupport.run("ffmpeg", ["-v", "error", "-f", "lavfi", "-i", "testsrc2=size=320x240:rate=25", "-f", "lavfi", "-i",
                                           "sine=frequency=440:sample_rate=44100", "-t", "2", "-c:v", "libx264", "-g", "25", "-c:a", "aac", clip]).status == 0)
        let video = try FileVideoSource(location: clip)
        #expect(video.width == 320 && video.height == 240 && video.frameRate == 25)
        var keyframes = 0
        for _ in 0..<10 {
            guard case .encoded(let frame) = try video.next() else { Issue.record("H.264 passes through"); return }
            #expect(frame.data.starts(with: [0, 0, 0, 1]) || frame.data.starts(with: [0, 0, 1]))
            if frame.isKeyframe { keyframes += 1 }
        }
        #expect(keyframes == 1)
        #expect(video.encodedDescription?.configuration.isEmpty == false)

        let audio = try FileAudioSource(location: clip, sampleRate: 48_000, channels: 1)
        let block = try audio.next()
        #expect(block.samples.count == 960 && block.sampleRate == 48_000)
        let loud = try (0..<10).map { _ in try audio.next() }.flatMap(\.samples).map { abs(Int($0)) }.max() ?? 0
        #expect(loud > 3000)

        let missing = #expect(throws: MediaError.self) { try FileVideoSource(location: (directory as NSString).appendingPathComponent("none.mp4")) }
        #expect(missing?.code == .deviceMissing)
    }

    @Test func aStreamThatChangesMidWayGetsANewDescription() throws {
        let directory = TestSupport.temporaryDirectory("xt-change")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let first = (directory as NSString).appendingPathComponent("a.ts"), second = (directory as NSString).appendingPathComponent("b.ts")
        #expect(TestSupport.h264Clip(first, size: "640x360", seconds: 2) && TestSupport.h264Clip(second, size: "320x180", seconds: 2, offset: 2, extra: ["-profile:v", "main"]))
        let joined = (directory as NSString).appendingPathComponent("ab.ts")
        try (Data(contentsOf: URL(fileURLWithPath: first)) + Data(contentsOf: URL(fileURLWithPath: second))).write(to: URL(fileURLWithPath: joined))
        let source = try FileVideoSource(location: joined, clock: FileClock(pacing: .virtual(start: CaptureTime(nanoseconds: 1_800_000_000_000_000_000))))
        var descriptions: [StreamDescription] = []
        var changedAt: [Int] = []
        for index in 0..<100 {
            guard case .encoded(let frame) = try source.next(), let description = source.encodedDescription else { Issue.record("passthrough"); return }
            if descriptions.last != description {
                descriptions.append(description)
                changedAt.append(index)
                #expect(frame.isKeyframe)
            }
        }
        #expect(changedAt == [0, 50])
        #expect(descriptions.map { "\($0.width)x\($0.height)" } == ["640x360", "320x180"])
        #expect(source.shape?.profile == 77)
        let notices = source.takeNotices()
        #expect(notices.count == 1 && notices[0].contains("640x360 High (4:2:0, 8-bit) to 320x180 Main (4:2:0, 8-bit)"), "\(notices)")
    }

    @Test(arguments: [("yuv420p", "640x360 High (4:2:0, 8-bit)", true), ("yuv422p", "640x360 High 4:2:2 (4:2:2, 8-bit)", false),
                      ("yuv420p10le", "640x360 High 10 (4:2:0, 10-bit)", false), ("yuv444p", "640x360 High 4:4:4 (4:4:4, 8-bit)", false)])
    func theShapeIsReadFromTheParameterSets(_ pixelFormat: String, _ expected: String, _ playable: Bool) throws {
        let directory = TestSupport.temporaryDirectory("xt-shape")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let path = (directory as NSString).appendingPathComponent("clip.ts")
        #expect(TestSupport.h264Clip(path, size: "640x360", seconds: 1, extra: ["-pix_fmt", pixelFormat]))
        let source = try FileVideoSource(location: path, clock: FileClock(pacing: .virtual(start: CaptureTime(nanoseconds: 0))))
        _ = try source.next()
        #expect(source.shape?.description == expected)
        #expect(source.shape?.isBrowserPlayable == playable)
    }

    /// A decoded (HEVC) camera's pictures leave the decoder several at a time (B-frames, frame
    /// threads): each waits for its own moment, so the encoder gets the source's cadence.
    @Test func decodedPicturesComeAtTheSourcesCadence() throws {
        let directory = TestSupport.temporaryDirectory("xt-hevc")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let path = (directory as NSString).appendingPathComponent("hevc.ts")
        #expect(TestSupport.run("ffmpeg", ["-v", "error", "-f", "lavfi", "-i", "testsrc2=size=320x180:rate=15", "-t", "3", "-c:v", "libx265",
                                           "-x265-params", "log-level=error", "-f", "mpegts", path]).status == 0)
        let source = try FileVideoSource(location: path)
        #expect(source.width == 320 && source.height == 180 && source.frameRate == 15 && source.encodedDescription == nil)
        var arrivals: [Int64] = [], captures: [CaptureTime] = []
        for _ in 0..<30 {
            guard case .raw(let picture) = try source.next() else { Issue.record("HEVC is decoded"); return }
            #expect(picture.width == 320 && picture.height == 180)
            arrivals.append(CaptureTime.monotonicNow)
            captures.append(picture.captureTime)
        }
        let interval: Int64 = 66_666_666
        #expect(zip(captures, captures.dropFirst()).allSatisfy { abs($1.nanoseconds(since: $0) - interval) < 1_000_000 })
        let spacing = zip(arrivals, arrivals.dropFirst()).map { $1 - $0 }
        #expect(spacing.filter { $0 < interval / 3 }.count <= 2, "arrivals \(spacing.map { $0 / 1_000_000 }) ms apart")
        #expect(spacing.max() ?? 0 < 2 * interval, "no long pauses: \(spacing.map { $0 / 1_000_000 })")
    }

    /// FFmpeg's own lines go to the application's logger, and a camera that refuses every try
    /// says so once per ten minutes (with a count), not once a try.
    @Test func ffmpegsLogIsRoutedAndItsRepeatsHeldBack() throws {
        let lines = Mutex<[String]>([])
        MediaLibrary.routeLog { level, line in lines.withLock { $0.append("\(level): \(line)") } }
        let before = MediaLibrary.logCounts
        for _ in 0..<5 {
            #expect(throws: MediaError.self) { try FileVideoSource(location: "rtsp://127.0.0.1:9/camera") }
        }
        let after = MediaLibrary.logCounts
        let refused = lines.withLock { $0 }.filter { $0.localizedCaseInsensitiveContains("refused") || $0.contains("rtsp") }
        #expect(refused.count <= 2, "\(lines.withLock { $0 })")
        #expect(after.repeats - before.repeats >= 3, "repeats held back: \(after.repeats - before.repeats)")
    }

    @Test func aNetworkStreamIsReadLive() throws {
        let port = Int.random(in: 20_000...32_000)
        let server = Process()
        server.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        server.arguments = ["ffmpeg", "-v", "error", "-re", "-f", "lavfi", "-i", "testsrc2=size=320x240:rate=25", "-t", "20",
                            "-c:v", "libx264", "-g", "25", "-tune", "zerolatency", "-f", "mpegts", "-listen", "1", "http://127.0.0.1:\(port)/camera.ts"]
        server.standardError = FileHandle.nullDevice
        try server.run()
        defer { server.terminate() }
        var camera: FileVideoSource?
        for _ in 0..<50 where camera == nil {
            Thread.sleep(forTimeInterval: 0.1)
            camera = try? FileVideoSource(location: "http://127.0.0.1:\(port)/camera.ts")
        }
        let source = try #require(camera)
        let started = CaptureTime.now
        var frames = 0
        while frames < 25 {
            guard case .encoded = try source.next() else { Issue.record("H.264 passes through"); return }
            frames += 1
        }
        // A live stream is not paced by the reader: it comes as the camera sends it.
        #expect(CaptureTime.now.nanoseconds(since: started) < 5_000_000_000)
        kill(server.processIdentifier, SIGKILL)
        server.waitUntilExit()
        // The camera going away ends the stream: the agent's pipeline reopens it.
        var ended: MediaError?
        for _ in 0..<1000 where ended == nil {
            do throws(MediaError) { _ = try source.next() } catch { ended = error }
        }
        #expect(ended?.code == .endOfStream || ended?.code == .deviceLost)
    }
}
