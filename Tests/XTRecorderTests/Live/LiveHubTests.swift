// The live view's hub: a viewer who joins mid-GOP gets the stream's description, the MP4
// header and the fragments from the last keyframe on, which join into a stream that decodes
// (video, or video with sound); a camera with no keyframe yet or no video is refused with a
// reason; a viewer who stops reading is let go without holding up the others; a camera whose
// stream changes shape re-initialises its viewers in place (new description and header, same
// media timeline); B-frames reach the
// viewer with their composition offsets, so the browser shows them in display order.
import Foundation
import Synchronization
import Testing
import XTMedia
@testable import XTRecorder

@Suite struct LiveHubTests {
    /// Everything a viewer has received so far (without waiting for more).
    static func drain(_ packets: AsyncStream<LivePacket>, count: Int) async -> (info: LiveHub.Info?, bytes: [UInt8], packets: Int) {
        var info: LiveHub.Info?
        var bytes: [UInt8] = []
        var received = 0
        for await packet in packets {
            received += 1
            switch packet {
            case .info(let value): info = value
            case .header(let value): bytes += value
            case .fragment(let value): bytes += value.bytes
            }
            if received == count { break }
        }
        return (info, bytes, received)
    }

    static func decode(_ bytes: [UInt8]) throws -> (video: Int, audio: Int, tracks: Int) {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("xt-livehub-\(UInt32.random(in: 0...UInt32.max)).mp4").path
        defer { unlink(path) }
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        let reader = try MediaFileReader(path: path)
        var video = 0, audio = 0
        while let packet = try reader.next() { if reader.tracks[packet.track].kind == .video { video += 1 } else { audio += 1 } }
        return (video, audio, reader.tracks.count)
    }

    @Test func aViewerJoiningMidGOPStartsAtTheKeyframe() async throws {
        let clip = try CameraFeed(camera: "door", seconds: 3, gop: 60)
        let hub = LiveHub()
        #expect(throws: LiveHub.LiveError.noSuchCamera("door")) { try hub.watch("door", audio: false) }
        hub.note(clip.video)
        hub.note(clip.audio)
        #expect(throws: LiveHub.LiveError.noVideoYet("door")) { try hub.watch("door", audio: false) }
        // 70 video frames in: the second GOP started at frame 60.
        let videoFrames = clip.frames.filter { $0.frame.codec == .h264 }
        let cut = videoFrames[70].frame.captureTime
        for frame in clip.frames where frame.frame.captureTime <= cut { hub.take(frame) }
        #expect(hub.cameras == ["door": true])
        let silent = try hub.watch("door", audio: false)
        let loud = try hub.watch("door", audio: true)
        for frame in clip.frames where frame.frame.captureTime > cut { hub.take(frame) }
        let totalVideo = videoFrames.count
        // info + header + the kept GOP (frames 60–70) as one fragment + one per video frame after.
        let (info, bytes, _) = await Self.drain(silent.packets, count: 3 + (totalVideo - 71))
        #expect(info?.mime == "video/mp4; codecs=\"avc1.\(H264Bitstream.profileBytes(of: H264Bitstream.parameterSets(videoFrames[0].frame.data))!.map { String(format: "%02x", $0) }.joined())\"")
        #expect(info?.width == 160 && info?.audio == false && info?.origin == videoFrames[60].frame.captureTime.nanoseconds / 1_000_000)
        let decoded = try Self.decode(bytes)
        #expect(decoded.video == totalVideo - 60 && decoded.tracks == 1)
        let (loudInfo, loudBytes, _) = await Self.drain(loud.packets, count: 3 + (totalVideo - 71))
        #expect(loudInfo?.audio == true && loudInfo?.mime.hasSuffix(",opus\"") == true)
        let withSound = try Self.decode(loudBytes)
        #expect(withSound.tracks == 2 && withSound.video == totalVideo - 60 && withSound.audio >= 45, "\(withSound)")
        #expect(hub.counters.fragments > 0 && hub.counters.dropped == 0)
    }

    @Test func bFramesReachTheViewerInDisplayOrder() async throws {
        let (directory, clip) = try Fixtures.clip("bf.ts", ["-f", "lavfi", "-i", "testsrc2=s=320x180:r=25", "-t", "2", "-c:v", "libx264", "-bf", "2",
                            "-g", "50", "-f", "mpegts"])
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let (frames, description) = try Fixtures.passthrough(clip, count: 50)
        #expect(frames.contains { $0.compositionOffset > 0 })
        let header = MediaStreamHeader(stream: .random(), camera: "gate", description: try #require(description))
        let hub = LiveHub()
        hub.note(header)
        hub.take(MediaFrame(stream: header.stream, sequence: 0, frame: frames[0]))
        let viewer = try hub.watch("gate", audio: false)
        for (sequence, frame) in frames.enumerated().dropFirst() { hub.take(MediaFrame(stream: header.stream, sequence: UInt64(sequence), frame: frame)) }
        let (_, bytes, _) = await Self.drain(viewer.packets, count: 2 + frames.count)
        let path = (directory as NSString).appendingPathComponent("live.mp4")
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        let reader = try MediaFileReader(path: path)
        var packets: [MediaFileReader.Packet] = []
        while let packet = try reader.next() { packets.append(packet) }
        #expect(packets.map(\.compositionOffset) == frames.map(\.compositionOffset))
        let shown = packets.compactMap(\.nanoseconds).sorted()
        #expect(zip(shown, shown.dropFirst()).allSatisfy { $1 - $0 == 40_000_000 })
    }

    @Test func aViewerWhoStopsReadingIsLetGo() async throws {
        let clip = try CameraFeed(camera: "yard", seconds: 14, gop: 30)
        let hub = LiveHub()
        hub.note(clip.video)
        let video = clip.frames.filter { $0.frame.codec == .h264 }
        hub.take(video[0])
        let stalled = try hub.watch("yard", audio: false)
        let reader = try hub.watch("yard", audio: false)
        let reading = Task { await Self.drain(reader.packets, count: 2 + video.count) }
        for frame in video.dropFirst() {
            hub.take(frame)
            await Task.yield()
        }
        #expect(hub.counters.dropped == 1)
        // The stalled viewer's stream has ended after what it was owed.
        var received = 0
        for await _ in stalled.packets { received += 1 }
        #expect(received <= LiveHub.viewerBacklog + 3)
        #expect(await reading.value.packets == 2 + video.count)
    }

    @Test func aStreamThatChangesShapeReinitialisesItsViewersInPlace() async throws {
        let start = CaptureTime(nanoseconds: 1_800_000_000_000_000_000)
        let before = try CameraFeed(camera: "gate", seconds: 1, start: start, gop: 30)
        let after = try CameraFeed(camera: "gate", seconds: 1, start: start.adding(nanoseconds: 1_000_000_000), gop: 30, width: 320, height: 240)
        let hub = LiveHub()
        hub.note(before.video)
        hub.note(before.audio)
        for frame in before.frames.prefix(40) { hub.take(frame) }
        let viewer = try hub.watch("gate", audio: true)
        for frame in before.frames.dropFirst(40) { hub.take(frame) }
        // The camera now sends 320x240 (a new stream, as the agent starts one at the change).
        hub.note(after.video)
        hub.note(after.audio)
        for frame in after.frames { hub.take(frame) }
        hub.stop()
        var infos: [LiveHub.Info] = []
        var parts: [[UInt8]] = []
        for await packet in viewer.packets {
            switch packet {
            case .info(let info): infos.append(info); parts.append([])
            case .header(let bytes): parts[parts.count - 1] += bytes
            case .fragment(let fragment): parts[parts.count - 1] += fragment.bytes
            }
        }
        // The same viewer got the new description and header: no reconnect.
        #expect(infos.map { "\($0.width)x\($0.height)" } == ["160x120", "320x240"])
        #expect(infos.map(\.origin) == [start.nanoseconds / 1_000_000, start.nanoseconds / 1_000_000])
        var times: [[Int64]] = []
        for (index, part) in parts.enumerated() {
            let path = FileManager.default.temporaryDirectory.appendingPathComponent("xt-live-change-\(index)-\(UInt32.random(in: 0...UInt32.max)).mp4").path
            defer { unlink(path) }
            try Data(part).write(to: URL(fileURLWithPath: path))
            let reader = try MediaFileReader(path: path)
            let video = try #require(reader.tracks.first { $0.kind == .video })
            #expect(video.width == [160, 320][index] && reader.tracks.count == 2)
            var packets: [Int64] = []
            while let packet = try reader.next() { if reader.tracks[packet.track].kind == .video { packets.append(packet.decodeNanoseconds ?? -1) } }
            times.append(packets)
        }
        // Every picture of both shapes, on one media timeline that goes on rising.
        #expect(times.map(\.count) == [30, 30])
        #expect(times[1].first! > times[0].last!)
        #expect(times[1].first! - times[0].last! < 100_000_000)
    }

    /// H.264 High 4:2:2 (what many IP cameras send, and no browser plays): with `transcode` the
    /// viewer gets High 4:2:0 8-bit it can decode; without, the stream as it is.
    @Test(arguments: [true, false])
    func unplayableH264IsReencodedForViewersWhenAsked(transcode: Bool) async throws {
        let (directory, clip) = try Fixtures.clip("422.ts", ["-f", "lavfi", "-i", "testsrc2=s=320x180:r=25", "-t", "2", "-c:v", "libx264", "-pix_fmt", "yuv422p",
                            "-g", "25", "-f", "mpegts"])
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let (frames, found) = try Fixtures.passthrough(clip, count: 50)
        let description = try #require(found)
        #expect(description.h264Profile == 122 && !description.isBrowserPlayable)
        let header = MediaStreamHeader(stream: .random(), camera: "gate", description: description)
        let hub = LiveHub(transcode: transcode)
        hub.note(header)
        for (sequence, frame) in frames.prefix(10).enumerated() { hub.take(MediaFrame(stream: header.stream, sequence: UInt64(sequence), frame: frame)) }
        let viewer = try hub.watch("gate", audio: false)
        for (sequence, frame) in frames.enumerated().dropFirst(10) { hub.take(MediaFrame(stream: header.stream, sequence: UInt64(sequence), frame: frame)) }
        hub.stop()
        var info: LiveHub.Info?
        var bytes: [UInt8] = []
        for await packet in viewer.packets {
            switch packet {
            case .info(let value): info = value
            case .header(let value): bytes += value
            case .fragment(let value): bytes += value.bytes
            }
        }
        // avc1.PPCCLL: PP 42/4d/64 are Baseline/Main/High (8-bit 4:2:0), 7a is High 4:2:2.
        let profile = info?.mime.range(of: "avc1.").flatMap { Int(info!.mime[$0.upperBound...].prefix(2), radix: 16) }
        #expect(transcode ? H264StreamShape.browserProfiles.contains(profile ?? 0) : profile == 0x7A, "\(info?.mime ?? "")")
        let path = (directory as NSString).appendingPathComponent("live.mp4")
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        let probe = Process()
        probe.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        probe.arguments = ["ffprobe", "-v", "error", "-count_frames", "-select_streams", "v", "-show_entries", "stream=pix_fmt,nb_read_frames",
                           "-of", "csv=p=0", path]
        let output = Pipe()
        probe.standardOutput = output
        try probe.run()
        let text = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        probe.waitUntilExit()
        let fields = text.split(separator: ",")
        #expect(fields.first.map(String.init) == (transcode ? "yuv420p" : "yuv422p"), "\(text)")
        #expect((fields.last.flatMap { Int($0) } ?? 0) >= 45, "every picture from the keyframe on: \(text)")
    }

    /// Long GOPs ("smart codec" cameras, one keyframe a minute): a viewer joining 50 s after the
    /// keyframe gets the whole GOP at once (one catch-up fragment: not counted against its
    /// backlog) and every picture since decodes; the agent is asked for a fresh keyframe.
    @Test func aViewerJoiningALongGOPGetsAPictureAtOnce() async throws {
        let clip = try CameraFeed(camera: "yard", seconds: 56, gop: 1800, bitrate: 100_000)
        let hub = LiveHub()
        let asked = Mutex<[String]>([])
        hub.onKeyframeWanted { camera in asked.withLock { $0.append(camera) } }
        hub.note(clip.video)
        hub.note(clip.audio)
        let video = clip.frames.filter { $0.frame.codec == .h264 }
        let joinAt = video[1500].frame.captureTime
        for frame in clip.frames where frame.frame.captureTime <= joinAt { hub.take(frame) }
        let viewer = try hub.watch("yard", audio: true)
        #expect(asked.withLock { $0 } == ["yard"])
        for frame in clip.frames where frame.frame.captureTime > joinAt { hub.take(frame) }
        hub.stop()
        var bytes: [UInt8] = []
        var packets = 0
        for await packet in viewer.packets {
            packets += 1
            switch packet {
            case .header(let value): bytes += value
            case .fragment(let value): bytes += value.bytes
            case .info: break
            }
        }
        // info, header, the catch-up, then one fragment per live picture.
        #expect(packets == 3 + (video.count - 1501))
        let decoded = try Self.decode(bytes)
        #expect(decoded.video == video.count && decoded.audio > 2700, "\(decoded)")
    }

    /// A GOP beyond the byte limit is dropped whole, never cut: a new viewer is told to wait for
    /// the next keyframe (which is asked for) and then starts there.
    @Test func aGOPBeyondTheLimitWaitsForTheNextKeyframe() async throws {
        let clip = try CameraFeed(camera: "yard", seconds: 4, gop: 60, bitrate: 400_000)
        let hub = LiveHub(gopByteLimit: 20_000)
        let asked = Mutex(0)
        hub.onKeyframeWanted { _ in asked.withLock { $0 += 1 } }
        hub.note(clip.video)
        let video = clip.frames.filter { $0.frame.codec == .h264 }
        for frame in video.prefix(50) { hub.take(frame) }
        #expect(throws: LiveHub.LiveError.noVideoYet("yard")) { try hub.watch("yard", audio: false) }
        #expect(asked.withLock { $0 } == 1)
        // The next keyframe (frame 60) starts a GOP a viewer can join.
        for frame in video[50...61] { hub.take(frame) }
        let viewer = try hub.watch("yard", audio: false)
        for frame in video.dropFirst(62) { hub.take(frame) }
        hub.stop()
        let (_, bytes, _) = await Self.drain(viewer.packets, count: 1000)
        #expect(try Self.decode(bytes).video == video.count - 60)
    }
}
