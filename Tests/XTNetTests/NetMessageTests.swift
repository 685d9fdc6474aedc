// The node network's control messages: every kind round-trips, and truncated or garbage
// input is refused with a typed error, never a crash.
import Testing
import XTNet
import XTransport

@Suite("Net messages")
struct NetMessageTests {
    static let samples: [NetMessage] = [
        .subscribe(channel: 7),
        .unsubscribe(channel: 65_535),
        .offerPort(port: 554, service: "rtsp"),
        .data(NetEnvelope(id: 1 << 40, route: RoutingHeader(routeCode: .unicast, to: NodeID(area: 1, local: 2), channel: 9,
                                                             from: NodeID(area: 3, local: 4), netCode: 5, controlCode: 6),
                          toName: "garage-cam", payload: Array("motion".utf8))),
        .data(NetEnvelope(id: 0, route: RoutingHeader(routeCode: .channel, channel: 30), payload: [])),
        .accepted(id: 42),
        .welcome,
        .statusRequest(id: 5),
        .statusReport(id: 5, json: Array("[]".utf8)),
        .undeliverable(id: 43, reason: "no node named 'x' is connected"),
        .multicastJoin(MulticastStreamDescriptor(channel: 7, stream: 0xDEAD_BEEF, key: Array(repeating: 9, count: 32), firstSequence: 1 << 33,
                                                 group: .ipv4(239, 77, 0, 7, port: 5960))),
        .multicastJoin(MulticastStreamDescriptor(channel: 8, stream: 1, key: Array(repeating: 1, count: 32), firstSequence: 1, group: nil)),
        .multicastReception(channel: 7, stream: 3, receiving: true),
        .nack(channel: 7, stream: 3, ranges: [4..<6, 9..<10, 1 << 40..<(1 << 40) + 300]),
        .relay(datagram: Array(repeating: 0xD1, count: 40)),
        .activity("in a call with phone (direct)"),
        .activity(""),
    ]

    @Test("Long text is cut at a character's edge, so it still reads")
    func longText() throws {
        let long = String(repeating: "é", count: 200)  // 400 bytes of UTF-8
        guard case .activity(let text) = try NetMessage.decode(NetMessage.activity(long).encoded()) else {
            Issue.record("not an activity")
            return
        }
        #expect(text == String(repeating: "é", count: 127))
    }

    @Test("Every kind round-trips", arguments: samples)
    func roundTrip(_ message: NetMessage) throws {
        #expect(try NetMessage.decode(message.encoded()) == message)
    }

    @Test("Every truncation and trailing garbage is refused with a typed error", arguments: samples)
    func truncations(_ message: NetMessage) {
        let bytes = message.encoded()
        for length in 0..<bytes.count {
            #expect(throws: WireError.self) { try NetMessage.decode(Array(bytes.prefix(length))) }
        }
        #expect(throws: WireError.self) { try NetMessage.decode(bytes + [0]) }
    }

    @Test("A NACK with an empty or huge range is refused")
    func badNack() {
        var empty = NetMessage.nack(channel: 1, stream: 1, ranges: [5..<6]).encoded()
        empty[empty.count - 1] = 0  // length 0
        #expect(throws: WireError.self) { try NetMessage.decode(empty) }
        let huge = NetMessage.nack(channel: 1, stream: 1, ranges: [0..<1_000_000]).encoded()
        #expect(throws: WireError.self) { try NetMessage.decode(huge) }
    }

    @Test("Unknown kinds and routecodes are refused")
    func unknown() {
        #expect(throws: WireError.self) { try NetMessage.decode([99, 0, 1]) }
        var data = NetMessage.data(NetEnvelope(id: 1, route: RoutingHeader(), payload: [])).encoded()
        data[2] = 77  // the routecode, after the kind and a one-byte id
        #expect(throws: WireError.self) { try NetMessage.decode(data) }
    }
}
