// A call's video, sans-IO where it can be: the bitrate following the link, the receiver's
// gate (a lost picture freezes the video until a keyframe, asked for at once and again every
// 300 ms), keyframe requests on the wire, and the sender's encoder (a keyframe first and on
// request, the bitrate taken up). The recording writes both directions to one MP4 that reads
// back with every track.
import Foundation
import Testing
import XTCall
import XTMedia
import XTransport

@Suite("Call video")
struct CallVideoTests {
    private func at(_ milliseconds: Int) -> Timestamp { Timestamp(nanoseconds: 1_000_000_000 + UInt64(milliseconds) * 1_000_000) }

    @Test("The bitrate rises 8% a second on a clean link, up to 1.5x the rate estimate; falls with loss and with queueing delay")
    func bitrateFollowsTheLink() {
        var controller = VideoBitrateController()
        #expect(controller.bitrate == 600_000)
        // Clean, with room: +8% per second.
        var rate = controller.update(.init(lossPercent: 0, rateEstimate: 5_000_000, smoothedRTT: .milliseconds(20), minimumRTT: .milliseconds(18)), interval: .seconds(1))
        #expect(rate == 648_000)
        // The path has shown only 400 kbit/s: no higher than 1.5 times that (and never below where it is).
        rate = controller.update(.init(lossPercent: 0, rateEstimate: 400_000), interval: .seconds(1))
        #expect(rate == 648_000)
        // 20% loss: down by half the loss fraction.
        rate = controller.update(.init(lossPercent: 20, rateEstimate: nil), interval: .seconds(1))
        #expect(rate == 583_200)
        #expect(controller.reason == .loss)
        // 5% loss: hold.
        rate = controller.update(.init(lossPercent: 5, rateEstimate: nil), interval: .seconds(1))
        #expect(rate == 583_200 && controller.reason == .hold)
        // The queue builds (RTT 150 ms over a 20 ms minimum): to 85% of what the path delivers.
        rate = controller.update(.init(lossPercent: 0, rateEstimate: 300_000, smoothedRTT: .milliseconds(150), minimumRTT: .milliseconds(20)), interval: .seconds(1))
        #expect(rate == 255_000 && controller.reason == .overuse)
        // Never below the floor, never above the ceiling.
        for _ in 0..<20 { rate = controller.update(.init(lossPercent: 60, rateEstimate: nil), interval: .seconds(1)) }
        #expect(rate == 150_000)
        for _ in 0..<200 { rate = controller.update(.init(lossPercent: 0, rateEstimate: nil), interval: .seconds(1)) }
        #expect(rate == 2_500_000)
    }

    @Test("A still picture's low rate does not pull the bitrate down (no spiral)")
    func anAppLimitedEstimateIsNotOveruse() {
        var controller = VideoBitrateController()
        // The encoder sends 100 kbit/s of a still scene; the estimate is that, with no queueing.
        for _ in 0..<10 { _ = controller.update(.init(lossPercent: 0, rateEstimate: 100_000, smoothedRTT: .milliseconds(5), minimumRTT: .milliseconds(5)), interval: .seconds(1)) }
        #expect(controller.bitrate == 600_000, "held where it was, not cut to the still picture's rate")
    }

    @Test("A lost picture freezes the video until the next keyframe, asked for at once and every 300 ms")
    func aLossWaitsForAKeyframe() {
        var gate = VideoReceiveGate()
        func take(_ sequence: Int, keyframe: Bool = false, at time: Int) -> VideoReceiveGate.Decision {
            gate.receive(sequence: UInt32(sequence), isKeyframe: keyframe, now: at(time))
        }
        func due(_ time: Int) -> Bool { gate.keyframeRequestDue(now: at(time)) }
        // Before the first keyframe nothing is usable, and one is asked for.
        #expect(take(0, at: 0) == .drop)
        #expect(due(0))
        #expect(!due(100), "not again within 300 ms")
        #expect(take(1, keyframe: true, at: 66) == .use)
        #expect(!due(400), "a keyframe came")
        for sequence in 2...5 { #expect(take(sequence, at: 66 * sequence) == .use) }
        // Picture 6 is lost: 7 and 8 depend on it.
        #expect(take(7, at: 500) == .drop)
        #expect(due(500))
        #expect(take(8, at: 566) == .drop)
        #expect(!due(566))
        #expect(take(9, at: 833) == .drop)
        #expect(due(833), "the request is repeated after 300 ms")
        #expect(take(10, keyframe: true, at: 900) == .use)
        #expect(take(11, at: 966) == .use)
        // A picture older than one used is dropped.
        #expect(take(10, keyframe: true, at: 970) == .drop)
        let stats = gate.stats
        #expect(stats.lost == 1 && stats.freezes == 1 && stats.keyframeRequests == 3)
        #expect(stats.used == 7 && stats.dropped == 5 && stats.received == 12)
    }

    @Test("A keyframe request names its party on the wire; one for no valid name is refused")
    func keyframeRequestsOnTheWire() throws {
        let call = CallID(0x1234)
        let request = CallMediaPacket.keyframeRequest(call: call, to: "door")
        let decoded = try CallMediaPacket(decoding: request.encoded)
        #expect(decoded.kind == .keyframeRequest && decoded.keyframeRequestTarget == "door" && decoded.call == call)
        let nameless = CallMediaPacket(kind: .keyframeRequest, call: call, sequence: 0, captureMicroseconds: 0, payload: Array("a,b".utf8))
        #expect(throws: CallMessageError.self) { try CallMediaPacket(decoding: nameless.encoded) }
        let empty = CallMediaPacket(kind: .keyframeRequest, call: call, sequence: 0, captureMicroseconds: 0, payload: [])
        #expect(throws: CallMessageError.self) { try CallMediaPacket(decoding: empty.encoded) }
    }

    @Test("The sender starts with a keyframe, makes one when asked, and takes up a new bitrate")
    func senderKeyframesAndBitrate() throws {
        var settings = CallVideoSettings()
        settings.width = 320
        settings.height = 180
        let sender = try CallVideoSender(call: CallID(7), settings: settings)
        let camera = try SyntheticVideoSource(width: 320, height: 180, frameRate: 15, pacing: .virtual(start: CaptureTime(nanoseconds: 1_700_000_000_000_000_000)))
        var packets: [CallMediaPacket] = []
        for index in 0..<30 {
            if index == 20 { sender.requestKeyframe() }
            packets += try sender.process(camera.next())
        }
        #expect(packets.count == 30)
        #expect(packets.map(\.sequence) == Array(0..<30))
        let keyframes = packets.enumerated().filter { $0.element.flags.contains(.keyframe) }.map(\.offset)
        #expect(keyframes == [0, 20], "\(keyframes)")
        #expect(sender.requestedKeyframes == 1 && sender.keyframes == 2)
        #expect(sender.description?.configuration.isEmpty == false, "SPS and PPS known for a recording")
        sender.linkChanged(.init(lossPercent: 30, rateEstimate: nil), interval: .seconds(1))
        #expect(sender.bitrate == 510_000)
        #expect(throws: MediaError.self) {
            var bad = CallVideoSettings()
            bad.width = 333
            _ = try CallVideoSender(call: CallID(7), settings: bad)
        }
    }

    @Test("A recording holds both directions: this node's video and voice, then the party's, readable by FFmpeg")
    func recordingBothDirections() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("xt-call-rec-\(UInt32.random(in: 0...UInt32.max))")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = dir.appendingPathComponent("call.mp4").path
        var settings = CallVideoSettings()
        settings.width = 320
        settings.height = 180
        let mine = try CallVideoSender(call: CallID(9), settings: settings)
        let theirs = try CallVideoSender(call: CallID(9), settings: settings)
        let start = CaptureTime.now
        let myCamera = try SyntheticVideoSource(width: 320, height: 180, frameRate: 15, pacing: .virtual(start: start))
        let theirCamera = try SyntheticVideoSource(width: 320, height: 180, frameRate: 15, pacing: .virtual(start: start))
        let opus = try OpusEncoder(settings: .call())
        let recording = CallRecording(path: path, me: "door", audioSampleRate: 16_000)
        recording.expect(parties: ["phone"], localVideo: true, localAudio: true, partyVideo: true)
        let voice = SyntheticAudioSource(sampleRate: 16_000, channels: 1, pacing: .virtual(start: start), signal: .voice)
        for index in 0..<45 {
            for packet in try mine.process(myCamera.next()) { recording.add(packet, from: nil, video: mine.description) }
            for packet in try theirs.process(theirCamera.next()) where index != 30 { recording.add(packet, from: "phone") }
            for _ in 0..<3 {
                for frame in try opus.encode(try voice.next()) {
                    let packet = CallMediaPacket(kind: .audio, call: CallID(9), sequence: 0, captureMicroseconds: UInt64(frame.captureTime.nanoseconds / 1000), payload: frame.data)
                    recording.add(packet, from: nil)
                    recording.add(packet, from: "phone")
                }
            }
        }
        #expect(recording.finish() == nil)
        let reader = try MediaFileReader(path: path)
        #expect(reader.tracks.map(\.codec) == ["h264", "opus", "h264", "opus"], "\(reader.tracks)")
        #expect(reader.tracks[0].width == 320 && reader.tracks[2].height == 180)
        var counts = [0, 0, 0, 0]
        while let packet = try reader.next() { counts[packet.track] += 1 }
        #expect(counts[0] == 45 && counts[2] == 44, "\(counts)")
        #expect(counts[1] > 50 && counts[3] > 50, "\(counts)")
        #expect(reader.metadata["title"] == "call: door, phone")
    }
}
