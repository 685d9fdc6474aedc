// The media layer's one error type: what went wrong with a device, a codec or a file, and
// what the user can do about it.
internal import CFFmpeg
import Foundation

/// A failure in capture, coding or container I/O.
public struct MediaError: Error, Hashable, Sendable, CustomStringConvertible {
    /// The kind of failure.
    public enum Code: String, Hashable, Sendable {
        /// The device or file does not exist or cannot be opened.
        case deviceMissing
        /// The device was there and went away (unplugged).
        case deviceLost
        /// The device or input offers nothing this program can use.
        case unsupportedFormat
        /// A codec is not available or refused its settings.
        case codecUnavailable
        /// Encoding or decoding failed.
        case codecFailed
        /// A file or stream could not be read or written.
        case io
        /// Bytes that do not parse.
        case malformed
        /// A setting that cannot work.
        case invalidConfiguration
        /// The source has nothing more.
        case endOfStream
    }

    public let code: Code
    /// A sentence for a person: what happened and what to do about it.
    public let reason: String
    public let file: String
    public let line: Int

    public init(_ code: Code, _ reason: String, file: String = #fileID, line: Int = #line) {
        self.code = code
        self.reason = reason
        self.file = file
        self.line = line
    }

    public static func == (lhs: MediaError, rhs: MediaError) -> Bool { lhs.code == rhs.code }
    public func hash(into hasher: inout Hasher) { hasher.combine(code) }
    public var description: String { reason }

    public static func deviceMissing(_ reason: String, file: String = #fileID, line: Int = #line) -> MediaError {
        MediaError(.deviceMissing, reason, file: file, line: line)
    }
    public static func deviceLost(_ reason: String, file: String = #fileID, line: Int = #line) -> MediaError {
        MediaError(.deviceLost, reason, file: file, line: line)
    }
    public static func unsupportedFormat(_ reason: String, file: String = #fileID, line: Int = #line) -> MediaError {
        MediaError(.unsupportedFormat, reason, file: file, line: line)
    }
    public static func codecUnavailable(_ reason: String, file: String = #fileID, line: Int = #line) -> MediaError {
        MediaError(.codecUnavailable, reason, file: file, line: line)
    }
    public static func codecFailed(_ reason: String, file: String = #fileID, line: Int = #line) -> MediaError {
        MediaError(.codecFailed, reason, file: file, line: line)
    }
    public static func io(_ reason: String, file: String = #fileID, line: Int = #line) -> MediaError {
        MediaError(.io, reason, file: file, line: line)
    }
    public static func malformed(_ reason: String, file: String = #fileID, line: Int = #line) -> MediaError {
        MediaError(.malformed, reason, file: file, line: line)
    }
    public static func invalidConfiguration(_ reason: String, file: String = #fileID, line: Int = #line) -> MediaError {
        MediaError(.invalidConfiguration, reason, file: file, line: line)
    }
    public static let endOfStream = MediaError(.endOfStream, "the source has no more media")

    /// An FFmpeg return code as a failure of `what`: "opening the H.264 encoder failed: Invalid argument".
    static func ffmpeg(_ code: Code, _ status: Int32, _ what: String, hint: String = "",
                       file: String = #fileID, line: Int = #line) -> MediaError {
        MediaError(code, "\(what) failed: \(ffmpegMessage(status))" + (hint.isEmpty ? "" : ": \(hint)"), file: file, line: line)
    }

    /// The C library's message for `errno`.
    static func posix(_ code: Code, _ what: String, errno number: Int32 = errno, hint: String = "",
                      file: String = #fileID, line: Int = #line) -> MediaError {
        MediaError(code, "\(what): \(String(cString: strerror(number)))" + (hint.isEmpty ? "" : ": \(hint)"), file: file, line: line)
    }
}

/// FFmpeg's text for a negative return code.
func ffmpegMessage(_ status: Int32) -> String {
    var buffer = [CChar](repeating: 0, count: 128)
    return buffer.withUnsafeMutableBufferPointer { String(cString: xt_av_error_string(status, $0.baseAddress, 128)) }
}

/// FFmpeg's return code, or a thrown ``MediaError`` when it is negative.
@discardableResult
func check(_ status: Int32, _ code: MediaError.Code, _ what: @autoclosure () -> String,
           file: String = #fileID, line: Int = #line) throws(MediaError) -> Int32 {
    if status < 0 { throw MediaError.ffmpeg(code, status, what(), file: file, line: line) }
    return status
}
