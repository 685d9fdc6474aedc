// One-time set-up of the C media libraries: FFmpeg logs only errors (the agent logs what
// matters in its own words).
internal import CFFmpeg

/// Process-wide FFmpeg settings.
public enum MediaLibrary {
    private static let once: Void = {
        av_log_set_level(AV_LOG_ERROR)
        avformat_network_init()
    }()

    /// Sets FFmpeg up; safe to call from every entry point.
    public static func initialize() { _ = once }

    /// FFmpeg's version, for `xt agent --version`-style lines.
    public static var ffmpegVersion: String { String(cString: av_version_info()) }
}
