// The recorder's storage as a user sees it: live frames become ~10 s fMP4 segments under
// <camera>/<date>/<hour>/ that ffprobe plays; backfill after an outage lands in place; a crash
// loses at most the last fragment; the index can be rebuilt from the files; a corrupt segment
// is reported without stopping anything else.
import Foundation
import Testing
import XTMedia
@testable import XTRecorder

@Suite struct RecordingStoreTests {
    static let start = CaptureTime(nanoseconds: 1_800_000_000_000_000_000)

    func seconds(_ frame: MediaFrame) -> Double { Double(frame.frame.captureTime.nanoseconds(since: Self.start)) / 1e9 }

    @Test func liveFramesBecomeSegmentsCutAtKeyframes() async throws {
        let root = Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: root) }
        let feed = try CameraFeed(camera: "porch", seconds: 25, start: Self.start)
        let store = try await Fixtures.store(root: root)
        try await feed.feed(store)
        await store.stop()

        let segments = try await store.index.segments(camera: "porch", from: nil, to: nil)
        #expect(segments.map(\.path) == [
            "porch/2027-01-15/08/08-00-00.000.mp4", "porch/2027-01-15/08/08-00-10.000.mp4", "porch/2027-01-15/08/08-00-20.000.mp4",
        ])
        #expect(segments.allSatisfy { !$0.isOpen })
        #expect(segments.map(\.videoFrames).reduce(0, +) == 750 && segments.map(\.audioFrames).reduce(0, +) == 1250)
        for segment in segments {
            let path = (root as NSString).appendingPathComponent(segment.path)
            let probe = Fixtures.probe(path)
            #expect(probe.ok && probe.video == segment.videoFrames, "\(segment.path): \(probe)")
            // About one fragment per second of media.
            let structure = try FragmentedMP4.structure(of: path)
            #expect(abs(Double(structure.fragments) - segment.seconds) <= 1.5, "\(structure.fragments) fragments in \(segment.seconds) s")
            let contents = try SegmentFile.read(path)
            #expect(contents.frames.first { $0.codec == .h264 }?.isKeyframe == true)
            #expect(contents.camera == "porch" && contents.start == segment.start)
        }
        let timeline = try await Recording.check(root: root, index: store.index)
        #expect(timeline.allSatisfy { $0.gaps.isEmpty && $0.missingFrames == 0 && $0.problems.isEmpty }, "\(timeline)")
    }

    /// Recording switched off (MQTT's `CAMERA/recordings/set OFF`) from 4 s to 9 s: the open
    /// segment closes, those frames are not written but answered as held (so the agent's ring
    /// does not backfill them), the other camera records on, and from the next keyframe after
    /// it is back on the camera records again; the timeline has that gap.
    @Test func recordingSwitchedOffAndOn() async throws {
        let root = Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: root) }
        let porch = try CameraFeed(camera: "porch", seconds: 14, start: Self.start, gop: 30)
        let yard = try CameraFeed(camera: "yard", seconds: 14, start: Self.start, gop: 30)
        let store = try await Fixtures.store(root: root)
        for feed in [porch, yard] {
            try await store.note(feed.video)
            try await store.note(feed.audio)
        }
        var paused = 0
        for (a, b) in zip(porch.frames, yard.frames) {
            let time = seconds(a)
            let recording = await store.records("porch")
            if time >= 4, time < 9, recording { #expect(await store.setRecording(camera: "porch", on: false) == false) }
            if time >= 9, !recording { #expect(await store.setRecording(camera: "porch", on: true)) }
            let taken = await store.take(a)
            if taken == .paused { paused += 1 }
            #expect(await store.take(b) != .paused)
        }
        await store.stop()
        let counted = await store.currentReport().framesPaused
        #expect(paused == counted && paused >= 5 * 80 - 4, "\(paused)")  // 5 s of 30 pictures and 50 sounds
        // Held, as far as the agent is concerned: its inventory gets them all back in the receipt.
        let entry = InventoryEntry(header: porch.video, first: 0, last: UInt64(porch.frames.filter { $0.stream == porch.video.stream }.count - 1))
        let held = await store.receipt(for: [entry]).first?.ranges ?? []
        #expect(held == [0...entry.last], "\(held)")
        let timeline = try await Recording.check(root: root, index: store.index)
        let porchVideo = try #require(timeline.first { $0.camera == "porch" && $0.kind == "video" })
        #expect(porchVideo.gaps.count == 1 && (4_900...6_100).contains(porchVideo.gaps[0].milliseconds), "\(porchVideo.gaps)")
        let yardVideo = try #require(timeline.first { $0.camera == "yard" && $0.kind == "video" })
        #expect(yardVideo.gaps.isEmpty && yardVideo.frames == 14 * 30, "\(yardVideo)")
    }

    /// 6 s at 160x120, then (a new stream from the agent, as when a camera's settings change)
    /// 6 s at 320x240 starting `overlap` frames before the first part's end (an agent whose
    /// clock let the two overlap); keyframes every second.
    @Test(arguments: [0, 2])
    func aStreamThatChangesShapeNeverSharesASegment(overlap: Int) async throws {
        let root = Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: root) }
        let before = try CameraFeed(camera: "gate", seconds: 6, start: Self.start, gop: 30)
        let after = try CameraFeed(camera: "gate", seconds: 6, start: Self.start.adding(nanoseconds: 6_000_000_000 - Int64(overlap) * 33_333_333),
                                   gop: 30, width: 320, height: 240)
        let store = try await Fixtures.store(root: root)
        try await before.feed(store)
        try await after.feed(store)
        await store.stop()
        let segments = try await store.index.segments(camera: "gate", from: nil, to: nil)
        var sizes: [String] = []
        for segment in segments {
            let path = (root as NSString).appendingPathComponent(segment.path)
            let contents = try SegmentFile.read(path)
            let size = "\(contents.video?.width ?? 0)x\(contents.video?.height ?? 0)"
            if sizes.last != size { sizes.append(size) }
            let probe = Fixtures.probe(path)
            #expect(probe.ok && probe.video == segment.videoFrames, "\(segment.path): \(probe)")
        }
        #expect(sizes == ["160x120", "320x240"], "\(sizes)")
        #expect(segments.map(\.videoFrames).reduce(0, +) == 360)
        // Cut at the new stream's keyframe when it follows on; the export keeps both parts whole.
        if overlap == 0 { #expect(segments.map { Double($0.start - Self.start.nanoseconds) / 1e9 } == [0, 6]) }
        let file = (root as NSString).appendingPathComponent("export.mp4")
        let summary = try await Recording.export(root: root, index: store.index, camera: "gate", to: file)
        #expect(summary.videoSizes == ["160x120", "320x240"] && summary.videoFrames == 360)
        #expect(Fixtures.probe(file).ok)
        // A clip to play ends at the change; the next, from its end, is the other part.
        let first = try await Recording.export(root: root, index: store.index, camera: "gate", to: file, from: Self.start.adding(nanoseconds: 200_000_000),
                                               fromKeyframeBefore: true, untilShapeChange: true)
        #expect(first.videoSizes == ["160x120"] && first.continues && first.videoFrames == 180, "\(first)")
        let second = try await Recording.export(root: root, index: store.index, camera: "gate", to: file,
                                                from: CaptureTime(nanoseconds: first.end + 1_000_000), fromKeyframeBefore: true, untilShapeChange: true)
        #expect(second.videoSizes == ["320x240"] && !second.continues && second.videoFrames == 180, "\(second)")
    }

    @Test func backfillAfterAnOutageLandsInPlace() async throws {
        let root = Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: root) }
        let feed = try CameraFeed(camera: "yard", seconds: 30, start: Self.start)
        let store = try await Fixtures.store(root: root)
        // The link is down from 12.5 s to 17.3 s: live resumes mid-GOP and waits for a keyframe.
        let outage = { (frame: MediaFrame) in (12.5..<17.3).contains(self.seconds(frame)) }
        var askedForKeyframe = false
        try await store.note(feed.video)
        try await store.note(feed.audio)
        for frame in feed.frames where !outage(frame) {
            if case .needsKeyframe = await store.take(frame) { askedForKeyframe = true }
        }
        #expect(askedForKeyframe)
        await store.tick(force: true)
        var gaps = try await store.index.gaps(camera: "yard", from: nil, to: nil)
        #expect(gaps.count == 1)
        // Then the agent sends what the recorder missed from its ring.
        let receipt = await store.receipt(for: [InventoryEntry(header: feed.video, first: 0, last: 899)])
        #expect(receipt.first?.ranges.count == 2)
        try await feed.feed(store, where: outage, backfill: true)
        await store.stop()

        gaps = try await store.index.gaps(camera: "yard", from: nil, to: nil)
        #expect(gaps.isEmpty, "\(gaps)")
        let timeline = try await Recording.check(root: root, index: store.index)
        #expect(timeline.map(\.frames) == [900, 1500])
        #expect(timeline.allSatisfy { $0.gaps.isEmpty && $0.missingFrames == 0 && $0.problems.isEmpty }, "\(timeline)")
        let segments = try await store.index.segments(camera: "yard", from: nil, to: nil)
        for segment in segments {
            let probe = Fixtures.probe((root as NSString).appendingPathComponent(segment.path))
            #expect(probe.ok && probe.video == segment.videoFrames, "\(segment.path): \(probe)")
            #expect(segment.seconds < 12.5)
        }
        // Nothing waits any more, and nothing is left aside.
        #expect(!FileManager.default.fileExists(atPath: "\(root)/yard/fill.xtm"))
        #expect(try FileManager.default.contentsOfDirectory(atPath: "\(root)/.tmp").isEmpty)
    }

    @Test func aCrashLosesAtMostTheLastFragment() async throws {
        let root = Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: root) }
        let feed = try CameraFeed(camera: "gate", seconds: 16, start: Self.start)
        let crashed = try await Fixtures.store(root: root)
        try await feed.feed(crashed)
        await crashed.tick()
        // The process dies mid-write: the open segment ends in a torn fragment.
        let open = try await crashed.index.openSegments()
        #expect(open.count == 1)
        let path = (root as NSString).appendingPathComponent(open[0].path)
        let size = try FileManager.default.attributesOfItem(atPath: path)[.size] as! Int
        let torn = FileHandle(forWritingAtPath: path)!
        try torn.seek(toOffset: UInt64(size))
        try torn.write(contentsOf: [0, 0, 0x40, 0, 0x6D, 0x6F, 0x6F, 0x66] + [UInt8](repeating: 7, count: 300))
        try torn.close()

        let restarted = try await Fixtures.store(root: root)
        #expect(await restarted.currentReport().segmentsRepaired == 1)
        #expect(try await restarted.index.openSegments().isEmpty)
        let segments = try await restarted.index.segments(camera: "gate", from: nil, to: nil)
        for segment in segments {
            let probe = Fixtures.probe((root as NSString).appendingPathComponent(segment.path))
            #expect(probe.ok, "\(segment.path) does not play")
        }
        let recorded = segments.map(\.end).max()!
        let lost = Double(feed.frames.last!.frame.captureTime.nanoseconds - recorded) / 1e9
        #expect(lost <= 1.1, "\(lost) s lost")
        let timeline = try await Recording.check(root: root, index: restarted.index)
        #expect(timeline.allSatisfy { $0.problems.isEmpty }, "\(timeline)")
        // What reached the disk is what the recorder tells agents it has.
        let receipt = await restarted.receipt(for: [InventoryEntry(header: feed.video, first: 0, last: 479)])
        let held = receipt[0].ranges.reduce(0) { $0 + Int($1.count) }
        #expect(held == timeline.first { $0.kind == "video" }!.frames)
    }

    @Test func theIndexIsRebuiltFromTheFiles() async throws {
        let root = Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: root) }
        let store = try await Fixtures.store(root: root)
        for camera in ["one", "two"] { try await CameraFeed(camera: camera, seconds: 12, start: Self.start).feed(store) }
        await store.stop()
        let before = try await store.index.segments(camera: nil, from: nil, to: nil)

        let fresh = try SQLiteIndex(path: "\(root)/rebuilt.sqlite")
        let summary = try await RecordingStore.reindex(root: root, index: fresh, logger: Fixtures.logger)
        #expect(summary.cameras == 2 && summary.segments == before.count && summary.corrupt.isEmpty)
        let after = try await fresh.segments(camera: nil, from: nil, to: nil)
        #expect(after.map(\.path) == before.map(\.path))
        #expect(after.map(\.start) == before.map(\.start))
        #expect(after.map(\.videoFrames) == before.map(\.videoFrames) && after.map(\.audioFrames) == before.map(\.audioFrames))
        for (rebuilt, original) in zip(after, before) { #expect(abs(rebuilt.end - original.end) < 1_000_000) }
        #expect(try await fresh.cameras().map(\.name) == ["one", "two"])
    }

    @Test func aCorruptSegmentIsReportedAndRecordingGoesOn() async throws {
        let root = Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: root) }
        let store = try await Fixtures.store(root: root)
        try await CameraFeed(camera: "one", seconds: 12, start: Self.start).feed(store)
        await store.stop()
        let segments = try await store.index.segments(camera: "one", from: nil, to: nil)
        // One segment overwritten with garbage.
        let damaged = (root as NSString).appendingPathComponent(segments[0].path)
        try Data((0..<5000).map { UInt8(truncatingIfNeeded: $0 &* 31) }).write(to: URL(fileURLWithPath: damaged))

        let timeline = try await Recording.check(root: root, index: store.index, camera: "one")
        #expect(timeline.first?.problems.contains { $0.contains(segments[0].path) && $0.contains("reindex") } == true, "\(timeline)")
        let summary = try await RecordingStore.reindex(root: root, index: store.index, logger: Fixtures.logger)
        #expect(summary.corrupt.count == 1 && summary.segments == segments.count - 1)

        // The store opens over it and another camera records.
        let reopened = try await Fixtures.store(root: root)
        try await CameraFeed(camera: "two", seconds: 5, start: Self.start.adding(nanoseconds: 60_000_000_000)).feed(reopened)
        await reopened.stop()
        let two = try await Recording.check(root: root, index: reopened.index, camera: "two")
        #expect(two.map(\.frames) == [150, 250])
    }

    /// Numbers in files are outside input too: a start tag past 2262, a name whose year does
    /// not fit, a box size near Int.max — each is a corrupt segment reported by name.
    @Test func impossibleNumbersInSegmentFilesAreReportedNotTrappedOn() async throws {
        let root = Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: root) }
        let feed = try CameraFeed(camera: "odd", seconds: 2, start: Self.start)
        let frames = feed.frames.map(\.frame)
        let directory = (root as NSString).appendingPathComponent("odd/2030-01-01/00")
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        // A start tag near Int64's end.
        let tagged = (directory as NSString).appendingPathComponent("00-00-00.000.mp4")
        let writer = try MediaFileWriter(path: tagged, format: "mp4", streams: [feed.video.description], fragmented: true,
                                         metadata: [SegmentFile.cameraTag: "odd", SegmentFile.startTag: "9223372036854775000"])
        for frame in frames where frame.codec == .h264 { try writer.write(frame, stream: 0) }
        try writer.finish()
        let error = #expect(throws: StorageError.self) { try SegmentFile.read(tagged) }
        #expect(error?.reason.contains("outside 1970–2199") == true, "\(String(describing: error))")
        // No tag, and a name whose year would overflow.
        #expect(SegmentFile.start(fromName: "odd/99999999999-01-01/00/00-00-00.000.mp4") == nil)
        #expect(SegmentFile.start(fromName: "odd/2030-01-01/00/00-00-00.99999999999999.mp4") == nil)
        #expect(SegmentFile.start(fromName: "odd/2030-01-01/00/00-00-00.000.mp4") == 1_893_456_000_000_000_000)
        // A box whose 64-bit size is near Int.max.
        var box: [UInt8] = [0, 0, 0, 1] + Array("moof".utf8) + [0x7F, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xF0]
        box += [UInt8](repeating: 0, count: 64)
        let boxed = (directory as NSString).appendingPathComponent("00-00-05.000.mp4")
        try Data(box).write(to: URL(fileURLWithPath: boxed))
        #expect(try FragmentedMP4.structure(of: boxed).completeLength == 0)
        let summary = try await RecordingStore.reindex(root: root, index: try SQLiteIndex(path: "\(root)/index.sqlite"), logger: Fixtures.logger)
        #expect(summary.corrupt.count == 2, "\(summary)")
    }

    /// A camera with one keyframe every 30 s: an export (and a clip) of a range inside the GOP
    /// starts at the keyframe before it instead of finding "no frames".
    @Test func anExportInsideALongGOPStartsAtTheKeyframeBeforeIt() async throws {
        let root = Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: root) }
        let feed = try CameraFeed(camera: "long", seconds: 40, start: Self.start, gop: 900, bitrate: 100_000)
        let store = try await Fixtures.store(root: root)
        try await feed.feed(store)
        await store.stop()
        let file = (root as NSString).appendingPathComponent("range.mp4")
        let summary = try await Recording.export(root: root, index: store.index, camera: "long", to: file,
                                                 from: Self.start.adding(nanoseconds: 20_000_000_000),
                                                 to: Self.start.adding(nanoseconds: 25_000_000_000), fromKeyframeBefore: true)
        #expect(summary.start == Self.start.nanoseconds, "starts at the keyframe at 0 s")
        #expect(summary.videoFrames >= 750 && summary.videoFrames <= 752, "\(summary.videoFrames)")
        #expect(Fixtures.probe(file).ok && Fixtures.probe(file).video == summary.videoFrames)
    }

    @Test func soundThatStartsAfterThePictureIsNotLeftWaiting() async throws {
        let root = Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: root) }
        let feed = try CameraFeed(camera: "door", seconds: 6, start: Self.start)
        let store = try await Fixtures.store(root: root)
        try await store.note(feed.video)
        // The microphone's header comes 1.5 s after the camera's first keyframe.
        for frame in feed.frames where frame.frame.codec == .h264 && seconds(frame) < 1.5 { _ = await store.take(frame) }
        try await store.note(feed.audio)
        for frame in feed.frames where seconds(frame) >= 1.5 || frame.frame.codec == .opus { _ = await store.take(frame) }
        // Still recording: the first segment was cut at the next keyframe (2 s) and its sound filled in.
        await store.tick(force: true)
        let segments = try await store.index.segments(camera: "door", from: nil, to: nil)
        #expect(segments.count == 2 && segments[0].end <= Self.start.nanoseconds + 2_100_000_000, "\(segments)")
        #expect(segments[0].audioFrames == 100 && segments[0].videoFrames == 60, "\(segments[0])")
        let live = try SegmentFile.read("\(root)/\(segments[1].path)")
        #expect(live.audio != nil && live.video != nil)
        await store.stop()
    }

    @Test func aMissingOrUnusableStorageRootIsAClearError() async throws {
        let file = Fixtures.temporaryDirectory() + "/plain-file"
        FileManager.default.createFile(atPath: file, contents: Data([1]))
        await #expect {
            _ = try await RecordingStore.open(root: file, logger: Fixtures.logger)
        } throws: { ($0 as? StorageError)?.code == .storageRoot && "\($0)".contains("choose another --storage") }
    }
}

