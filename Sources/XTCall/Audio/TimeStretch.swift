// Time-stretching of decoded speech by one pitch period, as NetEQ's accelerate and
// preemptive-expand do: find the lag at which the frame best repeats itself (its pitch period,
// 2.5–10 ms), then cross-fade across one period to remove it (accelerate) or to play it twice
// (expand). Voice keeps its pitch; only its length changes. Frames without a clear period
// (noise, onsets) are left as they are — the jitter buffer tries again on the next frame.

/// Accelerates or expands mono 16-bit frames by one pitch period.
public struct TimeStretch: Sendable {
    /// Samples per second.
    public let sampleRate: Int
    /// Shortest and longest period searched, in samples (2.5 ms and 10 ms).
    public let minimumPeriod: Int
    public let maximumPeriod: Int
    /// A period must repeat with at least this normalised correlation (0…1) to be cut or repeated.
    public var threshold = 0.5

    public init(sampleRate: Int = 16_000) {
        self.sampleRate = sampleRate
        minimumPeriod = max(sampleRate / 400, 2)
        maximumPeriod = max(sampleRate / 100, minimumPeriod + 1)
    }

    /// The frame shortened by one pitch period (unchanged if it has none, or is too short:
    /// it needs two of the longest periods).
    public func accelerate(_ frame: [Int16]) -> [Int16] {
        guard let period = period(of: frame) else { return frame }
        var output = [Int16]()
        output.reserveCapacity(frame.count - period)
        for i in 0..<period {  // x[0..<P] fading out into x[P..<2P] fading in
            output.append(Self.mix(frame[i], frame[period + i], i, period))
        }
        output += frame[(2 * period)...]
        return output
    }

    /// The frame lengthened by one pitch period (unchanged if it has none).
    public func expand(_ frame: [Int16]) -> [Int16] {
        guard let period = period(of: frame) else { return frame }
        var output = Array(frame[0..<period])
        output.reserveCapacity(frame.count + period)
        for i in 0..<period {  // x[P..<2P] fading out into x[0..<P] fading in: the period again
            output.append(Self.mix(frame[period + i], frame[i], i, period))
        }
        output += frame[period...]
        return output
    }

    /// The lag in `minimumPeriod…maximumPeriod` at which the frame best repeats, if it repeats
    /// with at least `threshold` normalised correlation.
    public func period(of frame: [Int16]) -> Int? {
        let window = maximumPeriod
        guard frame.count >= 2 * maximumPeriod else { return nil }
        var best: (lag: Int, score: Double)?
        for lag in minimumPeriod...maximumPeriod {
            let score = correlation(frame, lag: lag, window: window)
            if score > (best?.score ?? -1) { best = (lag, score) }
        }
        guard let best, best.score >= threshold else { return nil }
        // Prefer the shortest lag that repeats nearly as well (the period, not a multiple of it).
        for lag in minimumPeriod..<best.lag where best.lag % lag == 0 || abs(best.lag - 2 * lag) <= 1 {
            if correlation(frame, lag: lag, window: window) >= best.score - 0.05 { return lag }
        }
        return best.lag
    }

    private func correlation(_ frame: [Int16], lag: Int, window: Int) -> Double {
        var cross = 0.0
        var energyA = 0.0
        var energyB = 0.0
        for i in 0..<min(window, frame.count - lag) {
            let a = Double(frame[i])
            let b = Double(frame[i + lag])
            cross += a * b
            energyA += a * a
            energyB += b * b
        }
        return energyA > 0 && energyB > 0 ? cross / (energyA * energyB).squareRoot() : 0
    }

    /// Sample i of a linear cross-fade over `length` from `out` to `into`.
    private static func mix(_ out: Int16, _ into: Int16, _ i: Int, _ length: Int) -> Int16 {
        let weight = (Double(i) + 0.5) / Double(length)
        return Int16(clamping: Int((Double(out) * (1 - weight) + Double(into) * weight).rounded()))
    }
}
