// Host and nodes on loopback: name routing and its errors, channel fan-out, direct sessions
// between nodes (LRP2P), and a host restart that loses and duplicates nothing.
import Foundation
import Synchronization
import Testing
import XTNet
import XTransport
import XTransportNIO

@Suite("Host and nodes on loopback", .serialized)
struct NetworkTests: LoopbackNetwork {
    let hostIdentity = NodeIdentity()

    func next(_ node: NetNode) async -> NetEnvelope? {
        var iterator = node.messages.makeAsyncIterator()
        return await iterator.next()
    }

    @Test("Messages reach a node by name; an unknown name is a clear error; channels fan out")
    func routing() async throws {
        let port = UInt16.random(in: 20_000...32_000)
        // A short hold: past it, an unknown name is refused at once.
        let host = try await startHost(port: port, holdTime: .milliseconds(200))
        let garage = try await node("garage", 1, port: port)
        let porch = try await node("porch", 2, port: port)
        let phone = try await node("phone", 3, port: port)

        try await garage.send(Array("hello porch".utf8), toName: "porch")
        let received = await next(porch)
        #expect(received.map { String(decoding: $0.payload, as: UTF8.self) } == "hello porch")
        #expect(received?.route.from == NodeID(area: 1, local: 1))

        try await Task.sleep(for: .milliseconds(300))
        await #expect(throws: UndeliverableError(reason: "no node named 'attic' is connected")) {
            try await garage.send([1], toName: "attic")
        }

        await porch.subscribe(30)
        await phone.subscribe(30)
        try await Task.sleep(for: .milliseconds(100))  // the subscriptions reach the host first
        try await garage.publish(Array("motion".utf8), channel: 30)
        #expect(await next(porch)?.payload == Array("motion".utf8))
        #expect(await next(phone)?.payload == Array("motion".utf8))

        for node in [garage, porch, phone] { await node.stop() }
        await host.stop()
    }

    @Test("A multicast stream reaches every subscriber once and in order, through the group on loopback or relayed",
          arguments: [true, false])
    func multicastStream(group: Bool) async throws {
        let port = UInt16.random(in: 20_000...32_000)
        let options = MulticastOptions(base: .ipv4(239, 77, 0, 0, port: UInt16.random(in: 40_001...50_000)))
        let host = try await startHost(port: port, multicast: group ? options : nil)
        let camera = try await node("camera", 1, port: port)
        let viewers = [try await node("viewer-1", 2, port: port), try await node("viewer-2", 3, port: port)]
        for viewer in viewers { await viewer.subscribe(7) }
        // Heartbeats every 250 ms tell the viewers the group reaches them (over lo here).
        try await Task.sleep(for: .milliseconds(700))
        let total = 300
        for index in 0..<total {
            try await camera.multicast(Array(repeating: UInt8(truncatingIfNeeded: index), count: 3000), channel: 7)
            if index % 10 == 0 { try await Task.sleep(for: .milliseconds(2)) }
        }
        for viewer in viewers {
            var received: [UInt8] = []
            for await envelope in viewer.messages {
                #expect(envelope.route.routeCode == .multicast && envelope.route.from == NodeID(area: 1, local: 1))
                #expect(envelope.payload.count == 3000)
                received.append(envelope.payload[0])
                if received.count == total { break }
            }
            #expect(received == (0..<total).map { UInt8(truncatingIfNeeded: $0) })
            let stats = try #require(await viewer.multicastStats[7])
            print("multicast on loopback (\(group ? "group" : "relay only")): \(stats.viaGroup) datagrams via the group, \(stats.viaRelay) relayed, \(stats.lostDatagrams) lost")
            #expect(stats.lostDatagrams == 0)
            if !group { #expect(stats.viaGroup == 0) }
        }
        let sent = await host.multicastStats.first
        #expect(sent?.sender.messages == UInt64(total))
        for node in [camera] + viewers { await node.stop() }
        await host.stop()
    }

    @Test("A direct session to a node at two addresses: the node accepts one session, the one the opener keeps; a dead first address falls through to the next")
    func directSessionAtTwoAddresses() async throws {
        let port = UInt16.random(in: 20_000...32_000)
        let host = try await startHost(port: port)
        let door = try await node("door", 1, port: port)
        let phone = try await node("phone", 2, port: port)
        await phone.admitPeer(door.publicKey, name: "door")
        let phonePort = try #require(await phone.directAddresses().first?.port)
        // Both addresses reach the phone (all of 127/8 is loopback). Started at once, both
        // handshakes finished and the phone could not tell which session the door kept.
        let opened = try await door.connectPeer(phone.publicKey, name: "phone",
                                                at: [.ipv4(127, 0, 0, 1, port: phonePort), .ipv4(127, 0, 0, 2, port: phonePort)])
        try await Task.sleep(for: .seconds(1))
        let accepted = phone.peerLinks.drain(upTo: 8)
        #expect(accepted.count == 1, "the phone accepted \(accepted.count) sessions from the door")
        let link = try #require(accepted.first)
        #expect(!link.isClosed && link.name == "door" && !link.opened && opened.opened)
        try await opened.send(Array("ding".utf8), lane: .control)
        let heard = Mutex<[UInt8]?>(nil)
        Task { await link.receive { _, bytes in heard.withLock { if $0 == nil { $0 = bytes } } } }
        try await Task.sleep(for: .milliseconds(300))
        #expect(heard.withLock { $0 } == Array("ding".utf8), "what the door sent arrives on the session the phone accepted")
        await opened.close()

        // Nothing listens at the first address: the next is tried and answers.
        let silent = try await door.connectPeer(phone.publicKey, name: "phone",
                                                at: [.ipv4(127, 0, 0, 1, port: phonePort &+ 1), .ipv4(127, 0, 0, 2, port: phonePort)])
        #expect(!silent.isClosed)
        await silent.close()
        for node in [door, phone] { await node.stop() }
        await host.stop()
    }

    @Test("A node that does not read holds at most its inbox; reading later gets everything in order")
    func inboxBackpressure() async throws {
        let port = UInt16.random(in: 20_000...32_000)
        let host = try await startHost(port: port)
        let sender = try await node("sender", 1, port: port)
        let slow = try await node("slow", 2, port: port, inboxCapacity: 8)
        for index in 0..<50 { try await sender.send(Array("\(index)".utf8), toName: "slow") }
        try await Task.sleep(for: .milliseconds(200))
        #expect(slow.messages.count <= 8)
        var received: [Int] = []
        for await envelope in slow.messages {
            received.append(Int(String(decoding: envelope.payload, as: UTF8.self))!)
            if received.count == 50 { break }
        }
        #expect(received == Array(0..<50))
        await sender.stop()
        await slow.stop()
        await host.stop()
    }

    @Test("A node that stops reading gets its senders a clear error, and other nodes are not held up")
    func slowNodeDoesNotStallOthers() async throws {
        let port = UInt16.random(in: 20_000...32_000)
        let configuration = EndpointConfiguration(identity: hostIdentity, admission: .open, session: SessionConfiguration())
        let host = try await NetHost.start(host: "127.0.0.1", ports: port...port, configuration: configuration,
                                           holdTime: .zero, maximumQueuedBytes: 1 << 20)
        let sender = try await node("sender", 1, port: port)
        let quick = try await node("quick", 3, port: port)
        let slow = try await node("slow", 2, port: port, inboxCapacity: 1)
        let chunk = [UInt8](repeating: 7, count: 32 << 10)
        var refusal: UndeliverableError?
        for _ in 0..<5_000 {
            do { try await sender.send(chunk, toName: "slow") } catch let error as UndeliverableError { refusal = error; break }
        }
        #expect(refusal?.reason.contains("is not keeping up") == true, "\(String(describing: refusal))")
        try await sender.send(Array("still here".utf8), toName: "quick")
        #expect(await next(quick)?.payload == Array("still here".utf8))
        for member in [sender, quick, slow] { await member.stop() }
        await host.stop()
    }

    @Test("A host restart loses and duplicates nothing; nodes are back within 3 s")
    func hostRestart() async throws {
        let port = UInt16.random(in: 20_000...32_000)
        var host = try await startHost(port: port)
        let sender = try await node("sender", 1, port: port)
        let receiver = try await node("receiver", 2, port: port)
        let total = 200
        let collected = Task { () -> [Int] in
            var seen: [Int] = []
            for await envelope in receiver.messages {
                seen.append(Int(String(decoding: envelope.payload, as: UTF8.self))!)
                if seen.count == total { break }
            }
            return seen
        }
        let sending = Task {
            for index in 0..<total {
                try await sender.send(Array("\(index)".utf8), toName: "receiver")
            }
        }
        try await Task.sleep(for: .milliseconds(30))
        await host.stop()
        try await Task.sleep(for: .milliseconds(300))
        let restarted = ContinuousClock.now
        host = try await startHost(port: port)
        await sender.waitUntilConnected()
        await receiver.waitUntilConnected()
        #expect(ContinuousClock.now - restarted < .seconds(3))
        try await sending.value
        let seen = try await withThrowingTaskGroup(of: [Int].self) { group in
            group.addTask { await collected.value }
            group.addTask { try await Task.sleep(for: .seconds(10)); throw CancellationError() }
            let first = try await group.next()!
            group.cancelAll()
            return first
        }
        #expect(seen.sorted() == Array(0..<total), "each message exactly once")
        #expect(await sender.connections >= 2)
        await sender.stop()
        await receiver.stop()
        await host.stop()
    }
}
