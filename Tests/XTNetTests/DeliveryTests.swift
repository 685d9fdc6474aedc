// Exactly-once pieces: node hellos, message ids with epochs, the outbox and the duplicate
// filter (resends after a reconnect, a restarted sender, old ids).
import Testing
import XTNet
import XTransport

@Suite("Delivery")
struct DeliveryTests {
    @Test("A node's hello round-trips; other bytes are not a hello")
    func hello() {
        let hello = NodeHello(id: NodeID(area: 3, local: 9), name: "porch")
        #expect(NodeHello(hello.encoded()) == hello)
        #expect(NodeHello(Array("bob".utf8)) == nil)
        #expect(NodeHello(hello.encoded().dropLast() + []) == nil)
        #expect(NodeHello(Array("XTN1".utf8) + [0, 1, 0, 1, 0]) == nil, "an empty name is not allowed")
    }

    @Test("Ids carry the epoch; the outbox keeps messages until the host answers")
    func outbox() {
        var ids = MessageIDs(epoch: 7)
        let first = ids.next()
        let second = ids.next()
        #expect(first >> 32 == 7 && second == first + 1)
        var outbox = Outbox()
        outbox.add(NetEnvelope(id: first, route: RoutingHeader(), payload: [1]))
        outbox.add(NetEnvelope(id: second, route: RoutingHeader(), payload: [2]))
        let removed = outbox.remove(first)
        let again = outbox.remove(first)
        #expect(removed?.payload == [1])
        #expect(again == nil)
        #expect(outbox.pending.map(\.id) == [second])
    }

    @Test("Each message is accepted once per sender, in any order, until it falls out of the window")
    func duplicates() {
        var filter = DuplicateFilter()
        func take(_ id: UInt64, from sender: NodeID) -> Bool { filter.accept(id, from: sender) }
        let garage = NodeID(area: 1, local: 1)
        let porch = NodeID(area: 1, local: 2)
        var ids = MessageIDs(epoch: 1)
        let batch = (0..<100).map { _ in ids.next() }
        for id in batch.shuffled() { #expect(take(id, from: garage)) }
        for id in batch { #expect(!take(id, from: garage), "resent after a reconnect") }
        #expect(take(batch[0], from: porch), "another sender's ids are its own")
        // A restarted sender has a new epoch; its sequence starts over.
        var restarted = MessageIDs(epoch: 2)
        #expect(take(restarted.next(), from: garage))
        // Far ahead: the old ids fall out of the window and count as delivered.
        var late = MessageIDs(epoch: 3)
        let old = late.next()
        for _ in 0..<Int(DuplicateFilter.window) + 10 { _ = late.next() }
        #expect(take(late.next(), from: porch))
        #expect(!take(old, from: porch), "too far behind the newest: counted as delivered")
    }
}
