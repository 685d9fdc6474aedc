// Opus encoding through libopus, in 20 ms frames. Captured blocks of any length are gathered
// into 960-sample frames (at 48 kHz); each frame keeps the capture time of its first sample.
internal import COpus

/// Opus settings.
public struct OpusSettings: Hashable, Sendable {
    public var sampleRate: Int
    public var channels: Int
    /// Target bits per second.
    public var bitrate: Int
    /// Tuned for speech with low delay (calls: OPUS_APPLICATION_VOIP) rather than for any sound
    /// (recordings: OPUS_APPLICATION_AUDIO).
    public var voice = false
    /// Discontinuous transmission: in silence the encoder emits DTX frames (1–2 bytes) that
    /// need not be sent.
    public var dtx = false
    /// Expected packet loss in percent (0…100): how much in-band FEC (LBRR) the encoder spends.
    public var expectedLoss = 5
    /// libopus's complexity, 0…10 (its default 10: best quality for the CPU). Lower costs less
    /// CPU per stream (load tests of many calls in one process).
    public var complexity = 10

    public init(sampleRate: Int = 48_000, channels: Int = 1, bitrate: Int = 32_000) {
        self.sampleRate = sampleRate
        self.channels = channels
        self.bitrate = bitrate
    }

    /// Speech for calls: wideband (16 kHz), VoIP mode, DTX, FEC for 5% loss until measured.
    /// 48 kbit/s: the in-band FEC takes its bits from the primary coding, and at 32 kbit/s it
    /// cost 0.5 PESQ-WB at 5% expected loss (espeak-ng speech: 3.87 vs 4.32 at 48 kbit/s).
    public static func call(bitrate: Int = 48_000) -> OpusSettings {
        var settings = OpusSettings(sampleRate: 16_000, channels: 1, bitrate: bitrate)
        settings.voice = true
        settings.dtx = true
        return settings
    }

    /// - Throws: ``MediaError/invalidConfiguration(_:file:line:)`` naming the bad setting.
    public func validate() throws(MediaError) {
        if ![8_000, 12_000, 16_000, 24_000, 48_000].contains(sampleRate) {
            throw .invalidConfiguration("Opus cannot take \(sampleRate) Hz: use 8000, 12000, 16000, 24000 or 48000")
        }
        if !(1...2).contains(channels) { throw .invalidConfiguration("audio channels \(channels) is not supported: use 1 or 2") }
        if !(6_000...510_000).contains(bitrate) { throw .invalidConfiguration("audio bitrate \(bitrate) bit/s is out of range: use 6k to 510k") }
        if !(0...100).contains(expectedLoss) { throw .invalidConfiguration("expected loss \(expectedLoss)% is out of range: use 0 to 100") }
        if !(0...10).contains(complexity) { throw .invalidConfiguration("Opus complexity \(complexity) is out of range: use 0 to 10") }
    }
}

/// An open Opus encoder.
public final class OpusEncoder {
    private let encoder: OpaquePointer
    public let settings: OpusSettings
    /// Samples (per channel) in one 20 ms frame.
    public let frameSize: Int
    /// Samples the decoder must drop at the start (the encoder's lookahead, at 48 kHz).
    public let preSkip: Int
    private var buffered: [Int16] = []
    /// Capture time of the first buffered sample.
    private var bufferedTime: CaptureTime?
    private var output = [UInt8](repeating: 0, count: 4000)

    /// - Throws: ``MediaError`` when the settings are bad or libopus refuses them.
    public init(settings: OpusSettings) throws(MediaError) {
        try settings.validate()
        self.settings = settings
        frameSize = settings.sampleRate / 50
        var status: Int32 = 0
        let application = settings.voice ? xt_opus_application_voip() : xt_opus_application_audio()
        guard let encoder = opus_encoder_create(Int32(settings.sampleRate), Int32(settings.channels), application, &status),
              status == OPUS_OK else {
            throw .codecUnavailable("opening the Opus encoder failed: \(String(cString: opus_strerror(status)))")
        }
        self.encoder = encoder
        xt_opus_set_bitrate(encoder, Int32(settings.bitrate))
        // Lost packets can be concealed from the next one's redundancy.
        xt_opus_set_inband_fec(encoder, 1)
        xt_opus_set_packet_loss_perc(encoder, Int32(settings.expectedLoss))
        if settings.voice { xt_opus_set_signal_voice(encoder, 1) }
        if settings.dtx { xt_opus_set_dtx(encoder, 1) }
        xt_opus_set_complexity(encoder, Int32(settings.complexity))
        var lookahead: Int32 = 0
        xt_opus_get_lookahead(encoder, &lookahead)
        preSkip = Int(lookahead) * 48_000 / settings.sampleRate
    }

    deinit { opus_encoder_destroy(encoder) }

    /// Sets the loss the FEC is sized for, from the link's measured loss (clamped to 0…100%).
    public func setExpectedLoss(percent: Int) {
        xt_opus_set_packet_loss_perc(encoder, Int32(min(max(percent, 0), 100)))
    }

    /// Sets the target bit rate (clamped to Opus's 6…510 kbit/s), e.g. from the transport's rate estimate.
    public func setBitrate(_ bitsPerSecond: Int) {
        xt_opus_set_bitrate(encoder, Int32(min(max(bitsPerSecond, 6_000), 510_000)))
    }

    /// Whether the last packet encoded was a DTX frame: silence that need not be sent.
    public var lastWasDTX: Bool {
        var inDTX: Int32 = 0
        xt_opus_get_in_dtx(encoder, &inDTX)
        return inDTX != 0
    }

    /// The 19-byte OpusHead (RFC 7845) a decoder or MP4 muxer needs.
    public var header: [UInt8] {
        var head = Array("OpusHead".utf8)
        head.append(1)  // version
        head.append(UInt8(settings.channels))
        head += [UInt8(preSkip & 0xFF), UInt8(preSkip >> 8)]
        let rate = UInt32(settings.sampleRate)
        head += [UInt8(rate & 0xFF), UInt8((rate >> 8) & 0xFF), UInt8((rate >> 16) & 0xFF), UInt8(rate >> 24)]
        head += [0, 0]  // output gain
        head.append(0)  // channel mapping family 0: mono or stereo
        return head
    }

    public var description: StreamDescription {
        StreamDescription(codec: .opus, sampleRate: settings.sampleRate, channels: settings.channels, configuration: header)
    }

    /// Encodes captured audio; returns the 20 ms packets completed by it.
    /// - Throws: ``MediaError`` when the block's shape differs from the settings or libopus fails.
    public func encode(_ frame: AudioFrame) throws(MediaError) -> [EncodedFrame] {
        guard frame.sampleRate == settings.sampleRate, frame.channels == settings.channels else {
            throw .invalidConfiguration("audio arrives as \(frame.sampleRate) Hz × \(frame.channels) but the encoder was opened for \(settings.sampleRate) Hz × \(settings.channels)")
        }
        if buffered.isEmpty { bufferedTime = frame.captureTime }
        buffered += frame.samples
        var packets: [EncodedFrame] = []
        let samplesPerFrame = frameSize * settings.channels
        let frameNanoseconds = Int64(frameSize) * 1_000_000_000 / Int64(settings.sampleRate)
        var consumed = 0
        while buffered.count - consumed >= samplesPerFrame {
            let length = buffered.withUnsafeBufferPointer { samples in
                output.withUnsafeMutableBufferPointer { out in
                    opus_encode(encoder, samples.baseAddress! + consumed, Int32(frameSize), out.baseAddress!, Int32(out.count))
                }
            }
            if length < 0 { throw .codecFailed("Opus encoding failed: \(String(cString: opus_strerror(length)))") }
            let time = bufferedTime!.adding(nanoseconds: Int64(consumed / settings.channels) * 1_000_000_000 / Int64(settings.sampleRate))
            packets.append(EncodedFrame(codec: .opus, data: Array(output[0..<Int(length)]), captureTime: time,
                                        duration: frameNanoseconds, isKeyframe: true))
            consumed += samplesPerFrame
        }
        if consumed > 0 {
            bufferedTime = bufferedTime!.adding(nanoseconds: Int64(consumed / settings.channels) * 1_000_000_000 / Int64(settings.sampleRate))
            buffered.removeFirst(consumed)
        }
        return packets
    }
}

/// An Opus decoder (tests, and the call CLI later).
public final class OpusDecoder {
    private let decoder: OpaquePointer
    public let sampleRate: Int
    public let channels: Int
    private var pcm: [Int16]

    public init(sampleRate: Int = 48_000, channels: Int = 1) throws(MediaError) {
        var status: Int32 = 0
        guard let decoder = opus_decoder_create(Int32(sampleRate), Int32(channels), &status), status == OPUS_OK else {
            throw .codecUnavailable("opening the Opus decoder failed: \(String(cString: opus_strerror(status)))")
        }
        self.decoder = decoder
        self.sampleRate = sampleRate
        self.channels = channels
        pcm = [Int16](repeating: 0, count: 5760 * channels)
    }

    deinit { opus_decoder_destroy(decoder) }

    /// Decodes the frame *before* `next` from `next`'s in-band FEC (a single lost frame's
    /// recovery); without FEC data in it, libopus conceals instead. Returns one 20 ms frame.
    /// - Throws: ``MediaError/malformed(_:file:line:)`` for a packet that is not Opus.
    public func decodeFEC(from next: [UInt8]) throws(MediaError) -> [Int16] {
        let count = pcm.withUnsafeMutableBufferPointer { out in
            next.withUnsafeBufferPointer {
                opus_decode(decoder, $0.baseAddress, Int32($0.count), out.baseAddress!, Int32(sampleRate / 50), 1)
            }
        }
        if count < 0 { throw .malformed("an Opus packet's FEC did not decode: \(String(cString: opus_strerror(count)))") }
        return Array(pcm[0..<(Int(count) * channels)])
    }

    /// Decodes one packet (nil: conceal a lost one).
    /// - Throws: ``MediaError/malformed(_:file:line:)`` for a packet that is not Opus.
    public func decode(_ packet: [UInt8]?) throws(MediaError) -> [Int16] {
        let count = pcm.withUnsafeMutableBufferPointer { out in
            if let packet {
                return packet.withUnsafeBufferPointer {
                    opus_decode(decoder, $0.baseAddress, Int32($0.count), out.baseAddress!, Int32(out.count / channels), 0)
                }
            }
            return opus_decode(decoder, nil, 0, out.baseAddress!, Int32(sampleRate / 50), 0)
        }
        if count < 0 { throw .malformed("an Opus packet did not decode: \(String(cString: opus_strerror(count)))") }
        return Array(pcm[0..<(Int(count) * channels)])
    }

    /// Conceals `samples` samples (per channel) of lost or late audio (Opus PLC): a wait shorter
    /// than a frame. `samples` is a multiple of 2.5 ms at this rate, from 2.5 to 120 ms (what
    /// libopus conceals).
    /// - Throws: ``MediaError/invalidConfiguration(_:)`` for another length.
    public func conceal(samples: Int) throws(MediaError) -> [Int16] {
        let step = sampleRate / 400
        guard samples >= step, samples <= step * 48, samples % step == 0 else {
            throw .invalidConfiguration("Opus conceals 2.5 ms steps up to 120 ms: \(samples) samples at \(sampleRate) Hz is not one")
        }
        let count = pcm.withUnsafeMutableBufferPointer { out in
            opus_decode(decoder, nil, 0, out.baseAddress!, Int32(samples), 0)
        }
        if count < 0 { throw .malformed("Opus could not conceal: \(String(cString: opus_strerror(count)))") }
        return Array(pcm[0..<(Int(count) * channels)])
    }
}
