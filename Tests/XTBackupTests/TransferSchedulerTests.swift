// The bond's scheduler, sans-IO: pull-based sharing by speed, a failed connection's chunks
// handed back, stalls, the endgame, placement and retention.
import Testing
@testable import XTBackup

private func chunk(_ n: Int) -> ChunkID { ChunkID(of: Array("chunk \(n)".utf8)) }

@Suite struct TransferSchedulerTests {
    /// Three links at 1, 2 and 4 units per tick, pulling 1-unit chunks: each takes work in
    /// proportion to its speed, and the slow one never holds the others back.
    @Test func fasterLinksTakeMoreChunks() {
        var settings = TransferScheduler.Settings()
        settings.window = 1
        var scheduler = TransferScheduler(settings: settings)
        for n in 0..<700 { scheduler.add(TransferJob(chunk: chunk(n), target: "pi", size: 1)) }
        let speeds = [1: 1, 2: 2, 3: 4]
        for id in speeds.keys { scheduler.addConnection(id, target: "pi", now: 0) }
        var carried: [Int: Int] = [:]
        var tick: Int64 = 0
        var out: [Int: ChunkID] = [:]
        while !scheduler.isDone && tick < 10_000 {
            tick += 1
            for (id, speed) in speeds {
                // A connection completes `speed` chunks per tick (one at a time, window 1).
                for _ in 0..<speed {
                    if let current = out[id] {
                        scheduler.completed(current, target: "pi", on: id, now: tick)
                        carried[id, default: 0] += 1
                        out[id] = nil
                    }
                    if let next = scheduler.next(for: id, now: tick) { out[id] = next }
                }
            }
        }
        #expect(scheduler.isDone)
        #expect(scheduler.completedJobs == 700)
        // 1 : 2 : 4 of 700.
        #expect(abs(carried[1, default: 0] - 100) <= 5, "\(carried)")
        #expect(abs(carried[3, default: 0] - 400) <= 5, "\(carried)")
        #expect(tick <= 101)
    }

    @Test func aFailedConnectionHandsItsChunksBack() {
        var scheduler = TransferScheduler()
        for n in 0..<4 { scheduler.add(TransferJob(chunk: chunk(n), target: "pi", size: 1 << 20)) }
        scheduler.addConnection(1, target: "pi", now: 0)
        scheduler.addConnection(2, target: "pi", now: 0)
        let first = [scheduler.next(for: 1, now: 0), scheduler.next(for: 1, now: 0)].compactMap { $0 }
        #expect(first.count == 2)
        #expect(scheduler.next(for: 1, now: 0) == nil)  // window: 2 MiB
        let handedBack = scheduler.removeConnection(1)
        #expect(Set(handedBack) == Set(first))
        var taken: [ChunkID] = []
        while let next = scheduler.next(for: 2, now: 1) {
            taken.append(next)
            scheduler.completed(next, target: "pi", on: 2, now: 2)
        }
        #expect(Set(taken) == Set((0..<4).map(chunk)))
        #expect(scheduler.isDone)
    }

    @Test func aStalledConnectionHandsItsChunksBackAndTheLateCopyCountsOnce() {
        var scheduler = TransferScheduler()
        scheduler.add(TransferJob(chunk: chunk(1), target: "pi", size: 100))
        scheduler.addConnection(1, target: "pi", now: 0)
        scheduler.addConnection(2, target: "pi", now: 0)
        #expect(scheduler.next(for: 1, now: 0) == chunk(1))
        #expect(scheduler.next(for: 2, now: 0) == nil)  // nothing queued; no rate yet for an endgame copy
        scheduler.progressed(1, now: 300_000_000)
        #expect(scheduler.checkStalls(now: 800_000_000).isEmpty)  // progress 500 ms ago
        #expect(scheduler.checkStalls(now: 900_000_001) == [1])
        #expect(scheduler.isStalled(1))
        #expect(scheduler.next(for: 1, now: 900_000_001) == nil)  // a stalled link takes nothing new
        #expect(scheduler.next(for: 2, now: 900_000_001) == chunk(1))
        scheduler.completed(chunk(1), target: "pi", on: 2, now: 950_000_000)
        scheduler.completed(chunk(1), target: "pi", on: 1, now: 960_000_000)  // the stalled copy lands late
        #expect(scheduler.completedJobs == 1)
        #expect(scheduler.isDone)
        #expect(!scheduler.isStalled(1))
    }

    @Test func theEndgameCopiesSlowChunksToFastLinks() {
        var scheduler = TransferScheduler()
        for n in 0..<3 { scheduler.add(TransferJob(chunk: chunk(n), target: "pi", size: 1 << 20)) }
        scheduler.addConnection(1, target: "pi", now: 0)  // slow
        scheduler.addConnection(2, target: "pi", now: 0)  // fast
        let slow = scheduler.next(for: 1, now: 0)!
        let fast = scheduler.next(for: 2, now: 0)!
        scheduler.completed(fast, target: "pi", on: 2, now: 10_000_000)  // 1 MiB in 10 ms
        let third = scheduler.next(for: 2, now: 10_000_000)!
        scheduler.completed(third, target: "pi", on: 2, now: 20_000_000)
        // The queue is empty, but more may come: no copies yet.
        #expect(scheduler.next(for: 2, now: 20_000_000) == nil)
        scheduler.finishAdding()
        // Nothing more will come; the slow link still has its chunk: the fast one takes a copy.
        #expect(scheduler.next(for: 2, now: 20_000_000) == slow)
        #expect(scheduler.endgameCopies == 1)
        let others = scheduler.completed(slow, target: "pi", on: 2, now: 30_000_000)
        #expect(others == [1])
        #expect(scheduler.isDone)
    }

    /// Three connections at 0.5, 1 and 2 MiB per 100 ms, each with a 2 MiB window of 1 MiB
    /// chunks, 70 chunks, all added up front, and no endgame copies: the transfer ends within a
    /// chunk's time on the fastest connection of the ideal (the bytes over the summed rates,
    /// 2 s), because the slow connections stop taking chunks they would land last. Without
    /// that, the slowest still holds chunks when the rest is done (2.2 s).
    @Test func theLastChunksGoWhereTheyLandFirst() {
        let chunkSize = 1 << 20
        let speeds: [Int: Int] = [1: chunkSize / 20, 2: chunkSize / 10, 3: chunkSize / 5]  // bytes per 10 ms tick
        var settings = TransferScheduler.Settings()
        settings.maximumCopies = 1
        var scheduler = TransferScheduler(settings: settings)
        for n in 0..<70 { scheduler.add(TransferJob(chunk: chunk(n), target: "pi", size: chunkSize)) }
        scheduler.finishAdding()
        for id in speeds.keys { scheduler.addConnection(id, target: "pi", now: 0) }
        // Each connection sends what it took in order (a copy the Pi already has still crosses
        // the link, as a real put would), and the transport's acknowledged bytes are reported
        // every tick.
        var lanes: [Int: [(chunk: ChunkID, left: Int)]] = [:]
        var acknowledged: [Int: UInt64] = [:]
        let tick: Int64 = 10_000_000
        var now: Int64 = 0
        while !scheduler.isDone && now < 10_000_000_000 {
            for id in speeds.keys.sorted() {
                while let next = scheduler.next(for: id, now: now) { lanes[id, default: []].append((next, chunkSize)) }
            }
            now += tick
            for (id, speed) in speeds {
                var budget = speed
                while budget > 0, var first = lanes[id]?.first {
                    let sent = min(budget, first.left)
                    budget -= sent
                    first.left -= sent
                    acknowledged[id, default: 0] += UInt64(sent)
                    if first.left == 0 {
                        lanes[id]!.removeFirst()
                        scheduler.completed(first.chunk, target: "pi", on: id, now: now)
                    } else {
                        lanes[id]![0] = first
                    }
                }
                scheduler.acknowledged(id, bytes: acknowledged[id, default: 0], now: now)
            }
        }
        #expect(scheduler.isDone)
        #expect(scheduler.completedJobs == 70)
        // Ideal: 70 MiB at 3.5 MiB per 100 ms = 2.0 s; one chunk on the fastest is 50 ms more.
        #expect(now <= 2_050_000_000 + 2 * tick, "finished at \(Double(now) / 1e9) s")
        #expect(scheduler.endgameCopies == 0)
    }

    /// Two connections over one path share it: the faster takes no copy of the slower's chunk
    /// (it would only compete with it), until the slower stalls.
    @Test func theEndgameCopiesOnlyAcrossPaths() {
        var scheduler = TransferScheduler()
        for n in 0..<3 { scheduler.add(TransferJob(chunk: chunk(n), target: "pi", size: 1 << 20)) }
        scheduler.addConnection(1, target: "pi", link: "10.0.0.1 → 10.0.0.2", now: 0)
        scheduler.addConnection(2, target: "pi", link: "10.0.0.1 → 10.0.0.2", now: 0)
        let slow = scheduler.next(for: 1, now: 0)!
        let fast = scheduler.next(for: 2, now: 0)!
        scheduler.completed(fast, target: "pi", on: 2, now: 10_000_000)
        let third = scheduler.next(for: 2, now: 10_000_000)!
        scheduler.completed(third, target: "pi", on: 2, now: 20_000_000)
        scheduler.finishAdding()
        #expect(scheduler.next(for: 2, now: 20_000_000) == nil)
        #expect(scheduler.endgameCopies == 0)
        #expect(scheduler.checkStalls(now: 700_000_000) == [1])
        #expect(scheduler.next(for: 2, now: 700_000_000) == slow)
        scheduler.completed(slow, target: "pi", on: 2, now: 710_000_000)
        #expect(scheduler.isDone)
    }

    @Test func chunksGoOnlyToConnectionsOfTheirPi() {
        var scheduler = TransferScheduler()
        scheduler.add(TransferJob(chunk: chunk(1), target: "a", size: 10))
        scheduler.add(TransferJob(chunk: chunk(1), target: "b", size: 10))
        scheduler.addConnection(1, target: "a", now: 0)
        #expect(scheduler.next(for: 1, now: 0) == chunk(1))
        #expect(scheduler.next(for: 1, now: 0) == nil)
        scheduler.completed(chunk(1), target: "a", on: 1, now: 1)
        #expect(!scheduler.isDone)
        #expect(scheduler.stillNeeded(chunk(1)))
        scheduler.addConnection(2, target: "b", now: 1)
        #expect(scheduler.next(for: 2, now: 1) == chunk(1))
        scheduler.completed(chunk(1), target: "b", on: 2, now: 2)
        #expect(scheduler.isDone)
        #expect(!scheduler.stillNeeded(chunk(1)))
    }

    @Test func rendezvousPlacementIsStableAndEven() {
        let placement = Placement(targets: ["pi1", "pi2", "pi3", "pi4", "pi5"])
        var firsts: [String: Int] = [:]
        for n in 0..<5000 {
            let holders = placement.holders(chunk(n), copies: 2)
            #expect(holders.count == 2 && Set(holders).count == 2)
            firsts[holders[0], default: 0] += 1
        }
        for count in firsts.values { #expect(count > 850 && count < 1150, "\(firsts)") }
        // Losing pi3 moves only the chunks it held: the others keep their first holder.
        let without = Placement(targets: ["pi1", "pi2", "pi4", "pi5"])
        for n in 0..<1000 {
            let before = placement.holders(chunk(n), copies: 1)[0]
            if before != "pi3" { #expect(without.holders(chunk(n), copies: 1)[0] == before) }
            // A Pi that does not answer is stood in for by the next in rank.
            let down = placement.holders(chunk(n), copies: 2, unavailable: ["pi3"])
            #expect(!down.contains("pi3") && down.count == 2)
        }
    }

    @Test func retentionKeepsWhatResticWould() {
        let day: Int64 = 86_400 * 1_000_000_000
        let start: Int64 = 1_764_547_200 * 1_000_000_000  // 2025-12-01 00:00 UTC, a Monday
        // Two snapshots a day for 20 days.
        let snapshots = (0..<40).map { (id: $0, time: start + Int64($0 / 2) * day + Int64($0 % 2) * day / 2) }
        let (keep, forget) = RetentionPolicy(last: 3, daily: 5, weekly: 3).apply(snapshots)
        #expect(keep.isSuperset(of: [39, 38, 37]))  // the last 3
        for newestOfDay in [39, 37, 35, 33, 31] { #expect(keep.contains(newestOfDay)) }  // 5 days
        #expect(keep.count + forget.count == 40)
        #expect(!keep.contains(30))  // an earlier one on a kept day
        #expect(keep.contains(27) && keep.contains(13))  // the newest of weeks 2 and 1 (days 13 and 6)
        #expect(keep.count == 8)  // 39, 38, 37; days 17–15 add 35, 33, 31; weeks 2 and 1 add 27, 13
        let all = RetentionPolicy().apply(snapshots)
        #expect(all.forget.isEmpty)
        #expect(throws: BackupError.self) { try RetentionPolicy(last: -1).validate() }
    }
}
