// Retention as a user relies on it: recordings older than their camera's maximum age go, the
// oldest go when the recordings outgrow their size, and a disk that fills up (a small tmpfs)
// never stops the recording: the write that failed is logged, the oldest segments make room,
// and the newest minutes are there and play.
import Foundation
import Testing
import XTMedia
@testable import XTRecorder

@Suite struct RetentionTests {
    static let start = CaptureTime(nanoseconds: 1_800_000_000_000_000_000)

    @Test func ageAndSizeLimitsDeleteTheOldestFirst() async throws {
        let root = Fixtures.temporaryDirectory("retention")
        defer { try? FileManager.default.removeItem(atPath: root) }
        var policy = RetentionPolicy()
        policy.maximumAge = .seconds(30)
        policy.cameraMaximumAge = ["keep": .seconds(3600)]
        policy.minimumFreeBytes = 0
        var settings = SegmentSettings()
        settings.segmentDuration = .seconds(5)
        let store = try await RecordingStore.open(root: root, settings: settings, retention: policy, logger: Fixtures.logger)
        for camera in ["short", "keep"] { try await CameraFeed(camera: camera, seconds: 60, start: Self.start).feed(store) }
        await store.stop()
        let before = try await store.index.segments(camera: "short", from: nil, to: nil)
        let keep = try await store.index.segments(camera: "keep", from: nil, to: nil)

        // 70 s after the start: "short" keeps only what ended in the last 30 s; "keep" keeps all.
        await store.applyRetention(now: Self.start.nanoseconds + 70_000_000_000)
        let short = try await store.index.segments(camera: "short", from: nil, to: nil)
        let expected = before.filter { $0.end >= Self.start.nanoseconds + 40_000_000_000 }
        #expect(short == expected && !expected.isEmpty && expected.count < before.count)
        #expect(try await store.index.segments(camera: "keep", from: nil, to: nil) == keep)
        for segment in try await store.index.segments(camera: nil, from: nil, to: nil) {
            #expect(FileManager.default.fileExists(atPath: "\(root)/\(segment.path)"))
        }
        #expect(Recording.segmentFiles(root: root, camera: "short").count == expected.count)
        #expect(await store.currentRetention().segmentsDeleted == before.count - expected.count)
    }

    @Test func aSizeLimitKeepsTheNewest() async throws {
        let root = Fixtures.temporaryDirectory("retention")
        defer { try? FileManager.default.removeItem(atPath: root) }
        var policy = RetentionPolicy()
        policy.maximumAge = nil
        policy.minimumFreeBytes = 0
        let store = try await RecordingStore.open(root: root, retention: policy, logger: Fixtures.logger)
        try await CameraFeed(camera: "cam", seconds: 40, start: Self.start).feed(store)
        await store.stop()
        let all = try await store.index.segments(camera: "cam", from: nil, to: nil)
        let total = all.reduce(0) { $0 + $1.bytes }
        var limited = policy
        limited.maximumBytes = total / 2
        let bounded = try await RecordingStore.open(root: root, retention: limited, logger: Fixtures.logger)
        await bounded.applyRetention()
        let kept = try await bounded.index.segments(camera: "cam", from: nil, to: nil)
        #expect(kept.reduce(0) { $0 + $1.bytes } <= total / 2)
        #expect(kept.last == all.last && kept.count < all.count)
    }

    @Test(.enabled(if: getuid() == 0, "mounting a tmpfs needs root"))
    func aFullDiskNeverStopsTheRecording() async throws {
        let root = Fixtures.temporaryDirectory("full-disk")
        #expect(Self.shell("mount -t tmpfs -o size=4m xt-test-full \(root)") == 0)
        defer {
            _ = Self.shell("umount \(root)")
            try? FileManager.default.removeItem(atPath: root)
        }
        var policy = RetentionPolicy()
        policy.maximumAge = nil
        policy.minimumFreeBytes = 0  // so the disk really fills up
        policy.interval = .zero
        var settings = SegmentSettings()
        settings.segmentDuration = .seconds(4)
        let store = try await RecordingStore.open(root: root, settings: settings, retention: policy, logger: Fixtures.logger)
        let feed = try CameraFeed(camera: "cam", seconds: 150, start: Self.start, width: 640, height: 360, bitrate: 2_000_000)
        let bytes = feed.frames.reduce(0) { $0 + $1.frame.data.count }
        #expect(bytes > 6 << 20, "the feed (\(bytes) bytes) must not fit the 4 MiB disk")
        try await store.note(feed.video)
        try await store.note(feed.audio)
        var failures = 0
        var second = 0
        for frame in feed.frames {
            if case .failed = await store.take(frame) { failures += 1 }
            let now = Int(frame.frame.captureTime.nanoseconds(since: Self.start) / 1_000_000_000)
            if now > second {
                second = now
                await store.tick()
            }
        }
        await store.stop()
        let retention = await store.currentRetention()
        print("full disk: \(failures) frames refused, \(retention.diskFull) full-disk events, \(retention.segmentsDeleted) segments deleted")
        #expect(retention.diskFull >= 1, "the disk never filled: \(retention)")
        #expect(retention.segmentsDeleted > 10)
        #expect(failures < 300, "\(failures) frames refused")

        let segments = try await store.index.segments(camera: "cam", from: nil, to: nil)
        // The oldest went; the newest minute is there and plays.
        #expect(segments.first!.start > Self.start.nanoseconds + 60_000_000_000)
        #expect(segments.last!.end >= feed.frames.last!.frame.captureTime.nanoseconds)
        let lastMinute = segments.filter { $0.start >= feed.frames.last!.frame.captureTime.nanoseconds - 60_000_000_000 }
        #expect(lastMinute.reduce(0) { $0 + $1.seconds } > 55)
        for segment in segments {
            #expect(Fixtures.probe("\(root)/\(segment.path)").ok, "\(segment.path) does not play")
        }
        let timeline = try await Recording.check(root: root, index: store.index)
        #expect(timeline.allSatisfy { $0.problems.isEmpty }, "\(timeline)")
    }

    static func shell(_ command: String) -> Int32 {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/sh")
        process.arguments = ["-c", command]
        try? process.run()
        process.waitUntilExit()
        return process.terminationStatus
    }
}
