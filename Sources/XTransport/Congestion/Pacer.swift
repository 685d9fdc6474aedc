// Pacing with xTransporter's knobs. `packetBurst` packets may leave back to back; after that
// the pacer spaces packets at the controller's rate, waking no more often than every
// `netLatency` (and releasing the credit earned meanwhile as one burst).

struct Pacer {
    /// Bytes that may be sent right now; negative when the pacer is ahead of its rate.
    private var credit: Double
    private var lastRefill: Timestamp
    let packetBurst: Int
    let netLatency: Int64

    init(packetBurst: Int, netLatency: Int64, maximumDatagramSize: Int, now: Timestamp) {
        self.packetBurst = packetBurst
        self.netLatency = netLatency
        credit = Double(packetBurst * maximumDatagramSize)
        lastRefill = now
    }

    private func capacity(maximumDatagramSize: Int, rate: Double) -> Double {
        // Never less than one netLatency worth of rate, so slow timers don't cap throughput.
        max(Double(packetBurst * maximumDatagramSize), rate * Double(netLatency) / 1e9 * 2)
    }

    private mutating func refill(now: Timestamp, rate: Double, maximumDatagramSize: Int) {
        let elapsed = now.nanoseconds(since: lastRefill)
        guard elapsed > 0 else { return }
        lastRefill = now
        credit = min(capacity(maximumDatagramSize: maximumDatagramSize, rate: rate), credit + rate * Double(elapsed) / 1e9)
    }

    /// When the next packet of `size` may go: `now` if it may go at once.
    mutating func nextSendTime(now: Timestamp, rate: Double, size: Int, maximumDatagramSize: Int) -> Timestamp {
        refill(now: now, rate: rate, maximumDatagramSize: maximumDatagramSize)
        if credit >= 0 { return now }
        let wait = Int64((-credit) / max(rate, 1) * 1e9)
        return now.adding(nanoseconds: max(wait, netLatency))
    }

    mutating func onPacketSent(size: Int) {
        credit -= Double(size)
    }
}
