// The host's routing rules: unicast by id and by name, channel fan-out, port routing, clear
// errors for unknown destinations, the host vouching for senders, and refused identities.
import Testing
import XTNet
import XTransport

@Suite("Router")
struct RouterTests {
    let garage = NodeID(area: 1, local: 1)
    let porch = NodeID(area: 1, local: 2)
    let phone = NodeID(area: 2, local: 1)
    let keys = (0..<4).map { _ in NodeIdentity().publicKey }

    func router() throws -> Router {
        var router = Router()
        try router.join(id: garage, name: "garage", key: keys[0])
        try router.join(id: porch, name: "porch", key: keys[1])
        try router.join(id: phone, name: "phone", key: keys[2])
        return router
    }

    func data(_ id: UInt64, _ route: RoutingHeader, toName: String? = nil) -> NetMessage {
        .data(NetEnvelope(id: id, route: route, toName: toName, payload: Array("hi".utf8)))
    }

    @Test("Unicast by id and by name reaches one node; the sender is stamped by the host")
    func unicast() throws {
        var router = try router()
        let byID = router.handle(data(1, RoutingHeader(routeCode: .unicast, to: porch, from: NodeID(area: 9, local: 9))), from: garage)
        #expect(byID.count == 2)
        guard case .send(.data(let delivered), let to) = byID[0] else { Issue.record("no delivery: \(byID)"); return }
        #expect(to == porch)
        #expect(delivered.route.from == garage, "a spoofed source is overwritten")
        #expect(byID[1] == .send(.accepted(id: 1), to: garage))
        let byName = router.handle(data(2, RoutingHeader(routeCode: .unicast), toName: "phone"), from: garage)
        #expect(byName.first.map { if case .send(.data(let e), phone) = $0 { e.route.to == phone } else { false } } == true)
    }

    @Test("Unknown names and ids come back to the sender as a clear error")
    func unknownDestinations() throws {
        var router = try router()
        #expect(router.handle(data(3, RoutingHeader(routeCode: .unicast), toName: "attic"), from: garage)
                == [.send(.undeliverable(id: 3, reason: "no node named 'attic' is connected"), to: garage)])
        let missing = NodeID(area: 7, local: 7)
        #expect(router.handle(data(4, RoutingHeader(routeCode: .unicast, to: missing)), from: garage)
                == [.send(.undeliverable(id: 4, reason: "node 7.7 is not connected"), to: garage)])
    }

    @Test("A channel message reaches every subscriber but the sender; unsubscribing and leaving stop it")
    func channels() throws {
        var router = try router()
        _ = router.handle(.subscribe(channel: 30), from: porch)
        _ = router.handle(.subscribe(channel: 30), from: phone)
        _ = router.handle(.subscribe(channel: 30), from: garage)
        var actions = router.handle(data(5, RoutingHeader(routeCode: .channel, channel: 30)), from: garage)
        #expect(actions.compactMap { if case .send(.data, let to) = $0 { to } else { nil } } == [porch, phone])
        #expect(actions.last == .send(.accepted(id: 5), to: garage))
        _ = router.handle(.unsubscribe(channel: 30), from: porch)
        router.leave(phone)
        actions = router.handle(data(6, RoutingHeader(routeCode: .channel, channel: 30)), from: garage)
        #expect(actions == [.send(.accepted(id: 6), to: garage)])
    }

    @Test("Port routing needs the destination to serve the port")
    func ports() throws {
        var router = try router()
        _ = router.handle(.offerPort(port: 554, service: "rtsp"), from: porch)
        let served = router.handle(data(7, RoutingHeader(routeCode: .port, channel: 554), toName: "porch"), from: phone)
        #expect(served.first.map { if case .send(.data, porch) = $0 { true } else { false } } == true)
        #expect(router.handle(data(8, RoutingHeader(routeCode: .port, to: garage, channel: 554)), from: phone)
                == [.send(.undeliverable(id: 8, reason: "garage (1.1) serves nothing on port 554"), to: phone)])
    }

    @Test("Ids and names in use by another key, and claims that differ from the node list, are refused")
    func identities() throws {
        var router = try router()
        #expect(throws: JoinRefusal.idInUse(garage)) { try router.join(id: garage, name: "intruder", key: keys[3]) }
        #expect(throws: JoinRefusal.nameInUse("garage")) { try router.join(id: NodeID(area: 5, local: 5), name: "garage", key: keys[3]) }
        #expect(throws: JoinRefusal.self) {
            try router.join(id: NodeID(area: 1, local: 9), name: "porch2", key: keys[3], registered: (NodeID(area: 1, local: 8), "porch2"))
        }
        // The same key coming back (a reconnect) keeps its subscriptions.
        _ = router.handle(.subscribe(channel: 4), from: porch)
        try router.join(id: porch, name: "porch", key: keys[1])
        #expect(router.members[porch]?.channels == [4])
        // Messages from nodes that are not members are ignored.
        #expect(router.handle(data(9, RoutingHeader(routeCode: .unicast, to: porch)), from: NodeID(area: 8, local: 8)).isEmpty)
    }
}

@Suite("Router holding messages for reconnecting nodes")
struct RouterHoldTests {
    let sender = NodeID(area: 1, local: 1)
    let porch = NodeID(area: 1, local: 2)
    let keys = (0..<2).map { _ in NodeIdentity().publicKey }

    func at(_ milliseconds: UInt64) -> Timestamp { Timestamp(nanoseconds: milliseconds * 1_000_000) }

    @Test("After a host start, and after a node drops, its messages wait for it; then time out with a clear reason")
    func holding() throws {
        var router = Router(now: at(0), holdTime: .seconds(8))
        try router.join(id: sender, name: "sender", key: keys[0])
        let early = NetMessage.data(NetEnvelope(id: 1, route: RoutingHeader(routeCode: .unicast), toName: "porch", payload: [1]))
        #expect(router.handle(early, from: sender, now: at(100)).isEmpty, "porch has not come back since the host started")
        let released = try router.join(id: porch, name: "porch", key: keys[1])
        #expect(released.count == 2)
        #expect(released.last == .send(.accepted(id: 1), to: sender))
        router.leave(porch, now: at(9_000))
        let late = NetMessage.data(NetEnvelope(id: 2, route: RoutingHeader(routeCode: .unicast), toName: "porch", payload: [2]))
        #expect(router.handle(late, from: sender, now: at(9_100)).isEmpty, "porch left a moment ago")
        #expect(router.expire(now: at(10_000)).isEmpty)
        #expect(router.expire(now: at(17_200))
                == [.send(.undeliverable(id: 2, reason: "node 'porch' left and did not come back within 8.0 s"), to: sender)])
        let typo = NetMessage.data(NetEnvelope(id: 3, route: RoutingHeader(routeCode: .unicast), toName: "porhc", payload: [3]))
        #expect(router.handle(typo, from: sender, now: at(18_000))
                == [.send(.undeliverable(id: 3, reason: "no node named 'porhc' is connected"), to: sender)])
    }
}
