// A party's audio end to end without a network: speech encoded for calls, delivered with jitter
// and loss on a virtual clock, de-jittered, decoded, recovered and concealed, read back in 10 ms
// periods as ALSA would. Garbage packets are concealed and counted; the mixer saturates.
import Foundation
import Testing
import XTCall
import XTMedia
import XTransport

@Suite("Call audio receiver", .enabled(if: FileManager.default.isExecutableFile(atPath: "/usr/bin/espeak-ng"), "espeak-ng is not installed"))
struct CallAudioReceiverTests {
    @Test("Speech through jitter and 5% loss comes out at its level, in real time; lost frames are recovered or concealed")
    func speechThroughJitterAndLoss() throws {
        let speech = try Speech.samples(String(repeating: "Someone is at the front door, please answer it. ", count: 3))
        let encoder = try OpusEncoder(settings: .call())
        var packets: [[UInt8]] = []
        for start in stride(from: 0, to: speech.count - 320 + 1, by: 320) {
            let block = AudioFrame(samples: Array(speech[start..<start + 320]), sampleRate: 16_000, channels: 1,
                                   captureTime: CaptureTime(nanoseconds: 1_000_000_000 + Int64(start) * 62_500))
            packets += try encoder.encode(block).map(\.data)
        }
        let receiver = try CallAudioReceiver()
        var generator = SplitMix64(seed: 5)
        var arrivals: [(UInt64, UInt32)] = []
        for i in packets.indices where generator.next() % 100 >= 5 {
            let jitter = Double(generator.next() % 1000) / 1000 * 30  // 0…30 ms
            arrivals.append((UInt64(1_000_000_000 + i * 20_000_000 + Int((10 + jitter) * 1e6)), UInt32(i)))
        }
        arrivals.sort { $0.0 < $1.0 }
        var output: [Int16] = []
        var next = 0
        var now: UInt64 = 1_000_000_000
        let end = UInt64(1_000_000_000 + packets.count * 20_000_000 + 500_000_000)
        while now < end {
            while next < arrivals.count, arrivals[next].0 <= now {
                receiver.receive(sequence: arrivals[next].1, payload: packets[Int(arrivals[next].1)], arrival: Timestamp(nanoseconds: arrivals[next].0))
                next += 1
            }
            output += receiver.read(count: 160, now: Timestamp(nanoseconds: now))  // a 10 ms ALSA period
            now += 10_000_000
        }
        #expect(output.count == Int(end - 1_000_000_000) / 10_000_000 * 160, "real time: one period per 10 ms")
        let level = 10 * log10(Speech.energy(output[...]) / Speech.energy(speech[...]))
        #expect(abs(level) < 3, "level changed by \(level) dB")
        let stats = receiver.stats
        #expect(stats.recovered + stats.concealed >= packets.count * 3 / 100, "losses handled: \(stats)")
        #expect(stats.recovered > 0, "FEC recovered some: \(stats)")
        #expect(stats.concealedPercent < 8, "\(stats.concealedPercent)% concealed")
    }

    @Test("A frame that comes a little late costs the rest of the talk one 10 ms read of concealment, not a frame")
    func aLateFrameCostsOneRead() throws {
        let speech = try Speech.samples("Someone is at the front door, please answer it.")
        let encoder = try OpusEncoder(settings: .call())
        var packets: [[UInt8]] = []
        for start in stride(from: 0, to: speech.count - 320 + 1, by: 320) {
            packets += try encoder.encode(AudioFrame(samples: Array(speech[start..<start + 320]), sampleRate: 16_000, channels: 1,
                                                     captureTime: CaptureTime(nanoseconds: 1_000_000_000))).map(\.data)
        }
        // Every packet 5 ms after it was sent, read 10 ms at a time; in one run packet 40 comes
        // 13 ms late instead: 8 ms after its turn.
        func play(late: Int?) throws -> (output: [Int16], stats: JitterBufferStats) {
            let receiver = try CallAudioReceiver()
            var output: [Int16] = []
            var sent = 0
            for tick in 0..<(packets.count * 2) {
                let now = UInt64(1_000_000_000 + tick * 10_000_000)
                for i in packets.indices where i >= sent {
                    let arrival = UInt64(1_000_000_000 + i * 20_000_000 + (i == late ? 13_000_000 : 5_000_000))
                    guard arrival <= now else { break }
                    receiver.receive(sequence: UInt32(i), payload: packets[i], arrival: Timestamp(nanoseconds: arrival))
                    sent = i + 1
                }
                output += receiver.read(count: 160, now: Timestamp(nanoseconds: now))
            }
            return (output, receiver.stats)
        }
        let steady = try play(late: nil)
        let delayed = try play(late: 40)
        #expect(delayed.stats.waited == steady.stats.waited + 1 && delayed.stats.concealed == 0, "\(delayed.stats) against \(steady.stats)")
        // The speech after the late frame: how far later it plays than in the steady run.
        let probe = Array(steady.output[50 * 320..<90 * 320]).map(Double.init)
        let heard = delayed.output.map(Double.init)
        let shifts = (0...40).map { $0 * 40 }
        let scores = shifts.map { shift in
            zip(probe, heard[(50 * 320 + shift)...]).reduce(0) { $0 + $1.0 * $1.1 }
        }
        let best = shifts[scores.indices.max { scores[$0] < scores[$1] }!]
        #expect(best == 160, "the words after it play \(Double(best) / 16) ms later")
    }

    @Test("Packets that are not Opus are concealed and counted, never a crash")
    func garbage() throws {
        let receiver = try CallAudioReceiver()
        var generator = SplitMix64(seed: 9)
        for i in 0..<100 {
            let payload = (0..<Int(generator.next() % 200)).map { _ in UInt8(truncatingIfNeeded: generator.next()) }
            receiver.receive(sequence: UInt32(i), payload: payload, arrival: Timestamp(nanoseconds: 1_000_000_000 + UInt64(i) * 20_000_000))
            _ = receiver.read(count: 320, now: Timestamp(nanoseconds: 1_000_000_000 + UInt64(i) * 20_000_000 + 1_000_000))
        }
        #expect(receiver.undecodable > 0)
    }

    @Test("The mixer sums parties and saturates")
    func mixer() {
        #expect(AudioMixer.mix([[1, 2, 3], [10, 20, 30]]) == [11, 22, 33])
        #expect(AudioMixer.mix([[30_000, -30_000], [10_000, -10_000]]) == [32_767, -32_768])
        #expect(AudioMixer.mix([]) == [])
    }
}

@Suite("Playout queue")
struct PlayoutQueueTests {
    @Test("Filler behind the end of the last words goes when speech comes; the words' end still plays")
    func fillerBehindSpeech() {
        var queue = PlayoutQueue()
        // The end of a stretched frame (155 samples), then a frame of comfort noise.
        queue.append([Int16](repeating: 1, count: 155), filler: false)
        queue.append([Int16](repeating: 0, count: 320), filler: true)
        #expect(queue.count == 475 && queue.speech == 155)
        queue.dropFiller()
        #expect(queue.count == 155, "only the filler is dropped")
        queue.append([Int16](repeating: 0, count: 320), filler: true)
        queue.append([Int16](repeating: 2, count: 320), filler: false)
        #expect(queue.count == 475 && queue.speech == 475, "speech drops the filler before it")
        #expect(queue.take(160) == [Int16](repeating: 1, count: 155) + [Int16](repeating: 2, count: 5))
        // Once the words' end has played, the filler after it is filler again.
        var played = PlayoutQueue()
        played.append([Int16](repeating: 1, count: 155), filler: false)
        played.append([Int16](repeating: 0, count: 320), filler: true)
        _ = played.take(160)
        #expect(played.speech == 0 && played.count == 315)
        played.dropFiller()
        #expect(played.count == 0)
    }
}

@Suite("Speaker watermark")
struct SpeakerWatermarkTests {
    @Test("A quarter of the speaker's buffer is kept spare until it underruns on time; a stall longer than the buffer changes nothing")
    func watermark() {
        var watermark = SpeakerWatermark(buffer: .milliseconds(20))
        #expect(watermark.spare == .milliseconds(5) && watermark.spareFrames(sampleRate: 16_000) == 80)
        watermark.underran(after: .milliseconds(60))  // the machine stopped: no spare would have covered it
        #expect(watermark.spare == .milliseconds(5))
        watermark.underran(after: .milliseconds(12))  // the thread kept time, and still the speaker ran dry
        #expect(watermark.spare == .zero && watermark.spareFrames(sampleRate: 48_000) == 0)
    }
}
