// What encoders produce and the network carries: one coded picture (an H.264 access unit in
// Annex B) or one Opus packet, with its capture time, and the description a decoder needs.

/// Audio or video.
public enum MediaKind: UInt8, Hashable, Sendable, CustomStringConvertible {
    case video = 0
    case audio = 1
    public var description: String { self == .video ? "video" : "audio" }
}

/// The codecs the system carries.
public enum MediaCodec: UInt8, Hashable, Sendable, CustomStringConvertible {
    case h264 = 1
    case opus = 2
    public var description: String { self == .h264 ? "H.264" : "Opus" }
    public var kind: MediaKind { self == .h264 ? .video : .audio }
}

/// One coded picture or audio packet.
public struct EncodedFrame: Hashable, Sendable {
    public var codec: MediaCodec
    /// The coded bytes: an H.264 access unit in Annex B (SPS and PPS precede every keyframe),
    /// or one Opus packet.
    public var data: [UInt8]
    /// When it was captured (for audio: its first sample), on the agent's wall clock. For
    /// video with B-frames this is its decode time, rising frame by frame in stream order; it is
    /// shown at ``presentationTime``.
    public var captureTime: CaptureTime
    /// How long it plays, in nanoseconds.
    public var duration: Int64
    /// A decoder can start here.
    public var isKeyframe: Bool
    /// Presentation time less decode time, in nanoseconds: 0 unless the stream has B-frames,
    /// whose pictures are sent before the ones they are shown after (an MP4 `ctts`/`trun`
    /// composition offset). Never negative; at most ``maximumCompositionOffset``.
    public var compositionOffset: Int64

    /// The largest composition offset carried (10 s, far above any real encoder's reorder delay).
    public static let maximumCompositionOffset: Int64 = 10_000_000_000

    public init(codec: MediaCodec, data: [UInt8], captureTime: CaptureTime, duration: Int64, isKeyframe: Bool,
                compositionOffset: Int64 = 0) {
        self.codec = codec
        self.data = data
        self.captureTime = captureTime
        self.duration = duration
        self.isKeyframe = isKeyframe
        self.compositionOffset = compositionOffset
    }

    /// When it is shown: the capture time of the picture (``captureTime`` plus the composition
    /// offset).
    public var presentationTime: CaptureTime { captureTime.adding(nanoseconds: compositionOffset) }
}

/// What a decoder or muxer needs to know about a stream before its first frame.
public struct StreamDescription: Hashable, Sendable {
    public var codec: MediaCodec
    /// Video: picture size and nominal frame rate.
    public var width: Int
    public var height: Int
    public var frameRate: Int
    /// Audio: sample rate and channel count.
    public var sampleRate: Int
    public var channels: Int
    /// Codec configuration: H.264 SPS and PPS in Annex B, or the 19-byte OpusHead.
    public var configuration: [UInt8]

    public init(codec: MediaCodec, width: Int = 0, height: Int = 0, frameRate: Int = 0, sampleRate: Int = 0,
                channels: Int = 0, configuration: [UInt8] = []) {
        self.codec = codec
        self.width = width
        self.height = height
        self.frameRate = frameRate
        self.sampleRate = sampleRate
        self.channels = channels
        self.configuration = configuration
    }
}
