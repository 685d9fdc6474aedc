// The host's multicast fan-out and a node's reception, sans-IO: joins, the group once for
// the members it reaches and relays for the rest, NACK repairs to one node only, heartbeats,
// reception reports, and a lossy receiver repaired without touching the others.
import Testing
import XTNet
import XTransport

@Suite("Multicast fan-out")
struct MulticastFanoutTests {
    static let a = NodeID(area: 1, local: 1)
    static let b = NodeID(area: 1, local: 2)
    static let c = NodeID(area: 1, local: 3)
    static let options = MulticastOptions(base: .ipv4(239, 77, 0, 0, port: 5960))
    static let t0 = Timestamp(nanoseconds: 5_000_000_000)

    static func descriptor(_ actions: [MulticastFanout.Action]) throws -> MulticastStreamDescriptor {
        guard case .send(.multicastJoin(let descriptor), _)? = actions.first else { throw WireError.truncated("no join") }
        return descriptor
    }

    @Test("Channel c's group is the base plus c; bad group addresses are refused with the fix")
    func groups() throws {
        #expect(Self.options.group(for: 7) == .ipv4(239, 77, 0, 7, port: 5960))
        #expect(Self.options.group(for: 300) == .ipv4(239, 77, 1, 44, port: 5960))
        #expect(try MulticastOptions.parse("239.1.2.3:99") == .ipv4(239, 1, 2, 3, port: 99))
        for bad in ["10.0.0.1:5960", "239.1.2.3", "239.1.2:5", "x:1", "239.0.0.1:0"] {
            #expect(throws: TransportError.self) { try MulticastOptions.parse(bad) }
        }
    }

    @Test("Members are relayed to until they say the group reaches them; then the group carries it once")
    func groupAndRelay() throws {
        var fanout = MulticastFanout(options: Self.options)
        let join = try Self.descriptor(fanout.subscribe(Self.b, channel: 7, now: Self.t0))
        _ = fanout.subscribe(Self.c, channel: 7, now: Self.t0)
        #expect(join.group == .ipv4(239, 77, 0, 7, port: 5960) && join.firstSequence == 1)
        // Nobody confirmed the group: relays only, and never back to the sender.
        var actions = fanout.publish([1], channel: 7, from: Self.b, now: Self.t0)
        #expect(actions.count == 1)
        guard case .send(.relay, Self.c) = actions[0] else { Issue.record("\(actions)"); return }
        fanout.reception(Self.b, channel: 7, stream: join.stream, receiving: true)
        fanout.reception(Self.c, channel: 7, stream: join.stream + 1, receiving: true)  // another stream: ignored
        actions = fanout.publish(Array(repeating: 2, count: 3000), channel: 7, from: Self.a, now: Self.t0)
        let group = actions.filter { if case .group = $0 { true } else { false } }
        let relays = actions.filter { if case .send(.relay, Self.c) = $0 { true } else { false } }
        #expect(group.count == 3 && relays.count == 3, "3 fragments to the group, the same 3 relayed to c")
        fanout.reception(Self.c, channel: 7, stream: join.stream, receiving: true)
        actions = fanout.publish([3], channel: 7, from: Self.a, now: Self.t0)
        #expect(actions.count == 1)
        guard case .group(_, let address) = actions[0] else { Issue.record("\(actions)"); return }
        #expect(address == Self.options.group(for: 7))
        #expect(fanout.channelsViaGroup(of: Self.c) == [7])
        let stats = try #require(fanout.stats.first)
        #expect(stats.groupDatagrams == 4 && stats.relayedDatagrams == 4 && stats.membersViaGroup == 2)
    }

    @Test("A NACK is answered to that node alone; another stream's NACK, or a non-member's, is ignored")
    func nack() throws {
        var fanout = MulticastFanout(options: Self.options)
        let join = try Self.descriptor(fanout.subscribe(Self.b, channel: 7, now: Self.t0))
        _ = fanout.subscribe(Self.c, channel: 7, now: Self.t0)
        for index in 0..<5 { _ = fanout.publish([UInt8(index)], channel: 7, from: Self.a, now: Self.t0) }
        let repairs = fanout.nack(Self.b, channel: 7, stream: join.stream, ranges: [2..<4])
        #expect(repairs.count == 2)
        #expect(repairs.allSatisfy { if case .send(.relay, Self.b) = $0 { true } else { false } })
        #expect(fanout.nack(Self.b, channel: 7, stream: join.stream &+ 1, ranges: [2..<4]).isEmpty)
        #expect(fanout.nack(Self.a, channel: 7, stream: join.stream, ranges: [2..<4]).isEmpty)
        fanout.leave(Self.b, now: Self.t0)
        #expect(fanout.nack(Self.b, channel: 7, stream: join.stream, ranges: [2..<4]).isEmpty)
    }

    @Test("Heartbeats go to groups with members every 250 ms; a host without multicast relays everything")
    func heartbeatsAndNoMulticast() throws {
        var fanout = MulticastFanout(options: Self.options)
        #expect(fanout.tick(now: Self.t0.adding(.seconds(1))).isEmpty, "no members, no heartbeats")
        _ = fanout.subscribe(Self.b, channel: 7, now: Self.t0)
        #expect(fanout.tick(now: Self.t0.adding(.milliseconds(100))).isEmpty)
        #expect(fanout.tick(now: Self.t0.adding(.milliseconds(250))).count == 1)
        #expect(fanout.tick(now: Self.t0.adding(.milliseconds(300))).isEmpty)
        #expect(fanout.unsubscribe(Self.b, channel: 7).isEmpty, "no one left to rekey for")
        #expect(fanout.tick(now: Self.t0.adding(.seconds(2))).isEmpty)

        var relayOnly = MulticastFanout(options: nil)
        let join = try Self.descriptor(relayOnly.subscribe(Self.b, channel: 7, now: Self.t0))
        #expect(join.group == nil)
        relayOnly.reception(Self.b, channel: 7, stream: join.stream, receiving: true)
        let actions = relayOnly.publish([1], channel: 7, from: Self.a, now: Self.t0)
        #expect(actions.count == 1)
        guard case .send(.relay, Self.b) = actions[0] else { Issue.record("\(actions)"); return }
        #expect(relayOnly.tick(now: Self.t0.adding(.seconds(1))).isEmpty)
    }

    @Test("A subscriber that unsubscribes, or drops and stays away past the hold time, leaves the others with a new key")
    func rekey() throws {
        var fanout = MulticastFanout(options: Self.options, rekeyAfter: .seconds(8))
        let first = try Self.descriptor(fanout.subscribe(Self.a, channel: 7, now: Self.t0))
        _ = fanout.subscribe(Self.b, channel: 7, now: Self.t0)
        _ = fanout.subscribe(Self.c, channel: 7, now: Self.t0)
        // c drops and comes back in time: same stream, it resumes where it was.
        fanout.leave(Self.c, now: Self.t0)
        let back = try Self.descriptor(fanout.subscribe(Self.c, channel: 7, now: Self.t0.adding(.seconds(2))))
        #expect(back.stream == first.stream && back.key == first.key)
        #expect(fanout.tick(now: Self.t0.adding(.seconds(20))).allSatisfy { if case .group = $0 { true } else { false } })
        // b unsubscribes: a and c get a new stream at once.
        let joins = fanout.unsubscribe(Self.b, channel: 7)
        #expect(joins.count == 2)
        let second = try Self.descriptor(joins)
        #expect(second.stream != first.stream && second.key != first.key && second.firstSequence == 1)
        // c drops for good: after 8 s, a alone gets another key.
        fanout.leave(Self.c, now: Self.t0.adding(.seconds(30)))
        #expect(fanout.tick(now: Self.t0.adding(.seconds(37))).filter { if case .send = $0 { true } else { false } }.isEmpty)
        let later = fanout.tick(now: Self.t0.adding(.seconds(38))).compactMap { action -> MulticastStreamDescriptor? in
            if case .send(.multicastJoin(let descriptor), Self.a) = action { descriptor } else { nil }
        }
        #expect(later.count == 1 && later.first?.key != second.key)
        #expect(fanout.stats.first?.rekeys == 2)
        // Datagrams under the new key do not open with the old one.
        var stale = try MulticastReceiver(second)
        let datagram = fanout.publish([1], channel: 7, from: Self.b, now: Self.t0.adding(.seconds(39)))
        guard case .send(.relay(let bytes), Self.a)? = datagram.first else { Issue.record("\(datagram)"); return }
        #expect(stale.receive(bytes, via: .group, now: Self.t0) == .foreignStream)
    }

    @Test("A node reports when the group starts and stops reaching it, and keeps a stream it already follows")
    func reception() throws {
        var fanout = MulticastFanout(options: Self.options)
        let join = try Self.descriptor(fanout.subscribe(Self.b, channel: 7, now: Self.t0))
        var node = MulticastReception()
        try node.join(join)
        let datagram = fanout.publish([1], channel: 7, from: Self.a, now: Self.t0)
        guard case .send(.relay(let bytes), _) = datagram[0] else { Issue.record("\(datagram)"); return }
        var output = node.receive(bytes, via: .relay, now: Self.t0)
        #expect(output.messages.count == 1 && output.control.isEmpty, "a relay says nothing about the group")
        guard case .group(let beat, _) = fanout.tick(now: Self.t0.adding(.milliseconds(250)))[0] else { return }
        output = node.receive(beat, via: .group, now: Self.t0.adding(.milliseconds(250)))
        #expect(output.control == [.multicastReception(channel: 7, stream: join.stream, receiving: true)])
        #expect(node.tick(now: Self.t0.adding(.seconds(1))).control.isEmpty)
        #expect(node.tick(now: Self.t0.adding(.seconds(2))).control == [.multicastReception(channel: 7, stream: join.stream, receiving: false)])
        // The same stream announced again (a reconnect to the same host) keeps the position.
        try node.join(fanout.subscribe(Self.b, channel: 7, now: Self.t0).first.map { action -> MulticastStreamDescriptor in
            guard case .send(.multicastJoin(let descriptor), _) = action else { fatalError() }
            return descriptor
        }!)
        #expect(node.stats[7]?.delivered == 1)
        #expect(node.receive(bytes, via: .group, now: Self.t0).messages.isEmpty, "already delivered")
    }

    @Test("5% loss at one of three receivers: repaired exactly, the others untouched, repairs under 2x the loss")
    func lossyReceiver() throws {
        var fanout = MulticastFanout(options: Self.options)
        let members = [Self.a, Self.b, Self.c]
        var nodes: [MulticastReception] = []
        for member in members {
            var node = MulticastReception()
            try node.join(Self.descriptor(fanout.subscribe(member, channel: 7, now: Self.t0)))
            nodes.append(node)
        }
        let stream = try #require(nodes[0].descriptor(7)?.stream)
        for member in members { fanout.reception(member, channel: 7, stream: stream, receiving: true) }
        var random = SystemRandomNumberGenerator()
        var delivered = [[UInt8]](repeating: [], count: 3)
        var lost = 0
        var repairs = 0
        var now = Self.t0
        func handle(_ index: Int, _ output: MulticastReception.Output) {
            delivered[index] += output.messages.map { $0[0] }
            for case .nack(let channel, let stream, let ranges) in output.control {
                for case .send(.relay(let datagram), _) in fanout.nack(members[index], channel: channel, stream: stream, ranges: ranges) {
                    repairs += 1
                    handle(index, nodes[index].receive(datagram, via: .relay, now: now))
                }
            }
        }
        for index in 0..<2000 {
            now = now.adding(.milliseconds(2))
            for case .group(let datagram, _) in fanout.publish([UInt8(truncatingIfNeeded: index)], channel: 7, from: NodeID(area: 9, local: 9), now: now) {
                for receiver in 0..<3 {
                    if receiver == 2, Int.random(in: 0..<100, using: &random) < 5 {
                        lost += 1
                        continue
                    }
                    handle(receiver, nodes[receiver].receive(datagram, via: .group, now: now))
                }
            }
        }
        now = now.adding(.milliseconds(250))
        for case .group(let beat, _) in fanout.tick(now: now) {
            for receiver in 0..<3 { handle(receiver, nodes[receiver].receive(beat, via: .group, now: now)) }
        }
        let expected = (0..<2000).map { UInt8(truncatingIfNeeded: $0) }
        for receiver in 0..<3 { #expect(delivered[receiver] == expected, "receiver \(receiver)") }
        #expect(nodes[0].stats[7]?.nacks == 0 && nodes[1].stats[7]?.nacks == 0)
        #expect(lost > 0 && repairs == lost, "\(repairs) repairs for \(lost) lost")
    }
}
