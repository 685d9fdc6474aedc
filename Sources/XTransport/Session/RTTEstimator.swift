// Round-trip time estimation as in RFC 9002 §5: latest, minimum, smoothed and variance.

struct RTTEstimator {
    private(set) var latest: Int64
    private(set) var smoothed: Int64
    private(set) var variation: Int64
    private(set) var minimum: Int64 = .max
    private(set) var hasSample = false

    init(initial: Int64) {
        latest = initial
        smoothed = initial
        variation = initial / 2
    }

    mutating func update(sample rawSample: Int64, ackDelay: Int64) {
        let sample = max(rawSample, 1)
        latest = sample
        minimum = min(minimum, sample)
        guard hasSample else {
            hasSample = true
            smoothed = sample
            variation = sample / 2
            return
        }
        // Subtract the peer's ack delay unless that would go below the minimum.
        let adjusted = sample >= minimum + ackDelay ? sample - ackDelay : sample
        variation = (3 * variation + abs(smoothed - adjusted)) / 4
        smoothed = (7 * smoothed + adjusted) / 8
    }

    /// Probe timeout: how long to wait for an ACK before probing (RFC 9002 §6.2.1).
    func probeTimeout(maximumAckDelay: Int64) -> Int64 {
        smoothed + max(4 * variation, Nanos.millisecond) + maximumAckDelay
    }

    /// Time after which an unacknowledged packet older than an acknowledged one is lost.
    var lossDelay: Int64 {
        max(max(latest, smoothed) * 9 / 8, Nanos.millisecond)
    }
}
