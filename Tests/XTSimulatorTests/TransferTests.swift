// Bulk transfers through the simulator under the impairments the issue names: random and
// burst loss, reordering, duplication, corruption, a 300 ms RTT and a small path MTU. Every
// byte is compared on arrival; the same seed must give the same run.
import Testing
import XTransport
import XTSimulator

@Suite("Simulated transfers")
struct TransferTests {
    static let size = 20 << 20

    static func conditions(bandwidth: Double = 200e6, delay: Duration = .milliseconds(10)) -> LinkConditions {
        var conditions = LinkConditions.clean(delay: delay)
        conditions.bandwidth = bandwidth
        conditions.queueLimit = .milliseconds(30)
        return conditions
    }

    /// Runs one 20 MB transfer and checks it arrived byte-identical.
    @discardableResult
    static func transfer(_ conditions: LinkConditions, seed: UInt64, size: Int = size, limit: Duration = .seconds(120),
                         session: SessionConfiguration = .default) throws -> (simulator: NetworkSimulator, transfer: BulkTransfer, pair: SimulatedPair) {
        let pair = try SimulatedPair(seed: seed, conditions: conditions, session: session)
        let transfer = BulkTransfer(payload: testPayload(count: size, seed: seed))
        transfer.attach(to: pair)
        let finished = pair.simulator.run(for: limit) { transfer.complete }
        #expect(transfer.failures.isEmpty, "\(transfer.failures)")
        #expect(finished, "transfer incomplete: \(transfer.received) of \(size) bytes by \(pair.simulator.now)")
        #expect(transfer.mismatchAt == nil, "byte mismatch at \(transfer.mismatchAt ?? -1)")
        return (pair.simulator, transfer, pair)
    }

    @Test("20 MB, clean link")
    func clean() throws {
        try Self.transfer(Self.conditions(), seed: 1)
    }

    @Test("20 MB under random loss", arguments: [0.01, 0.05, 0.20])
    func randomLoss(rate: Double) throws {
        var conditions = Self.conditions()
        conditions.lossRate = rate
        let run = try Self.transfer(conditions, seed: 2)
        let dropped = run.simulator.counters(from: clientAddress, to: serverAddress).droppedRandom
        #expect(dropped > 0)
        // Loss recovery repairs what was lost without resending everything.
        let stats = try #require(run.transfer.clientSession.flatMap { run.pair.client.endpoint.stats(for: $0) })
        #expect(stats.packetsLost > 0)
        #expect(Double(stats.bytesRetransmitted) < Double(Self.size) * (rate * 2 + 0.05))
    }

    @Test("20 MB under burst loss")
    func burstLoss() throws {
        var conditions = Self.conditions()
        conditions.burstEnterProbability = 0.01
        conditions.burstExitProbability = 0.2
        let run = try Self.transfer(conditions, seed: 3)
        #expect(run.simulator.counters(from: clientAddress, to: serverAddress).droppedBurst > 100)
    }

    @Test("20 MB with reordering and jitter")
    func reordering() throws {
        var conditions = Self.conditions()
        conditions.reorderRate = 0.1
        conditions.reorderDelay = .milliseconds(15)
        conditions.jitter = .milliseconds(2)
        try Self.transfer(conditions, seed: 4)
    }

    /// The jittery link: 50 Mbit/s, 40 ms RTT, 2 ms of uniform per-packet jitter (which
    /// reorders packets sent closer together than that) and 3.3% burst loss. The loss detector
    /// learns the reordering (RACK-style): packets declared lost that arrive after all — each a
    /// spurious retransmission — stay under 2% of what was sent.
    @Test("20 MB over a jittery link: reordering is learnt, not retransmitted")
    func jitteryLink() throws {
        var conditions = Self.conditions(bandwidth: 50e6, delay: .milliseconds(20))
        conditions.jitter = .milliseconds(2)
        conditions.burstEnterProbability = 0.0066
        conditions.burstExitProbability = 0.2
        let run = try Self.transfer(conditions, seed: 13)
        let stats = try #require(run.transfer.clientSession.flatMap { run.pair.client.endpoint.stats(for: $0) })
        let counters = run.simulator.counters(from: clientAddress, to: serverAddress)
        let dropped = counters.droppedBurst + counters.droppedQueue + counters.droppedRandom
        #expect(stats.reorderWindowQuarters >= 1, "the reordering is seen")
        #expect(Double(stats.spuriousLosses) < Double(stats.packetsSent) * 0.02,
                "\(stats.spuriousLosses) spurious of \(stats.packetsSent) sent; \(stats.packetsLost) declared lost for \(dropped) dropped")
        // The receiver's count of bytes it already had: what spurious retransmissions cost.
        let server = try #require(run.transfer.serverSession.flatMap { run.pair.server.endpoint.stats(for: $0) })
        #expect(Double(server.payloadBytesDuplicate) < Double(Self.size) * 0.02, "\(server.payloadBytesDuplicate) bytes received twice")
    }

    @Test("20 MB with duplication")
    func duplication() throws {
        var conditions = Self.conditions()
        conditions.duplicateRate = 0.1
        let run = try Self.transfer(conditions, seed: 5)
        let server = try #require(run.transfer.serverSession.flatMap { run.pair.server.endpoint.stats(for: $0) })
        #expect(run.simulator.counters(from: clientAddress, to: serverAddress).duplicated > 100)
        #expect(server.packetsRejectedReplay > 100, "duplicates are refused by the replay window")
    }

    @Test("20 MB over a 300 ms RTT")
    func longRTT() throws {
        let run = try Self.transfer(Self.conditions(bandwidth: 100e6, delay: .milliseconds(150)), seed: 6)
        let stats = try #require(run.transfer.clientSession.flatMap { run.pair.client.endpoint.stats(for: $0) })
        #expect(stats.minimumRTT >= .milliseconds(300))
    }

    @Test("20 MB with corruption: tampered packets are refused and counted")
    func corruption() throws {
        var conditions = Self.conditions()
        conditions.corruptionRate = 0.02
        let run = try Self.transfer(conditions, seed: 7)
        let server = try #require(run.transfer.serverSession.flatMap { run.pair.server.endpoint.stats(for: $0) })
        let corrupted = run.simulator.counters(from: clientAddress, to: serverAddress).corrupted
        #expect(corrupted > 0)
        #expect(server.packetsRejectedAuthentication > 0)
    }

    @Test("Every impairment at once, 5% loss, 300 ms RTT")
    func everything() throws {
        var conditions = Self.conditions(bandwidth: 100e6, delay: .milliseconds(150))
        conditions.lossRate = 0.05
        conditions.burstEnterProbability = 0.002
        conditions.burstExitProbability = 0.3
        conditions.reorderRate = 0.05
        conditions.duplicateRate = 0.02
        conditions.corruptionRate = 0.01
        conditions.jitter = .milliseconds(3)
        try Self.transfer(conditions, seed: 8)
    }

    @Test("The same seed gives the same run; another seed another run")
    func determinism() throws {
        var conditions = Self.conditions()
        conditions.lossRate = 0.05
        conditions.reorderRate = 0.05
        conditions.jitter = .milliseconds(1)
        let first = try Self.transfer(conditions, seed: 9, size: 2 << 20)
        let second = try Self.transfer(conditions, seed: 9, size: 2 << 20)
        let other = try Self.transfer(conditions, seed: 10, size: 2 << 20)
        #expect(first.simulator.traceDigest == second.simulator.traceDigest)
        #expect(first.simulator.now == second.simulator.now)
        #expect(first.simulator.traceDigest != other.simulator.traceDigest)
    }

    @Test("Path-MTU probing finds a 1300-byte path and stays under it")
    func pathMTU() throws {
        var conditions = Self.conditions()
        conditions.mtu = 1300
        var session = SessionConfiguration()
        session.maximumDatagramSize = 9000
        let run = try Self.transfer(conditions, seed: 11, size: 4 << 20, session: session)
        run.simulator.run(for: .seconds(3))  // the search goes on while idle
        let stats = try #require(run.transfer.clientSession.flatMap { run.pair.client.endpoint.stats(for: $0) })
        #expect(stats.datagramSize <= 1300)
        #expect(stats.datagramSize >= 1280)
    }

    @Test("Path-MTU probing lands exactly on an Ethernet path's 1472 bytes, not near it")
    func pathMTUEthernet() throws {
        var conditions = Self.conditions()
        conditions.mtu = 1472
        let run = try Self.transfer(conditions, seed: 14, size: 4 << 20)  // the default maximum, 65,000
        let stats = try #require(run.transfer.clientSession.flatMap { run.pair.client.endpoint.stats(for: $0) })
        #expect(stats.datagramSize == 1472)
    }

    @Test("Path-MTU probing uses a large MTU when the path allows it")
    func pathMTULarge() throws {
        var session = SessionConfiguration()
        session.maximumDatagramSize = 9000
        var jumbo = Self.conditions()
        jumbo.mtu = 9000
        let run = try Self.transfer(jumbo, seed: 12, size: 4 << 20, session: session)
        let stats = try #require(run.transfer.clientSession.flatMap { run.pair.client.endpoint.stats(for: $0) })
        #expect(stats.datagramSize == 9000)
    }

    @Test("Keys rotate during a transfer and both sides follow")
    func keyRotation() throws {
        var session = SessionConfiguration()
        session.keyUpdatePackets = 500
        var conditions = Self.conditions()
        conditions.lossRate = 0.02
        conditions.reorderRate = 0.02
        let run = try Self.transfer(conditions, seed: 13, size: 8 << 20, session: session)
        let client = try #require(run.transfer.clientSession.flatMap { run.pair.client.endpoint.stats(for: $0) })
        let server = try #require(run.transfer.serverSession.flatMap { run.pair.server.endpoint.stats(for: $0) })
        #expect(client.keyUpdates >= 5)
        #expect(server.peerKeyUpdates == client.keyUpdates)
    }

    @Test("LEDBAT background mode completes a transfer")
    func ledbat() throws {
        var session = SessionConfiguration()
        session.congestionControl = .ledbat
        var conditions = Self.conditions(bandwidth: 50e6)
        conditions.queueLimit = .milliseconds(200)
        let run = try Self.transfer(conditions, seed: 14, size: 4 << 20, session: session)
        let stats = try #require(run.transfer.clientSession.flatMap { run.pair.client.endpoint.stats(for: $0) })
        #expect(stats.congestionControl == "ledbat")
        // LEDBAT keeps the queue near its 25 ms target, far below a loss-based fill of 200 ms.
        #expect(stats.smoothedRTT < .milliseconds(110))
    }

    @Test("The send buffer stays bounded and the writer is told when to continue")
    func backpressure() throws {
        var session = SessionConfiguration()
        session.sendBufferLimit = 256 << 10
        let pair = try SimulatedPair(seed: 15, conditions: Self.conditions(bandwidth: 20e6), session: session)
        let transfer = BulkTransfer(payload: testPayload(count: 4 << 20, seed: 15))
        transfer.attach(to: pair)
        var peak = 0
        let finished = pair.simulator.run(for: .seconds(60)) {
            if let id = transfer.clientSession, let stats = pair.client.endpoint.stats(for: id) { peak = max(peak, stats.sendBufferBytes) }
            return transfer.complete
        }
        #expect(finished)
        #expect(transfer.mismatchAt == nil)
        #expect(peak <= 256 << 10 + 65_536, "peak buffered \(peak)")
    }
}
