// Capture time: the agent's wall clock at the moment light or sound was captured, in
// nanoseconds since the Unix epoch. It travels with every frame to the recorder and viewers.
import Foundation

/// A point in time on the agent's wall clock (nanoseconds since 1970), as stamped at capture.
public struct CaptureTime: Hashable, Comparable, Sendable, CustomStringConvertible {
    public var nanoseconds: Int64

    public init(nanoseconds: Int64) { self.nanoseconds = nanoseconds }

    /// The wall clock now.
    public static var now: CaptureTime {
        var spec = timespec()
        clock_gettime(CLOCK_REALTIME, &spec)
        return CaptureTime(nanoseconds: Int64(spec.tv_sec) * 1_000_000_000 + Int64(spec.tv_nsec))
    }

    /// A CLOCK_MONOTONIC reading (as V4L2 and ALSA stamp buffers) on the wall clock.
    public static func fromMonotonic(_ monotonicNanoseconds: Int64) -> CaptureTime {
        CaptureTime(nanoseconds: now.nanoseconds - (monotonicNow - monotonicNanoseconds))
    }

    /// CLOCK_MONOTONIC now, in nanoseconds.
    public static var monotonicNow: Int64 {
        var spec = timespec()
        clock_gettime(CLOCK_MONOTONIC, &spec)
        return Int64(spec.tv_sec) * 1_000_000_000 + Int64(spec.tv_nsec)
    }

    /// Capture times the system accepts from outside (the wire, files, HTTP): 1970 to the end
    /// of 2199. Differences of two such times, and sums with any duration of a day or less, fit
    /// an Int64 with room to spare.
    public static let validRange: ClosedRange<Int64> = 0...7_258_118_399_999_999_999

    /// Whether the time lies in ``validRange``.
    public var isValid: Bool { Self.validRange.contains(nanoseconds) }

    /// The time `delta` ns later (saturating at Int64's ends rather than trapping).
    public func adding(nanoseconds delta: Int64) -> CaptureTime { CaptureTime(nanoseconds: Self.saturating(nanoseconds, plus: delta)) }
    /// Nanoseconds from `earlier` to this time (saturating at Int64's ends rather than trapping).
    public func nanoseconds(since earlier: CaptureTime) -> Int64 {
        let (result, overflow) = nanoseconds.subtractingReportingOverflow(earlier.nanoseconds)
        return overflow ? (earlier.nanoseconds < 0 ? .max : .min) : result
    }

    /// The time `milliseconds` after 1970, when that lies in ``validRange``; nil otherwise (a
    /// number from outside that would overflow, or a date before 1970 or after 2199).
    public init?(milliseconds: Int64) {
        guard (Self.validRange.lowerBound / 1_000_000...Self.validRange.upperBound / 1_000_000).contains(milliseconds) else { return nil }
        nanoseconds = milliseconds * 1_000_000
    }

    /// The time `seconds` after 1970 (a parsed date), when finite and in ``validRange``.
    public init?(seconds: Double) {
        guard seconds.isFinite, seconds >= 0, seconds < Double(Self.validRange.upperBound / 1_000_000_000) else { return nil }
        nanoseconds = Int64((seconds * 1e9).rounded(.down))
    }

    /// Milliseconds since 1970.
    public var milliseconds: Int64 { nanoseconds / 1_000_000 }

    /// What ``validRange`` allows, for error messages.
    public static let validRangeDescription = "a time from 1970 to 2199 (milliseconds since 1970 from 0 to 7258118399999)"

    /// `a + b`, or Int64's nearest end when the sum would not fit.
    public static func saturating(_ a: Int64, plus b: Int64) -> Int64 {
        let (result, overflow) = a.addingReportingOverflow(b)
        return overflow ? (b > 0 ? .max : .min) : result
    }
    public var seconds: Double { Double(nanoseconds) / 1e9 }

    public static func < (lhs: CaptureTime, rhs: CaptureTime) -> Bool { lhs.nanoseconds < rhs.nanoseconds }

    public var description: String {
        let date = Date(timeIntervalSince1970: seconds)
        return date.formatted(.iso8601.year().month().day().timeSeparator(.colon).time(includingFractionalSeconds: true))
    }
}
