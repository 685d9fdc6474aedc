// Speech quality of the call's audio path, scored by PESQ (ITU-T P.862.2 wideband, PyPI's
// `pesq`): espeak-ng speech through the sender (echo canceller, noise suppression, Opus with FEC,
// second copies and redundancy, DTX), a scripted network (random loss, 0–20 ms jitter) and the receiver (adaptive jitter
// buffer, FEC, concealment, time-stretching), against the same path in a PLC-only mode (no FEC,
// a fixed 40 ms buffer: how Mumble behaves).
import Foundation
import Testing
import XTCall
import XTMedia
import XTransport

enum PESQ {
    static let python = CallQualityTests.root.appendingPathComponent(".build/venv/bin/python").path
    static var available: Bool {
        FileManager.default.isExecutableFile(atPath: python) && FileManager.default.isExecutableFile(atPath: "/usr/bin/espeak-ng")
    }

    /// PESQ-WB (MOS-LQO) of `degraded` against `reference`, both 16 kHz mono.
    static func score(reference: [Int16], degraded: [Int16]) throws -> Double {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("xt-pesq-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let ref = dir.appendingPathComponent("ref.raw")
        let deg = dir.appendingPathComponent("deg.raw")
        try reference.withUnsafeBytes { try Data($0).write(to: ref) }
        try degraded.withUnsafeBytes { try Data($0).write(to: deg) }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: python)
        process.arguments = ["-c", """
            import sys, numpy, pesq
            ref = numpy.fromfile(sys.argv[1], dtype=numpy.int16).astype(numpy.float32)
            deg = numpy.fromfile(sys.argv[2], dtype=numpy.int16).astype(numpy.float32)
            print(pesq.pesq(16000, ref, deg, 'wb'))
            """, ref.path, deg.path]
        let out = Pipe()
        process.standardOutput = out
        process.standardError = FileHandle.nullDevice
        try process.run()
        process.waitUntilExit()
        let text = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        guard let value = Double(text) else { throw CocoaError(.fileReadCorruptFile) }
        return value
    }
}

@Suite("Call speech quality (PESQ)", .serialized, .enabled(if: PESQ.available, "pesq (make deps) or espeak-ng is missing"))
struct CallQualityTests {
    nonisolated(unsafe) static var lastStats: JitterBufferStats?
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    /// The speech out of the path at `loss` (0…1) random loss, with our settings or PLC-only.
    static func transmit(_ speech: [Int16], loss: Double, plcOnly: Bool, seed: UInt64, jitterMs: Double = 20) throws -> [Int16] {
        var opus = OpusSettings.call()
        var buffer = JitterBuffer.Configuration()
        if plcOnly {
            opus.expectedLoss = 0
            buffer.useFEC = false
            buffer.fixedTarget = .milliseconds(40)
            buffer.stretching = false
        } else {
            opus.expectedLoss = max(Int((loss * 100).rounded(.up)), 1)
        }
        var voice = VoiceProcessor.Settings()
        voice.gainControl = false  // PESQ compares levels itself; the speech is already levelled
        let sender = try CallAudioSender(call: CallID(7), settings: opus, voice: voice)
        if !plcOnly { sender.linkChanged(lossPercent: loss * 100) }  // as the call driver does from the link's figures
        let receiver = try CallAudioReceiver(configuration: buffer)
        var generator = SplitMix64(seed: seed)
        let silence = [Int16](repeating: 0, count: 320)
        var arrivals: [(time: UInt64, packet: CallMediaPacket)] = []
        let start: UInt64 = 1_000_000_000
        for (index, offset) in stride(from: 0, to: speech.count - 320 + 1, by: 320).enumerated() {
            let sent = start + UInt64(index) * 20_000_000
            guard let packet = try sender.process(microphone: Array(speech[offset..<offset + 320]), speaker: silence,
                                                  captureMicroseconds: sent / 1000) else { continue }
            // Each datagram (the packet, and its second copy on a lossy link, as the engine
            // sends them) is lost or delayed by itself.
            for datagram in sender.duplicating ? [packet, packet.secondCopy] : [packet] {
                let lost = Double(generator.next() >> 11) / Double(1 << 53) < loss
                let jitter = UInt64(Double(generator.next() % 1000) / 1000 * jitterMs * 1_000_000)
                if !lost { arrivals.append((sent + 10_000_000 + jitter, datagram)) }
            }
        }
        arrivals.sort { $0.time < $1.time }
        var output: [Int16] = []
        var next = 0
        var now = start
        let end = start + UInt64(speech.count / 320) * 20_000_000 + 300_000_000
        while now < end {
            while next < arrivals.count, arrivals[next].time <= now {
                receiver.receive(arrivals[next].packet, arrival: Timestamp(nanoseconds: arrivals[next].time))
                next += 1
            }
            output += receiver.read(count: 160, now: Timestamp(nanoseconds: now))
            now += 10_000_000
        }
        lastStats = receiver.stats
        return output
    }

    /// The bars, met by the audio path alone (no retransmission): a frame's second copy
    /// brings it back whole unless both are lost, and at 10% redundancy too, whose look-ahead
    /// is taken in silences.
    @Test("PESQ-WB through 0–20 ms jitter: clean ≥ 4.0; at 5% loss at most 0.3 lower; at 10% loss at least 0.4 above PLC-only")
    func quality() throws {
        let text = "The quick brown fox jumps over the lazy dog. Someone is at the front door. Please come down and let them in."
        let speech = [Int16](repeating: 0, count: 8_000) + (try Speech.samples(text)) + [Int16](repeating: 0, count: 8_000)
        func mean(_ loss: Double, plcOnly: Bool) throws -> Double {
            let scores = try (1...3).map { seed in try PESQ.score(reference: speech, degraded: try Self.transmit(speech, loss: loss, plcOnly: plcOnly, seed: UInt64(seed))) }
            return scores.reduce(0, +) / Double(scores.count)
        }
        let clean = try mean(0, plcOnly: false)
        let fivePercent = try mean(0.05, plcOnly: false)
        let tenPercent = try mean(0.10, plcOnly: false)
        let tenPercentPLC = try mean(0.10, plcOnly: true)
        print("PESQ-WB of the audio path in this run: clean \(clean), 5% \(fivePercent), 10% \(tenPercent), PLC-only at 10% \(tenPercentPLC)")
        #expect(clean >= 4.0, "clean PESQ-WB \(clean)")
        #expect(clean - fivePercent <= 0.3, "5% loss: \(fivePercent) (clean \(clean))")
        #expect(tenPercent - tenPercentPLC >= 0.4, "10% loss: \(tenPercent), PLC-only \(tenPercentPLC)")
    }
}
