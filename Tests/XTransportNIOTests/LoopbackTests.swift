// Real UDP on loopback through the SwiftNIO driver: sessions, messages both ways, a
// byte-verified bulk transfer, backpressure, and the errors a user meets (port in use,
// unreachable peer, unauthorized key).
import Testing
import XTransport
import XTransportNIO

func makeEndpoint(_ identity: NodeIdentity, admits: [PublicKey], session: SessionConfiguration = .default) async throws -> TransportEndpoint {
    var keys = AuthorizedKeys()
    for key in admits { keys.insert(key) }
    return try await TransportEndpoint.bind(host: "127.0.0.1", port: 0,
                                            configuration: EndpointConfiguration(identity: identity, admission: .authorized(keys), session: session))
}

@Suite("UDP on loopback", .serialized)
struct LoopbackTests {
    @Test("Two endpoints exchange messages and a byte-identical 20 MB stream")
    func exchange() async throws {
        let serverIdentity = NodeIdentity()
        let clientIdentity = NodeIdentity()
        let server = try await makeEndpoint(serverIdentity, admits: [clientIdentity.publicKey])
        let client = try await makeEndpoint(clientIdentity, admits: [])
        let payload = (0..<(20 << 20)).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ $0 >> 13) }

        async let accepted: TransportSession? = {
            for await session in server.incomingSessions { return session }
            return nil
        }()
        let session = try await client.connect(to: server.localAddress, peerKey: serverIdentity.publicKey)
        let serverSession = try #require(await accepted)
        #expect(serverSession.peerKey == clientIdentity.publicKey)

        try await session.configure(channel: 1, .messages)
        try await session.configure(channel: 2, .stream)
        try await session.send(Array("hello".utf8), on: 1)
        let sender = Task {
            var offset = 0
            while offset < payload.count {
                let end = min(offset + 100_000, payload.count)
                try await session.send(Array(payload[offset..<end]), on: 2)
                offset = end
            }
        }
        var received: [UInt8] = []
        received.reserveCapacity(payload.count)
        var greeting: [UInt8]?
        for try await item in serverSession.inbound {
            switch item {
            case .message(let message): greeting = message.payload
            case .bytes(_, let bytes): received += bytes
            default: break
            }
            if received.count >= payload.count && greeting != nil { break }
        }
        try await sender.value
        #expect(greeting == Array("hello".utf8))
        #expect(received == payload)

        // And the other way round.
        try await serverSession.configure(channel: 1, .messages)
        try await serverSession.send(Array("welcome".utf8), on: 1)
        var iterator = session.inbound.makeAsyncIterator()
        let reply = try await iterator.next()
        #expect(reply == .message(Message(channel: 1, route: RoutingHeader(channel: 1), sequence: 0, payload: Array("welcome".utf8))))

        let stats = try #require(try await session.stats())
        #expect(stats.payloadBytesAcknowledged >= UInt64(payload.count))
        #expect(stats.smoothedRTT > .zero)
        await session.close()
        #expect(session.closedReason == .local)
        await client.close()
        await server.close()
    }

    @Test("A port in use is a clear error")
    func portInUse() async throws {
        let first = try await makeEndpoint(NodeIdentity(), admits: [])
        await #expect(throws: TransportError(.io, "")) {
            _ = try await TransportEndpoint.bind(host: "127.0.0.1", port: Int(first.localAddress.port),
                                                 configuration: EndpointConfiguration(identity: NodeIdentity(), admission: .open))
        }
        await first.close()
    }

    @Test("A peer that does not admit our key says so at once; an unreachable one times out; each with a clear error")
    func unreachable() async throws {
        var session = SessionConfiguration()
        session.handshakeTimeout = .seconds(1)
        let client = try await makeEndpoint(NodeIdentity(), admits: [], session: session)
        let silentIdentity = NodeIdentity()
        let refusing = try await makeEndpoint(silentIdentity, admits: [NodeIdentity().publicKey])
        let error = await #expect(throws: TransportError.self) {
            _ = try await client.connect(to: refusing.localAddress, peerKey: silentIdentity.publicKey)
        }
        #expect(error?.code == .refusedByPeer)
        #expect(error?.reason.contains("authorized keys") == true)
        #expect(try await refusing.stats().handshakesRefusedUnauthorized >= 1)
        await #expect(throws: TransportError(.handshakeTimeout, "")) {
            _ = try await client.connect(to: .ipv4(127, 0, 0, 1, port: 9), peerKey: silentIdentity.publicKey)
        }
        await client.close()
        await refusing.close()
    }

    @Test("A receiver that does not read makes the sender wait; reading lets it finish")
    func backpressure() async throws {
        let serverIdentity = NodeIdentity()
        let clientIdentity = NodeIdentity()
        var configuration = SessionConfiguration()
        configuration.sendBufferLimit = 1 << 20
        configuration.channelWindow = 1 << 20
        let server = try await TransportEndpoint.bind(
            host: "127.0.0.1", port: 0,
            configuration: EndpointConfiguration(identity: serverIdentity, admission: .authorized(AuthorizedKeys([clientIdentity.publicKey: ""])), session: configuration),
            inboundHighWater: 1 << 20)
        let client = try await makeEndpoint(clientIdentity, admits: [], session: configuration)
        async let accepted: TransportSession? = {
            for await session in server.incomingSessions { return session }
            return nil
        }()
        let session = try await client.connect(to: server.localAddress, peerKey: serverIdentity.publicKey)
        let serverSession = try #require(await accepted)
        try await session.configure(channel: 1, .stream)
        let total = 16 << 20
        let sender = Task {
            for _ in 0..<(total / 65_536) { try await session.send([UInt8](repeating: 9, count: 65_536), on: 1) }
        }
        try await Task.sleep(for: .seconds(1))
        // Window (1 MiB) + the driver's buffer (1 MiB) + the send buffer (1 MiB) is far below 16 MiB.
        let stalled = try #require(try await session.stats())
        #expect(stalled.sendBufferBytes <= (1 << 20) + 65_536)
        #expect(stalled.payloadBytesAcknowledged < UInt64(total / 2))
        var received = 0
        for try await item in serverSession.inbound {
            if case .bytes(_, let bytes) = item { received += bytes.count }
            if received >= total { break }
        }
        try await sender.value
        #expect(received == total)
        await client.close()
        await server.close()
    }
}

/// SwiftNIO closes a datagram socket on any send error but EMSGSIZE and EHOSTUNREACH: one
/// datagram to an unusable address took every session on the socket with it.
@Suite("A socket's other sessions survive a bad destination", .serialized)
struct SocketRecoveryTests {
    /// Two endpoints with a session, and a check that messages still cross both ways.
    static func pair(session: SessionConfiguration = .default) async throws -> (TransportEndpoint, TransportEndpoint, TransportSession, TransportSession) {
        let serverIdentity = NodeIdentity()
        let clientIdentity = NodeIdentity()
        let server = try await makeEndpoint(serverIdentity, admits: [clientIdentity.publicKey])
        let client = try await makeEndpoint(clientIdentity, admits: [], session: session)
        async let accepted: TransportSession? = {
            for await session in server.incomingSessions { return session }
            return nil
        }()
        let session = try await client.connect(to: server.localAddress, peerKey: serverIdentity.publicKey)
        let serverSession = try #require(await accepted)
        try await session.configure(channel: 1, .messages)
        try await serverSession.configure(channel: 1, .messages)
        return (server, client, session, serverSession)
    }

    static func exchange(_ a: TransportSession, _ b: TransportSession, _ text: String) async throws {
        try await a.send(Array(text.utf8), on: 1)
        var iterator = b.inbound.makeAsyncIterator()
        guard case .message(let message)? = try await iterator.next() else { Issue.record("nothing arrived"); return }
        #expect(String(decoding: message.payload, as: UTF8.self) == text)
    }

    @Test("A handshake to an address the socket cannot reach is dropped, and the session beside it carries on")
    func unreachableDestination() async throws {
        var session = SessionConfiguration()
        session.handshakeTimeout = .seconds(1)
        let (server, client, toServer, fromClient) = try await Self.pair(session: session)
        // An IPv6 address from an IPv4 socket: the kernel refuses it (nothing leaves the machine).
        async let doomed: Void = {
            _ = try? await client.connect(to: NetworkAddress(host: .v6(high: 0, low: 1), port: 9), peerKey: NodeIdentity().publicKey)
        }()
        try await Task.sleep(for: .milliseconds(300))
        try await Self.exchange(toServer, fromClient, "still here")
        try await Self.exchange(fromClient, toServer, "and back")
        let figures = await client.socketRecoveries()
        #expect(figures.droppedUnroutable > 0)
        #expect(figures.reopened == 0)
        _ = await doomed
        await client.close()
        await server.close()
    }
}
