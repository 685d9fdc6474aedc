// Multicast streams, sans-IO: sealing, fragmenting, in-order delivery, NACK-driven repair of
// one receiver's losses, deadlines, and datagrams that are forged, replayed or foreign.
import Testing
@testable import XTransport

@Suite("Multicast")
struct MulticastTests {
    static let t0 = Timestamp(nanoseconds: 1_000_000_000)

    static func pair(maximumDatagram: Int = 200) throws -> (MulticastSender, MulticastReceiver) {
        let sender = MulticastSender(channel: 7, stream: 42, maximumDatagram: maximumDatagram)
        let receiver = try MulticastReceiver(sender.descriptor(group: .ipv4(239, 77, 0, 7, port: 5960)))
        return (sender, receiver)
    }

    @Test("A message is cut into sealed fragments and comes out whole, in order")
    func fragments() throws {
        var (sender, receiver) = try Self.pair()
        let big = (0..<1000).map { UInt8(truncatingIfNeeded: $0) }
        let datagrams = sender.send(big, now: Self.t0) + sender.send([9], now: Self.t0) + sender.send([], now: Self.t0)
        #expect(datagrams.count == 6 + 1 + 1, "168 bytes of body per 200-byte datagram")
        #expect(datagrams.allSatisfy { $0.count <= 200 })
        for datagram in datagrams { #expect(receiver.receive(datagram, via: .group, now: Self.t0) == .accepted) }
        #expect(receiver.takeMessages(now: Self.t0) == [big, [9], []])
        #expect(receiver.stats.delivered == 3 && receiver.stats.viaGroup == 8)
    }

    @Test("A gap is NACKed once, repaired from the sender's store, and the rest waits for it")
    func repair() throws {
        var (sender, receiver) = try Self.pair()
        let datagrams = (0..<10).flatMap { sender.send([UInt8($0)], now: Self.t0) }
        for (index, datagram) in datagrams.enumerated() where index != 3 && index != 4 {
            _ = receiver.receive(datagram, via: .group, now: Self.t0)
        }
        #expect(receiver.takeMessages(now: Self.t0) == [[0], [1], [2]])
        let nack = receiver.takeNack(now: Self.t0)
        #expect(nack == [4..<6], "sequences start at 1")
        #expect(receiver.takeNack(now: Self.t0.adding(.milliseconds(10))) == [], "asked once per interval")
        let repairs = sender.repair(nack)
        #expect(repairs == [datagrams[3], datagrams[4]])
        for repair in repairs { #expect(receiver.receive(repair, via: .relay, now: Self.t0) == .accepted) }
        #expect(receiver.takeMessages(now: Self.t0) == (3..<10).map { [UInt8($0)] })
        #expect(receiver.stats.repaired == 2 && receiver.stats.lostDatagrams == 0)
        #expect(sender.stats.repairs == 2)
        // Group and relay both bring the same datagram: it counts once.
        #expect(receiver.receive(datagrams[5], via: .relay, now: Self.t0) == .duplicate)
    }

    @Test("A lost tail is noticed from the heartbeat")
    func heartbeatTail() throws {
        var (sender, receiver) = try Self.pair()
        let datagrams = (0..<3).flatMap { sender.send([UInt8($0)], now: Self.t0) }
        _ = receiver.receive(datagrams[0], via: .group, now: Self.t0)
        #expect(receiver.takeNack(now: Self.t0) == [])
        #expect(receiver.receive(sender.heartbeat(), via: .group, now: Self.t0) == .accepted)
        #expect(receiver.takeNack(now: Self.t0) == [2..<4])
        #expect(receiver.receive(sender.heartbeat(), via: .group, now: Self.t0) == .stale)
        #expect(receiver.lastGroupDatagram == Self.t0)
    }

    @Test("A gap still missing at the deadline is skipped and counted; a broken message is dropped whole")
    func deadline() throws {
        var (sender, receiver) = try Self.pair()
        let first = sender.send(Array(repeating: 1, count: 400), now: Self.t0)  // 3 fragments
        let second = sender.send([2], now: Self.t0)
        #expect(first.count == 3)
        _ = receiver.receive(first[0], via: .group, now: Self.t0)
        _ = receiver.receive(first[2], via: .group, now: Self.t0)
        _ = receiver.receive(second[0], via: .group, now: Self.t0)
        #expect(receiver.takeMessages(now: Self.t0.adding(.milliseconds(499))) == [])
        #expect(receiver.takeMessages(now: Self.t0.adding(.milliseconds(500))) == [[2]])
        #expect(receiver.stats.lostDatagrams == 1)
        // The repair that comes too late is stale, not delivered twice.
        #expect(receiver.receive(first[1], via: .relay, now: Self.t0.adding(.seconds(1))) == .duplicate)
    }

    @Test("Forged, foreign and replayed datagrams are refused")
    func refused() throws {
        var (sender, receiver) = try Self.pair()
        var datagram = sender.send([1, 2, 3], now: Self.t0)[0]
        var tampered = datagram
        tampered[tampered.count - 20] ^= 1
        #expect(receiver.receive(tampered, via: .group, now: Self.t0) == .forged)
        #expect(receiver.receive([0xD1, 1, 2], via: .group, now: Self.t0) == .forged)
        #expect(receiver.receive(Array(repeating: 0, count: 40), via: .group, now: Self.t0) == .forged)
        var other = MulticastSender(channel: 7, stream: 43)
        #expect(receiver.receive(other.send([1], now: Self.t0)[0], via: .group, now: Self.t0) == .foreignStream)
        // Same stream id and channel but another key (not the group's): forged.
        var impostor = MulticastSender(channel: 7, stream: 42)
        #expect(receiver.receive(impostor.send([1], now: Self.t0)[0], via: .group, now: Self.t0) == .forged)
        #expect(receiver.receive(datagram, via: .group, now: Self.t0) == .accepted)
        #expect(receiver.receive(datagram, via: .group, now: Self.t0) == .duplicate)
        _ = receiver.takeMessages(now: Self.t0)
        #expect(receiver.receive(datagram, via: .group, now: Self.t0) == .duplicate, "a replay after delivery")
        datagram[0] = 0xD2  // a data datagram relabelled as a heartbeat does not open
        #expect(receiver.receive(datagram, via: .group, now: Self.t0) == .forged)
        #expect(receiver.stats.rejected == 5)
    }

    @Test("A receiver that joins late starts at its first sequence; repairs are kept by size and age")
    func joinAndRetention() throws {
        var sender = MulticastSender(channel: 1, stream: 5, maximumDatagram: 200, retainBytes: 500, retainTime: .seconds(1))
        let early = sender.send([1], now: Self.t0)
        var receiver = try MulticastReceiver(sender.descriptor(group: nil))
        #expect(receiver.receive(early[0], via: .group, now: Self.t0) == .stale)
        let later = (0..<20).flatMap { sender.send([UInt8($0)], now: Self.t0) }
        #expect(sender.repair([1..<2]) == [], "the first datagram was pushed out by size")
        #expect(sender.repair([21..<22]) == [later.last!])
        _ = sender.send([0], now: Self.t0.adding(.seconds(2)))
        #expect(sender.repair([21..<22]) == [], "and by age")
        #expect(sender.stats.repairsUnavailable == 2)
        #expect(receiver.receive(later[0], via: .group, now: Self.t0) == .accepted)
    }

    @Test("A receiver far behind moves its window on and counts what it lost")
    func farBehind() throws {
        var (sender, receiver) = try Self.pair()
        for _ in 0..<(MulticastReceiver.window + 10) { _ = sender.send([0], now: Self.t0) }
        let latest = sender.send([7], now: Self.t0)
        #expect(receiver.receive(latest[0], via: .group, now: Self.t0) == .accepted)
        #expect(receiver.missingCount == Int(MulticastReceiver.window - 1))
        #expect(receiver.stats.lostDatagrams == 11)
        #expect(receiver.takeMessages(now: Self.t0.adding(.seconds(1))) == [[7]])
        #expect(receiver.stats.lostDatagrams == MulticastReceiver.window + 10)
    }

    @Test("Many gaps at once: every overdue gap is skipped and every whole message between them delivered")
    func manyGaps() throws {
        var (sender, receiver) = try Self.pair()
        let datagrams = (0..<4000).flatMap { sender.send([UInt8(truncatingIfNeeded: $0)], now: Self.t0) }
        for (index, datagram) in datagrams.enumerated() where index % 2 == 0 {
            _ = receiver.receive(datagram, via: .group, now: Self.t0)
        }
        #expect(receiver.takeNack(now: Self.t0).count == 1999, "one range per gap (the last one is not known yet)")
        #expect(receiver.takeNack(now: Self.t0.adding(.milliseconds(100))) == [])
        #expect(receiver.takeNack(now: Self.t0.adding(.milliseconds(250))).count == 1999, "asked again after the interval")
        let delivered = receiver.takeMessages(now: Self.t0.adding(.milliseconds(500)))
        #expect(delivered == (0..<4000).filter { $0 % 2 == 0 }.map { [UInt8(truncatingIfNeeded: $0)] })
        #expect(receiver.stats.lostDatagrams == 1999 && receiver.missingCount == 0)
    }

    @Test("Sequences near 2^64 (sealed with the group key, which every subscriber holds) are refused, not overflowed")
    func sequencesAtTheTopAreRefused() throws {
        var (sender, receiver) = try Self.pair()
        for datagram in (0..<3).flatMap({ sender.send([UInt8($0)], now: Self.t0) }) { _ = receiver.receive(datagram, via: .group, now: Self.t0) }
        for sequence in [UInt64.max, UInt64.max - 1, UInt64(1) << 63] {
            let data = sender.key.seal(MulticastHeader(kind: .data, stream: sender.stream, sequence: sequence, channel: sender.channel,
                                                       flags: [.first, .last]), body: [9])
            #expect(receiver.receive(data, via: .group, now: Self.t0) == .forged)
            var count = [UInt8](repeating: 0, count: 8)
            withUnsafeBytes(of: sequence.bigEndian) { count = Array($0) }
            let heartbeat = sender.key.seal(MulticastHeader(kind: .heartbeat, stream: sender.stream, sequence: 9, channel: sender.channel, flags: []),
                                            body: count)
            #expect(receiver.receive(heartbeat, via: .group, now: Self.t0) == .forged)
        }
        #expect(receiver.takeMessages(now: Self.t0) == [[0], [1], [2]])
        #expect(receiver.stats.rejected == 6)
    }
}
