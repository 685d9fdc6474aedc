// Many sessions on one endpoint (one UDP socket), told apart by connection id, and peers
// that both connect and accept.
import Testing
import XTransport
import XTSimulator

@Suite("Many sessions")
struct ManySessionsTests {
    @Test("200 clients hold sessions with one listener and each gets its own messages back")
    func manyClients() throws {
        let simulator = NetworkSimulator(seed: 31, conditions: .clean(delay: .milliseconds(2)))
        let serverIdentity = NodeIdentity()
        let server = simulator.add(try Endpoint(configuration: EndpointConfiguration(identity: serverIdentity, admission: .open, seed: 1), now: simulator.now),
                                   at: serverAddress)
        server.onEvent = { event, endpoint, now in
            // Echo every message on the session it came from.
            if case .session(let id, .message(let message)) = event {
                _ = try? endpoint.write(message.payload, channel: message.channel, session: id, now: now)
            }
        }
        var echoes: [Int: [UInt8]] = [:]
        for index in 0..<200 {
            let address = NetworkAddress.ipv4(10, 1, UInt8(index >> 8), UInt8(index & 0xff), port: 7000)
            let client = simulator.add(try Endpoint(configuration: EndpointConfiguration(identity: NodeIdentity(), admission: .open, seed: UInt64(100 + index)),
                                                    now: simulator.now), at: address)
            client.onEvent = { event, endpoint, now in
                switch event {
                case .connected(let id, _, _): _ = try? endpoint.write(Array("client \(index)".utf8), channel: 1, session: id, now: now)
                case .session(_, .message(let message)): echoes[index] = message.payload
                default: break
                }
            }
            _ = client.endpoint.connect(to: serverAddress, peerKey: serverIdentity.publicKey, now: simulator.now)
        }
        #expect(simulator.run(for: .seconds(10)) { echoes.count == 200 })
        #expect(server.endpoint.sessionCount == 200)
        for index in 0..<200 { #expect(echoes[index] == Array("client \(index)".utf8)) }
    }

    @Test("Two peers connect to each other at once: both sessions work (peer to peer)")
    func simultaneousOpen() throws {
        let pair = try SimulatedPair(seed: 32)
        var clientGot: [[UInt8]] = []
        var serverGot: [[UInt8]] = []
        pair.client.onEvent = { event, endpoint, now in
            switch event {
            case .connected(let id, _, _): _ = try? endpoint.write([1], channel: 1, session: id, now: now)
            case .session(_, .message(let message)): clientGot.append(message.payload)
            default: break
            }
        }
        pair.server.onEvent = { event, endpoint, now in
            switch event {
            case .connected(let id, _, _): _ = try? endpoint.write([2], channel: 1, session: id, now: now)
            case .session(_, .message(let message)): serverGot.append(message.payload)
            default: break
            }
        }
        _ = pair.client.endpoint.connect(to: serverAddress, peerKey: pair.serverIdentity.publicKey, now: pair.simulator.now)
        _ = pair.server.endpoint.connect(to: clientAddress, peerKey: pair.clientIdentity.publicKey, now: pair.simulator.now)
        #expect(pair.simulator.run(for: .seconds(2)) { clientGot.count == 1 && serverGot.count == 1 })
        #expect(clientGot == [[2]] && serverGot == [[1]])
        #expect(pair.client.endpoint.sessionCount == 2 && pair.server.endpoint.sessionCount == 2)
    }
}
