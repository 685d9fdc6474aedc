// The synthetic microphone: a quiet hum with a 1 kHz beep for the first 100 ms of every second
// of stream time — the same moments the synthetic camera lights its marker, so the drift
// between audio and video can be measured at the far end.
import Foundation
import Synchronization

/// A tone generator standing in for a microphone.
public final class SyntheticAudioSource: AudioSource {
    /// What it plays.
    public enum Signal: Sendable, Equatable {
        /// The hum and the beep each second (A/V sync checks).
        case tone
        /// A talker that never pauses: ten harmonics of a pitch gliding between 100 and 200 Hz,
        /// loud and soft three times a second like syllables. An encoder never hears silence in
        /// it (load tests of calls).
        case voice
    }

    public let sampleRate: Int
    public let channels: Int
    public let pacing: Pacing
    public let signal: Signal
    /// ``Signal/voice``: its 2 s cycle (the glide's period, six syllables), computed once per
    /// sample rate for the whole process (a load test runs a hundred talkers).
    private lazy var voiceCycle: [Int16] = Self.voiceCycles.withLock { cycles in
        if let cycle = cycles[sampleRate] { return cycle }
        let cycle = Self.voiceCycle(sampleRate: sampleRate)
        cycles[sampleRate] = cycle
        return cycle
    }
    private static let voiceCycles = Mutex<[Int: [Int16]]>([:])

    private static func voiceCycle(sampleRate: Int) -> [Int16] {
        var phase = 0.0
        return (0..<(2 * sampleRate)).map { sample in
            let time = Double(sample) / Double(sampleRate)
            phase += 2 * .pi * (150 + 50 * sin(2 * .pi * 0.5 * time)) / Double(sampleRate)
            let harmonics = (1...10).reduce(0.0) { $0 + sin(Double($1) * phase) / Double($1) }
            return Int16(0.15 * (0.6 + 0.4 * sin(2 * .pi * 3 * time)) * harmonics * 32767)
        }
    }
    /// Samples per block (20 ms).
    public let blockSize: Int
    private var sampleIndex: Int64 = 0
    private var clock: SourceClock

    /// - Parameter epoch: shared with a synthetic camera, so it beeps as the marker lights.
    public init(sampleRate: Int = 48_000, channels: Int = 1, pacing: Pacing = .realTime, signal: Signal = .tone,
                epoch: SourceEpoch = SourceEpoch()) {
        self.signal = signal
        self.sampleRate = sampleRate
        self.channels = channels
        self.pacing = pacing
        blockSize = sampleRate / 50
        clock = SourceClock(pacing, epoch: epoch)
    }

    public var summary: String { "synthetic \(signal == .tone ? "tone" : "voice") (\(sampleRate) Hz, \(channels) channel\(channels == 1 ? "" : "s"))" }

    /// Sample `index`'s time after the start, exact (whole seconds apart, no overflow for years).
    private func nanoseconds(_ index: Int64) -> Int64 {
        let rate = Int64(sampleRate)
        return index / rate * 1_000_000_000 + index % rate * 1_000_000_000 / rate
    }

    public func next() throws(MediaError) -> AudioFrame {
        if let joined = clock.join() {
            // The first whole block at or after the moment it joins its epoch.
            let blockNanoseconds = Int64(blockSize) * 1_000_000_000 / Int64(sampleRate)
            sampleIndex = (joined + blockNanoseconds - 1) / blockNanoseconds * Int64(blockSize)
        }
        // A block is captured when its last sample has arrived; it is stamped with its first.
        let captureTime = clock.captureTime(offset: nanoseconds(sampleIndex), ready: nanoseconds(sampleIndex + Int64(blockSize)))
        var samples = [Int16](repeating: 0, count: blockSize * channels)
        for index in 0..<blockSize {
            let sample = sampleIndex + Int64(index)
            let positionInSecond = sample % Int64(sampleRate)
            let time = Double(sample) / Double(sampleRate)
            let quantized: Int16
            switch signal {
            case .tone:
                var value = 0.02 * sin(2 * .pi * 220 * time)
                if positionInSecond < Int64(sampleRate) / 10 { value += 0.5 * sin(2 * .pi * 1000 * time) }
                quantized = Int16(value * 32767)
            case .voice:
                // The glide's phase after 2 s is a whole number of cycles: the loop is seamless.
                quantized = voiceCycle[Int(sample % Int64(2 * sampleRate))]
            }
            for channel in 0..<channels { samples[index * channels + channel] = quantized }
        }
        sampleIndex += Int64(blockSize)
        return AudioFrame(samples: samples, sampleRate: sampleRate, channels: channels, captureTime: captureTime)
    }
}
