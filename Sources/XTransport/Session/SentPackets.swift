// The sending side of loss recovery: a record per packet in flight (what it carried, when it
// went, the delivery-rate snapshot), ACK processing and loss declaration (RFC 9002 §6:
// packet threshold 3 and a 9/8·RTT time threshold), made tolerant of reordering in the
// spirit of RACK-TLP (RFC 8985): once a packet declared lost is acknowledged after all (a
// spurious retransmission: per-packet jitter reordered it), the packet threshold is dropped
// and the time threshold widens by a reordering window that grows with each spurious loss
// and shrinks again after 16 real ones. Packet numbers are 64-bit and the queue
// grows without a fixed cap, so windows far beyond 2^24 packets are representable.

/// Something in a packet that must be sent again if the packet is lost.
enum RetransmittableFrame: Equatable {
    case stream(channel: UInt16, offset: UInt64, length: UInt32)
    case skip(channel: UInt16, SkipRange)
    case window(channel: UInt16)
    case close
    case pathChallenge
}

/// Frames carried by one packet; the first is stored inline (the common single-frame case).
struct FrameRefs {
    var first: RetransmittableFrame?
    var more: [RetransmittableFrame] = []

    mutating func append(_ frame: RetransmittableFrame) {
        if first == nil { first = frame } else { more.append(frame) }
    }

    func forEach(_ body: (RetransmittableFrame) -> Void) {
        if let first { body(first) }
        for frame in more { body(frame) }
    }
}

struct SentPacket {
    enum State: UInt8 { case inFlight, acknowledged, lost }
    var packetNumber: UInt64
    var timeSent: Timestamp
    var size: Int
    var ackEliciting: Bool
    var isMTUProbe: Bool
    var state: State = .inFlight
    /// For the congestion controller's delivery-rate samples.
    var delivered: UInt64
    /// Bytes declared lost when this packet was sent.
    var lostBefore: UInt64
    var deliveredTime: Timestamp
    var firstSentTime: Timestamp
    var appLimited: Bool
    /// Largest packet number acknowledged by an ACK frame in this packet, if any.
    var largestAckedInFrame: UInt64?
    var frames = FrameRefs()
}

/// Packets sent and not yet resolved, in packet-number order.
struct SentPacketQueue {
    private var packets = RingBuffer<SentPacket>()
    /// Packet number of the front entry.
    private(set) var base: UInt64 = 0
    /// Bytes of ack-eliciting packets in flight (what congestion control limits). Path-MTU
    /// probes are left out: they are not congestion controlled (RFC 8899), and a large probe
    /// counted against a small early window would block data until it is declared lost.
    private(set) var bytesInFlight = 0
    private(set) var elicitingInFlight = 0
    /// Packet numbers already processed as acknowledged (so repeated ACK ranges cost nothing).
    private var processed = RangeSet()
    private(set) var largestAcknowledged: UInt64?
    /// Packets declared lost that were acknowledged later (reordering, not loss).
    private(set) var spuriousLosses = 0
    /// Reordering was seen: losses are declared by time only (RFC 8985 §6.2).
    private(set) var reorderingSeen = false
    /// The reordering window in quarters of the minimum RTT (1…16; RFC 8985's reo_wnd_mult).
    private(set) var reorderMultiplier = 1
    /// Losses declared since the window last changed (16 without a spurious one shrink it).
    private var lossesSinceSpurious = 0
    /// Where the loss scan resumes (entries before it are resolved or too young).
    var count: Int { packets.count }

    mutating func append(_ packet: SentPacket) {
        if packets.isEmpty { base = packet.packetNumber }
        precondition(packet.packetNumber == base + UInt64(packets.count), "packet numbers must be consecutive")
        if packet.ackEliciting {
            if !packet.isMTUProbe { bytesInFlight += packet.size }
            elicitingInFlight += 1
        }
        packets.append(packet)
    }

    /// The oldest ack-eliciting packet still in flight.
    func oldestInFlight() -> SentPacket? {
        for i in 0..<packets.count where packets[i].state == .inFlight && packets[i].ackEliciting { return packets[i] }
        return nil
    }

    /// Time the most recent ack-eliciting packet went out.
    private(set) var lastElicitingSentTime: Timestamp?

    mutating func noteElicitingSent(_ time: Timestamp) { lastElicitingSentTime = time }

    /// Applies an ACK: calls `onAcked` for each newly acknowledged packet, largest first.
    mutating func acknowledge(_ ack: AckFrame, _ onAcked: (SentPacket) -> Void) {
        let end = base + UInt64(packets.count)
        for closed in ack.ranges {
            let range = closed.lowerBound..<(closed.upperBound &+ 1)
            let lower = max(range.lowerBound, base)
            let upper = min(range.upperBound, end)
            guard lower < upper else { continue }
            for gap in processed.gaps(in: lower..<upper) {
                var number = gap.upperBound
                while number > gap.lowerBound {
                    number -= 1
                    let index = Int(number - base)
                    let previous = packets[index].state
                    guard previous != .acknowledged else { continue }
                    if previous == .inFlight && packets[index].ackEliciting {
                        if !packets[index].isMTUProbe { bytesInFlight -= packets[index].size }
                        elicitingInFlight -= 1
                    }
                    packets[index].state = .acknowledged
                    var packet = packets[index]
                    if previous == .lost {
                        packet.state = .lost  // tell the caller it was a late ack
                        // Declared lost, yet it arrived: reordering. Wait longer from now on.
                        spuriousLosses += 1
                        if reorderingSeen { reorderMultiplier = min(reorderMultiplier + 1, 16) }
                        reorderingSeen = true
                        lossesSinceSpurious = 0
                    }
                    onAcked(packet)
                }
                processed.insert(gap)
            }
            if largestAcknowledged.map({ closed.upperBound > $0 }) ?? true { largestAcknowledged = min(closed.upperBound, end - 1) }
        }
        trimFront()
    }

    /// Declares lost the in-flight packets that the ACKs so far prove missing.
    /// - Returns: when the next not-yet-lost packet would cross the time threshold.
    /// - Parameters:
    ///   - lossDelay: the time threshold before reordering is seen (9/8 of the RTT).
    ///   - reorderQuantum: a quarter of the minimum RTT, the reordering window's unit once
    ///     reordering is seen (the window is at most `smoothedRTT`).
    mutating func detectLosses(now: Timestamp, lossDelay: Int64, reorderQuantum: Int64 = 0, smoothedRTT: Int64 = .max,
                               _ onLost: (SentPacket) -> Void) -> Timestamp? {
        guard let largest = largestAcknowledged else { return nil }
        let lossDelay = reorderingSeen ? lossDelay + min(Int64(reorderMultiplier) * reorderQuantum, smoothedRTT) : lossDelay
        var nextLossTime: Timestamp?
        let end = min(largest, base + UInt64(packets.count))
        var number = base
        while number < end {
            let index = Int(number - base)
            let packet = packets[index]
            number += 1
            guard packet.state == .inFlight else { continue }
            let lostByCount = !reorderingSeen && largest >= packet.packetNumber + 3
            let lostByTime = now.nanoseconds(since: packet.timeSent) >= lossDelay
            if lostByCount || lostByTime {
                if packet.ackEliciting {
                    if !packet.isMTUProbe { bytesInFlight -= packet.size }
                    elicitingInFlight -= 1
                }
                packets[index].state = .lost
                lossesSinceSpurious += 1
                if lossesSinceSpurious >= 16, reorderMultiplier > 1 {
                    reorderMultiplier -= 1
                    lossesSinceSpurious = 0
                }
                onLost(packet)
            } else {
                let when = packet.timeSent.adding(nanoseconds: lossDelay)
                if nextLossTime.map({ when < $0 }) ?? true { nextLossTime = when }
            }
        }
        trimFront()
        return nextLossTime
    }

    /// Marks every in-flight packet lost (used by the probe timeout's persistent congestion
    /// and by path changes).
    mutating func declareAllLost(_ onLost: (SentPacket) -> Void) {
        for i in 0..<packets.count where packets[i].state == .inFlight {
            if packets[i].ackEliciting {
                if !packets[i].isMTUProbe { bytesInFlight -= packets[i].size }
                elicitingInFlight -= 1
            }
            packets[i].state = .lost
            onLost(packets[i])
        }
        trimFront()
    }

    /// Drops resolved packets from the front. Lost packets stay a while so a late ACK can
    /// still retire their data, but never more than a window behind.
    private mutating func trimFront() {
        while let first = packets.first, first.state != .inFlight {
            if first.state == .lost, packets.count < 4096, let largest = largestAcknowledged, largest < first.packetNumber + 64 { break }
            packets.popFirst()
            base += 1
        }
        processed.removeBelow(base)
    }
}
