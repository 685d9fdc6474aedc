// The camera agent's settings: what to capture (camera, microphone, test pattern, file or
// RTSP), how to encode it, where to publish it, and how much to keep for backfill. Read from
// Config/agent.conf, then XT_AGENT_* variables, then command-line options; node keys (id,
// name, host, ...) may appear in the same file.
import Foundation
public import XTMedia
public import XTNet

/// Where video comes from.
public enum VideoInput: Hashable, Sendable, CustomStringConvertible {
    case none
    /// The test pattern with scripted motion.
    case synthetic
    /// A V4L2 camera (a path such as /dev/video0).
    case v4l2(String)
    /// A file or network URL (rtsp://, http://...) read through libavformat.
    case file(String)

    /// Parses `none`, `synthetic`, a /dev path (or `v4l2:PATH`), `file:PATH` or a URL.
    public init?(_ text: String) {
        switch text {
        case "none", "": self = .none
        case "synthetic": self = .synthetic
        case _ where text.hasPrefix("v4l2:"): self = .v4l2(String(text.dropFirst(5)))
        case _ where text.hasPrefix("/dev/"): self = .v4l2(text)
        case _ where text.hasPrefix("file:"): self = .file(String(text.dropFirst(5)))
        case _ where text.contains("://"): self = .file(text)
        default: return nil
        }
    }

    public var description: String {
        switch self {
        case .none: "none"
        case .synthetic: "synthetic"
        case .v4l2(let path): path
        case .file(let location): location
        }
    }
}

/// Where audio comes from.
public enum AudioInput: Hashable, Sendable, CustomStringConvertible {
    case none
    /// The tone generator (beeps in step with the test pattern's marker).
    case synthetic
    /// An ALSA capture device ("default", "hw:1", or a PCM defined in the ALSA configuration).
    case alsa(String)
    /// A file or network URL read through libavformat.
    case file(String)

    /// Parses `none`, `synthetic`, `alsa:NAME` or `file:PATH`.
    public init?(_ text: String) {
        switch text {
        case "none", "": self = .none
        case "synthetic": self = .synthetic
        case _ where text.hasPrefix("alsa:") && text.count > 5: self = .alsa(String(text.dropFirst(5)))
        case _ where text.hasPrefix("file:") && text.count > 5: self = .file(String(text.dropFirst(5)))
        case _ where text.contains("://"): self = .file(text)
        default: return nil
        }
    }

    public var description: String {
        switch self {
        case .none: "none"
        case .synthetic: "synthetic"
        case .alsa(let name): "alsa:\(name)"
        case .file(let location): location
        }
    }
}

/// Everything `xt agent` is told.
public struct AgentConfiguration: KeyValueSettings, Hashable, Sendable {
    /// The node this agent runs as (id, name, host, ...).
    public var node = NodeConfiguration()
    /// The camera's name in recordings; the node's name when not set.
    public var camera: String?
    public var video = VideoInput.synthetic
    /// Which of a V4L2 camera's formats to use.
    public var videoFormat = V4L2FormatChoice.auto
    public var width = 1280
    public var height = 720
    public var fps = 30
    /// Whether `width`/`height` or `fps` were set (file, environment or options). When not, a
    /// file's or network camera's decoded pictures are encoded at their own size and rate;
    /// cameras and the test pattern are asked for the defaults.
    public var sizeIsSet = false
    public var fpsIsSet = false
    /// Video bitrate, bits per second.
    public var bitrate = 2_000_000
    /// Frames between keyframes; two seconds' worth when not set.
    public var gop: Int?
    public var profile: String?
    public var preset = "ultrafast"
    public var encoder = H264Settings.Implementation.auto
    public var audio = AudioInput.synthetic
    public var audioChannels = 1
    public var audioRate = 48_000
    /// Audio bitrate, bits per second.
    public var audioBitrate = 32_000
    /// The live channel video is published on; audio goes on the next one.
    public var channel: UInt16 = 100
    /// Frames not delivered within this long are skipped (and counted).
    public var deadlineMilliseconds = 500
    /// Publish with IP multicast (routecode 2; the host relays where the group does not
    /// reach) or by channel routing (routecode 3).
    public var multicast = true
    /// The ring buffer: in RAM, or in files under `ringDirectory`.
    public var ringOnDisk = false
    public var ringDirectory = "/var/lib/xt/ring"
    public var ringMinutes = 5.0
    public var ringMegabytes = 512
    /// Scripted motion for the synthetic camera.
    public var motion = MotionScript()
    /// Raw pictures analysed for motion per second (0: none; the recorder then detects).
    public var motionFPS = 10
    /// Calls to this camera: answered at once (talk back through its speaker, look through its
    /// camera), or refused as busy (off).
    public var answerCalls = false
    /// The call's own sound devices (the recording's microphone stays the agent's).
    public var callMicrophone = AudioInput.none
    public var callSpeaker: String?
    /// Who SIGUSR1 rings (the doorbell button): a node or user name, or "web".
    public var doorbell = "web"

    public init() {
        node.channel = 100
    }

    public static let keys: [(key: String, takes: String)] = [
        ("camera", "a name without spaces"), ("video", "synthetic, /dev/videoN, file:PATH, rtsp://... or none"),
        ("video-format", "auto, h264, mjpeg or yuyv (a V4L2 camera's format)"),
        ("width", "pixels, even"), ("height", "pixels, even"), ("fps", "1…120"), ("bitrate", "video kbit/s"),
        ("gop", "frames between keyframes"), ("profile", "baseline, main or high"), ("preset", "an x264 preset, e.g. ultrafast"),
        ("encoder", "auto, libx264 or h264_v4l2m2m"), ("audio", "synthetic, alsa:DEVICE, file:PATH or none"),
        ("audio-channels", "1 or 2"), ("audio-rate", "8000, 12000, 16000, 24000 or 48000"), ("audio-bitrate", "audio kbit/s"),
        ("deadline", "milliseconds, 50…10000"), ("multicast", "yes or no"), ("ring", "ram or disk"),
        ("ring-directory", "a directory"), ("ring-minutes", "minutes, 0.1…1440"), ("ring-megabytes", "MiB, 1…65536"),
        ("motion", "start-end:x,y>x,y[:size]; light start-end:gain; noise:N; ..."), ("motion-period", "seconds"),
        ("motion-fps", "pictures analysed for motion per second, 0…30 (0: the recorder detects)"),
        ("calls", "off or answer (calls to the camera are answered at once, its video from the recording's encode)"),
        ("call-microphone", "alsa:DEVICE, synthetic, file:PATH or none"), ("call-speaker", "alsa:DEVICE or none"),
        ("doorbell", "who SIGUSR1 rings: a node or user name, or web"),
    ] + NodeConfiguration.keys

    public mutating func set(_ key: String, _ value: String) throws(NodeConfigurationError) {
        let value = value.trimmingCharacters(in: .whitespaces)
        let bad = Self.badValue(key, value)
        func integer(_ range: ClosedRange<Int>) throws(NodeConfigurationError) -> Int {
            guard let number = Int(value), range.contains(number) else { throw bad }
            return number
        }
        switch key {
        case "camera":
            guard !value.isEmpty, !value.contains(" "), !value.contains("/"), value.utf8.count <= 64 else { throw bad }
            camera = value
        case "video":
            guard let input = VideoInput(value) else { throw bad }
            video = input
        case "video-format":
            guard let choice = V4L2FormatChoice(rawValue: value.lowercased()) else { throw bad }
            videoFormat = choice
        case "width": width = try integer(16...7680); sizeIsSet = true
        case "height": height = try integer(16...4320); sizeIsSet = true
        case "fps": fps = try integer(1...120); fpsIsSet = true
        case "bitrate": bitrate = try integer(16...100_000) * 1000
        case "gop": gop = try integer(1...3600)
        case "profile":
            guard ["baseline", "main", "high"].contains(value) else { throw bad }
            profile = value
        case "preset":
            guard ["ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow", "slower", "veryslow"].contains(value) else { throw bad }
            preset = value
        case "encoder":
            guard let implementation = H264Settings.Implementation(rawValue: value) else { throw bad }
            encoder = implementation
        case "audio":
            guard let input = AudioInput(value) else { throw bad }
            audio = input
        case "audio-channels": audioChannels = try integer(1...2)
        case "audio-rate":
            let rate = try integer(8000...48_000)
            guard [8000, 12_000, 16_000, 24_000, 48_000].contains(rate) else { throw bad }
            audioRate = rate
        case "audio-bitrate": audioBitrate = try integer(6...510) * 1000
        case "deadline": deadlineMilliseconds = try integer(50...10_000)
        case "multicast":
            guard let flag = ["yes": true, "true": true, "on": true, "no": false, "false": false, "off": false][value.lowercased()] else { throw bad }
            multicast = flag
        case "ring":
            guard value == "ram" || value == "disk" else { throw bad }
            ringOnDisk = value == "disk"
        case "ring-directory":
            guard !value.isEmpty else { throw bad }
            ringDirectory = value
        case "ring-minutes":
            guard let minutes = Double(value), (0.1...1440).contains(minutes) else { throw bad }
            ringMinutes = minutes
        case "ring-megabytes": ringMegabytes = try integer(1...65_536)
        case "motion":
            do {
                motion = try MotionScript(parsing: value, period: motion.period)
            } catch {
                throw .badValue(key: key, value: value, expected: error.reason)
            }
        case "motion-period":
            guard let seconds = Double(value), seconds > 0, seconds <= 86_400 else { throw bad }
            motion.period = seconds
        case "motion-fps": motionFPS = try integer(0...30)
        case "calls":
            guard value == "off" || value == "answer" else { throw bad }
            answerCalls = value == "answer"
        case "call-microphone":
            guard let input = AudioInput(value), value.utf8.count <= 1000 else { throw bad }
            callMicrophone = input
        case "call-speaker":
            if value == "none" {
                callSpeaker = nil
            } else {
                guard value.hasPrefix("alsa:"), value.count > 5, value.utf8.count <= 200 else { throw bad }
                callSpeaker = String(value.dropFirst(5))
            }
        case "doorbell":
            guard (1...64).contains(value.utf8.count), value.allSatisfy({ $0.isLetter || $0.isNumber || "-_.".contains($0) }) else { throw bad }
            doorbell = value
        case "channel":
            try node.set(key, value)
            channel = node.channel
        default:
            do {
                try node.set(key, value)
            } catch .unknownKey {
                throw .unknownKey(key, known: Self.keys.map(\.key))
            }
        }
    }

    /// The camera's name: `camera`, or the node's name.
    public var cameraName: String { camera ?? node.name }
    /// The channel audio is published on.
    public var audioChannel: UInt16 { channel &+ 1 }
    public var deadline: Duration { .milliseconds(deadlineMilliseconds) }

    /// The encoder settings these options give.
    public var h264: H264Settings {
        H264Settings(width: width, height: height, frameRate: fps, bitrate: bitrate, gop: gop, profile: profile, preset: preset,
                     implementation: encoder)
    }

    public var opus: OpusSettings { OpusSettings(sampleRate: audioRate, channels: audioChannels, bitrate: audioBitrate) }

    /// Checks that the settings work together.
    /// - Throws: ``MediaError`` naming what to change.
    public func validate() throws(MediaError) {
        if video == .none && audio == .none { throw .invalidConfiguration("video and audio are both none: the agent has nothing to publish") }
        if video != .none { try h264.validate() }
        if audio != .none { try opus.validate() }
        if channel == UInt16.max { throw .invalidConfiguration("channel 65535 leaves no channel for audio: choose a lower channel") }
    }
}
