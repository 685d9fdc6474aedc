// The real ALSA capture path (libasound: snd_pcm_open, hw params, readi) through ALSA's own
// file plugin playing a speech WAV made by espeak-ng, over a PCM that runs at real time.
import Foundation
import Testing
@testable import XTMedia

@Suite(.serialized) struct ALSACaptureTests {
    @Test func speechIsCapturedAtTheSpeedOfSpeechAndEncodes() throws {
        let directory = TestSupport.temporaryDirectory("xt-alsa")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let speech = try TestSupport.speech("Motion detected at the front door. This is the microphone test.", directory: directory)
        setenv("ALSA_CONFIG_PATH", try TestSupport.alsaMicrophone(speech: speech, directory: directory), 1)
        let microphone = try ALSACapture(device: "xtmic", sampleRate: 48_000, channels: 1)
        let encoder = try OpusEncoder(settings: OpusSettings())
        let decoder = try OpusDecoder()
        let started = CaptureTime.monotonicNow
        var blocks: [AudioFrame] = []
        var decoded: [Int16] = []
        for _ in 0..<100 {
            let block = try microphone.next()
            blocks.append(block)
            for packet in try encoder.encode(block) { decoded += try decoder.decode(packet.data) }
        }
        let elapsed = Double(CaptureTime.monotonicNow - started) / 1e9
        // 2 s of audio takes about 2 s to capture: the microphone runs at real time.
        #expect(elapsed > 1.5, "captured 2 s of audio in \(elapsed) s")
        #expect(blocks.allSatisfy { $0.samples.count == 960 })
        // Blocks are stamped 20 ms apart on the sample clock.
        let steps = zip(blocks, blocks.dropFirst()).map { $1.captureTime.nanoseconds(since: $0.captureTime) }
        #expect(steps.allSatisfy { abs($0 - 20_000_000) < 2_000_000 })
        // The speech is in it, and survives Opus.
        func rms(_ samples: [Int16]) -> Double { (samples.reduce(0.0) { $0 + Double($1) * Double($1) } / Double(max(samples.count, 1))).squareRoot() }
        #expect(rms(blocks.flatMap(\.samples)) > 500)
        #expect(rms(decoded) > 500)
    }

    @Test func aReaderThatFallsAWholeBufferBehindGetsAnOverrunAndGoesOn() throws {
        // A call's microphone has 40 ms of buffer: a reader held up longer (a busy machine)
        // loses that audio, counts an overrun and reads on. (The test PCM once held such a
        // reader at a full buffer that ALSA read as empty, and the next read never returned.)
        let directory = TestSupport.temporaryDirectory("xt-alsa")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let speech = try TestSupport.speech("Someone is at the front door, please come down and let them in.", directory: directory)
        setenv("ALSA_CONFIG_PATH", try TestSupport.alsaMicrophone(speech: speech, directory: directory), 1)
        let microphone = try ALSACapture(device: "xtmic", sampleRate: 48_000, channels: 1, latency: .milliseconds(40))
        for _ in 0..<5 { _ = try microphone.next() }
        Thread.sleep(forTimeInterval: 0.2)
        let started = CaptureTime.monotonicNow
        for _ in 0..<25 { _ = try microphone.next() }
        let elapsed = Double(CaptureTime.monotonicNow - started) / 1e9
        #expect(microphone.overruns >= 1, "the lost audio is counted")
        #expect(elapsed < 1.5, "0.5 s of audio read on in \(elapsed) s")
    }

    @Test func missingAndUnusableMicrophonesAreClearErrors() throws {
        let directory = TestSupport.temporaryDirectory("xt-alsa")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let speech = try TestSupport.speech("one", directory: directory)
        setenv("ALSA_CONFIG_PATH", try TestSupport.alsaMicrophone(speech: speech, directory: directory), 1)
        let missing = #expect(throws: MediaError.self) { try ALSACapture(device: "xt-no-such-microphone") }
        #expect(missing?.code == .deviceMissing)
        #expect(missing?.reason.contains("--list-devices") == true)
        // The emulated microphone has one or two channels, and no plug layer to make more.
        let unusable = #expect(throws: MediaError.self) { try ALSACapture(device: "xtmic", sampleRate: 48_000, channels: 6) }
        #expect(unusable?.code == .unsupportedFormat)
        #expect(unusable?.reason.contains("plughw") == true)
    }

    @Test func aMicrophoneThatStallsIsAClearErrorNotAHang() throws {
        let directory = TestSupport.temporaryDirectory("xt-alsa")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        // The xtclock PCM stops after 0.5 s, as a driver that hangs.
        let path = (directory as NSString).appendingPathComponent("asound-stall.conf")
        try """
            pcm_type.xtclock { lib "\((TestSupport.buildDirectory as NSString).appendingPathComponent("libxtalsaclock.so"))" }
            pcm.xtstall { type xtclock; stall_after 24000 }
            """.write(toFile: path, atomically: true, encoding: .utf8)
        setenv("ALSA_CONFIG_PATH", "/usr/share/alsa/alsa.conf:" + path, 1)
        let microphone = try ALSACapture(device: "xtstall", sampleRate: 48_000, channels: 1)
        let started = CaptureTime.monotonicNow
        let error = #expect(throws: MediaError.self) { for _ in 0..<500 { _ = try microphone.next() } }
        #expect(error?.code == .deviceLost, "\(String(describing: error))")
        let elapsed = Double(CaptureTime.monotonicNow - started) / 1e9
        #expect(elapsed < 5, "the error came after \(elapsed) s")
    }

    @Test func speakerPlaysAtRealTimeAndWhatItPlaysIsWhatWasWritten() throws {
        let directory = TestSupport.temporaryDirectory("xt-alsa")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let heard = (directory as NSString).appendingPathComponent("heard.raw")
        setenv("ALSA_CONFIG_PATH", try TestSupport.alsaSpeaker(heard: heard, directory: directory), 1)
        let tone = (0..<16_000).map { Int16(6000 * sin(2 * Double.pi * 440 * Double($0) / 16_000)) }
        let started = CaptureTime.monotonicNow
        do {
            let speaker = try ALSAPlayback(device: "xtspeaker", sampleRate: 16_000, channels: 1, latency: .milliseconds(40))
            for start in stride(from: 0, to: tone.count, by: 160) {  // 10 ms periods, as a call writes them
                try speaker.write(Array(tone[start..<start + 160]))
            }
            #expect(speaker.delay <= .milliseconds(60), "the device holds \(speaker.delay)")
        }  // closing drains: everything written is played
        let elapsed = Double(CaptureTime.monotonicNow - started) / 1e9
        #expect(elapsed > 0.8, "1 s of audio played in \(elapsed) s")
        let recorded = try Data(contentsOf: URL(fileURLWithPath: heard)).withUnsafeBytes { Array($0.bindMemory(to: Int16.self)) }
        #expect(recorded == tone, "what was played is what was written (\(recorded.count) of \(tone.count) samples)")
        let missing = #expect(throws: MediaError.self) { try ALSAPlayback(device: "xt-no-such-speaker") }
        #expect(missing?.code == .deviceMissing)
    }

    @Test func aStarvedSpeakerReportsAnUnderrunAndPlaysOnWithItsUsualDelay() throws {
        let directory = TestSupport.temporaryDirectory("xt-alsa")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let heard = (directory as NSString).appendingPathComponent("heard.raw")
        let stampFile = (directory as NSString).appendingPathComponent("speaker.stamp")
        setenv("ALSA_CONFIG_PATH", try TestSupport.alsaSpeaker(heard: heard, directory: directory, stamps: stampFile), 1)
        // Each 10 ms chunk: its first frame in the file and when it was decided (written).
        var written: [(frame: Int, at: Int64)] = []
        var underruns = 0
        do {
            let speaker = try ALSAPlayback(device: "xtspeaker", sampleRate: 16_000, channels: 1, latency: .milliseconds(20))
            for chunk in 0..<200 {
                // The writer stalls for 60 ms after an odd number of chunks (half a buffer written
                // since the start: where the restarted position went wrong).
                if chunk == 101 { Thread.sleep(forTimeInterval: 0.06) }
                try speaker.waitForRoom(160)
                written.append((chunk * 160, CaptureTime.monotonicNow))
                try speaker.write([Int16](repeating: Int16(chunk), count: 160))
            }
            underruns = speaker.underruns
        }
        #expect(underruns >= 1, "the stall is an underrun")
        let stamps = try String(contentsOfFile: stampFile, encoding: .utf8).split(separator: "\n").compactMap { line -> (Int, Int64)? in
            let parts = line.split(separator: " ")
            guard parts.count == 2, let frame = Int(parts[0]), let at = Int64(parts[1]) else { return nil }
            return (frame, at)
        }
        #expect(stamps.count == 1 + underruns, "one anchor per start: \(stamps)")
        // When each chunk was heard, from the stamps; its delay from when it was written.
        func heardAt(_ frame: Int) -> Int64 {
            let anchor = stamps.last { $0.0 <= frame } ?? stamps[0]
            return anchor.1 + Int64(frame - anchor.0) * 1_000_000_000 / 16_000
        }
        let delays = written.map { Double(heardAt($0.frame) - $0.at) / 1e6 }
        let before = delays[50..<100].max() ?? 0
        let after = delays[151..<200].max() ?? 0
        // A card's buffer (20 ms) is all that stands between a write and the ear, before the
        // stall and after it alike: the stall is not carried on as delay.
        #expect(before <= 25, "before the stall: \(delays[50..<100].map { Int($0) })")
        #expect(after <= 25, "after the stall: \(delays[150..<200].map { Int($0) })")
        // And no deeper than before: the restarted device's position starts at 0 as ALSA's does
        // (it reported where it had stopped, and a restarted speaker ran 10 ms deeper than ALSA
        // said, by the stamps).
        #expect(after <= before + 3, "after the stall \(after) ms, before it \(before) ms")
        let recorded = try Data(contentsOf: URL(fileURLWithPath: heard)).count / 2
        #expect(recorded == 200 * 160, "every frame written was played")
    }
}
