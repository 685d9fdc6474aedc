// Which source each configured input opens. A file or network camera read for both video and
// audio shares one clock, so that the two stay in step; a synthetic camera and microphone share
// one epoch, so that the marker lights as the beep sounds.
import XTMedia

enum Sources {
    /// One clock per file or camera location, shared by its video and audio sources.
    final class Clocks: Sendable {
        private let video: FileClock
        private let audio: FileClock
        /// The synthetic camera's and microphone's.
        let synthetic = SourceEpoch()

        init(_ configuration: AgentConfiguration) {
            video = FileClock()
            if case .file(let picture) = configuration.video, case .file(let sound) = configuration.audio, picture == sound {
                audio = video
            } else {
                audio = FileClock()
            }
        }

        func clock(for kind: MediaKind) -> FileClock { kind == .video ? video : audio }
    }

    /// A function that opens the configured camera (called again after it fails).
    static func video(_ configuration: AgentConfiguration, clocks: Clocks) throws(MediaError) -> @Sendable () throws(MediaError) -> any VideoSource {
        let (width, height, fps, script) = (configuration.width, configuration.height, configuration.fps, configuration.motion)
        switch configuration.video {
        case .none:
            throw .invalidConfiguration("no video input is configured")
        case .synthetic:
            let epoch = clocks.synthetic
            return { () throws(MediaError) in try SyntheticVideoSource(width: width, height: height, frameRate: fps, script: script, epoch: epoch) }
        case .v4l2(let path):
            let choice = configuration.videoFormat
            return { () throws(MediaError) in try V4L2Camera(path: path, width: width, height: height, fps: fps, choice: choice) }
        case .file(let location):
            let clock = clocks.clock(for: .video)
            return { () throws(MediaError) in try FileVideoSource(location: location, clock: clock) }
        }
    }

    /// A function that opens the configured microphone (called again after it fails).
    static func audio(_ configuration: AgentConfiguration, clocks: Clocks) throws(MediaError) -> @Sendable () throws(MediaError) -> any AudioSource {
        let (rate, channels) = (configuration.audioRate, configuration.audioChannels)
        switch configuration.audio {
        case .none:
            throw .invalidConfiguration("no audio input is configured")
        case .synthetic:
            let epoch = clocks.synthetic
            return { () throws(MediaError) in SyntheticAudioSource(sampleRate: rate, channels: channels, epoch: epoch) }
        case .alsa(let name):
            return { () throws(MediaError) in try ALSACapture(device: name, sampleRate: rate, channels: channels) }
        case .file(let location):
            let clock = clocks.clock(for: .audio)
            return { () throws(MediaError) in try FileAudioSource(location: location, sampleRate: rate, channels: channels, clock: clock) }
        }
    }
}
