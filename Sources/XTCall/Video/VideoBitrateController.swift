// The call video's bitrate, following the link. In the manner of WebRTC's Google Congestion
// Control (draft-ietf-rmcat-gcc-02): the rate rises by 8% a second while the link is clean,
// but never past 1.5 times the transport's rate estimate; it falls with loss above 10% (by
// half the loss fraction), and to 85% of the estimate when queueing delay builds (the round
// trip well above its minimum: the path is overused).
//
// The estimate cannot lead on its own: a call sends less than the path allows (a still
// picture far less than its target), so the estimate is mostly the call's own rate, and
// following it down spirals (as the voice bitrate did). Sans-IO.

/// Decides the video encoder's bitrate once a second or so from the link's figures.
public struct VideoBitrateController: Sendable {
    public struct Configuration: Sendable, Equatable {
        /// Bits per second: never below (a picture still moves at a low rate) …
        public var minimum = 150_000
        /// … nor above (the camera's configured rate).
        public var maximum = 2_500_000
        /// Where a call starts, before the link is known.
        public var start = 600_000
        /// Rise per second while the link is clean (GCC's 8%).
        public var increasePerSecond = 0.08
        /// Loss (percent) above which the rate falls, and below which it may rise (GCC: 10 and 2).
        public var highLoss = 10.0
        public var lowLoss = 2.0
        /// Queueing delay (round trip above its minimum) that counts as overuse.
        public var queueingDelay: Duration = .milliseconds(60)

        public init() {}
    }

    /// What the link showed since the last update.
    public struct LinkFigures: Sendable, Equatable {
        /// Packets lost, percent, over the last interval.
        public var lossPercent: Double
        /// The transport's estimate of what the path delivers, bits per second (nil: none yet).
        public var rateEstimate: Double?
        public var smoothedRTT: Duration
        public var minimumRTT: Duration

        public init(lossPercent: Double, rateEstimate: Double?, smoothedRTT: Duration = .zero, minimumRTT: Duration = .zero) {
            self.lossPercent = lossPercent
            self.rateEstimate = rateEstimate
            self.smoothedRTT = smoothedRTT
            self.minimumRTT = minimumRTT
        }
    }

    /// Why the rate last changed.
    public enum Reason: String, Sendable, Equatable {
        case start, clean, loss, overuse, hold
    }

    public let configuration: Configuration
    /// The rate to encode at now, bits per second.
    public private(set) var bitrate: Int
    public private(set) var reason = Reason.start

    public init(configuration: Configuration = Configuration()) {
        self.configuration = configuration
        bitrate = min(max(configuration.start, configuration.minimum), configuration.maximum)
    }

    /// Takes the link's figures over the last `interval` and returns the new bitrate.
    public mutating func update(_ link: LinkFigures, interval: Duration) -> Int {
        let seconds = min(max(Double(interval.components.seconds) + Double(interval.components.attoseconds) / 1e18, 0), 5)
        let current = Double(bitrate)
        var next = current
        let queueing = link.smoothedRTT - link.minimumRTT
        if link.minimumRTT > .zero && queueing > configuration.queueingDelay {
            // The path delivers less than is sent: fall below what it delivers, so the queue drains.
            next = 0.85 * (link.rateEstimate.map { min($0, current) } ?? current)
            reason = .overuse
        } else if link.lossPercent > configuration.highLoss {
            next = current * (1 - 0.5 * min(link.lossPercent, 100) / 100)
            reason = .loss
        } else if link.lossPercent < configuration.lowLoss {
            next = current * (1 + configuration.increasePerSecond * seconds)
            // No higher than the path has shown it carries (GCC's 1.5 × the received rate).
            if let estimate = link.rateEstimate, estimate > 0 { next = min(next, max(current, 1.5 * estimate)) }
            reason = .clean
        } else {
            reason = .hold
        }
        bitrate = Int(min(max(next, Double(configuration.minimum)), Double(configuration.maximum)))
        return bitrate
    }
}
