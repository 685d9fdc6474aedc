// One direction of an impaired link as a sans-IO state machine: for each datagram it decides
// whether it is dropped, when it arrives, and whether it is corrupted or duplicated. The
// simulator drives it on a virtual clock; `xt relay` drives it on real sockets, so the benchmark's
// jittery link and the tests' are the same model.
public import XTransport

/// What one direction of a link does to each datagram it is offered.
public struct LinkModel: Sendable {
    /// The fate of one datagram.
    public enum Fate: Sendable, Equatable {
        /// Lost (at random, in a burst, to a full queue, or too large for the MTU).
        case dropped
        /// Arrives at `arrival`; `corruptBit` is the bit index to flip, if any; a second copy
        /// arrives at `duplicateArrival`, if any.
        case delivered(arrival: Timestamp, corruptBit: Int?, duplicateArrival: Timestamp?)
    }

    public var conditions: LinkConditions
    public private(set) var counters = LinkCounters()
    private var inBurst = false
    private var busyUntil = Timestamp.zero

    public init(conditions: LinkConditions) {
        self.conditions = conditions
    }

    /// Decides the fate of a datagram of `size` bytes offered at `now`.
    ///
    /// Order of effects (and of the random draws, so one seed gives one run): MTU, Gilbert–Elliott
    /// burst loss, random loss, the bottleneck (serialisation at `bandwidth`, tail drop when the
    /// queue would wait longer than `queueLimit`), propagation `delay`, per-datagram jitter
    /// uniform in 0…`jitter`, explicit reordering, corruption, duplication.
    public mutating func admit(size: Int, now: Timestamp, random: inout SplitMix64) -> Fate {
        counters.offered += 1
        counters.bytesOffered += size
        if let mtu = conditions.mtu, size > mtu {
            counters.droppedMTU += 1
            return drop(size)
        }
        if conditions.burstEnterProbability > 0 {
            if inBurst {
                if Self.chance(conditions.burstExitProbability, &random) { inBurst = false }
            } else if Self.chance(conditions.burstEnterProbability, &random) {
                inBurst = true
            }
            if inBurst {
                counters.droppedBurst += 1
                return drop(size)
            }
        }
        if conditions.lossRate > 0 && Self.chance(conditions.lossRate, &random) {
            counters.droppedRandom += 1
            return drop(size)
        }
        var departure = now
        if let bandwidth = conditions.bandwidth {
            let start = max(now, busyUntil)
            if start.nanoseconds(since: now) > conditions.queueLimit.nanoseconds {
                counters.droppedQueue += 1
                return drop(size)
            }
            busyUntil = start.adding(nanoseconds: Int64(Double(size * 8) / bandwidth * 1e9))
            departure = busyUntil
        }
        var arrival = departure.adding(conditions.delay)
        if conditions.jitter > .zero {
            arrival = arrival.adding(nanoseconds: Int64(Double(conditions.jitter.nanoseconds) * Self.uniform(&random)))
        }
        if conditions.reorderRate > 0 && Self.chance(conditions.reorderRate, &random) {
            arrival = arrival.adding(nanoseconds: Int64(Double(conditions.reorderDelay.nanoseconds) * Self.uniform(&random)))
        }
        var corruptBit: Int?
        if conditions.corruptionRate > 0 && Self.chance(conditions.corruptionRate, &random) && size > 0 {
            corruptBit = Int(random.next() % UInt64(size * 8))
            counters.corrupted += 1
        }
        counters.delivered += 1
        counters.bytesDelivered += size
        var duplicate: Timestamp?
        if conditions.duplicateRate > 0 && Self.chance(conditions.duplicateRate, &random) {
            counters.duplicated += 1
            duplicate = arrival.adding(nanoseconds: Int64(Self.uniform(&random) * 2e6))
        }
        return .delivered(arrival: arrival, corruptBit: corruptBit, duplicateArrival: duplicate)
    }

    private mutating func drop(_ size: Int) -> Fate {
        counters.bytesDropped += size
        return .dropped
    }

    private static func chance(_ probability: Double, _ random: inout SplitMix64) -> Bool { uniform(&random) < probability }
    private static func uniform(_ random: inout SplitMix64) -> Double { Double(random.next() >> 11) / Double(1 << 53) }
}
