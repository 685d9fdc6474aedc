// Time as the sans-IO core sees it: a monotonic nanosecond count handed in by the driver.
// The core never reads a clock; production passes NIODeadline.now(), the simulator its
// virtual clock.

/// A point on a monotonic clock, in nanoseconds. The core never reads a clock itself.
public struct Timestamp: Hashable, Comparable, Sendable, CustomStringConvertible {
    /// Nanoseconds since an arbitrary origin shared by every caller of one endpoint.
    public var nanoseconds: UInt64

    /// Creates a timestamp from a nanosecond count.
    public init(nanoseconds: UInt64) { self.nanoseconds = nanoseconds }

    /// The origin of the clock.
    public static let zero = Timestamp(nanoseconds: 0)

    public static func < (lhs: Timestamp, rhs: Timestamp) -> Bool { lhs.nanoseconds < rhs.nanoseconds }

    /// The timestamp `nanoseconds` later (or earlier, if negative); clamps at zero.
    @inline(__always)
    public func adding(nanoseconds delta: Int64) -> Timestamp {
        if delta >= 0 { return Timestamp(nanoseconds: nanoseconds &+ UInt64(delta)) }
        let magnitude = delta.magnitude  // (-Int64.min does not fit an Int64)
        return Timestamp(nanoseconds: magnitude > nanoseconds ? 0 : nanoseconds - magnitude)
    }

    /// The timestamp `duration` later.
    public func adding(_ duration: Duration) -> Timestamp { adding(nanoseconds: duration.nanoseconds) }

    /// Signed nanoseconds from `earlier` to `self`.
    @inline(__always)
    public func nanoseconds(since earlier: Timestamp) -> Int64 {
        Int64(bitPattern: nanoseconds &- earlier.nanoseconds)
    }

    public var description: String { "t+\(Double(nanoseconds) / 1e6)ms" }
}

extension Duration {
    /// The duration as whole nanoseconds, saturating at `Int64` bounds.
    public var nanoseconds: Int64 {
        let (seconds, attoseconds) = components
        let (scaled, overflow) = seconds.multipliedReportingOverflow(by: 1_000_000_000)
        if overflow { return seconds < 0 ? .min : .max }
        return scaled &+ attoseconds / 1_000_000_000
    }
}

/// Nanosecond constants, so time arithmetic in the core reads as units.
enum Nanos {
    static let microsecond: Int64 = 1_000
    static let millisecond: Int64 = 1_000_000
    static let second: Int64 = 1_000_000_000
}
