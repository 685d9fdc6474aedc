// The receiving side of loss recovery: which packet numbers arrived, and when an ACK is due.
// An ACK goes out after `ackFrequency` ack-eliciting packets, after `maximumAckDelay`, or at
// once when a packet arrives out of order (so the sender's fast retransmit starts early).

struct AckTracker {
    /// Received packet numbers, pruned once the peer has seen them acknowledged.
    private(set) var received = RangeSet()
    private var largestReceived: UInt64 = 0
    private var largestReceivedTime = Timestamp.zero
    private var unacknowledgedElicitingCount = 0
    private(set) var ackDeadline: Timestamp?
    private var immediate = false
    let ackFrequency: Int
    let maximumAckDelay: Int64

    /// Ranges kept in ACK frames; older ones are dropped (the sender treats them as lost).
    static let maximumRanges = 64

    init(ackFrequency: Int, maximumAckDelay: Int64) {
        self.ackFrequency = ackFrequency
        self.maximumAckDelay = maximumAckDelay
    }

    mutating func onPacketReceived(_ packetNumber: UInt64, ackEliciting: Bool, now: Timestamp) {
        let outOfOrder = !received.isEmpty && packetNumber != largestReceived + 1
        received.insert(packetNumber)
        received.keepLast(Self.maximumRanges)
        if packetNumber >= largestReceived || received.count == 1 {
            largestReceived = packetNumber
            largestReceivedTime = now
        }
        guard ackEliciting else { return }
        unacknowledgedElicitingCount += 1
        if outOfOrder || unacknowledgedElicitingCount >= ackFrequency {
            immediate = true
        }
        if ackDeadline == nil { ackDeadline = now.adding(nanoseconds: maximumAckDelay) }
    }

    /// Whether an ACK must go out now.
    func ackDue(now: Timestamp) -> Bool {
        guard !received.isEmpty else { return false }
        if immediate { return true }
        if let ackDeadline, ackDeadline <= now { return true }
        return false
    }

    /// Acknowledge at the next opportunity (a draining session answers every CLOSE).
    mutating func makeImmediate() { immediate = true }

    /// Whether an ACK is worth adding to a packet that is going out anyway.
    var hasUnacknowledged: Bool { unacknowledgedElicitingCount > 0 || immediate }

    /// Builds the ACK frame to send now and resets the timers.
    mutating func makeAck(now: Timestamp) -> AckFrame? {
        guard !received.isEmpty else { return nil }
        var ranges: [ClosedRange<UInt64>] = []
        ranges.reserveCapacity(min(received.count, 32))
        for range in received.ranges.reversed().prefix(32) { ranges.append(range.lowerBound...(range.upperBound - 1)) }
        let delay = UInt64(max(0, now.nanoseconds(since: largestReceivedTime)) / Nanos.microsecond)
        unacknowledgedElicitingCount = 0
        immediate = false
        ackDeadline = nil
        return AckFrame(ranges: ranges, delayMicroseconds: delay)
    }

    /// The peer has seen an ACK covering up to `largest`: stop repeating those numbers.
    mutating func onAckAcknowledged(largest: UInt64) {
        guard largest > 0 else { return }
        // Keep the range containing `largest` itself so a gap just above it stays reported.
        received.removeBelow(largest)
    }
}
