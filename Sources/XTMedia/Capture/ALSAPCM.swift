// Opening an ALSA PCM the way xt's capture and playback both need it: 16-bit interleaved at a
// rate and channel count, with ALSA converting when the card needs it, and errors that say
// which device failed and what to try.
internal import CALSA

enum ALSAPCM {
    /// A device buffer's length for `snd_pcm_set_params`, in microseconds (at least 5 ms).
    static func microseconds(_ latency: Duration) -> UInt32 {
        max(UInt32(clamping: latency.components.seconds * 1_000_000 + latency.components.attoseconds / 1_000_000_000_000), 5_000)
    }

    /// The PCMs ALSA's hints list for `direction` ("Input" or "Output"), with their descriptions.
    static func devices(direction wanted: String) -> [String] {
        var hints: UnsafeMutablePointer<UnsafeMutableRawPointer?>?
        guard snd_device_name_hint(-1, "pcm", &hints) >= 0, let hints else { return [] }
        defer { snd_device_name_free_hint(hints) }
        var names: [String] = []
        var cursor = hints
        while let hint = cursor.pointee {
            defer { cursor += 1 }
            func value(_ key: String) -> String? {
                guard let raw = snd_device_name_get_hint(hint, key) else { return nil }
                defer { free(raw) }
                return String(cString: raw)
            }
            let direction = value("IOID")
            guard direction == nil || direction == wanted, let name = value("NAME") else { continue }
            let description = value("DESC")?.replacingOccurrences(of: "\n", with: " — ")
            names.append(description.map { "\(name): \($0)" } ?? name)
        }
        return names
    }

    /// Opens and configures `device` for `stream`.
    /// - Parameters:
    ///   - role: "microphone" or "speaker", for the messages.
    ///   - missingHint: what to do when there is no such device.
    ///   - formatHint: what to do when it cannot take the format.
    /// - Throws: ``MediaError``: `.deviceMissing` when there is no such device,
    ///   `.unsupportedFormat` when it cannot work at this rate and channel count.
    static func open(_ device: String, stream: snd_pcm_stream_t, sampleRate: Int, channels: Int, latencyMicroseconds: UInt32,
                     role: String, missingHint: String, formatHint: String) throws(MediaError) -> OpaquePointer {
        var handle: OpaquePointer?
        let opened = snd_pcm_open(&handle, device, stream, 0)
        guard opened >= 0, let handle else {
            throw .deviceMissing("\(role) '\(device)' cannot be opened: \(String(cString: snd_strerror(opened))): \(missingHint)")
        }
        let configured = snd_pcm_set_params(handle, SND_PCM_FORMAT_S16_LE, SND_PCM_ACCESS_RW_INTERLEAVED, UInt32(channels),
                                            UInt32(sampleRate), 1, latencyMicroseconds)
        guard configured >= 0 else {
            snd_pcm_close(handle)
            let verb = stream == SND_PCM_STREAM_CAPTURE ? "capture" : "play"
            throw .unsupportedFormat("\(role) '\(device)' cannot \(verb) \(sampleRate) Hz × \(channels): \(String(cString: snd_strerror(configured))); \(formatHint)")
        }
        return handle
    }

    /// Whether a failed read or write is an xrun or an interruption that snd_pcm_recover mends.
    static func isRecoverable(_ code: Int32) -> Bool { code == -EPIPE || code == -ESTRPIPE || code == -EINTR }
}
