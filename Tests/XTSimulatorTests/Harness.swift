// Test fixtures: two simulated endpoints that trust each other, and a bulk transfer that
// checks every received byte against what was sent.
import Testing
import XTransport
#if canImport(Glibc)
import Glibc
#endif
import XTSimulator

let clientAddress = NetworkAddress.ipv4(10, 0, 0, 1, port: 4000)
let serverAddress = NetworkAddress.ipv4(10, 0, 0, 2, port: 5000)

/// Deterministic test bytes.
func testPayload(count: Int, seed: UInt64) -> [UInt8] {
    var generator = SplitMix64(seed: seed)
    var bytes = [UInt8](repeating: 0, count: (count + 7) / 8 * 8)
    bytes.withUnsafeMutableBytes { raw in
        let words = raw.bindMemory(to: UInt64.self)
        for index in words.indices { words[index] = generator.next() }
    }
    bytes.removeLast(bytes.count - count)
    return bytes
}

/// Whether `bytes` equals `payload` at `offset` (memcmp: fast even in debug builds).
func matches(_ bytes: [UInt8], in payload: [UInt8], at offset: Int) -> Bool {
    guard offset + bytes.count <= payload.count else { return false }
    return bytes.withUnsafeBytes { received in
        payload.withUnsafeBytes { expected in
            memcmp(received.baseAddress!, expected.baseAddress! + offset, bytes.count) == 0
        }
    }
}

/// Two endpoints on a simulated network, each authorizing the other.
struct SimulatedPair {
    let simulator: NetworkSimulator
    let client: NetworkSimulator.Node
    let server: NetworkSimulator.Node
    let clientIdentity = NodeIdentity()
    let serverIdentity = NodeIdentity()

    init(seed: UInt64, conditions: LinkConditions = .clean(), session: SessionConfiguration = .default,
         serverAdmission: Admission? = nil) throws {
        simulator = NetworkSimulator(seed: seed, conditions: conditions)
        let start = simulator.now
        var clientConfiguration = EndpointConfiguration(identity: clientIdentity, admission: .authorized(AuthorizedKeys([serverIdentity.publicKey: "server"])),
                                                        session: session, seed: seed &+ 1)
        clientConfiguration.wallClockOrigin = 1_700_000_000_000_000_000
        var serverConfiguration = EndpointConfiguration(identity: serverIdentity,
                                                        admission: serverAdmission ?? .authorized(AuthorizedKeys([clientIdentity.publicKey: "client"])),
                                                        session: session, seed: seed &+ 2)
        serverConfiguration.wallClockOrigin = 1_700_000_000_000_000_000
        client = simulator.add(try Endpoint(configuration: clientConfiguration, now: start), at: clientAddress)
        server = simulator.add(try Endpoint(configuration: serverConfiguration, now: start), at: serverAddress)
    }
}

/// Streams `payload` from client to server on one channel and verifies every byte on arrival.
final class BulkTransfer {
    let payload: [UInt8]
    let channel: ChannelConfiguration
    var written = 0
    var received = 0
    var mismatchAt: Int?
    var clientSession: SessionID?
    var serverSession: SessionID?
    var closedReasons: [CloseReason] = []
    var failures: [TransportError] = []
    let chunk = 65_536

    init(payload: [UInt8], channel: ChannelConfiguration = .stream) {
        self.payload = payload
        self.channel = channel
    }

    var complete: Bool { received == payload.count }

    func attach(to pair: SimulatedPair) {
        pair.client.onEvent = { [self] event, endpoint, now in
            switch event {
            case .connected(let id, _, _):
                clientSession = id
                try? endpoint.configureChannel(1, channel, session: id, now: now)
                pump(endpoint, now: now)
            case .connectFailed(_, let error):
                failures.append(error)
            case .session(_, .writable):
                pump(endpoint, now: now)
            case .session(_, .closed(let reason)):
                closedReasons.append(reason)
            default:
                break
            }
        }
        pair.server.onEvent = { [self] event, _, _ in
            switch event {
            case .accepted(let id, _, _, _):
                serverSession = id
            case .session(_, .streamData(_, let bytes)):
                verify(bytes)
            case .session(_, .message(let message)):
                verify(message.payload)
            default:
                break
            }
        }
        _ = pair.client.endpoint.connect(to: serverAddress, peerKey: pair.serverIdentity.publicKey, now: pair.simulator.now)
    }

    private func verify(_ bytes: [UInt8]) {
        if mismatchAt == nil, !bytes.isEmpty, !matches(bytes, in: payload, at: received) {
            mismatchAt = received
        }
        received += bytes.count
    }

    private func pump(_ endpoint: Endpoint, now: Timestamp) {
        guard let id = clientSession else { return }
        while written < payload.count {
            let end = min(written + chunk, payload.count)
            guard let outcome = try? endpoint.write(Array(payload[written..<end]), channel: 1, session: id, now: now),
                  outcome == .accepted else { return }
            written = end
        }
    }
}
