// Recorded clips and network cameras through libavformat: a clip's H.264 passes through in
// Annex B with its keyframes, its AAC audio comes out as 20 ms blocks at 48 kHz, a stream
// served over the network (ffmpeg's own HTTP server standing in for an IP camera) is read
// live, and a missing file is a clear error.
import Foundation
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

    @Test func aNetworkStreamIsReadLive() throws {
        let port = Int.random(in: 20_000...40_000)
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
