// The MQTT client against a real broker (Debian's mosquitto, started by the test on loopback):
// publish and subscribe, a refused login that is reported and retried, a broker that comes up
// late, and a broker restart that loses no QoS 1 message.
import Foundation
import Logging
import Testing
#if canImport(Glibc)
import Glibc
#endif
@testable import XTMQTT
import XTTestSupport


private let logger = Logger(label: "test.mqtt")

@Suite("MQTT client", .serialized, .enabled(if: MosquittoBroker.available, "mosquitto is not installed (scripts/install-deps.sh)"))
struct MQTTClientTests {
    @Test("Settings from outside are checked where they enter")
    func settingsAreChecked() {
        var settings = MQTTSettings(host: "", clientID: "xt")
        #expect(throws: MQTTError.self) { try MQTTClient(settings: settings, logger: logger) }
        settings.host = "127.0.0.1"
        settings.port = 70_000
        #expect(throws: MQTTError.self) { try MQTTClient(settings: settings, logger: logger) }
        settings.port = 1883
        settings.keepaliveSeconds = 1
        #expect(throws: MQTTError.self) { try MQTTClient(settings: settings, logger: logger) }
        settings.keepaliveSeconds = 30
        settings.tls = true
        settings.caFile = "/nonexistent/ca.pem"
        #expect(throws: MQTTError.self) { try MQTTClient(settings: settings, logger: logger) }
    }

    @Test("Publishes QoS 0 and 1, retained or not, and receives what it subscribed to")
    func publishAndSubscribe() async throws {
        let broker = try MosquittoBroker()
        defer { broker.close() }
        try broker.start()
        let client = try MQTTClient(settings: MQTTSettings(host: "127.0.0.1", port: broker.port, clientID: "xt-test"), logger: logger)
        client.subscribe("xt/in/#", qos: 1)
        client.start()
        #expect(await eventually { client.status.connected })
        let subscriber = try Subscriber(port: broker.port, topic: "xt/out/#", count: 2)
        try await Task.sleep(for: .milliseconds(300))
        #expect(client.publish(MQTTMessage(topic: "xt/out/a", text: "one")))
        #expect(client.publish(MQTTMessage(topic: "xt/out/b", text: "two", qos: 1, retain: true)))
        #expect(subscriber.lines() == ["xt/out/a one", "xt/out/b two"])
        #expect(await eventually { client.status.unacknowledged == 0 })
        // A retained message reaches a subscriber that comes later.
        #expect(try Subscriber(port: broker.port, topic: "xt/out/b", count: 1, seconds: 5).lines() == ["xt/out/b two"])
        // Inbound: what another client publishes on a subscribed topic.
        MosquittoBroker.run("/usr/bin/mosquitto_pub", ["-h", "127.0.0.1", "-p", "\(broker.port)", "-t", "xt/in/cmd", "-m", "ON"])
        var iterator = client.messages.makeAsyncIterator()
        let message = await iterator.next()
        #expect(message?.topic == "xt/in/cmd" && message?.text == "ON")
        await client.stop()
        #expect(client.status.published == 2 && client.status.dropped == 0)
    }

    @Test("A refused login is reported with the broker's reason and retried; it never throws or blocks")
    func refusedLogin() async throws {
        let broker = try MosquittoBroker(users: ["xt": "right"])
        defer { broker.close() }
        try broker.start()
        var settings = MQTTSettings(host: "127.0.0.1", port: broker.port, clientID: "xt-refused")
        settings.username = "xt"
        settings.password = "wrong"
        let client = try MQTTClient(settings: settings, logger: logger)
        client.start()
        #expect(await eventually { client.status.lastError != nil })
        let error = client.status.lastError ?? ""
        #expect(error.contains("refused") && error.contains("\(broker.port)"), "\(error)")
        #expect(!client.status.connected)
        // Publishing meanwhile only queues (QoS 1) or drops (QoS 0), at once.
        let began = ContinuousClock.now
        #expect(!client.publish(MQTTMessage(topic: "xt/x", text: "lost")))
        #expect(client.publish(MQTTMessage(topic: "xt/x", text: "kept", qos: 1)))
        #expect(ContinuousClock.now - began < .seconds(1))
        await client.stop(timeout: .milliseconds(100))
    }

    @Test("A broker that is down at the start: the client says why, connects when it comes, and delivers the QoS 1 messages it queued")
    func brokerComesLate() async throws {
        let broker = try MosquittoBroker()
        defer { broker.close() }
        let client = try MQTTClient(settings: MQTTSettings(host: "127.0.0.1", port: broker.port, clientID: "xt-late"), logger: logger)
        client.start()
        #expect(await eventually { client.status.lastError != nil })
        #expect(client.status.lastError?.contains("cannot reach") ?? false || client.status.lastError?.contains("lost") ?? false,
                "\(client.status.lastError ?? "")")
        for n in 0..<5 { client.publish(MQTTMessage(topic: "xt/queued", text: "\(n)", qos: 1, retain: false)) }
        try broker.start()
        let subscriber = try Subscriber(port: broker.port, topic: "xt/queued", count: 5, seconds: 20)
        #expect(await eventually(20) { client.status.connected })
        let lines = subscriber.lines()
        // The subscriber may come after the first messages land: what it saw is in order, and
        // the client's queue is empty (the broker acknowledged all five).
        #expect(await eventually { client.status.unacknowledged == 0 })
        #expect(lines.allSatisfy { $0.hasPrefix("xt/queued ") }, "\(lines)")
        await client.stop()
    }

    @Test("A broker restart loses no QoS 1 message (a persistent subscriber gets every one)")
    func brokerRestartLosesNothing() async throws {
        let broker = try MosquittoBroker()
        defer { broker.close() }
        try broker.start()
        // The subscriber's persistent session is made before the messages, then kept across the restart.
        #expect(MosquittoBroker.run("/usr/bin/mosquitto_sub", ["-h", "127.0.0.1", "-p", "\(broker.port)", "-t", "xt/events", "-q", "1",
                                                              "-c", "-i", "xt-sub", "-E"]) == 0)
        let client = try MQTTClient(settings: MQTTSettings(host: "127.0.0.1", port: broker.port, clientID: "xt-restart"), logger: logger)
        client.start()
        #expect(await eventually { client.status.connected })
        for n in 0..<200 {
            client.publish(MQTTMessage(topic: "xt/events", text: "\(n)", qos: 1))
            if n == 80 {
                broker.stop()
                try broker.start()
            }
            try await Task.sleep(for: .milliseconds(5))
        }
        #expect(await eventually(20) { client.status.connected && client.status.unacknowledged == 0 })
        let lines = try Subscriber(port: broker.port, topic: "xt/events", count: 1000, id: "xt-sub", seconds: 3).lines()
        let received = Set(lines.compactMap { Int($0.split(separator: " ").last ?? "") })
        #expect(received == Set(0..<200), "missing: \(Set(0..<200).subtracting(received).sorted())")
        await client.stop()
    }
}
