// LEDBAT (RFC 6817), as uTP (BEP 29) uses it for background transfers (with a 25 ms target): grow the window while
// queuing delay is under the target, shrink it as delay rises, halve it on loss. It uses the
// RTT above the minimum as the queuing-delay estimate, so it needs no clock sync.

public struct LEDBATController: CongestionController {
    public let name = "ledbat"
    private var maximumDatagramSize: Int
    private var window: Double
    /// Queuing delay the controller aims at: 25 ms. uTP (BEP 29) and RFC 6817 use 100 ms,
    /// LEDBAT++ (draft-irtf-iccrg-ledbat-plus-plus) 60 ms; a home LAN's and a Pi's Wi-Fi queues
    /// are shallower than either (tbf's 50 ms in the tests), and a queue that never reaches the
    /// target never reads as congestion: LEDBAT then fills it like a loss-based sender. A
    /// camera's 4 Mbit/s live stream beside a backup through a 50 Mbit/s link with a 50 ms
    /// queue: p50 / p99 71 / 85 ms at 100 ms, 24 / 31 ms at 25 ms.
    public var target: Int64 = 25 * Nanos.millisecond
    public static let gain = 1.0
    private var baseDelay: Int64 = .max
    private var currentDelays: [Int64] = []
    private var smoothedRTT: Int64 = 100 * Nanos.millisecond
    private var lastLossReaction = Timestamp.zero

    public init(maximumDatagramSize: Int) {
        self.maximumDatagramSize = maximumDatagramSize
        window = Double(4 * maximumDatagramSize)
    }

    public var congestionWindow: Int { Int(window) }

    public var pacingRate: Double? {
        // Pace the window over the smoothed RTT, with headroom so pacing does not bind first.
        1.25 * window / (Double(max(smoothedRTT, Nanos.millisecond)) / 1e9)
    }

    public var state: String {
        "window=\(Int(window)) baseDelay=\(baseDelay == .max ? 0 : baseDelay / Nanos.microsecond)us"
    }

    public mutating func onPacketSent(bytes: Int, bytesInFlight: Int, now: Timestamp) {}

    public mutating func onAck(_ sample: AckSample) {
        smoothedRTT = sample.smoothedRTT
        guard let rtt = sample.rttSample else { return }
        baseDelay = min(baseDelay, rtt)
        currentDelays.append(rtt)
        if currentDelays.count > 4 { currentDelays.removeFirst() }
        let queuingDelay = (currentDelays.min() ?? rtt) - baseDelay
        let offTarget = Double(target - queuingDelay) / Double(target)
        window += Self.gain * offTarget * Double(sample.ackedBytes) * Double(maximumDatagramSize) / window
        // RFC 6817 §2.4.2: do not grow faster than slow start, nor far past what is in flight.
        let allowed = Double(sample.bytesInFlight + sample.ackedBytes) * 2 + Double(4 * maximumDatagramSize)
        window = min(window, allowed)
        window = max(window, Double(2 * maximumDatagramSize))
    }

    public mutating func onLoss(lostBytes: Int, largestLostSentTime: Timestamp, bytesInFlight: Int, now: Timestamp) {
        // Halve at most once per RTT.
        guard largestLostSentTime > lastLossReaction else { return }
        lastLossReaction = now
        window = max(window / 2, Double(2 * maximumDatagramSize))
    }

    public mutating func onPersistentCongestion(now: Timestamp) {
        window = Double(2 * maximumDatagramSize)
    }

    public mutating func onMaximumDatagramSizeChanged(_ size: Int) { maximumDatagramSize = size }
}
