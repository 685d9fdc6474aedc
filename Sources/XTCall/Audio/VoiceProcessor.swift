// The microphone's cleanup before encoding: echo cancellation (the far end's voice coming back
// from our speaker), noise suppression and automatic gain control, by speexdsp — its MDF echo
// canceller (multidelay block frequency-domain adaptive filter, J.-M. Valin) and its
// preprocessor, which also suppresses the echo the filter leaves. Not our own DSP. The
// preprocessor's output lags its input by one frame (its overlap-add): 20 ms of every call's
// mouth-to-ear. On 10 ms blocks (10 ms of lag) a two-way call's near talker suffered while the far
// end spoke (PESQ-WB 3.0 against ≥ 3.5), so the frames stay 20 ms.
internal import CSpeexDSP
import Foundation

/// A voice processor that cannot be set up as asked.
public enum VoiceProcessorError: Error, Equatable, Sendable, CustomStringConvertible {
    case unsupportedRate(Int)
    case invalidFrame(Duration)
    case invalidTail(Duration)
    case outOfMemory

    public var description: String {
        switch self {
        case .unsupportedRate(let rate): "voice processing runs at 8000, 16000, 32000 or 48000 Hz, not \(rate)"
        case .invalidFrame(let frame): "a voice frame is 10 or 20 ms, not \(frame)"
        case .invalidTail(let tail): "an echo tail of \(tail) is out of range: 20…500 ms"
        case .outOfMemory: "speexdsp could not allocate its state"
        }
    }
}

/// Echo cancellation, noise suppression and gain control of mono 16-bit PCM, one frame at a
/// time. Owns its speexdsp states. Not thread-safe: one capture thread drives it.
public final class VoiceProcessor {
    public struct Settings: Sendable, Equatable {
        /// Samples per second (Opus wideband: 16000).
        public var sampleRate = 16_000
        /// Frame duration: 10 or 20 ms.
        public var frame: Duration = .milliseconds(20)
        /// The longest echo path the filter covers (speaker → room → microphone, plus the
        /// sound devices' buffering). 200 ms covers a room and ALSA periods.
        public var tail: Duration = .milliseconds(200)
        /// Off for a headset, where the speaker does not reach the microphone (and for load tests).
        public var echoCancellation = true
        public var noiseSuppression = true
        /// Most noise attenuation in dB (negative). −10: speexdsp's default −15 cost 0.6 PESQ-WB
        /// on clean speech, −10 costs 0.45, −6 costs 0.3.
        public var noiseSuppressionDB: Int32 = -10
        /// Suppress noise only while the microphone's noise floor says there is noise: speexdsp's
        /// denoiser costs clean speech 0.3–0.4 PESQ-WB even at −3 dB (measured through a whole
        /// call), so a quiet microphone is left alone.
        public var adaptiveNoiseSuppression = true
        /// The noise floor (dBFS) above which the denoiser runs, and below which it stops again
        /// (hysteresis). A quiet room with a USB microphone sits near −70 dBFS; traffic or a fan, −50.
        public var noiseOnDBFS = -55.0
        public var noiseOffDBFS = -62.0
        public var gainControl = true
        public init() {}
    }

    public let settings: Settings
    /// Samples per frame.
    public let frameSamples: Int
    private let echo: OpaquePointer
    private let preprocess: OpaquePointer
    private var output: [Int16]
    /// Each recent frame's energy (mean square), for the noise floor: its minimum over 1.5 s
    /// (minimum statistics, after R. Martin, "Noise power spectral density estimation based on
    /// optimal smoothing and minimum statistics", IEEE TSAP 2001 — here over whole frames).
    private var energies: [Double]
    private var energyIndex = 0
    /// Whether the denoiser runs now.
    public private(set) var denoising: Bool

    /// - Throws: ``VoiceProcessorError`` for a rate, frame or tail out of range.
    public init(settings: Settings = Settings()) throws(VoiceProcessorError) {
        guard [8_000, 16_000, 32_000, 48_000].contains(settings.sampleRate) else { throw .unsupportedRate(settings.sampleRate) }
        guard settings.frame == .milliseconds(10) || settings.frame == .milliseconds(20) else { throw .invalidFrame(settings.frame) }
        guard settings.tail >= .milliseconds(20), settings.tail <= .milliseconds(500) else { throw .invalidTail(settings.tail) }
        self.settings = settings
        frameSamples = settings.sampleRate * Int(settings.frame.components.attoseconds / 1_000_000_000_000_000) / 1000
        let tailSamples = settings.sampleRate * Int(settings.tail.components.seconds * 1000 + settings.tail.components.attoseconds / 1_000_000_000_000_000) / 1000
        guard let echo = speex_echo_state_init(Int32(frameSamples), Int32(tailSamples)) else { throw .outOfMemory }
        guard let preprocess = speex_preprocess_state_init(Int32(frameSamples), Int32(settings.sampleRate)) else {
            speex_echo_state_destroy(echo)
            throw .outOfMemory
        }
        self.echo = echo
        self.preprocess = preprocess
        output = [Int16](repeating: 0, count: frameSamples)
        energies = [Double](repeating: 0, count: max(1, 1500 / Int(settings.frame.components.attoseconds / 1_000_000_000_000_000)))
        denoising = settings.noiseSuppression && !settings.adaptiveNoiseSuppression
        _ = xt_speex_echo_set_rate(echo, Int32(settings.sampleRate))
        if settings.echoCancellation { _ = xt_speex_preprocess_set_echo(preprocess, echo) }
        _ = xt_speex_preprocess_set_int(preprocess, xt_speex_preprocess_denoise(), denoising ? 1 : 0)
        _ = xt_speex_preprocess_set_int(preprocess, xt_speex_preprocess_noise_suppress(), settings.noiseSuppressionDB)
        _ = xt_speex_preprocess_set_int(preprocess, xt_speex_preprocess_agc(), settings.gainControl ? 1 : 0)
        if settings.gainControl { _ = xt_speex_preprocess_set_float(preprocess, xt_speex_preprocess_agc_level(), 12_000) }
    }

    deinit {
        speex_preprocess_state_destroy(preprocess)
        speex_echo_state_destroy(echo)
    }

    /// Cleans one frame of microphone signal.
    /// - Parameters:
    ///   - microphone: `frameSamples` samples just captured.
    ///   - speaker: the `frameSamples` samples played at the same time (the far end's voice:
    ///     the echo's source). Silence when nothing played.
    /// - Returns: `frameSamples` samples with the echo removed, denoised and levelled. A frame of
    ///   the wrong length is returned unchanged (and not learnt from).
    public func process(microphone: [Int16], speaker: [Int16]) -> [Int16] {
        guard microphone.count == frameSamples, speaker.count == frameSamples else { return microphone }
        guard settings.echoCancellation || settings.noiseSuppression || settings.gainControl else { return microphone }
        if settings.echoCancellation {
            microphone.withUnsafeBufferPointer { mic in
                speaker.withUnsafeBufferPointer { play in
                    output.withUnsafeMutableBufferPointer { out in
                        speex_echo_cancellation(echo, mic.baseAddress, play.baseAddress, out.baseAddress)
                    }
                }
            }
        } else {
            output = microphone
        }
        if settings.noiseSuppression && settings.adaptiveNoiseSuppression { followNoiseFloor() }
        output.withUnsafeMutableBufferPointer { out in _ = speex_preprocess_run(preprocess, out.baseAddress) }
        return output
    }

    /// The noise floor in dBFS: the quietest frame of the last 1.5 s (−120 for digital silence).
    public var noiseFloorDBFS: Double {
        let floor = energies.min() ?? 0
        return floor <= 0 ? -120 : 10 * log10(floor / (32_768.0 * 32_768.0))
    }

    /// Turns the denoiser on when the floor rises above `noiseOnDBFS`, off below `noiseOffDBFS`.
    private func followNoiseFloor() {
        energies[energyIndex] = output.reduce(0.0) { $0 + Double($1) * Double($1) } / Double(frameSamples)
        energyIndex = (energyIndex + 1) % energies.count
        let floor = noiseFloorDBFS
        let wanted = denoising ? floor > settings.noiseOffDBFS : floor > settings.noiseOnDBFS
        if wanted != denoising {
            denoising = wanted
            _ = xt_speex_preprocess_set_int(preprocess, xt_speex_preprocess_denoise(), wanted ? 1 : 0)
        }
    }
}
