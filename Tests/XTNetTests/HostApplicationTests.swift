// The host's own application (the recorder) on loopback: it subscribes to channels, receives
// what nodes send to "host", answers them, and media on the live lanes reaches subscribers
// without any answer to the sender.
import Foundation
import Testing
import XTNet
import XTransport
import XTransportNIO

@Suite("The host's application and the lanes", .serialized)
struct HostApplicationTests: LoopbackNetwork {
    let hostIdentity = NodeIdentity()

    @Test("Lane messages reach the host's application and subscribers; the host answers a node")
    func lanesAndLocalDelivery() async throws {
        let port = UInt16.random(in: 20_000...32_000)
        let host = try await startHost(port: port)
        await host.subscribe(40)
        let camera = try await node("camera", 1, port: port)
        let viewer = try await node("viewer", 2, port: port)
        await viewer.subscribe(40)
        try await Task.sleep(for: .milliseconds(100))

        var hostInbox = host.messages.makeAsyncIterator()
        var viewerInbox = viewer.messages.makeAsyncIterator()
        for index in 0..<20 {
            let lane: NetLane = index % 2 == 0 ? .video : .audio
            try await camera.send([UInt8(index)], routeCode: .channel, channel: 40, lane: lane)
        }
        var atHost: [UInt8] = []
        var atViewer: [UInt8] = []
        for _ in 0..<20 {
            let delivery = await hostInbox.next()
            atHost += delivery?.envelope.payload ?? []
            #expect(delivery?.envelope.route.from == NodeID(area: 1, local: 1))
            atViewer += await viewerInbox.next()?.payload ?? []
        }
        #expect(Set(atHost) == Set(0..<20))
        #expect(Set(atViewer) == Set(0..<20))

        // To the host by name, on the bulk lane; the host answers on the control lane.
        try await camera.send(Array("inventory".utf8), routeCode: .unicast, toName: "host", channel: 7, lane: .bulk)
        let request = await hostInbox.next()
        #expect(request?.envelope.payload == Array("inventory".utf8))
        #expect(request?.lane == .bulk)
        #expect(request?.envelope.route.channel == 7)
        try await host.send(Array("receipt".utf8), to: request!.envelope.route.from, channel: 7)
        var cameraInbox = camera.messages.makeAsyncIterator()
        let answer = await cameraInbox.next()
        #expect(answer?.payload == Array("receipt".utf8))
        #expect(answer?.route.from == .host)

        // A node may not take the host's name.
        let refused = NetNode(configuration: nodeConfiguration("host", 9, port: port), identity: NodeIdentity(), hostKey: hostIdentity.publicKey)
        try await refused.start()
        #expect(await refused.refusal?.contains("addresses the host itself") == true)
        await #expect(throws: UndeliverableError.self) { try await host.send([1], to: NodeID(area: 5, local: 5)) }

        await refused.stop()
        await camera.stop()
        await viewer.stop()
        await host.stop()
    }
}
