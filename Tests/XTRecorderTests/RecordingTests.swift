// Ten minutes of stream time from the synthetic camera and microphone, through the encoders,
// the media wire format and the recorder's segments, exported to MP4: it decodes, timestamps
// rise in both tracks, and audio stays within 40 ms of video from the first minute to the last.
import Foundation
import Testing
import XTMedia
@testable import XTRecorder

@Suite struct RecordingTests {
    @Test func tenMinutesOfStreamTimeStayInSync() async throws {
        let root = Fixtures.temporaryDirectory("recording")
        defer { try? FileManager.default.removeItem(atPath: root) }
        let start = CaptureTime(nanoseconds: 1_800_000_000_000_000_000)
        let seconds = 600
        let camera = try SyntheticVideoSource(width: 320, height: 240, frameRate: 30, pacing: .virtual(start: start))
        let microphone = SyntheticAudioSource(pacing: .virtual(start: start))
        let h264 = try H264Encoder(settings: H264Settings(width: 320, height: 240, frameRate: 30, bitrate: 300_000, gop: 60, implementation: .libx264))
        let opus = try OpusEncoder(settings: OpusSettings())
        let store = try await Fixtures.store(root: root)
        let video = MediaStreamHeader(stream: .random(), camera: "sync", description: h264.description)
        let audio = MediaStreamHeader(stream: .random(), camera: "sync", description: opus.description)
        try await store.note(video)
        try await store.note(audio)
        var sequences: [MediaKind: UInt64] = [.video: 0, .audio: 0]

        // Each frame crosses the wire format, as it would between agent and recorder.
        func record(_ frame: EncodedFrame) async throws {
            let kind = frame.codec.kind
            let message = MediaMessage.frame(MediaFrame(stream: kind == .video ? video.stream : audio.stream, sequence: sequences[kind]!, frame: frame))
            guard case .frame(let received) = try MediaMessage.decode(message.encoded()) else { throw MediaError.malformed("not a frame") }
            #expect(await store.take(received) == .recorded)
            sequences[kind]! += 1
        }

        // A second of each at a time, interleaved by capture time as the live lanes deliver them.
        for _ in 0..<seconds {
            var second: [EncodedFrame] = []
            for _ in 0..<30 {
                guard case .raw(let picture) = try camera.next() else { throw MediaError.malformed("expected pictures") }
                second += try h264.encode(picture)
            }
            for _ in 0..<50 { second += try opus.encode(try microphone.next()) }
            for frame in second.sorted(by: { $0.captureTime < $1.captureTime }) { try await record(frame) }
        }
        for frame in try h264.flush() { try await record(frame) }
        await store.stop()

        let timeline = try await Recording.check(root: root, index: store.index, camera: "sync")
        #expect(timeline.count == 2)
        #expect(timeline.allSatisfy { $0.gaps.isEmpty && $0.missingFrames == 0 && $0.problems.isEmpty }, "\(timeline)")
        // Ten-second segments cut at keyframes.
        #expect((59...61).contains(timeline.first?.segments ?? 0))
        let path = (root as NSString).appendingPathComponent("sync.mp4")
        let summary = try await Recording.export(root: root, index: store.index, camera: "sync", to: path)
        #expect(summary.videoFrames == seconds * 30)
        #expect(summary.audioFrames == seconds * 50)

        let report = try AVSyncProbe.measure(path: path)
        #expect(report.videoTimestampsRise && report.audioTimestampsRise)
        #expect(report.videoFrames == seconds * 30)
        // One marker and one beep per second (the one at 0 s has no dark frame before it).
        #expect(report.videoOnsets.count == seconds - 1)
        #expect(report.drifts.count == seconds - 1)
        print("A/V drift over \(seconds) s of stream time: max \(report.maximumDriftMilliseconds) ms over \(report.drifts.count) markers")
        #expect(report.maximumDriftMilliseconds < 40, "drift up to \(report.maximumDriftMilliseconds) ms")
        // And no trend: the last minute is as aligned as the first.
        let first = report.drifts.prefix(60).reduce(0, +) / 60, last = report.drifts.suffix(60).reduce(0, +) / 60
        #expect(abs(last - first) < 5)
    }

    /// An export (the web UI's clips) while a camera records: the segment being written may not
    /// have its header on disk yet; it is left out rather than failing the export. A closed
    /// segment that cannot be read still fails it, with advice.
    @Test func exportLeavesOutTheSegmentStillBeingWritten() async throws {
        let root = Fixtures.temporaryDirectory("export-open")
        defer { try? FileManager.default.removeItem(atPath: root) }
        let feed = try CameraFeed(camera: "porch", seconds: 4, gop: 30)
        let store = try await Fixtures.store(root: root)
        try await feed.feed(store)
        await store.stop()
        let last = try #require(try await store.index.segments(camera: "porch", from: nil, to: nil).last)
        var opened = SegmentRecord(path: "porch/opened.mp4", camera: "porch", start: last.end + 1_000_000, end: last.end + 2_000_000, bytes: 0,
                                   videoFrames: 0, audioFrames: 0, isOpen: true)
        FileManager.default.createFile(atPath: (root as NSString).appendingPathComponent(opened.path), contents: Data("\0\0\0\u{1C}ftyp".utf8))
        try await store.index.saveSegment(opened)
        let path = (root as NSString).appendingPathComponent("porch.mp4")
        let summary = try await Recording.export(root: root, index: store.index, camera: "porch", to: path)
        #expect(summary.videoFrames == feed.frames.count { $0.frame.codec == .h264 })
        opened.isOpen = false
        try await store.index.saveSegment(opened)
        await #expect(throws: StorageError(.corruptSegment, "")) {
            try await Recording.export(root: root, index: store.index, camera: "porch", to: path)
        }
    }
}
