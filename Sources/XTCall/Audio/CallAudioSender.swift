// A party's outgoing call audio: 20 ms of microphone (with what the speaker played meanwhile,
// the echo's source) in; a media packet out, or nothing in silence. Echo cancellation, noise
// suppression and gain control, then Opus with in-band FEC sized by the link's measured loss,
// and DTX: in silence one packet in 20 (every 400 ms) keeps the receiver's comfort noise going.
// While the link loses packets, each packet is sent twice; while it loses many, each also
// carries the previous frame (redundancy).
public import XTMedia

/// Encodes one party's microphone for a call. Not thread-safe: the capture thread drives it.
public final class CallAudioSender {
    public let call: CallID
    public let settings: OpusSettings
    private let processor: VoiceProcessor
    private let encoder: OpusEncoder
    private var sequence: UInt32 = 0
    private var silentRun = 0
    /// The last frame sent, while it was speech: the next packet carries it again when
    /// ``redundancy`` is on.
    private var previous: [UInt8]?
    /// Whether each packet carries the previous frame too (on while the link loses many
    /// packets: see ``linkChanged(lossPercent:rateBitsPerSecond:)``).
    public private(set) var redundancy = false
    /// Whether each packet is sent twice, the second as its ``CallMediaPacket/secondCopy``
    /// right after it (on while the link loses packets; the caller sends both).
    public private(set) var duplicating = false
    /// Frames encoded, sent, and skipped in silence.
    public private(set) var framesEncoded = 0
    public private(set) var framesSent = 0
    public private(set) var framesSkipped = 0
    /// The loss FEC is sized for now, in percent.
    public private(set) var expectedLoss: Int

    /// Samples per 20 ms frame.
    public var frameSamples: Int { processor.frameSamples }

    /// - Throws: ``VoiceProcessorError`` or ``MediaError`` if the voice processor or the encoder cannot be set up.
    public init(call: CallID, settings: OpusSettings = .call(), voice: VoiceProcessor.Settings = .init()) throws {
        var voice = voice
        voice.sampleRate = settings.sampleRate
        processor = try VoiceProcessor(settings: voice)
        encoder = try OpusEncoder(settings: settings)
        self.call = call
        self.settings = settings
        expectedLoss = settings.expectedLoss
    }

    /// Processes and encodes one frame.
    /// - Parameters:
    ///   - microphone: `frameSamples` samples just captured.
    ///   - speaker: the `frameSamples` samples played meanwhile (silence if none).
    ///   - captureMicroseconds: the capture time of the first sample, on this node's monotonic clock.
    /// - Returns: the packet to send, or nil in silence between keep-alives.
    public func process(microphone: [Int16], speaker: [Int16], captureMicroseconds: UInt64) throws(MediaError) -> CallMediaPacket? {
        let clean = processor.process(microphone: microphone, speaker: speaker)
        let frame = AudioFrame(samples: clean, sampleRate: settings.sampleRate, channels: 1,
                               captureTime: CaptureTime(nanoseconds: Int64(clamping: captureMicroseconds) &* 1000))
        guard let packet = try encoder.encode(frame).first else { return nil }
        framesEncoded += 1
        defer { sequence &+= 1 }
        let silence = settings.dtx && encoder.lastWasDTX
        if silence {
            silentRun += 1
            guard silentRun == 1 || silentRun % 20 == 0 else {
                framesSkipped += 1
                return nil
            }
        } else {
            silentRun = 0
        }
        framesSent += 1
        // The previous frame rides along while it was speech (frames skipped in silence clear it).
        let carried = redundancy ? previous : nil
        previous = silence ? nil : packet.data
        return CallMediaPacket.audio(call: call, sequence: sequence, captureMicroseconds: captureMicroseconds, opus: packet.data,
                                     previous: carried, silence: silence)
    }

    /// Loss (percent) from which every packet is sent twice. Below it, Opus's in-band FEC (a
    /// lower-rate copy) covers the rare loss; above it the voice costs twice the bits (96
    /// kbit/s) and a frame is missing only when both copies are lost (loss²: 0.25% at 5%).
    /// Unlike a copy in the next packet (``redundancy``), the second copy comes with the first,
    /// so the receiver needs no frame of look-ahead to use it: at 5% random drop and 0–20 ms
    /// jitter that frame was 20 ms of every word's mouth-to-ear.
    public static let duplicateFromLoss = 1.0
    /// Loss (percent) from which every packet also carries the previous frame: where both
    /// copies are lost for 0.5% of frames or more, the receiver holds a frame of look-ahead
    /// anyway, and the next packet's copy then brings a lost frame back whole.
    public static let redundancyFromLoss = 7.0

    /// Follows the link: duplication from ``duplicateFromLoss``, redundancy from
    /// ``redundancyFromLoss``, FEC sized for the loss they leave (rounded up, at least 1% so a
    /// single loss is covered), and at most a quarter of the estimated rate for voice (6 kbit/s
    /// up to the setting).
    public func linkChanged(lossPercent: Double, rateBitsPerSecond: Double? = nil) {
        if lossPercent.isFinite {
            duplicating = lossPercent >= Self.duplicateFromLoss
            redundancy = lossPercent >= Self.redundancyFromLoss
        }
        // Each copy leaves FEC only the frames it does not bring (loss² of them for each). FEC's
        // bits come out of the voice's own: sized for the whole loss it cost 0.5 PESQ-WB at 5%.
        let afterCopies = duplicating ? lossPercent * lossPercent / 100 : lossPercent
        let covered = redundancy ? afterCopies * afterCopies / 100 : afterCopies
        let loss = lossPercent.isFinite ? Int(min(max(covered.rounded(.up), 1), 100)) : expectedLoss
        if loss != expectedLoss {
            expectedLoss = loss
            encoder.setExpectedLoss(percent: loss)
        }
        if let rate = rateBitsPerSecond, rate.isFinite, rate > 0 {
            encoder.setBitrate(Int(min(Double(settings.bitrate), max(6_000, rate / 4))))
        }
    }
}
