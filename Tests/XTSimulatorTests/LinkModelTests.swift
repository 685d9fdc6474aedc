// The link model alone, as `xt relay` and the simulator use it: burst loss at the share its two
// chances give, a bottleneck that spaces datagrams by their serialisation time and drops when
// its queue is full, per-datagram jitter that reorders only datagrams closer than itself, and
// an MTU.
import Testing
import XTransport
import XTSimulator

@Suite("Link model")
struct LinkModelTests {
    private static func arrivals(_ model: inout LinkModel, count: Int, size: Int = 1200, spacing: Int64, seed: UInt64 = 1) -> [UInt64?] {
        var random = SplitMix64(seed: seed)
        return (0..<count).map { i in
            let now = Timestamp(nanoseconds: 1_000_000_000).adding(nanoseconds: Int64(i) * spacing)
            if case .delivered(let arrival, _, _) = model.admit(size: size, now: now, random: &random) { return arrival.nanoseconds }
            return nil
        }
    }

    @Test("Gilbert–Elliott burst loss drops enter / (enter + exit) of datagrams, in bursts of 1 / exit")
    func burstLoss() {
        var conditions = LinkConditions.clean()
        conditions.burstEnterProbability = 0.0066
        conditions.burstExitProbability = 0.2
        var model = LinkModel(conditions: conditions)
        let fates = Self.arrivals(&model, count: 400_000, spacing: 10_000)
        let lost = fates.filter { $0 == nil }.count
        var bursts = 0
        for i in fates.indices where fates[i] == nil && (i == 0 || fates[i - 1] != nil) { bursts += 1 }
        #expect(abs(Double(lost) / 400_000 - 0.0066 / 0.2066) < 0.004, "\(lost) lost")
        #expect(abs(Double(lost) / Double(bursts) - 5) < 0.5, "mean burst \(Double(lost) / Double(bursts))")
        #expect(model.counters.droppedBurst == lost)
        #expect(model.counters.bytesDropped == lost * 1200 && model.counters.bytesOffered == 400_000 * 1200)
    }

    @Test("A bottleneck spaces datagrams by serialisation time and tail-drops past its queue limit")
    func bottleneck() {
        var conditions = LinkConditions.clean(delay: .milliseconds(20))
        conditions.bandwidth = 48e6  // 1200 bytes take 200 µs
        conditions.queueLimit = .milliseconds(10)
        var model = LinkModel(conditions: conditions)
        // Offered twice as fast as the link drains (every 100 µs) for 100 ms.
        let fates = Self.arrivals(&model, count: 1000, spacing: 100_000)
        let delivered = fates.compactMap { $0 }
        #expect(zip(delivered, delivered.dropFirst()).allSatisfy { (199_999...200_001).contains($1 - $0) }, "back-to-back at the link rate")
        #expect((1_020_199_999...1_020_200_001).contains(delivered.first ?? 0), "first: serialisation + delay")
        // The queue holds 10 ms (50 datagrams) more than it drains: about half of what is offered is lost once it is full.
        #expect((530...560).contains(delivered.count), "\(delivered.count) delivered")
        #expect(model.counters.droppedQueue == 1000 - delivered.count)
        #expect((delivered.last ?? 0) <= 1_000_000_000 + 999 * 100_000 + 10_000_000 + 200_000 + 20_000_000, "no datagram waits past the queue limit")
    }

    @Test("Per-datagram jitter reorders datagrams closer than the jitter, and only those")
    func jitter() {
        var conditions = LinkConditions.clean(delay: .milliseconds(20))
        conditions.jitter = .milliseconds(2)
        var close = LinkModel(conditions: conditions)
        let near = Self.arrivals(&close, count: 10_000, spacing: 220_000).map { $0! }  // 50 Mbit/s of 1400-byte datagrams
        let inversions = zip(near, near.dropFirst()).filter { $0 > $1 }.count
        #expect(inversions > 2000, "\(inversions) of 10,000 neighbours swapped")
        #expect(near.enumerated().allSatisfy { i, t in
            let sent = 1_000_000_000 + UInt64(i) * 220_000
            return t >= sent + 20_000_000 && t <= sent + 22_000_000
        }, "each arrival within delay … delay + jitter")
        var apart = LinkModel(conditions: conditions)
        let far = Self.arrivals(&apart, count: 1000, spacing: 2_100_000).map { $0! }
        #expect(zip(far, far.dropFirst()).allSatisfy { $0 < $1 }, "datagrams further apart than the jitter keep their order")
    }

    @Test("Datagrams over the MTU are dropped and counted")
    func mtu() {
        var model = LinkModel(conditions: .clean())
        var random = SplitMix64(seed: 3)
        #expect(model.admit(size: 1473, now: Timestamp(nanoseconds: 1), random: &random) == .dropped)
        #expect(model.admit(size: 1472, now: Timestamp(nanoseconds: 1), random: &random) != .dropped)
        #expect(model.counters.droppedMTU == 1 && model.counters.delivered == 1)
    }
}
