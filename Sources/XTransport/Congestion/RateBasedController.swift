// The default controller, after BBR v1 (Cardwell et al., ACM Queue 2016): it estimates the
// bottleneck bandwidth (windowed max of delivery-rate samples) and the minimum RTT, paces at
// gain × bandwidth and caps flight at 2 × BDP. Random loss does not shrink the rate, which
// is why it keeps near link rate at 5–10% drop where loss-based TCP collapses. Persistent
// heavy loss (> 35% over a round) does back off, so it is not blind to real overload.

public struct RateBasedController: CongestionController {
    enum Mode: Equatable { case startup, drain, probeBandwidth, probeRTT }

    public let name = "rate"
    private var maximumDatagramSize: Int
    private(set) var mode = Mode.startup
    /// Windowed max of delivery-rate samples: (round, rate) pairs, newest last.
    private var bandwidthSamples: [(round: UInt64, rate: Double)] = []
    private var minimumRTT: Int64
    private var minimumRTTStamp = Timestamp.zero
    private var round: UInt64 = 0
    private var roundEndDelivered: UInt64 = 0
    private var delivered: UInt64 = 0
    private var fullBandwidth: Double = 0
    private var fullBandwidthRounds = 0
    private var cycleIndex = 0
    private var cycleStamp = Timestamp.zero
    private var probeRTTDoneStamp: Timestamp?
    private var lostInRound = 0
    private var ackedInRound = 0
    private var lossBackoff = 1.0
    // ACK aggregation (BBR's "extra acked"): ACKs that arrive in bursts — delayed ACKs, a
    // receiver whose thread was not scheduled, batched reads — acknowledge more than the
    // bandwidth estimate explains. The window grows by the recent maximum of that excess, so
    // the sender still has data queued at the bottleneck when a burst of ACKs is late.
    private var ackEpochStart = Timestamp.zero
    private var ackEpochAcked: Double = 0
    private var extraAcked: (Double, Double) = (0, 0)
    private var extraAckedSlot = 0
    private var extraAckedRounds: UInt64 = 0

    static let startupGain = 2.885
    static let cycleGains: [Double] = [1.25, 0.75, 1, 1, 1, 1, 1, 1]
    static let bandwidthWindowRounds: UInt64 = 10
    static let minimumRTTWindow: Int64 = 10 * Nanos.second
    static let probeRTTDuration: Int64 = 200 * Nanos.millisecond
    static let minimumWindowRTT: Int64 = 2 * Nanos.millisecond
    /// Rounds over which the largest ACK-aggregation excess is remembered.
    static let extraAckedWindowRounds: UInt64 = 10

    public init(maximumDatagramSize: Int, initialRTT: Int64) {
        self.maximumDatagramSize = maximumDatagramSize
        self.minimumRTT = initialRTT
    }

    private var bandwidth: Double {
        var best = 0.0
        for sample in bandwidthSamples where sample.rate > best { best = sample.rate }
        return best
    }

    /// The bottleneck bandwidth estimate (nil until the first delivery-rate sample).
    public var rateEstimate: Double? {
        let estimate = bandwidth
        return estimate > 0 ? estimate : nil
    }

    private var pacingGain: Double {
        switch mode {
        case .startup: Self.startupGain
        case .drain: 1 / Self.startupGain
        case .probeBandwidth: Self.cycleGains[cycleIndex]
        case .probeRTT: 1
        }
    }

    private var initialWindow: Int { 32 * maximumDatagramSize }
    private var minimumWindow: Int { 4 * maximumDatagramSize }

    public var congestionWindow: Int {
        if mode == .probeRTT { return minimumWindow }
        let estimate = bandwidth
        guard estimate > 0 else { return initialWindow }
        // Pacing sets the rate; the window only caps flight. On sub-millisecond paths ACKs
        // arrive in batches (delayed ACKs, event-loop reads), so size the window for at least
        // a 2 ms round trip or the window, not the path, would limit the rate.
        let windowRTT = max(minimumRTT, Self.minimumWindowRTT)
        let bdp = estimate * Double(windowRTT) / 1e9
        let gain = mode == .startup ? Self.startupGain : 2.0
        // At most 100 ms worth of bandwidth for aggregation, as in BBR.
        let aggregation = min(max(extraAcked.0, extraAcked.1), estimate * 0.1)
        let window = max(minimumWindow, Int((bdp * gain + aggregation) * lossBackoff) + 3 * maximumDatagramSize)
        // Early samples (the handshake, a first small message) understate the path: until
        // startup is over, never drop below the initial window.
        return mode == .startup ? max(window, initialWindow) : window
    }

    public var pacingRate: Double? {
        let estimate = bandwidth
        guard estimate > 0 else {
            // Before any sample: the initial window over the initial RTT, with startup gain.
            return Self.startupGain * Double(initialWindow) / (Double(max(minimumRTT, Nanos.millisecond)) / 1e9)
        }
        return pacingGain * estimate * lossBackoff
    }

    public var state: String {
        "\(mode) bw=\(Int(bandwidth * 8 / 1e6))Mbit/s minRTT=\(minimumRTT / Nanos.microsecond)us backoff=\((lossBackoff * 100).rounded() / 100) round=\(round)"
    }

    public mutating func onPacketSent(bytes: Int, bytesInFlight: Int, now: Timestamp) {}

    public mutating func onAck(_ sample: AckSample) {
        delivered += UInt64(sample.ackedBytes)
        ackedInRound += sample.ackedBytes
        let now = sample.now
        if delivered >= roundEndDelivered {
            round += 1
            roundEndDelivered = delivered + UInt64(max(sample.bytesInFlight, maximumDatagramSize))
            endOfRound()
        }
        updateAckAggregation(ackedBytes: sample.ackedBytes, now: now)
        // Random loss (no queue building: RTT near its minimum) does not mean less capacity:
        // count what the path accepted, up to a loss of 30%. With a queue, only what arrived.
        var rate = sample.deliveryRate
        if let rtt = sample.rttSample, rtt <= minimumRTT + max(minimumRTT / 4, Nanos.millisecond) {
            rate = min(sample.acceptedRate, sample.deliveryRate / 0.7)
        }
        if rate > 0, !sample.appLimited || rate >= bandwidth {
            bandwidthSamples.append((round, rate))
        }
        bandwidthSamples.removeAll { $0.round + Self.bandwidthWindowRounds < round }
        if bandwidthSamples.count > 64 { bandwidthSamples.removeFirst(bandwidthSamples.count - 64) }

        if let rtt = sample.rttSample, rtt > 0 {
            if rtt <= minimumRTT || now.nanoseconds(since: minimumRTTStamp) > Self.minimumRTTWindow {
                minimumRTT = rtt
                minimumRTTStamp = now
            }
        }
        updateMode(sample: sample)
    }

    private mutating func updateAckAggregation(ackedBytes: Int, now: Timestamp) {
        let estimate = bandwidth
        guard estimate > 0 else { return }
        // A new round may start a new half of the window; the older half is forgotten.
        if round >= extraAckedRounds + Self.extraAckedWindowRounds / 2 {
            extraAckedRounds = round
            extraAckedSlot ^= 1
            if extraAckedSlot == 0 { extraAcked.0 = 0 } else { extraAcked.1 = 0 }
        }
        var expected = estimate * Double(max(0, now.nanoseconds(since: ackEpochStart))) / 1e9
        if ackEpochAcked <= expected {
            // ACKs are not ahead of the estimate: start a new epoch here.
            ackEpochStart = now
            ackEpochAcked = 0
            expected = 0
        }
        ackEpochAcked += Double(ackedBytes)
        let extra = ackEpochAcked - expected
        if extraAckedSlot == 0 { extraAcked.0 = max(extraAcked.0, extra) } else { extraAcked.1 = max(extraAcked.1, extra) }
    }

    private mutating func endOfRound() {
        // Sustained heavy loss (more than a third of a round's bytes) means real overload, not
        // random drop: back off multiplicatively, and recover as rounds come clean.
        let total = lostInRound + ackedInRound
        if total > 0, Double(lostInRound) / Double(total) > 0.35 {
            lossBackoff = max(0.5, lossBackoff * 0.85)
        } else {
            lossBackoff = min(1, lossBackoff * 1.05)
        }
        lostInRound = 0
        ackedInRound = 0

        guard mode == .startup else { return }
        let estimate = bandwidth
        if estimate >= fullBandwidth * 1.25 {
            fullBandwidth = estimate
            fullBandwidthRounds = 0
        } else {
            fullBandwidthRounds += 1
            if fullBandwidthRounds >= 3 { mode = .drain }
        }
    }

    private mutating func updateMode(sample: AckSample) {
        let now = sample.now
        let bdp = Int(bandwidth * Double(minimumRTT) / 1e9)
        switch mode {
        case .startup:
            break
        case .drain:
            if sample.bytesInFlight <= bdp {
                mode = .probeBandwidth
                cycleIndex = 2
                cycleStamp = now
            }
        case .probeBandwidth:
            if now.nanoseconds(since: cycleStamp) > minimumRTT {
                cycleIndex = (cycleIndex + 1) % Self.cycleGains.count
                cycleStamp = now
            }
            if now.nanoseconds(since: minimumRTTStamp) > Self.minimumRTTWindow {
                mode = .probeRTT
                probeRTTDoneStamp = nil
            }
        case .probeRTT:
            if probeRTTDoneStamp == nil, sample.bytesInFlight <= minimumWindow {
                probeRTTDoneStamp = now.adding(nanoseconds: max(Self.probeRTTDuration, minimumRTT))
            }
            if let done = probeRTTDoneStamp, now >= done {
                minimumRTTStamp = now
                mode = .probeBandwidth
                cycleIndex = 2
                cycleStamp = now
            }
        }
    }

    public mutating func onLoss(lostBytes: Int, largestLostSentTime: Timestamp, bytesInFlight: Int, now: Timestamp) {
        lostInRound += lostBytes
    }

    public mutating func onPersistentCongestion(now: Timestamp) {
        // The path went silent: forget the bandwidth estimate and start over.
        bandwidthSamples.removeAll()
        extraAcked = (0, 0)
        fullBandwidth = 0
        fullBandwidthRounds = 0
        mode = .startup
    }

    public mutating func onMaximumDatagramSizeChanged(_ size: Int) { maximumDatagramSize = size }
}
