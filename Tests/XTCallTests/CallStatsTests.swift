// A call's stats: the mouth-to-ear estimate adds the sender's fixed costs, half the round trip,
// the jitter buffer's level and the playback device; the percentages come from the buffer.
import Testing
import XTCall
import XTransport

@Suite("Call stats")
struct CallStatsTests {
    @Test("Mouth-to-ear is the sum of its parts; the summary line reads well")
    func estimate() {
        var buffer = JitterBuffer()
        let start: UInt64 = 1_000_000_000
        for i in 0..<10 where i != 4 {
            buffer.insert(sequence: UInt32(i), payload: [1], arrival: Timestamp(nanoseconds: start + UInt64(i) * 20_000_000))
        }
        for i in 0..<3 { _ = buffer.pull(now: Timestamp(nanoseconds: start + UInt64(i) * 20_000_000 + 1)) }
        let level = Double(buffer.stats.level.nanoseconds) / 1e6
        #expect(level == 140, "frames 3…9 still held")
        let stats = CallStats.estimate(party: "door", path: .relayed, buffer: buffer.stats, roundTrip: .milliseconds(40), playbackDelay: .milliseconds(30))
        let expected: Double = 239  // 49 at the sender + 20 (half the RTT) + 140 buffered + 30 in the device
        #expect(stats.mouthToEarMilliseconds == expected)
        #expect(stats.jitterTargetMilliseconds == 20)
        #expect(stats.summary == "door (relayed): mouth-to-ear ~239 ms, buffer 20 ms, concealed 0.0%, FEC 0.0%, repaired 0.0%, late 0.0%")
    }
}
