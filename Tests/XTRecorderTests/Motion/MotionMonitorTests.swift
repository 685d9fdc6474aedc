// Motion events in the recorder: grids and live video of a camera with scripted motion give
// events in the index at the scripted times, each with a JPEG snapshot showing the object;
// retention keeps the recording around an event longer than the rest.
import Foundation
import Testing
import XTMedia
@testable import XTRecorder

@Suite struct MotionMonitorTests {
    static let start = CaptureTime(nanoseconds: 1_800_000_000_000_000_000)

    @Test func scriptedMotionBecomesEventsWithSnapshots() async throws {
        let root = Fixtures.temporaryDirectory("motion")
        defer { try? FileManager.default.removeItem(atPath: root) }
        let script = try MotionScript(parsing: "4-7:0.3,0.5>0.8,0.5:0.3; 14-16:0.7,0.4>0.3,0.6:0.3")
        let feed = try CameraFeed(camera: "drive", seconds: 22, start: Self.start, script: script, width: 320, height: 180, detectMotion: true)
        let store = try await Fixtures.store(root: root)
        var settings = MotionSettings()
        settings.masks = MotionEvaluatorTests.overlays
        settings.cooldown = .seconds(2)
        let monitor = MotionMonitor(store: store, defaults: settings, logger: Fixtures.logger)
        let started = StartedEvents()
        await monitor.listen { event, isStart in if isStart { await started.add(event) } }
        try await store.note(feed.video)
        try await store.note(feed.audio)
        // Frames and grids in capture order, as they arrive live.
        var grids = feed.grids[...]
        for frame in feed.frames {
            while let grid = grids.first, grid.captureTime <= frame.frame.captureTime {
                await monitor.take(camera: "drive", grid: grid)
                grids = grids.dropFirst()
            }
            _ = await store.take(frame)
        }
        await monitor.finish()
        await store.stop()

        let events = try await store.index.events(camera: "drive", from: nil, to: nil)
        #expect(events.count == 2, "\(events)")
        #expect(await started.events.map(\.id) == events.map(\.id))
        for (event, scripted) in zip(events, [(4.0, 7.0), (14.0, 16.0)]) {
            let start = Double(event.start - Self.start.nanoseconds) / 1e9, end = Double((event.end ?? 0) - Self.start.nanoseconds) / 1e9
            #expect(start >= scripted.0 - 0.05 && start <= scripted.0 + 0.4, "starts at \(start)")
            #expect(end >= scripted.1 - 0.5 && end <= scripted.1 + 0.2, "ends at \(end)")
            #expect(event.clipStart == event.start - 5_000_000_000 && event.clipEnd == event.end.map { $0 + 5_000_000_000 })
            let snapshot = try #require(event.snapshot)
            #expect(snapshot.hasPrefix("drive/events/2027-01-15/"))
            let jpeg = try [UInt8](Data(contentsOf: URL(fileURLWithPath: "\(root)/\(snapshot)")))
            let picture = try #require(try VideoDecoder(codec: .mjpeg).decode(jpeg, captureTime: Self.start).first)
            #expect(picture.width == 320 && picture.height == 180)
            // The object (bright) is in the picture, around where the script had it at the peak.
            let seconds = Double(event.peakTime - Self.start.nanoseconds) / 1e9
            let position = try #require(script.objects(at: seconds).first)
            let bright = picture.meanLuma(x: Int(position.x * 320) - 10, y: Int(position.y * 180) - 10, width: 20, height: 20)
            #expect(bright > 200, "snapshot at \(seconds) s: luma \(bright) where the object is")
        }
        let report = await monitor.currentReport()
        #expect(report.eventsStarted == 2 && report.eventsEnded == 2 && report.snapshots == 2)
    }

    @Test func aCameraWithoutGridsIsDecodedAtTheRecorder() async throws {
        let root = Fixtures.temporaryDirectory("motion")
        defer { try? FileManager.default.removeItem(atPath: root) }
        let script = try MotionScript(parsing: "4-7:0.3,0.5>0.8,0.5:0.3; 14-16:0.7,0.4>0.3,0.6:0.3")
        let feed = try CameraFeed(camera: "passthrough", seconds: 20, start: Self.start, script: script, width: 320, height: 180)
        let store = try await Fixtures.store(root: root)
        var settings = MotionSettings()
        settings.masks = MotionEvaluatorTests.overlays
        settings.cooldown = .seconds(2)
        // Frames come faster than real time here: the queue holds them all.
        let monitor = MotionMonitor(store: store, defaults: settings, agentSilence: .zero, decodeQueue: 10_000, logger: Fixtures.logger)
        try await store.note(feed.video)
        try await store.note(feed.audio)
        // What the ingest does with live video of a camera whose agent sends no grids.
        for frame in feed.frames {
            _ = await store.take(frame)
            guard frame.frame.codec == .h264 else { continue }
            await monitor.noteVideo(camera: "passthrough")
            if monitor.wantsVideo(of: "passthrough") {
                monitor.decode(camera: "passthrough", frame: frame.frame, description: feed.video.description)
            }
        }
        await monitor.finish()
        await store.stop()
        let report = await monitor.currentReport()
        #expect(report.decodedCameras == 1 && report.decodedPictures >= 590 && (195...205).contains(report.analysedPictures), "\(report)")
        let events = try await store.index.events(camera: "passthrough", from: nil, to: nil)
        let spans = events.map { (Double($0.start - Self.start.nanoseconds) / 1e9, Double(($0.end ?? 0) - Self.start.nanoseconds) / 1e9) }
        #expect(spans.count == 2 && abs(spans[0].0 - 4) < 0.4 && abs(spans[1].0 - 14) < 0.4, "\(spans)")
        #expect(events.allSatisfy { $0.snapshot != nil })
    }

    @Test func eventClipsOutliveTheMaximumAge() async throws {
        let root = Fixtures.temporaryDirectory("motion")
        defer { try? FileManager.default.removeItem(atPath: root) }
        var policy = RetentionPolicy()
        policy.maximumAge = .seconds(10)
        policy.eventMaximumAge = .seconds(100)
        policy.minimumFreeBytes = 0
        var settings = SegmentSettings()
        settings.segmentDuration = .seconds(2)
        let store = try await RecordingStore.open(root: root, settings: settings, retention: policy, logger: Fixtures.logger)
        try await CameraFeed(camera: "c", seconds: 30, start: Self.start).feed(store)
        await store.stop()
        let event = try await store.index.saveEvent(EventRecord(camera: "c", zone: "all", start: Self.start.nanoseconds + 12_000_000_000,
                                                                end: Self.start.nanoseconds + 13_000_000_000,
                                                                clipStart: Self.start.nanoseconds + 10_000_000_000,
                                                                clipEnd: Self.start.nanoseconds + 15_000_000_000,
                                                                peakTime: Self.start.nanoseconds + 12_500_000_000, peakScore: 0.2))
        // 60 s later: everything is past 10 s old, but the event's clip is kept.
        await store.applyRetention(now: Self.start.nanoseconds + 60_000_000_000)
        let kept = try await store.index.segments(camera: "c", from: nil, to: nil)
        #expect(!kept.isEmpty && kept.allSatisfy { $0.end >= event.clipStart && $0.start <= event.clipEnd! }, "\(kept.map(\.path))")
        #expect(kept.first!.start <= event.clipStart && kept.last!.end >= event.clipEnd!)
        // 200 s later the event is past keeping too.
        await store.applyRetention(now: Self.start.nanoseconds + 200_000_000_000)
        #expect(try await store.index.segments(camera: "c", from: nil, to: nil).isEmpty)
        #expect(try await store.index.events(camera: "c", from: nil, to: nil).isEmpty)
    }
}

actor StartedEvents {
    var events: [EventRecord] = []
    func add(_ event: EventRecord) { events.append(event) }
}
