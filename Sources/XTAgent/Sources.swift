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
            let choice = configuration.videoFormat
            return { () throws(MediaError) in try V4L2Camera(path: path, width: width, height: height, fps: fps, choice: choice) }
        case .file(let location):
            return { () throws(MediaError) in try FileVideoSource(location: location) }
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
            return { () throws(MediaError) in try ALSACapture(device: name, sampleRate: rate, channels: channels) }
        case .file(let location):
            return { () throws(MediaError) in try FileAudioSource(location: location, sampleRate: rate, channels: channels) }
        }
    }
}
