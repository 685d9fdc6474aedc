// The pluggable congestion-control interface. A controller sees sends, ACKs (with a
// delivery-rate sample) and losses, and answers with a congestion window and a pacing rate.

/// One ACK's worth of information for a congestion controller.
public struct AckSample: Sendable {
    /// Bytes newly acknowledged.
    public var ackedBytes: Int
    /// Round-trip sample from the largest newly acknowledged packet, if it gave one (ns).
    public var rttSample: Int64?
    /// Smallest RTT seen so far (ns).
    public var minimumRTT: Int64
    /// Smoothed RTT (ns).
    public var smoothedRTT: Int64
    /// Delivery rate measured over the acknowledged packet's flight, bytes per second.
    public var deliveryRate: Double
    /// Rate at which the path accepted packets (delivered plus lost) over the same flight.
    /// Above `deliveryRate` only when packets were lost; equal to it otherwise.
    public var acceptedRate: Double
    /// Whether the sender was limited by the application (not the network) for that sample.
    public var appLimited: Bool
    /// Bytes in flight after this ACK.
    public var bytesInFlight: Int
    public var now: Timestamp
}

/// A congestion controller. Implementations are value types owned by one session.
public protocol CongestionController: Sendable {
    /// Bytes that may be in flight.
    var congestionWindow: Int { get }
    /// Bytes per second to pace at; `nil` lets the session derive it from the window and RTT.
    var pacingRate: Double? { get }
    /// What the controller believes the path delivers, bytes per second (nil: no estimate of
    /// its own; the session then takes the window over the smoothed RTT). An application
    /// that sends less than the path allows sees about its own rate here.
    var rateEstimate: Double? { get }
    /// A short name for stats (`rate`, `ledbat`).
    var name: String { get }
    /// The controller's internal state in a few words, for `xt status` and debugging.
    var state: String { get }

    mutating func onPacketSent(bytes: Int, bytesInFlight: Int, now: Timestamp)
    mutating func onAck(_ sample: AckSample)
    /// Packets were declared lost. `largestLostSentTime` lets controllers react once per round.
    mutating func onLoss(lostBytes: Int, largestLostSentTime: Timestamp, bytesInFlight: Int, now: Timestamp)
    /// Nothing was acknowledged for several probe timeouts.
    mutating func onPersistentCongestion(now: Timestamp)
    /// The packet size changed (path MTU found).
    mutating func onMaximumDatagramSizeChanged(_ size: Int)
}

/// Which controller a session uses.
public enum CongestionControlAlgorithm: String, Sendable, Hashable, CaseIterable {
    /// Rate-based (BBR-style): follows the measured bottleneck rate and ignores random loss.
    case rate
    /// LEDBAT (RFC 6817, as in uTP): yields to other traffic; for background bulk transfers.
    case ledbat

    func make(maximumDatagramSize: Int, initialRTT: Int64) -> any CongestionController {
        switch self {
        case .rate: RateBasedController(maximumDatagramSize: maximumDatagramSize, initialRTT: initialRTT)
        case .ledbat: LEDBATController(maximumDatagramSize: maximumDatagramSize)
        }
    }
}

extension CongestionController {
    public var rateEstimate: Double? { nil }
}
