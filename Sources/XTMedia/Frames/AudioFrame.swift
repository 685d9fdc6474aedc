// A block of captured audio: interleaved signed 16-bit samples and when the first was captured.

/// Captured audio samples.
public struct AudioFrame: Sendable {
    /// Interleaved samples (channel 0, channel 1, channel 0, ...).
    public var samples: [Int16]
    public var sampleRate: Int
    public var channels: Int
    /// When the first sample was captured, on the agent's wall clock.
    public var captureTime: CaptureTime

    public init(samples: [Int16], sampleRate: Int, channels: Int, captureTime: CaptureTime) {
        self.samples = samples
        self.sampleRate = sampleRate
        self.channels = channels
        self.captureTime = captureTime
    }

    /// Samples per channel.
    public var frameCount: Int { channels > 0 ? samples.count / channels : 0 }
    /// How long the block plays, in nanoseconds.
    public var durationNanoseconds: Int64 { Int64(frameCount) * 1_000_000_000 / Int64(max(sampleRate, 1)) }
}
