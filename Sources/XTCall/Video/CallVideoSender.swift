// The sending side of a call's video: camera pictures → H.264 tuned for low delay (libx264
// zerolatency: no B-frames, no lookahead, one picture in, one out) → one media packet per
// picture. A keyframe goes out first, and whenever a party asks for one (it lost a picture);
// otherwise only every `keyframeInterval`, since keyframes are large and a call asks when it
// needs one. The bitrate follows the link (``VideoBitrateController``). A camera that encodes
// by itself (a camera agent's H.264, `.encoded` pictures) is passed through as it is: one
// encode, and keyframe requests go back to its source.
import Foundation
public import XTMedia

/// A call's camera, chosen as `xt agent` chooses its video input.
public enum CallCamera: Sendable, Equatable, CustomStringConvertible {
    /// The test pattern (a moving marker and a clock): tests, and nodes without a camera.
    case synthetic
    /// A V4L2 camera (/dev/video0).
    case v4l2(String)
    /// A video file or URL read at its own pace through libavformat.
    case file(String)
    /// A camera agent's own encode (``CallVideoFeed``).
    case feed(CallVideoFeed)

    /// Parses `synthetic`, a /dev path (or `v4l2:PATH`) or `file:PATH`; nil for anything else.
    public init?(_ text: String) {
        if text == "synthetic" {
            self = .synthetic
        } else if text.hasPrefix("v4l2:"), text.count > 5 {
            self = .v4l2(String(text.dropFirst(5)))
        } else if text.hasPrefix("/dev/"), text.count > 5 {
            self = .v4l2(text)
        } else if text.hasPrefix("file:"), text.count > 5 {
            self = .file(String(text.dropFirst(5)))
        } else {
            return nil
        }
    }

    public var description: String {
        switch self {
        case .synthetic: "synthetic"
        case .v4l2(let path): path
        case .file(let location): "file:\(location)"
        case .feed(let feed): feed.summary
        }
    }

    /// Opens it at `width`×`height` and `frameRate` (a camera picks its nearest mode).
    /// - Throws: ``MediaError`` when the device or file cannot be opened (the message says which and why).
    func open(width: Int, height: Int, frameRate: Int) throws(MediaError) -> any VideoSource {
        switch self {
        case .synthetic: return try SyntheticVideoSource(width: width, height: height, frameRate: frameRate)
        case .v4l2(let path): return try V4L2Camera(path: path, width: width, height: height, fps: frameRate)
        case .file(let location): return try FileVideoSource(location: location)
        case .feed(let feed):
            feed.begin()
            return feed
        }
    }
}

/// The shape of a call's video.
public struct CallVideoSettings: Sendable, Equatable {
    public var width = 640
    public var height = 360
    public var frameRate = 15
    /// Pictures between keyframes when nobody asks for one (10 s at 15 fps).
    public var keyframeInterval = 150
    public var bitrate = VideoBitrateController.Configuration()

    public init() {}

    /// - Throws: ``MediaError/invalidConfiguration(_:)`` for sizes or rates outside what the encoder takes.
    public func validate() throws(MediaError) {
        guard (64...1920).contains(width), (64...1080).contains(height), width % 2 == 0, height % 2 == 0 else {
            throw .invalidConfiguration("call video \(width)x\(height): use an even size from 64x64 to 1920x1080")
        }
        guard (1...60).contains(frameRate) else { throw .invalidConfiguration("call video at \(frameRate) fps: use 1 to 60") }
        guard bitrate.minimum > 0, bitrate.minimum <= bitrate.start, bitrate.start <= bitrate.maximum else {
            throw .invalidConfiguration("call video bitrates: need 0 < minimum ≤ start ≤ maximum")
        }
    }
}

/// Encodes (or passes through) a call's pictures into media packets. Used by one thread.
public final class CallVideoSender {
    public let call: CallID
    public let settings: CallVideoSettings
    private var encoder: H264Encoder?
    private var controller: VideoBitrateController
    private var sequence: UInt32 = 0
    private var keyframeWanted = true
    /// Pictures sent, keyframes among them, and keyframes sent because a party asked.
    public private(set) var sent = 0
    public private(set) var keyframes = 0
    public private(set) var requestedKeyframes = 0
    /// The encoder's description (SPS and PPS once the first keyframe is out), for a recording.
    public private(set) var description: StreamDescription?

    public init(call: CallID, settings: CallVideoSettings) throws(MediaError) {
        try settings.validate()
        self.call = call
        self.settings = settings
        controller = VideoBitrateController(configuration: settings.bitrate)
    }

    /// The bitrate the encoder aims at now, bits per second.
    public var bitrate: Int { controller.bitrate }

    /// A party lost a picture: the next one is a keyframe.
    public func requestKeyframe() {
        if !keyframeWanted { requestedKeyframes += 1 }
        keyframeWanted = true
    }

    /// Takes the link's figures over the last `interval`; the encoder follows from the next picture.
    public func linkChanged(_ link: VideoBitrateController.LinkFigures, interval: Duration) {
        let rate = controller.update(link, interval: interval)
        encoder?.setBitrate(rate)
    }

    /// Whether a keyframe is wanted (a source that encodes by itself is asked for one).
    public var wantsKeyframe: Bool { keyframeWanted }

    /// One picture from the camera: its packet (none if the encoder held it).
    /// - Throws: ``MediaError`` when the encoder cannot be opened or fails.
    public func process(_ output: VideoSourceOutput) throws(MediaError) -> [CallMediaPacket] {
        let coded: [EncodedFrame]
        switch output {
        case .raw(let picture):
            if encoder == nil {
                encoder = try H264Encoder(settings: H264Settings(width: settings.width, height: settings.height, frameRate: settings.frameRate,
                                                                 bitrate: controller.bitrate, gop: settings.keyframeInterval, preset: "ultrafast",
                                                                 implementation: .libx264))
            }
            picture.forceKeyframe = keyframeWanted
            coded = try encoder!.encode(picture)
            if let encoder, !encoder.parameterSets.isEmpty { description = encoder.description }
        case .encoded(let frame):
            coded = [frame]
            if frame.isKeyframe, description == nil {
                description = StreamDescription(codec: .h264, width: settings.width, height: settings.height, frameRate: settings.frameRate,
                                                configuration: H264Bitstream.parameterSets(frame.data))
            }
        }
        return coded.map { frame in
            if frame.isKeyframe {
                keyframeWanted = false
                keyframes += 1
            }
            sent += 1
            defer { sequence &+= 1 }
            return CallMediaPacket(kind: .video, flags: frame.isKeyframe ? .keyframe : [], call: call, sequence: sequence,
                                   captureMicroseconds: UInt64(clamping: frame.captureTime.nanoseconds / 1000), payload: frame.data)
        }
    }
}

/// Pictures a camera agent already encoded (its recording's H.264), handed to a call as they
/// come: the doorbell's camera is recorded and in the call from one encode. The agent pushes
/// each coded picture; the call's video thread takes them (``next()`` blocks until one comes).
/// A keyframe request goes back to the agent's encoder through `keyframe`.
public final class CallVideoFeed: VideoSource, @unchecked Sendable {
    public let width: Int
    public let height: Int
    public let frameRate: Int
    private let keyframe: @Sendable () -> Void
    private let condition = NSCondition()
    private var queue: [EncodedFrame] = []
    private var open = false
    /// Pictures dropped because the call's thread fell behind (it keeps the newest few).
    public private(set) var dropped = 0

    /// - Parameter keyframe: asks the agent's encoder for a keyframe.
    public init(width: Int, height: Int, frameRate: Int, keyframe: @escaping @Sendable () -> Void) {
        self.width = width
        self.height = height
        self.frameRate = frameRate
        self.keyframe = keyframe
    }

    public var summary: String { "the camera's own encode (\(width)x\(height) at \(frameRate) fps)" }

    /// The agent's coded picture; kept only while a call takes them (at most 8 behind).
    public func push(_ frame: EncodedFrame) {
        condition.withLock {
            guard open, frame.codec == .h264 else { return }
            queue.append(frame)
            if queue.count > 8 {
                queue.removeFirst(queue.count - 8)
                dropped += 1
            }
            condition.signal()
        }
    }

    /// A call starts taking pictures; the agent is asked for a keyframe to start from.
    func begin() {
        condition.withLock {
            open = true
            queue = []
        }
        keyframe()
    }

    /// The call ended: ``next()`` returns end of stream.
    func end() {
        condition.withLock {
            open = false
            queue = []
            condition.broadcast()
        }
    }

    public func next() throws(MediaError) -> VideoSourceOutput {
        let frame: EncodedFrame? = condition.withLock {
            while open && queue.isEmpty { _ = condition.wait(until: Date().addingTimeInterval(1)) }
            return open ? queue.removeFirst() : nil
        }
        guard let frame else { throw .endOfStream }
        return .encoded(frame)
    }

    public func requestKeyframe() { keyframe() }
}

extension CallVideoFeed: Equatable {
    public static func == (left: CallVideoFeed, right: CallVideoFeed) -> Bool { left === right }
}
