// A microphone through ALSA (libasound): 16-bit interleaved capture at the configured rate,
// read in 20 ms blocks. Blocks are stamped on a sample clock anchored to the wall clock (now,
// less what the device still holds), which follows the sound card's real rate without the
// jitter of reading the clock per block.
internal import CALSA
import Foundation

/// An open ALSA capture device.
public final class ALSACapture: AudioSource {
    public let device: String
    public let sampleRate: Int
    public let channels: Int
    private var pcm: OpaquePointer?
    private let blockFrames: Int
    private var buffer: [Int16]
    /// The capture time of sample zero, and samples read since.
    private var anchor: Int64?
    private var samplesRead: Int64 = 0
    /// Overruns (the agent did not read in time; samples were lost and the clock re-anchored).
    public private(set) var overruns = 0

    /// Opens `device` ("default", "hw:1", "plughw:1,0", or a PCM from the ALSA configuration).
    /// - Parameter latency: the device buffer (ALSA picks periods of about a quarter of it):
    ///   100 ms rides out a busy agent; a call takes 40 ms, so 20 ms blocks come 10 ms apart at most.
    /// - Throws: ``MediaError``: `.deviceMissing` when there is no such device,
    ///   `.unsupportedFormat` when it cannot capture at this rate and channel count.
    public init(device: String, sampleRate: Int = 48_000, channels: Int = 1, latency: Duration = .milliseconds(100)) throws(MediaError) {
        self.device = device
        self.sampleRate = sampleRate
        self.channels = channels
        blockFrames = sampleRate / 50
        buffer = [Int16](repeating: 0, count: blockFrames * channels)
        // ALSA converts rate and channels if the card needs it.
        pcm = try ALSAPCM.open(device, stream: SND_PCM_STREAM_CAPTURE, sampleRate: sampleRate, channels: channels,
                               latencyMicroseconds: ALSAPCM.microseconds(latency),
                               role: "microphone", missingHint: "`xt agent --list-devices` lists capture devices",
                               formatHint: "try plughw: instead of hw:, or another audio-rate")
    }

    deinit { if let pcm { snd_pcm_close(pcm) } }

    public var summary: String { "ALSA \(device) (\(sampleRate) Hz, \(channels) channel\(channels == 1 ? "" : "s"))" }

    /// How long a read waits for the device before it counts as lost (a microphone unplugged,
    /// a stalled driver): the caller hears of it instead of blocking for ever.
    public static let stallTimeout: Int32 = 1000

    public func next() throws(MediaError) -> AudioFrame {
        var filled = 0
        var lastProgress = CaptureTime.monotonicNow
        let stalled = "microphone '\(device)' gave nothing for \(Self.stallTimeout) ms: is it still plugged in (or its input ended)?"
        while filled < blockFrames {
            // A stream prepared again after an overrun is started here (a read must never be
            // what starts it: see below).
            let state = snd_pcm_state(pcm)
            if state == SND_PCM_STATE_PREPARED { _ = snd_pcm_start(pcm) }
            // An overrun a plugin chain reports only in its state (its poll then stays quiet, as
            // the reader fell a whole buffer behind): recovered like one reported by a read.
            let ready = state == SND_PCM_STATE_XRUN ? -EPIPE : snd_pcm_wait(pcm, Self.stallTimeout)
            if ready == 0 {
                if snd_pcm_state(pcm) == SND_PCM_STATE_XRUN { continue }
                throw .deviceLost(stalled)
            }
            var code = ready < 0 ? ready : 0
            if code == 0 {
                let available = snd_pcm_avail_update(pcm)
                if available == 0 {
                    // Woken with nothing to read: poll allows it now and then (xtclock's timer
                    // does it at every tick), so only a whole stall timeout of it is a stopped
                    // clock (a hung driver; xtclock's stall_after in the tests).
                    if (CaptureTime.monotonicNow - lastProgress) / 1_000_000 >= Int64(Self.stallTimeout) { throw .deviceLost(stalled) }
                    continue
                }
                if available > 0 {
                    // Never more than is there: a blocking read of more waits in ALSA's own poll
                    // with no timeout, and a device whose clock stopped then hangs the thread for
                    // good (it once silenced a call's voice 25 s in).
                    let wanted = min(blockFrames - filled, Int(available))
                    let count = buffer.withUnsafeMutableBufferPointer { samples in
                        snd_pcm_readi(pcm, samples.baseAddress! + filled * channels, snd_pcm_uframes_t(wanted))
                    }
                    if count >= 0 {
                        filled += count
                        if count > 0 { lastProgress = CaptureTime.monotonicNow }
                        continue
                    }
                    code = Int32(count)
                } else {
                    code = Int32(available)
                }
            }
            if ALSAPCM.isRecoverable(code) {
                // An overrun: samples were lost, so the sample clock starts again from now.
                overruns += 1
                anchor = nil
                samplesRead = 0
                if snd_pcm_recover(pcm, code, 1) >= 0 { continue }
            }
            throw .deviceLost("microphone '\(device)' failed: \(String(cString: snd_strerror(code))); the agent reopens it every second")
        }
        return AudioFrame(samples: buffer, sampleRate: sampleRate, channels: channels, captureTime: stamp())
    }

    /// The capture time of the block just read.
    private func stamp() -> CaptureTime {
        var delay: snd_pcm_sframes_t = 0
        if snd_pcm_delay(pcm, &delay) < 0 { delay = 0 }
        let nanosecondsPerSecond: Int64 = 1_000_000_000
        let measured = CaptureTime.now.nanoseconds - (Int64(delay) + Int64(blockFrames)) * nanosecondsPerSecond / Int64(sampleRate)
        let measuredZero = measured - samplesRead * nanosecondsPerSecond / Int64(sampleRate)
        if let current = anchor {
            let error = measuredZero - current
            // Far off (a stall, a clock step): start again; near: follow slowly, so the stamps
            // track the card's true rate and not the scheduler's jitter.
            anchor = abs(error) > 20_000_000 ? measuredZero : current + error / 64
        } else {
            anchor = measuredZero
        }
        let time = anchor! + samplesRead * nanosecondsPerSecond / Int64(sampleRate)
        samplesRead += Int64(blockFrames)
        return CaptureTime(nanoseconds: time)
    }

    /// The capture devices ALSA knows (names to use as audio = alsa:NAME).
    public static func listDevices() -> [String] { ALSAPCM.devices(direction: "Input") }
}
