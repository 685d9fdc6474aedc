// Security of the handshake and of established sessions: mutual authentication, refusal of
// unknown keys, tampered and replayed packets dropped and counted, stateless cookies under a
// flood of spoofed handshakes, low-order keys, and key rotation.
import Testing
@testable import XTransport

@Suite("Handshake and packet security")
struct HandshakeTests {
    @Test("Both sides authenticate and exchange their hello bytes")
    func handshake() throws {
        let pair = try Pair()
        let id = pair.alice.connect(to: bobAddress, peerKey: pair.bobIdentity.publicKey, now: pair.wire.now)
        pair.wire.run(for: .milliseconds(20))
        let aliceEvents = pair.wire.takeEvents(aliceAddress)
        let bobEvents = pair.wire.takeEvents(bobAddress)
        #expect(aliceEvents.contains { if case .connected(id, pair.bobIdentity.publicKey, Array("bob".utf8)) = $0 { true } else { false } })
        #expect(bobEvents.contains { if case .accepted(_, pair.aliceIdentity.publicKey, aliceAddress, Array("alice".utf8)) = $0 { true } else { false } })
        #expect(pair.bob.stats.handshakesAccepted == 1)
        #expect(pair.alice.stats.handshakesCompleted == 1)
    }

    struct CipherCase: Sendable, CustomTestStringConvertible {
        var alice: [PacketCipher]
        var bob: [PacketCipher]
        var agreed: PacketCipher?
        var testDescription: String { "alice \(alice), bob \(bob) → \(agreed.map(\.description) ?? "refused")" }
    }

    @Test("The packet cipher is agreed: AES-256-GCM only when both put it first, else ChaCha20-Poly1305", arguments: [
        CipherCase(alice: [.aes256GCM, .chacha20Poly1305], bob: [.aes256GCM, .chacha20Poly1305], agreed: .aes256GCM),
        CipherCase(alice: [.aes256GCM, .chacha20Poly1305], bob: [.chacha20Poly1305, .aes256GCM], agreed: .chacha20Poly1305),
        CipherCase(alice: [.chacha20Poly1305, .aes256GCM], bob: [.aes256GCM, .chacha20Poly1305], agreed: .chacha20Poly1305),
        CipherCase(alice: [.chacha20Poly1305], bob: [.chacha20Poly1305], agreed: .chacha20Poly1305),
        CipherCase(alice: [.aes256GCM], bob: [.aes256GCM, .chacha20Poly1305], agreed: .aes256GCM),
        CipherCase(alice: [.chacha20Poly1305], bob: [.aes256GCM], agreed: nil),
    ])
    func cipherAgreement(_ test: CipherCase) throws {
        var aliceSession = SessionConfiguration()
        aliceSession.packetCiphers = test.alice
        aliceSession.handshakeTimeout = .seconds(1)
        var bobSession = SessionConfiguration()
        bobSession.packetCiphers = test.bob
        let pair = try Pair(session: aliceSession, bobSession: bobSession)
        guard let agreed = test.agreed else {
            let id = pair.alice.connect(to: bobAddress, peerKey: pair.bobIdentity.publicKey, now: pair.wire.now)
            pair.wire.run(for: .seconds(2), step: .milliseconds(50))
            #expect(pair.bob.sessionCount == 0)
            #expect(pair.bob.stats.handshakesRefusedCipher >= 1)
            #expect(pair.wire.takeEvents(aliceAddress).contains { if case .connectFailed(id, _) = $0 { true } else { false } })
            return
        }
        let ids = try pair.connect()
        #expect(pair.alice.stats(for: ids.alice)?.packetCipher == agreed.description)
        #expect(pair.bob.stats(for: ids.bob)?.packetCipher == agreed.description)
        // Data flows both ways under the agreed cipher.
        _ = try pair.alice.write(Array("ping".utf8), channel: 1, session: ids.alice, now: pair.wire.now)
        _ = try pair.bob.write(Array("pong".utf8), channel: 1, session: ids.bob, now: pair.wire.now)
        pair.wire.run(for: .milliseconds(50))
        #expect(pair.wire.takeEvents(bobAddress).contains { if case .session(_, .message(let m)) = $0 { m.payload == Array("ping".utf8) } else { false } })
        #expect(pair.wire.takeEvents(aliceAddress).contains { if case .session(_, .message(let m)) = $0 { m.payload == Array("pong".utf8) } else { false } })
    }

    @Test("Handshake parameters carry the cipher offer; ciphers this version does not know are passed over")
    func cipherOfferEncoding() throws {
        let parameters = HandshakeParameters(timestamp: 7, initialChannelWindow: 1 << 20, hello: [1, 2, 3],
                                             ciphers: [.aes256GCM, .chacha20Poly1305])
        #expect(try HandshakeParameters.decode(parameters.encoded()) == parameters)
        var bytes = HandshakeParameters(timestamp: 7, initialChannelWindow: 1, hello: [], ciphers: []).encoded()
        bytes.removeLast(2)  // the cipher count and the reset token length (both 0)
        bytes += [3, 9, 2, 1, 0]  // three ciphers, the first unknown; no token
        #expect(try HandshakeParameters.decode(bytes).ciphers == [.aes256GCM, .chacha20Poly1305])
    }

    @Test("A key that is not authorized is refused, and the initiator is told so at once (authenticated), so it can say what to fix")
    func unknownKeyRefused() throws {
        var session = SessionConfiguration()
        session.handshakeTimeout = .seconds(3)
        let pair = try Pair(bobAdmits: .authorized(AuthorizedKeys([NodeIdentity().publicKey: "someone else"])), session: session)
        let id = pair.alice.connect(to: bobAddress, peerKey: pair.bobIdentity.publicKey, now: pair.wire.now)
        pair.wire.run(for: .milliseconds(200), step: .milliseconds(50))
        #expect(pair.bob.sessionCount == 0 && pair.alice.sessionCount == 0)
        #expect(pair.bob.stats.handshakesRefusedUnauthorized >= 1)
        #expect(pair.alice.stats.handshakesRefusedByPeer == 1)
        #expect(pair.wire.takeEvents(bobAddress).contains { if case .refused(pair.aliceIdentity.publicKey, aliceAddress) = $0 { true } else { false } })
        let failure = pair.wire.takeEvents(aliceAddress).compactMap { event -> TransportError? in
            if case .connectFailed(id, let error) = event { error } else { nil }
        }
        #expect(failure.map(\.code) == [.refusedByPeer])
        #expect(failure.first?.reason.contains(pair.aliceIdentity.publicKey.description) == true)
    }

    @Test("A refusal that does not come from the key dialled (a forger without it) is not believed")
    func forgedRefusalIgnored() throws {
        var session = SessionConfiguration()
        session.handshakeTimeout = .seconds(1)
        // Bob is not who Alice dialled: his authenticated refusal cannot open under the key she expects.
        let pair = try Pair(bobAdmits: .authorized(AuthorizedKeys([NodeIdentity().publicKey: "someone else"])), session: session)
        let id = pair.alice.connect(to: bobAddress, peerKey: NodeIdentity().publicKey, now: pair.wire.now)
        pair.wire.run(for: .seconds(2), step: .milliseconds(50))
        #expect(pair.alice.stats.handshakesRefusedByPeer == 0)
        #expect(pair.wire.takeEvents(aliceAddress).contains { if case .connectFailed(id, TransportError(.handshakeTimeout, "")) = $0 { true } else { false } })
    }

    @Test("An initiator with the wrong key for the listener fails mac1 and gets nothing")
    func wrongListenerKey() throws {
        let pair = try Pair()
        _ = pair.alice.connect(to: bobAddress, peerKey: NodeIdentity().publicKey, now: pair.wire.now)
        pair.wire.run(for: .milliseconds(100))
        #expect(pair.bob.stats.handshakeMACFailures >= 1)
        #expect(pair.bob.sessionCount == 0)
    }

    @Test("Tampered data packets are dropped and counted; the session survives")
    func tampered() throws {
        let pair = try Pair()
        let ids = try pair.connect()
        pair.wire.captured.removeAll()
        _ = try pair.alice.write(Array("hello".utf8), channel: 1, session: ids.alice, now: pair.wire.now)
        pair.wire.filter = { datagram in
            guard datagram.from == aliceAddress else { return datagram }
            var bad = datagram
            bad.bytes[bad.bytes.count - 20] ^= 0x40   // flip a ciphertext bit
            return bad
        }
        pair.wire.settle()
        #expect(pair.bob.stats(for: ids.bob)?.packetsRejectedAuthentication ?? 0 >= 1)
        #expect(!pair.wire.takeEvents(bobAddress).contains { if case .session(_, .message) = $0 { true } else { false } })
        // A flipped header bit (key phase, packet number) must fail authentication too.
        pair.wire.filter = { datagram in
            guard datagram.from == aliceAddress else { return datagram }
            var bad = datagram
            bad.bytes[12] ^= 0x01
            return bad
        }
        _ = try pair.alice.write(Array("again".utf8), channel: 1, session: ids.alice, now: pair.wire.now)
        pair.wire.settle()
        #expect(pair.bob.stats(for: ids.bob)?.packetsRejectedAuthentication ?? 0 >= 2)
        // Clean traffic still flows: retransmission delivers both messages.
        pair.wire.filter = { $0 }
        pair.wire.run(for: .seconds(1))
        let messages = pair.wire.takeEvents(bobAddress).compactMap { if case .session(_, .message(let message)) = $0 { message.payload } else { nil } }
        #expect(messages == [Array("hello".utf8), Array("again".utf8)])
    }

    @Test("Replayed data packets are dropped and counted, and deliver nothing twice")
    func replayedData() throws {
        let pair = try Pair()
        let ids = try pair.connect()
        pair.wire.captured.removeAll()
        _ = try pair.alice.write(Array("once".utf8), channel: 1, session: ids.alice, now: pair.wire.now)
        pair.wire.settle()
        let dataPackets = pair.wire.captured.filter { $0.from == aliceAddress }
        #expect(!dataPackets.isEmpty)
        for packet in dataPackets { pair.wire.inject(packet) }
        pair.wire.settle()
        #expect(pair.bob.stats(for: ids.bob)?.packetsRejectedReplay ?? 0 == UInt64(dataPackets.count))
        let messages = pair.wire.takeEvents(bobAddress).filter { if case .session(_, .message) = $0 { true } else { false } }
        #expect(messages.count == 1)
    }

    @Test("A replayed handshake initiation is refused and creates no session")
    func replayedInitiation() throws {
        let pair = try Pair()
        _ = try pair.connect()
        let initiation = try #require(pair.wire.captured.first { $0.from == aliceAddress && $0.bytes.first == 0x11 })
        pair.wire.inject(initiation)
        pair.wire.settle()
        #expect(pair.bob.stats.handshakesRefusedReplay == 1)
        #expect(pair.bob.sessionCount == 1)
    }

    @Test("Under load the listener demands a cookie; a real initiator still gets through")
    func cookieRoundTrip() throws {
        let pair = try Pair(cookieThreshold: 0)
        _ = try pair.connect()
        #expect(pair.bob.stats.cookieRepliesSent == 1)
        #expect(pair.bob.sessionCount == 1)
    }

    @Test("A flood of spoofed handshakes allocates no per-source state")
    func spoofedFlood() throws {
        // The attacker knows Bob's public key and holds an authorized key, yet sends from
        // addresses it does not own: it can never return the cookie, so Bob keeps nothing.
        let pair = try Pair(cookieThreshold: 10)
        pair.wire.filter = { _ in nil }  // capture only
        for _ in 0..<1000 { _ = pair.alice.connect(to: bobAddress, peerKey: pair.bobIdentity.publicKey, now: pair.wire.now) }
        pair.wire.settle()
        let initiations = pair.wire.captured.filter { $0.bytes.first == 0x11 }
        #expect(initiations.count == 1000)
        for (index, initiation) in initiations.enumerated() {
            var spoofed = initiation
            spoofed.from = NetworkAddress.ipv4(10, UInt8(index >> 8), UInt8(index & 0xff), 1, port: 40_000)
            pair.wire.inject(spoofed)
        }
        // Cookie replies go to the spoofed addresses (nobody answers).
        pair.wire.settle()
        #expect(pair.bob.sessionCount <= 10, "only the first few, before the load threshold, got sessions")
        #expect(pair.bob.stats.cookieRepliesSent >= 990)
    }

    @Test("In open mode any key is admitted, after proving its address")
    func openMode() throws {
        let pair = try Pair(bobAdmits: .open)
        _ = try pair.connect()
        #expect(pair.bob.stats.cookieRepliesSent == 1)
        #expect(pair.bob.sessionCount == 1)
    }

    @Test("A low-order peer key is refused before any packet is sent")
    func lowOrderKey() throws {
        let pair = try Pair()
        let zeroKey = try PublicKey(bytes: [UInt8](repeating: 0, count: 32))
        let id = pair.alice.connect(to: bobAddress, peerKey: zeroKey, now: pair.wire.now)
        pair.wire.settle()
        #expect(pair.wire.takeEvents(aliceAddress).contains { if case .connectFailed(id, TransportError(.invalidKey, "")) = $0 { true } else { false } })
    }

    @Test("Garbage datagrams are counted and dropped without crashing")
    func garbageDatagrams() throws {
        let pair = try Pair()
        var generator = SplitMix64(seed: 99)
        for length in 0..<400 {
            var bytes = (0..<length).map { _ in UInt8(truncatingIfNeeded: generator.next()) }
            if length > 0 { bytes[0] = 0x10 | UInt8(length % 6) }  // valid version, every type
            pair.wire.inject(.init(from: aliceAddress, to: bobAddress, bytes: bytes))
        }
        let stats = pair.bob.stats
        #expect(stats.datagramsReceived == 400)
        #expect(stats.datagramsMalformed + stats.datagramsUnknownSession + stats.handshakeMACFailures == 400)
        #expect(pair.bob.sessionCount == 0)
    }

    @Test("The replay guard accepts reordered concurrent handshakes but not repeats")
    func replayGuard() {
        var guardian = HandshakeReplayGuard()
        let key = NodeIdentity().publicKey
        let first = guardian.accept(key, timestamp: 2_000_000_000_000)
        let reordered = guardian.accept(key, timestamp: 1_999_999_999_000)  // reordered, recent
        let repeated = guardian.accept(key, timestamp: 2_000_000_000_000)
        let ancient = guardian.accept(key, timestamp: 1_000_000_000_000)  // far older than the window
        #expect(first && reordered && !repeated && !ancient)
    }
}

@Suite("Stateless reset")
struct StatelessResetTests {
    @Test("A restarted peer answers with a reset; the session ends at once with a clear reason; forged resets are ignored")
    func restartedPeer() throws {
        let pair = try Pair()
        let ids = try pair.connect()
        // Bob restarts: same identity and address, no sessions.
        var bobConfiguration = EndpointConfiguration(identity: pair.bobIdentity,
                                                     admission: .authorized(AuthorizedKeys([pair.aliceIdentity.publicKey: "alice"])),
                                                     hello: Array("bob".utf8), seed: 3)
        bobConfiguration.wallClockOrigin = 1_700_000_000_000_000_000
        let restarted = try Endpoint(configuration: bobConfiguration, now: pair.wire.now)
        pair.wire.add(restarted, at: bobAddress)

        // A forged reset (right connection id, wrong token) changes nothing.
        let remote = try #require(pair.bob.sessionIDs.first).rawValue
        var forged: [UInt8] = [0x16, UInt8(remote >> 24), UInt8(remote >> 16 & 0xff), UInt8(remote >> 8 & 0xff), UInt8(remote & 0xff)]
        forged += [UInt8](repeating: 0xAB, count: 16)
        pair.wire.inject(.init(from: bobAddress, to: aliceAddress, bytes: forged))
        #expect(pair.alice.stats.statelessResetsIgnored == 1)
        #expect(pair.alice.sessionCount == 1)

        _ = try pair.alice.write(Array("are you there".utf8), channel: 1, session: ids.alice, now: pair.wire.now)
        pair.wire.run(for: .milliseconds(50))
        #expect(restarted.stats.statelessResetsSent >= 1)
        #expect(pair.alice.stats.statelessResetsReceived == 1)
        #expect(pair.alice.sessionCount == 0)
        #expect(pair.wire.takeEvents(aliceAddress).contains {
            if case .session(ids.alice, .closed(.peerReset(let reason))) = $0 { reason.contains("restarted") } else { false }
        })
    }

    @Test("Data that overtakes the handshake's response (a jittery path) is held and delivered, not answered with a reset that kills the new session")
    func dataBeforeResponse() throws {
        let pair = try Pair()
        var held: [TestWire.Datagram] = []
        pair.wire.filter = { datagram in
            let type = datagram.bytes.withUnsafeBytes { try? PacketHeader.peekType($0) }
            guard datagram.from == bobAddress, type == .response else { return datagram }
            held.append(datagram)  // the response is delayed on the path
            return nil
        }
        let id = pair.alice.connect(to: bobAddress, peerKey: pair.bobIdentity.publicKey, now: pair.wire.now)
        pair.wire.settle()
        let accepted = try #require(pair.wire.takeEvents(bobAddress).compactMap { if case .accepted(let id, _, _, _) = $0 { id } else { nil } }.first)
        _ = try pair.bob.write(Array("welcome".utf8), channel: 1, session: accepted, now: pair.wire.now)
        pair.wire.run(for: .milliseconds(100))  // bob's packets (a path-MTU probe, the data) reach alice first
        #expect(pair.alice.stats.datagramsBeforeHandshake >= 1 && pair.alice.stats.statelessResetsSent == 0)
        pair.wire.filter = { $0 }
        for datagram in held { pair.wire.inject(datagram) }
        pair.wire.settle()
        let events = pair.wire.takeEvents(aliceAddress)
        #expect(events.contains { if case .connected(id, _, _) = $0 { true } else { false } })
        #expect(events.contains { if case .session(id, .message(let message)) = $0 { message.payload == Array("welcome".utf8) } else { false } },
                "the held data is delivered once the response comes")
        pair.wire.run(for: .milliseconds(200))
        #expect(pair.alice.sessionCount == 1 && pair.bob.sessionCount == 1 && pair.bob.stats.statelessResetsReceived == 0)
    }
}
