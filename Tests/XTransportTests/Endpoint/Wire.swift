// A hand-driven wire between endpoints for sans-IO tests: it moves datagrams, lets a test
// capture, drop, tamper with or replay them, and advances a virtual clock.
@testable import XTransport

final class TestWire {
    struct Datagram {
        var from: NetworkAddress
        var to: NetworkAddress
        var bytes: [UInt8]
    }

    var now = Timestamp(nanoseconds: 5_000_000_000)
    var endpoints: [NetworkAddress: Endpoint] = [:]
    /// Every datagram that was sent, in order.
    var captured: [Datagram] = []
    /// Decides each datagram's fate: return nil to drop it, or the datagram to deliver.
    var filter: (Datagram) -> Datagram? = { $0 }
    var events: [NetworkAddress: [EndpointEvent]] = [:]
    private var buffer = [UInt8](repeating: 0, count: 65_536)

    func add(_ endpoint: Endpoint, at address: NetworkAddress) { endpoints[address] = endpoint }

    /// Delivers a datagram as if it arrived from `from`.
    func inject(_ datagram: Datagram) {
        guard let endpoint = endpoints[datagram.to] else { return }
        datagram.bytes.withUnsafeBytes { endpoint.handle(datagram: $0, from: datagram.from, now: now) }
    }

    /// Moves datagrams until nothing is left to send, without advancing time.
    func settle() {
        var moved = true
        while moved {
            moved = false
            for (address, endpoint) in endpoints.sorted(by: { $0.key.port < $1.key.port }) {
                while let transmit = buffer.withUnsafeMutableBytes({ endpoint.pollTransmit(now: now, into: $0) }) {
                    let datagram = Datagram(from: address, to: transmit.destination, bytes: Array(buffer[0..<transmit.size]))
                    captured.append(datagram)
                    if let delivered = filter(datagram) { inject(delivered) }
                    moved = true
                }
                while let event = endpoint.pollEvent() { events[address, default: []].append(event) }
            }
        }
    }

    /// Advances time in steps, running timers and moving datagrams.
    func run(for duration: Duration, step: Duration = .milliseconds(5)) {
        let end = now.adding(duration)
        settle()
        while now < end {
            now = min(end, now.adding(step))
            for endpoint in endpoints.values where (endpoint.nextTimeout().map { $0 <= now } ?? false) {
                endpoint.handleTimeout(now: now)
            }
            settle()
        }
    }

    func takeEvents(_ address: NetworkAddress) -> [EndpointEvent] {
        defer { events[address] = [] }
        return events[address] ?? []
    }
}

let aliceAddress = NetworkAddress.ipv4(192, 168, 1, 10, port: 1000)
let bobAddress = NetworkAddress.ipv4(192, 168, 1, 20, port: 2000)

/// Alice (client) and Bob (listener) with configurable trust.
struct Pair {
    let wire = TestWire()
    let alice: Endpoint
    let bob: Endpoint
    let aliceIdentity: NodeIdentity
    let bobIdentity: NodeIdentity

    init(bobAdmits: Admission? = nil, session: SessionConfiguration = .default, bobSession: SessionConfiguration? = nil,
         cookieThreshold: Int = 500,
         aliceIdentity: NodeIdentity = NodeIdentity(), bobIdentity: NodeIdentity = NodeIdentity()) throws {
        self.aliceIdentity = aliceIdentity
        self.bobIdentity = bobIdentity
        var aliceConfiguration = EndpointConfiguration(identity: aliceIdentity, admission: .authorized(AuthorizedKeys()), session: session,
                                                       hello: Array("alice".utf8), seed: 1)
        aliceConfiguration.wallClockOrigin = 1_700_000_000_000_000_000
        var bobConfiguration = EndpointConfiguration(identity: bobIdentity,
                                                     admission: bobAdmits ?? .authorized(AuthorizedKeys([aliceIdentity.publicKey: "alice"])),
                                                     session: bobSession ?? session, hello: Array("bob".utf8), cookieThreshold: cookieThreshold, seed: 2)
        bobConfiguration.wallClockOrigin = 1_700_000_000_000_000_000
        alice = try Endpoint(configuration: aliceConfiguration, now: wire.now)
        bob = try Endpoint(configuration: bobConfiguration, now: wire.now)
        wire.add(alice, at: aliceAddress)
        wire.add(bob, at: bobAddress)
    }

    /// Connects Alice to Bob and returns both session ids.
    func connect() throws -> (alice: SessionID, bob: SessionID) {
        let id = alice.connect(to: bobAddress, peerKey: bobIdentity.publicKey, now: wire.now)
        wire.run(for: .milliseconds(50))
        let aliceEvents = wire.takeEvents(aliceAddress)
        let bobEvents = wire.takeEvents(bobAddress)
        guard aliceEvents.contains(where: { if case .connected(id, _, _) = $0 { true } else { false } }),
              let bobID = bobEvents.compactMap({ if case .accepted(let id, _, _, _) = $0 { id } else { nil } }).first
        else { throw TransportError(.handshakeTimeout, "no handshake: \(aliceEvents) \(bobEvents)") }
        return (id, bobID)
    }
}
