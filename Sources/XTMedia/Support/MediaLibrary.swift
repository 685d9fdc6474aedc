// One-time set-up of the C media libraries, and FFmpeg's own log routed to the application's
// logger: warnings and errors only, each line whole, and a line FFmpeg repeats (a camera that
// refuses every reconnect: "Connection refused", once a try) said once per ten minutes with a
// count, not 86,000 times a day on stderr.
internal import CFFmpeg
import Foundation
import Synchronization

/// Process-wide FFmpeg settings.
public enum MediaLibrary {
    private static let once: Void = {
        av_log_set_level(AV_LOG_WARNING)
        xt_av_log_route(ffmpegLogSink)
        avformat_network_init()
    }()

    /// Sets FFmpeg up; safe to call from every entry point.
    public static func initialize() { _ = once }

    /// FFmpeg's version, for `xt agent --version`-style lines.
    public static var ffmpegVersion: String { String(cString: av_version_info()) }

    /// How bad an FFmpeg line is.
    public enum LogLevel: Sendable, Equatable {
        case warning, error
    }

    /// Sends FFmpeg's warnings and errors to `handler` (the application's logger) instead of
    /// stderr. A line identical to one reported in the last ``repeatWindow`` is held back and
    /// counted; the next time it is reported it says how often it came.
    public static func routeLog(to handler: @escaping @Sendable (LogLevel, String) -> Void) {
        initialize()
        ffmpegLog.setHandler(handler)
    }

    /// How long an identical line is held back.
    public static let repeatWindow: Duration = .seconds(600)

    /// Lines FFmpeg produced and lines held back as repeats (for tests and reports).
    public static var logCounts: (reported: Int, repeats: Int) { ffmpegLog.counts }
}

/// The state behind FFmpeg's log callback (a C function pointer: it can capture nothing).
final class FFmpegLog: Sendable {
    private struct State {
        var handler: (@Sendable (MediaLibrary.LogLevel, String) -> Void)?
        /// A line being assembled (FFmpeg logs some lines in pieces).
        var partial = ""
        /// Per text: when it was last reported (monotonic ns) and repeats held back since.
        var seen: [String: (at: Int64, held: Int)] = [:]
        var reported = 0
        var repeats = 0
    }

    private let state = Mutex(State())

    func setHandler(_ handler: @escaping @Sendable (MediaLibrary.LogLevel, String) -> Void) {
        state.withLock { $0.handler = handler }
    }

    var counts: (reported: Int, repeats: Int) { state.withLock { ($0.reported, $0.repeats) } }

    /// A piece of a line at `level` (FFmpeg's numbers: 16 error, 24 warning).
    func take(_ piece: String, level: Int32) {
        let now = CaptureTime.monotonicNow
        let window = Int64(MediaLibrary.repeatWindow.components.seconds) * 1_000_000_000
        let ready: (@Sendable (MediaLibrary.LogLevel, String) -> Void, MediaLibrary.LogLevel, String)? = state.withLock { state in
            state.partial += piece
            guard state.partial.hasSuffix("\n") else { return nil }
            let text = state.partial.trimmingCharacters(in: .whitespacesAndNewlines)
            state.partial = ""
            guard !text.isEmpty else { return nil }
            let handler = state.handler ?? { level, line in
                // No logger given (a tool, a test): errors go to stderr as FFmpeg would.
                if level == .error { FileHandle.standardError.write(Data("ffmpeg: \(line)\n".utf8)) }
            }
            if let last = state.seen[text], now - last.at < window {
                state.seen[text] = (last.at, last.held + 1)
                state.repeats += 1
                return nil
            }
            let held = state.seen[text]?.held ?? 0
            state.seen[text] = (now, 0)
            if state.seen.count > 1000 { state.seen = state.seen.filter { now - $0.value.at < window } }
            state.reported += 1
            let line = held > 0 ? "\(text) (and \(held) times more in the last \(MediaLibrary.repeatWindow.components.seconds / 60) minutes)" : text
            return (handler, level <= AV_LOG_ERROR ? .error : .warning, line)
        }
        if let (handler, level, line) = ready { handler(level, line) }
    }
}

let ffmpegLog = FFmpegLog()

/// Where the shim hands FFmpeg's formatted pieces of lines (a C function pointer).
private let ffmpegLogSink: @convention(c) (Int32, UnsafePointer<CChar>?) -> Void = { level, piece in
    guard let piece else { return }
    ffmpegLog.take(String(cString: piece), level: level)
}
