// Session lifecycle: keepalive and dead-peer detection, graceful close (FIN), abort (RESET),
// a peer whose address changes, and a peer's numbers of any size (an ACK delay near 2^62).
import Testing
@testable import XTransport

@Suite("Session lifecycle")
struct SessionLifecycleTests {
    @Test("A quiet session sends keepalives every second and stays up")
    func keepalive() throws {
        let pair = try Pair()
        let ids = try pair.connect()
        let before = pair.alice.stats(for: ids.alice)!.packetsSent
        pair.wire.run(for: .seconds(20), step: .milliseconds(100))
        #expect(pair.alice.isOpen(ids.alice))
        #expect(pair.bob.isOpen(ids.bob))
        let sent = pair.alice.stats(for: ids.alice)!.packetsSent - before
        #expect(sent >= 18 && sent <= 45, "about one keepalive (plus ACKs) per second, got \(sent)")
    }

    @Test("A dead peer is detected within the configured timeout")
    func deadPeer() throws {
        var session = SessionConfiguration()
        session.deadPeerTimeout = .seconds(5)
        let pair = try Pair(session: session)
        let ids = try pair.connect()
        pair.wire.filter = { $0.from == aliceAddress ? nil : $0 }  // Alice falls silent
        pair.wire.run(for: .milliseconds(4_800), step: .milliseconds(100))
        #expect(pair.bob.isOpen(ids.bob))
        pair.wire.run(for: .milliseconds(400), step: .milliseconds(100))
        #expect(!pair.bob.isOpen(ids.bob))
        #expect(pair.wire.takeEvents(bobAddress).contains { if case .session(ids.bob, .closed(.timedOut)) = $0 { true } else { false } })
    }

    @Test("Graceful close delivers what was written, then both sides close")
    func gracefulClose() throws {
        let pair = try Pair()
        let ids = try pair.connect()
        for index in 0..<50 { _ = try pair.alice.write([UInt8](repeating: UInt8(index), count: 3000), channel: 2, session: ids.alice, now: pair.wire.now) }
        pair.alice.close(ids.alice, now: pair.wire.now)
        pair.wire.run(for: .milliseconds(500))
        let bobEvents = pair.wire.takeEvents(bobAddress)
        #expect(bobEvents.filter { if case .session(_, .message) = $0 { true } else { false } }.count == 50)
        #expect(bobEvents.contains { if case .session(ids.bob, .closed(.peerClosed)) = $0 { true } else { false } })
        #expect(pair.wire.takeEvents(aliceAddress).contains { if case .session(ids.alice, .closed(.local)) = $0 { true } else { false } })
        #expect(!pair.alice.isOpen(ids.alice))
        #expect(throws: TransportError.sessionClosed()) { try pair.alice.write([1], channel: 1, session: ids.alice, now: pair.wire.now) }
    }

    @Test("Abort resets the peer at once")
    func abort() throws {
        let pair = try Pair()
        let ids = try pair.connect()
        pair.alice.abort(ids.alice, reason: "operator stop", now: pair.wire.now)
        pair.wire.settle()
        #expect(pair.wire.takeEvents(bobAddress).contains { if case .session(ids.bob, .closed(.peerReset("operator stop"))) = $0 { true } else { false } })
        #expect(!pair.bob.isOpen(ids.bob))
    }

    @Test("A peer that changes address is followed once the new address answers")
    func migration() throws {
        let pair = try Pair()
        let ids = try pair.connect()
        let moved = NetworkAddress.ipv4(192, 168, 7, 77, port: 3333)
        // Alice's packets now come from `moved` (a NAT rebinding); packets to `moved` reach her.
        pair.wire.filter = { datagram in
            var datagram = datagram
            if datagram.from == aliceAddress { datagram.from = moved }
            if datagram.to == moved { datagram.to = aliceAddress }
            return datagram
        }
        _ = try pair.alice.write(Array("from afar".utf8), channel: 1, session: ids.alice, now: pair.wire.now)
        pair.wire.run(for: .milliseconds(200))
        #expect(pair.bob.peerAddress(for: ids.bob) == moved)
        let events = pair.wire.takeEvents(bobAddress)
        #expect(events.contains { if case .session(ids.bob, .pathChanged(moved)) = $0 { true } else { false } })
        #expect(events.contains { if case .session(_, .message(let message)) = $0 { message.payload == Array("from afar".utf8) } else { false } })
    }

    @Test("Writes wait when the send buffer is full and resume on .writable")
    func backpressure() throws {
        var session = SessionConfiguration()
        session.sendBufferLimit = 65_536
        let pair = try Pair(session: session)
        let ids = try pair.connect()
        var accepted = 0
        while try pair.alice.write([UInt8](repeating: 7, count: 16_384), channel: 1, session: ids.alice, now: pair.wire.now) == .accepted {
            accepted += 1
        }
        #expect(accepted == 3, "three 16 KiB messages (plus framing) fit in 64 KiB, a fourth does not")
        pair.wire.run(for: .milliseconds(200))
        #expect(pair.wire.takeEvents(aliceAddress).contains { if case .session(ids.alice, .writable) = $0 { true } else { false } })
        #expect(try pair.alice.write([1], channel: 1, session: ids.alice, now: pair.wire.now) == .accepted)
    }

    @Test("A live write gets in when bulk has filled the send buffer, and goes first")
    func liveIsNotHeldBehindBulk() throws {
        var session = SessionConfiguration()
        session.sendBufferLimit = 65_536
        let pair = try Pair(session: session)
        let ids = try pair.connect()
        try pair.alice.configureChannel(3, ChannelConfiguration(mode: .messages, priority: .bulk), session: ids.alice, now: pair.wire.now)
        try pair.alice.configureChannel(2, .live(priority: .video), session: ids.alice, now: pair.wire.now)
        while try pair.alice.write([UInt8](repeating: 7, count: 16_384), channel: 3, session: ids.alice, now: pair.wire.now) == .accepted {}
        #expect(try pair.alice.write([UInt8](repeating: 1, count: 8_000), channel: 2, session: ids.alice, now: pair.wire.now) == .accepted)
        pair.wire.run(for: .milliseconds(200))
        let messages = pair.wire.takeEvents(bobAddress).compactMap { event -> UInt16? in
            if case .session(_, .message(let message)) = event { return message.channel }
            return nil
        }
        #expect(messages.first == 2, "the live message is delivered before the bulk backlog: \(messages)")
        #expect(messages.filter { $0 == 3 }.count == 3)
    }

    @Test("Unreliable datagrams: size-checked, never retransmitted")
    func datagrams() throws {
        let pair = try Pair()
        let ids = try pair.connect()
        try pair.alice.configureChannel(5, .unreliable, session: ids.alice, now: pair.wire.now)
        let limit = try #require(pair.alice.maximumDatagramPayload(for: ids.alice))
        #expect(throws: TransportError(.messageTooLarge, "")) {
            try pair.alice.write([UInt8](repeating: 0, count: limit + 1), channel: 5, session: ids.alice, now: pair.wire.now)
        }
        var dropNext = true
        pair.wire.filter = { datagram in
            guard datagram.from == aliceAddress else { return datagram }
            defer { dropNext = false }
            return dropNext ? nil : datagram
        }
        _ = try pair.alice.write([1, 2, 3], channel: 5, session: ids.alice, now: pair.wire.now)
        pair.wire.settle()
        _ = try pair.alice.write([4, 5, 6], channel: 5, session: ids.alice, now: pair.wire.now)
        pair.wire.run(for: .seconds(1))
        let received = pair.wire.takeEvents(bobAddress).compactMap { if case .session(_, .datagram(let message)) = $0 { message.payload } else { nil } }
        #expect(received == [[4, 5, 6]])
    }

    @Test("An ACK delay of any size from the peer is clamped, not multiplied into a trap")
    func hugeAckDelay() throws {
        let pair = try Pair()
        let ids = try pair.connect()
        _ = try pair.alice.write([UInt8](repeating: 1, count: 2000), channel: 2, session: ids.alice, now: pair.wire.now)
        pair.wire.run(for: .milliseconds(200))
        let session = try #require(pair.alice.session(ids.alice))
        for delay: UInt64 in [(1 << 62) - 1, 9_300_000_000_000_000, UInt64(Int64.max) / 1000 + 1] {
            session.onAck(AckFrame(ranges: [0...3], delayMicroseconds: delay), now: pair.wire.now)
        }
        pair.wire.run(for: .seconds(1))
        #expect(pair.alice.isOpen(ids.alice))
        let rtt = try #require(pair.alice.stats(for: ids.alice)).smoothedRTT
        #expect(rtt < .seconds(1), "a clamped delay leaves the RTT sane: \(rtt)")
    }
}
