// One party's incoming call audio: Opus packets in (with their arrival times), PCM out in
// whatever lengths the output wants. The jitter buffer decides; the Opus decoder decodes,
// recovers from FEC or conceals; time-stretching shortens or lengthens a frame by a period.
public import XTMedia
public import XTransport

/// Decodes and de-jitters one party's audio. Not thread-safe: the playout thread drives it.
public final class CallAudioReceiver {
    public let sampleRate: Int
    private var buffer: JitterBuffer
    private let decoder: OpusDecoder
    private let stretch: TimeStretch
    private var pending = PlayoutQueue()
    /// Packets libopus could not decode (concealed instead).
    public private(set) var undecodable = 0

    /// - Throws: ``MediaError`` if libopus cannot open a decoder at `sampleRate`.
    public init(sampleRate: Int = 16_000, configuration: JitterBuffer.Configuration = .init()) throws(MediaError) {
        self.sampleRate = sampleRate
        buffer = JitterBuffer(configuration: configuration)
        decoder = try OpusDecoder(sampleRate: sampleRate, channels: 1)
        stretch = TimeStretch(sampleRate: sampleRate)
    }

    public var stats: JitterBufferStats { buffer.stats }

    /// Takes packet `sequence` (its 20 ms frame's number) arriving at `arrival`.
    public func receive(sequence: UInt32, payload: [UInt8], arrival: Timestamp, silence: Bool = false, copy: Bool = false,
                        captureMicroseconds: UInt64 = 0) {
        buffer.insert(sequence: sequence, payload: payload, arrival: arrival, silence: silence, copy: copy, captureMicroseconds: captureMicroseconds)
    }

    /// Takes an audio packet arriving at `arrival` (other kinds are ignored).
    public func receive(_ packet: CallMediaPacket, arrival: Timestamp) {
        guard packet.kind == .audio else { return }
        receive(sequence: packet.sequence, payload: Array(packet.primary), arrival: arrival, silence: packet.flags.contains(.silence),
                copy: packet.flags.contains(.copy), captureMicroseconds: packet.captureMicroseconds)
        if let copy = packet.redundant { buffer.insertRedundant(sequence: packet.sequence &- 1, payload: Array(copy)) }
    }

    /// Exactly `count` samples of audio to play now (silence where there is none yet).
    ///
    /// Speech that arrives while filler plays starts at this read: the filler not yet played is
    /// dropped (silence is elastic), so an utterance waits at most one read for its turn, not a
    /// whole frame (see ``PlayoutQueue``).
    public func read(count: Int, now: Timestamp) -> [Int16] {
        if buffer.speechWaiting { pending.dropFiller() }
        while pending.count < count {
            let (samples, filler) = nextFrame(now: now, read: count)
            pending.append(samples, filler: filler)
        }
        return pending.take(count)
    }

    /// The next decoded frame, stretched as the buffer decided, and whether it is filler. A wait
    /// for a late frame conceals only as long as the output's `read` (in 2.5 ms steps, as Opus
    /// conceals), then asks again.
    private func nextFrame(now: Timestamp, read: Int) -> (samples: [Int16], filler: Bool) {
        let frame = sampleRate / 50
        let idle = buffer.isIdle
        switch buffer.pull(now: now) {
        case .silence:
            return ([Int16](repeating: 0, count: frame), true)
        case .play(_, let payload, let how):
            guard let pcm = try? decoder.decode(payload) else {
                undecodable += 1
                return (conceal(frame), false)
            }
            switch how {
            case .normal: return (pcm, false)
            case .accelerate: return (stretch.accelerate(pcm), false)
            case .expand: return (stretch.expand(pcm), false)
            }
        case .recover(_, let next):
            return ((try? decoder.decodeFEC(from: next)) ?? conceal(frame), false)
        case .conceal:
            // Comfort noise in the sender's silence is filler; concealment of lost speech is not.
            return (conceal(frame), idle && buffer.isIdle)
        case .wait:
            let step = sampleRate / 400
            return (conceal(min(frame, max(step, (read + step - 1) / step * step))), idle && buffer.isIdle)
        }
    }

    /// `count` samples of concealment (a multiple of 2.5 ms, at most a frame).
    private func conceal(_ count: Int) -> [Int16] {
        (try? decoder.conceal(samples: count)) ?? [Int16](repeating: 0, count: count)
    }
}

/// Mixes what a node hears in a group call: the parties' audio summed, saturating.
public enum AudioMixer {
    /// The sample-wise sum of equally long frames, clamped to 16 bits (empty input: empty output).
    public static func mix(_ frames: [[Int16]]) -> [Int16] {
        guard let first = frames.first else { return [] }
        if frames.count == 1 { return first }
        return first.indices.map { i in
            Int16(clamping: frames.reduce(0) { $0 + (i < $1.count ? Int($1[i]) : 0) })
        }
    }
}

/// Decoded audio waiting for the output: speech first, then filler (silence, or comfort noise
/// between utterances). Filler is elastic: it goes as soon as speech waits, while the end of
/// the last words still plays. (Once tracked as one flag for the whole queue, the filler behind
/// the end of a stretched frame counted as speech, and the part of a read that end took stayed
/// in every later word: 9.7 ms for the rest of a call.)
public struct PlayoutQueue: Sendable {
    private var samples: [Int16] = []
    /// How many samples at the front are speech.
    public private(set) var speech = 0

    public init() {}

    /// Samples queued, speech and filler.
    public var count: Int { samples.count }

    /// Queues `audio`. Speech drops any filler queued before it (silence is elastic).
    public mutating func append(_ audio: [Int16], filler: Bool) {
        if !filler {
            dropFiller()
            speech += audio.count
        }
        samples += audio
    }

    /// Drops the filler not yet played; the speech before it stays.
    public mutating func dropFiller() { samples.removeSubrange(speech...) }

    /// The next `count` samples (all there is if fewer: the caller appends first).
    public mutating func take(_ count: Int) -> [Int16] {
        let n = min(count, samples.count)
        let out = Array(samples[0..<n])
        samples.removeFirst(n)
        speech = max(0, speech - n)
        return out
    }
}
