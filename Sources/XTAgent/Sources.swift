// Which source each configured input opens.
import XTMedia

enum Sources {
    /// A function that opens the configured camera (called again after it fails).
    static func video(_ configuration: AgentConfiguration) throws(MediaError) -> @Sendable () throws(MediaError) -> any VideoSource {
        let (width, height, fps, script) = (configuration.width, configuration.height, configuration.fps, configuration.motion)
        switch configuration.video {
        case .none:
            throw .invalidConfiguration("no video input is configured")
        case .synthetic:
            return { () throws(MediaError) in try SyntheticVideoSource(width: width, height: height, frameRate: fps, script: script) }
        case .v4l2(let path):
            throw .unsupportedFormat("V4L2 capture from \(path) is not built yet")
        case .file(let location):
            throw .unsupportedFormat("file input \(location) is not built yet")
        }
    }

    /// A function that opens the configured microphone (called again after it fails).
    static func audio(_ configuration: AgentConfiguration) throws(MediaError) -> @Sendable () throws(MediaError) -> any AudioSource {
        let (rate, channels) = (configuration.audioRate, configuration.audioChannels)
        switch configuration.audio {
        case .none:
            throw .invalidConfiguration("no audio input is configured")
        case .synthetic:
            return { () throws(MediaError) in SyntheticAudioSource(sampleRate: rate, channels: channels) }
        case .alsa(let name):
            throw .unsupportedFormat("ALSA capture from \(name) is not built yet")
        case .file(let location):
            throw .unsupportedFormat("file audio \(location) is not built yet")
        }
    }
}
