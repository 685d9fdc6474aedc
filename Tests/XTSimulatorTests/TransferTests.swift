// Bulk transfers through the simulator under the impairments the issue names. Every byte is
// compared on arrival; the same seed must give the same run.
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
    static func transfer(_ conditions: LinkConditions, seed: UInt64, limit: Duration = .seconds(120),
                         session: SessionConfiguration = .default) throws -> (NetworkSimulator, BulkTransfer, SimulatedPair) {
        let pair = try SimulatedPair(seed: seed, conditions: conditions, session: session)
        let transfer = BulkTransfer(payload: testPayload(count: size, seed: seed))
        transfer.attach(to: pair)
        let finished = pair.simulator.run(for: limit) { transfer.complete }
        #expect(transfer.failures.isEmpty, "\(transfer.failures)")
        #expect(finished, "transfer incomplete: \(transfer.received) of \(size) bytes by \(pair.simulator.now)")
        #expect(transfer.mismatchAt == nil, "byte mismatch at \(transfer.mismatchAt ?? -1)")
        return (pair.simulator, transfer, pair)
    }

    @Test("20 MB over a clean link")
    func clean() throws {
        try Self.transfer(Self.conditions(), seed: 1)
    }

    @Test("20 MB under random loss", arguments: [0.01, 0.05, 0.20])
    func randomLoss(rate: Double) throws {
        var conditions = Self.conditions()
        conditions.lossRate = rate
        let (simulator, _, _) = try Self.transfer(conditions, seed: 2)
        #expect(simulator.counters(from: clientAddress, to: serverAddress).droppedRandom > 0)
    }
}
