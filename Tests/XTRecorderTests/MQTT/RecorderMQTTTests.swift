// The recorder's MQTT bridge against a real broker (mosquitto, started here), with the
// recorder's side scripted: a motion event's messages (new, ON, the snapshot, end, OFF after the
// off-delay), discovery configs published again on Home Assistant's birth message, and the
// switches' commands reaching the recorder with their state published back.
import Foundation
import Logging
import Synchronization
import Testing
import XTMQTT
import XTTestSupport
@testable import XTRecorder

@Suite("Recorder on MQTT", .serialized, .enabled(if: MosquittoBroker.available, "mosquitto is not installed (scripts/install-deps.sh)"))
struct RecorderMQTTTests {
    final class Switches: Sendable {
        let state = Mutex<[String: Bool]>([:])
    }

    func bridge(_ broker: MosquittoBroker, root: String, switches: Switches) throws -> RecorderMQTT {
        var settings = RecorderMQTTSettings()
        settings.host = "127.0.0.1"
        settings.port = broker.port
        settings.motionOffDelay = .milliseconds(300)
        settings.statsInterval = .seconds(3600)
        let hooks = RecorderMQTTHooks(
            cameras: { ["yard"] },
            stats: { ["cameras": ["yard": ["camera_fps": 15.0]]] },
            setSwitch: { camera, which, on in switches.state.withLock { $0["\(camera)/\(which.rawValue)"] = on }; return on },
            switchState: { camera, which in switches.state.withLock { $0["\(camera)/\(which.rawValue)"] ?? true } })
        return try RecorderMQTT(settings: settings, storageRoot: root, recorderName: "nvr", hooks: hooks, logger: Logger(label: "test.mqtt"))
    }

    @Test("A motion event: events new and end (QoS 1), alarms, motion ON then OFF after the off-delay, the snapshot; online, then offline on stop")
    func motionEvent() async throws {
        let broker = try MosquittoBroker()
        defer { broker.close() }
        try broker.start()
        let root = broker.dir.path
        try FileManager.default.createDirectory(atPath: root + "/yard/events/2026-12-03", withIntermediateDirectories: true)
        let jpeg: [UInt8] = [0xFF, 0xD8, 0xFF, 0xE0] + Array(repeating: 7, count: 100) + [0xFF, 0xD9]
        FileManager.default.createFile(atPath: root + "/yard/events/2026-12-03/5.jpg", contents: Data(jpeg))
        let mqtt = try bridge(broker, root: root, switches: Switches())
        let subscriber = try Subscriber(port: broker.port, topic: "xt/#", count: 13, seconds: 20)
        try await Task.sleep(for: .milliseconds(300))
        await mqtt.start()
        #expect(await eventually { mqtt.client.status.connected })
        try await Task.sleep(for: .milliseconds(300))
        var event = EventRecord(id: 5, camera: "yard", zone: "gate", start: 1_764_756_000_000_000_000, clipStart: 0,
                                peakTime: 1_764_756_000_500_000_000, peakScore: 0.3, snapshot: "yard/events/2026-12-03/5.jpg")
        await mqtt.event(event, started: true)
        event.end = 1_764_756_004_000_000_000
        await mqtt.event(event, started: false)
        try await Task.sleep(for: .milliseconds(800))
        await mqtt.stop()
        let lines = subscriber.lines()
        let topics = lines.map { String($0.split(separator: " ").first ?? "") }
        #expect(topics.first == "xt/available" && lines.first == "xt/available online", "\(lines)")
        #expect(lines.last == "xt/available offline", "\(lines)")
        let motion = lines.filter { $0.hasPrefix("xt/yard/motion ") }
        #expect(motion == ["xt/yard/motion OFF", "xt/yard/motion ON", "xt/yard/motion OFF"], "\(lines)")
        let events = lines.filter { $0.hasPrefix("xt/events ") }.map { $0.dropFirst("xt/events ".count) }
        #expect(events.count == 2)
        #expect(events.first?.contains(#""type":"new""#) ?? false && events.last?.contains(#""type":"end""#) ?? false, "\(events)")
        #expect(topics.contains("xt/yard/motion/snapshot"), "\(lines)")
        // The alarms, as `xt alarms` prints them.
        let alarms = lines.filter { $0.hasPrefix("xt/alarms ") }
        #expect(alarms.count == 2 && alarms[0].contains(#""kind":"started""#) && alarms[1].contains(#""kind":"ended""#), "\(alarms)")
        #expect(topics.contains("xt/yard/motion/state") && topics.contains("xt/yard/recordings/state") && topics.contains("xt/stats"), "\(lines)")
    }

    @Test("Discovery configs are retained, and published again when Home Assistant says it is online; ON/OFF commands flip the switches")
    func discoveryAndCommands() async throws {
        let broker = try MosquittoBroker()
        defer { broker.close() }
        try broker.start()
        let switches = Switches()
        let mqtt = try bridge(broker, root: broker.dir.path, switches: switches)
        await mqtt.start()
        #expect(await eventually { mqtt.client.status.connected })
        // Retained: a subscriber that comes later gets all seven configs at once.
        let configs = try Subscriber(port: broker.port, topic: "homeassistant/+/+/config", count: 7, seconds: 10).lines()
        #expect(configs.count == 7, "\(configs)")
        // Home Assistant's birth message: they are published again (live, not only retained).
        let again = try Subscriber(port: broker.port, topic: "homeassistant/binary_sensor/+/config", count: 2, seconds: 10)
        try await Task.sleep(for: .milliseconds(300))
        MosquittoBroker.run("/usr/bin/mosquitto_pub", ["-h", "127.0.0.1", "-p", "\(broker.port)", "-t", "homeassistant/status", "-m", "online"])
        #expect(again.lines().count == 2)
        // Commands.
        let states = try Subscriber(port: broker.port, topic: "xt/yard/+/state", count: 4, seconds: 10)
        try await Task.sleep(for: .milliseconds(300))
        MosquittoBroker.run("/usr/bin/mosquitto_pub", ["-h", "127.0.0.1", "-p", "\(broker.port)", "-t", "xt/yard/motion/set", "-m", "OFF"])
        MosquittoBroker.run("/usr/bin/mosquitto_pub", ["-h", "127.0.0.1", "-p", "\(broker.port)", "-t", "xt/yard/recordings/set", "-m", "off"])
        MosquittoBroker.run("/usr/bin/mosquitto_pub", ["-h", "127.0.0.1", "-p", "\(broker.port)", "-t", "xt/yard/recordings/set", "-m", "maybe"])
        MosquittoBroker.run("/usr/bin/mosquitto_pub", ["-h", "127.0.0.1", "-p", "\(broker.port)", "-t", "xt/nosuch/motion/set", "-m", "OFF"])
        let lines = states.lines()
        // Two retained states at subscription (ON), then the two commands' (OFF); "maybe" and the unknown camera change nothing.
        #expect(lines.suffix(2).sorted() == ["xt/yard/motion/state OFF", "xt/yard/recordings/state OFF"], "\(lines)")
        #expect(switches.state.withLock { $0 } == ["yard/motion": false, "yard/recordings": false])
        await mqtt.stop()
    }
}

