// Which of a stream's recent sequence numbers have been seen: the sliding window of IPsec's
// and SRTP's replay check (RFC 4303 §3.4.3), here to drop the second copy of a call's audio
// packet (and any other repeat) whatever became of the first.

/// The last ``size`` sequence numbers below the newest seen, as a bitmap. Sequence numbers wrap
/// (serial arithmetic, RFC 1982): a number more than 2³¹ behind the newest counts as ahead.
public struct SequenceWindow: Sendable, Equatable {
    /// How far behind the newest a number is still remembered (64 × 20 ms frames: 1.3 s).
    public static let size = 64
    private var newest: UInt32?
    /// Bit i: newest − i was seen.
    private var seen: UInt64 = 0

    public init() {}

    /// Notes `sequence`.
    /// - Returns: true the first time; false for a repeat, or for a number too far behind the
    ///   newest to tell (older than ``size``).
    public mutating func insert(_ sequence: UInt32) -> Bool {
        guard let newest else {
            self.newest = sequence
            seen = 1
            return true
        }
        let ahead = Int64(Int32(bitPattern: sequence &- newest))
        if ahead > 0 {
            seen = ahead >= Int64(Self.size) ? 1 : seen << UInt64(ahead) | 1
            self.newest = sequence
            return true
        }
        let behind = -ahead
        guard behind < Int64(Self.size) else { return false }
        let bit = UInt64(1) << UInt64(behind)
        if seen & bit != 0 { return false }
        seen |= bit
        return true
    }

    /// Whether `sequence` was seen (false for a number older than the window).
    public func contains(_ sequence: UInt32) -> Bool {
        guard let newest else { return false }
        let behind = Int64(Int32(bitPattern: newest &- sequence))
        guard behind >= 0, behind < Int64(Self.size) else { return false }
        return seen & (UInt64(1) << UInt64(behind)) != 0
    }
}
