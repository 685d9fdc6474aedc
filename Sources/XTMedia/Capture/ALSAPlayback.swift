// A speaker through ALSA (libasound): 16-bit interleaved playback with a small buffer, for calls.
// Writes block until the device has room; an underrun (nothing written in time) is recovered
// and counted.
internal import CALSA
import Foundation

/// An open ALSA playback device.
public final class ALSAPlayback {
    public let device: String
    public let sampleRate: Int
    public let channels: Int
    private var pcm: OpaquePointer?
    /// Underruns: the device ran dry because audio was not written in time.
    public private(set) var underruns = 0

    /// Opens `device` ("default", "plughw:1,0", or a PCM from the ALSA configuration).
    /// - Parameter latency: the device buffer (ALSA picks periods of about a quarter of it);
    ///   40 ms keeps a call's mouth-to-ear delay low without underruns on a Pi.
    /// - Throws: ``MediaError``: `.deviceMissing` when there is no such device,
    ///   `.unsupportedFormat` when it cannot play at this rate and channel count.
    public init(device: String, sampleRate: Int = 16_000, channels: Int = 1, latency: Duration = .milliseconds(40)) throws(MediaError) {
        self.device = device
        self.sampleRate = sampleRate
        self.channels = channels
        pcm = try ALSAPCM.open(device, stream: SND_PCM_STREAM_PLAYBACK, sampleRate: sampleRate, channels: channels,
                               latencyMicroseconds: ALSAPCM.microseconds(latency), role: "speaker", missingHint: "`xt call --list-devices` lists playback devices",
                               formatHint: "try plughw: instead of hw:")
    }

    deinit {
        if let pcm {
            snd_pcm_drain(pcm)
            snd_pcm_close(pcm)
        }
    }

    /// Plays `samples` (interleaved), waiting while the device is full.
    /// - Throws: ``MediaError/deviceLost(_:file:line:)`` when the device fails for good.
    public func write(_ samples: [Int16]) throws(MediaError) {
        let frames = samples.count / max(channels, 1)
        var written = 0
        while written < frames {
            let count = samples.withUnsafeBufferPointer { buffer in
                snd_pcm_writei(pcm, buffer.baseAddress! + written * channels, snd_pcm_uframes_t(frames - written))
            }
            if count >= 0 {
                written += count
                continue
            }
            let code = Int32(count)
            if ALSAPCM.isRecoverable(code) {
                underruns += 1
                if snd_pcm_recover(pcm, code, 1) >= 0 { continue }
            }
            throw .deviceLost("speaker '\(device)' failed: \(String(cString: snd_strerror(code)))")
        }
    }

    /// Waits until the device has room for `frames` more frames (or `timeout` passes; at once
    /// while it has not started), so that
    /// the audio written next can be decided as late as possible: a caller that decides first
    /// and then blocks in ``write(_:)`` adds the wait to every sample's delay.
    /// - Throws: ``MediaError/deviceLost(_:file:line:)`` when the device fails for good.
    public func waitForRoom(_ frames: Int, timeout: Duration = .milliseconds(100)) throws(MediaError) {
        let milliseconds = Int32(clamping: timeout.components.seconds * 1000 + timeout.components.attoseconds / 1_000_000_000_000_000)
        while true {
            var code = Int32(0)
            // Not started (opened, or prepared again after an underrun): it starts once writes
            // fill it to its start threshold, which waiting for room short of that never would.
            if snd_pcm_state(pcm) == SND_PCM_STATE_PREPARED { return }
            let available = snd_pcm_avail_update(pcm)
            if available >= frames { return }
            if available >= 0 {
                let ready = snd_pcm_wait(pcm, milliseconds)
                if ready == 0 { return }  // no room yet: the write waits instead
                if ready > 0 {
                    // ALSA's wait returns at once while there is room for a period (its
                    // avail_min), however much more is wanted (a card with 5 ms periods, asked
                    // for 10 ms): sleep for the rest rather than spin on a real-time thread. At
                    // most 2 ms at a time, as a card's position moves in period steps.
                    let room = snd_pcm_avail_update(pcm)
                    if room >= 0, room < frames {
                        let nanoseconds = min(Int64(frames - room) * 1_000_000_000 / Int64(sampleRate), 2_000_000)
                        Thread.sleep(forTimeInterval: Double(nanoseconds) / 1e9)
                    }
                    continue
                }
                code = ready
            } else {
                code = Int32(available)
            }
            guard ALSAPCM.isRecoverable(code) else {
                throw .deviceLost("speaker '\(device)' failed: \(String(cString: snd_strerror(code)))")
            }
            underruns += 1
            guard snd_pcm_recover(pcm, code, 1) >= 0 else {
                throw .deviceLost("speaker '\(device)' failed: \(String(cString: snd_strerror(code)))")
            }
        }
    }

    /// How long until the last sample written is heard (what the device still holds).
    public var delay: Duration {
        var frames: snd_pcm_sframes_t = 0
        guard snd_pcm_delay(pcm, &frames) >= 0, frames > 0 else { return .zero }
        return .nanoseconds(Int64(frames) * 1_000_000_000 / Int64(sampleRate))
    }

    /// The playback devices ALSA knows.
    public static func listDevices() -> [String] { ALSAPCM.devices(direction: "Output") }
}
