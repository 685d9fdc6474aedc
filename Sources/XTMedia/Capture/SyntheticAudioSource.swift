// The synthetic microphone: a quiet hum with a 1 kHz beep for the first 100 ms of every second
// of stream time — the same moments the synthetic camera lights its marker, so the drift
// between audio and video can be measured at the far end.
import Foundation

/// A tone generator standing in for a microphone.
public final class SyntheticAudioSource: AudioSource {
    public let sampleRate: Int
    public let channels: Int
    public let pacing: Pacing
    /// Samples per block (20 ms).
    public let blockSize: Int
    private var sampleIndex: Int64 = 0
    private var clock: SourceClock

    public init(sampleRate: Int = 48_000, channels: Int = 1, pacing: Pacing = .realTime) {
        self.sampleRate = sampleRate
        self.channels = channels
        self.pacing = pacing
        blockSize = sampleRate / 50
        clock = SourceClock(pacing)
    }

    public var summary: String { "synthetic tone (\(sampleRate) Hz, \(channels) channel\(channels == 1 ? "" : "s"))" }

    public func next() throws(MediaError) -> AudioFrame {
        let nanosecondsPerSample = 1e9 / Double(sampleRate)
        // A block is captured when its last sample has arrived; it is stamped with its first.
        let captureTime = clock.captureTime(offset: Int64(Double(sampleIndex) * nanosecondsPerSample),
                                            ready: Int64(Double(sampleIndex + Int64(blockSize)) * nanosecondsPerSample))
        var samples = [Int16](repeating: 0, count: blockSize * channels)
        for index in 0..<blockSize {
            let sample = sampleIndex + Int64(index)
            let positionInSecond = sample % Int64(sampleRate)
            let time = Double(sample) / Double(sampleRate)
            var value = 0.02 * sin(2 * .pi * 220 * time)
            if positionInSecond < Int64(sampleRate) / 10 { value += 0.5 * sin(2 * .pi * 1000 * time) }
            let quantized = Int16(value * 32767)
            for channel in 0..<channels { samples[index * channels + channel] = quantized }
        }
        sampleIndex += Int64(blockSize)
        return AudioFrame(samples: samples, sampleRate: sampleRate, channels: channels, captureTime: captureTime)
    }
}
