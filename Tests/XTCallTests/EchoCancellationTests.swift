// Echo cancellation with a simulated acoustic path: the far end's speech (espeak-ng) comes back
// into the microphone delayed and attenuated through a small room response; the voice processor
// removes at least 20 dB of it, and a near-end talker still gets through.
import Foundation
import Testing
import XTCall

enum Speech {
    /// `text` spoken by espeak-ng as 16 kHz mono 16-bit samples (resampled by ffmpeg).
    static func samples(_ text: String, voice: String = "en", rate: Int = 16_000) throws -> [Int16] {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("xt-speech-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let wav = dir.appendingPathComponent("speech.wav").path
        let raw = dir.appendingPathComponent("speech.raw").path
        try run("/usr/bin/espeak-ng", ["-v", voice, "-s", "150", "-w", wav, text])
        try run("/usr/bin/ffmpeg", ["-v", "error", "-y", "-i", wav, "-ar", "\(rate)", "-ac", "1", "-f", "s16le", raw])
        let data = try Data(contentsOf: URL(fileURLWithPath: raw))
        return data.withUnsafeBytes { Array($0.bindMemory(to: Int16.self)) }
    }

    private static func run(_ tool: String, _ arguments: [String]) throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: tool)
        process.arguments = arguments
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else { throw CocoaError(.fileWriteUnknown) }
    }

    static func energy(_ samples: ArraySlice<Int16>) -> Double { samples.reduce(0) { $0 + Double($1) * Double($1) } }
}

@Suite("Echo cancellation", .enabled(if: FileManager.default.isExecutableFile(atPath: "/usr/bin/espeak-ng"), "espeak-ng is not installed"))
struct EchoCancellationTests {
    /// The room: the speaker's sound reaches the microphone after 40 ms at half amplitude, with
    /// two weaker reflections.
    static func room(_ far: [Int16], rate: Int = 16_000) -> [Int16] {
        let taps: [(delay: Int, gain: Double)] = [(rate * 40 / 1000, 0.5), (rate * 47 / 1000, 0.2), (rate * 65 / 1000, -0.1)]
        return far.indices.map { i in
            var value = 0.0
            for tap in taps where i >= tap.delay { value += Double(far[i - tap.delay]) * tap.gain }
            return Int16(clamping: Int(value.rounded()))
        }
    }

    @Test("A far-end talker's echo is cancelled by at least 20 dB; a near-end talker gets through")
    func cancelsEcho() throws {
        let text = "The quick brown fox jumps over the lazy dog. Someone is at the front door, please answer it. "
        let far = try Speech.samples(String(repeating: text, count: 3))
        let near = try Speech.samples("Hello, who is there? I will be down in a minute.", voice: "en+f3")
        let processor = try VoiceProcessor()
        let frame = processor.frameSamples
        #expect(frame == 320)
        let echo = Self.room(far)
        // Far end only for its whole length; then the near talker alone.
        let frames = far.count / frame
        var residual: [Int16] = []
        for f in 0..<frames {
            let range = f * frame..<(f + 1) * frame
            residual += processor.process(microphone: Array(echo[range]), speaker: Array(far[range]))
        }
        // Measured after the filter has converged (the first 5 s are learning), while the far end talks.
        let skip = 5 * 16_000
        let echoEnergy = Speech.energy(echo[skip..<residual.count])
        let residualEnergy = Speech.energy(residual[skip...])
        let erle = 10 * log10(echoEnergy / max(residualEnergy, 1))
        #expect(erle >= 20, "echo return loss enhancement \(erle) dB")

        var kept: [Int16] = []
        let silence = [Int16](repeating: 0, count: frame)
        for f in 0..<(near.count / frame) {
            kept += processor.process(microphone: Array(near[f * frame..<(f + 1) * frame]), speaker: silence)
        }
        let nearEnergy = Speech.energy(near[0..<kept.count])
        let keptEnergy = Speech.energy(kept[...])
        let change = 10 * log10(max(keptEnergy, 1) / nearEnergy)
        #expect(change > -6, "the near talker's level changed by \(change) dB")
    }

    @Test("Noise is suppressed only when there is noise: a quiet microphone is left alone, a noisy one is cleaned")
    func noiseSuppressionFollowsTheNoiseFloor() throws {
        let speech = try Speech.samples("Someone is at the front door. Please answer it, I am in the garden.")
        let silence = [Int16](repeating: 0, count: 320)
        // Clean speech with digital silence between words: the floor stays low, no denoising.
        let quiet = try VoiceProcessor()
        for f in 0..<(speech.count / 320) { _ = quiet.process(microphone: Array(speech[f * 320..<(f + 1) * 320]), speaker: silence) }
        #expect(!quiet.denoising, "denoising a quiet microphone (floor \(quiet.noiseFloorDBFS) dBFS)")
        // The same speech over steady noise at about −40 dBFS (a fan, traffic).
        var generator = SystemRandomNumberGenerator()
        let noise = (0..<(speech.count + 32_000)).map { _ in Int16(Double.random(in: -570...570, using: &generator)) }
        let noisy = zip(speech + [Int16](repeating: 0, count: 32_000), noise).map { Int16(clamping: Int($0) + Int($1)) }
        let processor = try VoiceProcessor()
        var out: [Int16] = []
        for f in 0..<(noisy.count / 320) { out += processor.process(microphone: Array(noisy[f * 320..<(f + 1) * 320]), speaker: silence) }
        #expect(processor.denoising, "not denoising a noisy microphone (floor \(processor.noiseFloorDBFS) dBFS)")
        // The last second is noise alone: suppressed by at least 6 dB.
        let tail = out.count - 16_000
        let reduction = 10 * log10(Speech.energy(noisy[tail..<out.count]) / max(Speech.energy(out[tail...]), 1))
        #expect(reduction >= 6, "noise reduced by \(reduction) dB")
    }

    @Test("Settings out of range are typed errors")
    func badSettings() {
        var settings = VoiceProcessor.Settings()
        settings.sampleRate = 44_100
        #expect(throws: VoiceProcessorError.unsupportedRate(44_100)) { try VoiceProcessor(settings: settings) }
        settings = .init()
        settings.tail = .seconds(2)
        #expect(throws: VoiceProcessorError.invalidTail(.seconds(2))) { try VoiceProcessor(settings: settings) }
        settings = .init()
        settings.frame = .milliseconds(30)
        #expect(throws: VoiceProcessorError.invalidFrame(.milliseconds(30))) { try VoiceProcessor(settings: settings) }
    }
}
