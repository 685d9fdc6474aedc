// What every camera-like input gives the agent: raw pictures to encode, or pictures already
// coded in H.264 (a camera's own encoder, an RTSP camera, a recorded clip) to pass through.

/// The output of a video source.
public enum VideoSourceOutput: Sendable {
    /// A raw picture: the agent encodes it.
    case raw(VideoFrame)
    /// A coded picture: the agent passes it through as it is.
    case encoded(EncodedFrame)
}

/// Anything the agent captures from: a line for its logs.
public protocol CaptureSource: AnyObject {
    /// "synthetic 1280x720 at 30 fps", "/dev/video0 (MJPG 1280x720 at 30 fps)", "ALSA default (48000 Hz, 1 channel)".
    var summary: String { get }
    /// Lines for the log since the last call (a source whose clock stepped, say); each event is
    /// reported once.
    func takeNotices() -> [String]
}

extension CaptureSource {
    public func takeNotices() -> [String] { [] }
}

/// A camera, a test pattern or a file. Reads block until the next picture is due.
public protocol VideoSource: CaptureSource {
    /// The picture size and frame rate the source produces.
    var width: Int { get }
    var height: Int { get }
    var frameRate: Int { get }
    /// For sources that deliver coded pictures: the stream's description (SPS/PPS once known).
    var encodedDescription: StreamDescription? { get }
    /// The next picture, blocking until it is captured.
    /// - Throws: ``MediaError`` (`.deviceLost` when a camera went away, `.endOfStream` at the
    ///   end of a file).
    func next() throws(MediaError) -> VideoSourceOutput
    /// Asks a source that encodes by itself for a keyframe (others ignore it).
    func requestKeyframe()
}

extension VideoSource {
    public var encodedDescription: StreamDescription? { nil }
    public func requestKeyframe() {}
}

/// How a synthetic or file source paces itself.
public enum Pacing: Sendable, Equatable {
    /// As a camera does: one picture each frame interval, stamped with the wall clock.
    case realTime
    /// As fast as the consumer takes them, stamped on a virtual clock that starts at `start`
    /// (tests that cover minutes of stream time in seconds).
    case virtual(start: CaptureTime)
}
