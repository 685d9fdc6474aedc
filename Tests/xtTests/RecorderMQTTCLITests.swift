// `xt recorder` on MQTT as Home Assistant sees it: a real mosquitto, a camera agent with
// scripted motion, and mosquitto_sub as the subscriber. Discovery configs (again on HA's birth
// message), events and alarms for each scripted motion, motion ON then OFF, stats with the
// camera's rate and link, the motion and recording switches, a broker restart that loses no
// event, and the last will after kill -9.
import Foundation
import Testing
import XTTestSupport
#if canImport(Glibc)
import Glibc
#endif

@Suite("xt recorder on MQTT", .serialized,
       .enabled(if: FileManager.default.isExecutableFile(atPath: CLI.xt) && MosquittoBroker.available, "xt is not built, or mosquitto is not installed"))
struct RecorderMQTTCLITests {
    /// One `mosquitto_pub` of `text` to `topic` (QoS 1).
    func publish(_ port: Int, _ topic: String, _ text: String, retain: Bool = false) {
        MosquittoBroker.run("/usr/bin/mosquitto_pub", ["-h", "127.0.0.1", "-p", "\(port)", "-t", topic, "-m", text, "-q", "1"] + (retain ? ["-r"] : []))
    }

    /// Lines `topic payload` → (topic, payload).
    func split(_ lines: [String]) -> [(topic: String, payload: String)] {
        lines.map { line in
            let parts = line.split(separator: " ", maxSplits: 1, omittingEmptySubsequences: false)
            return (String(parts[0]), parts.count > 1 ? String(parts[1]) : "")
        }
    }

    func json(_ text: String) -> [String: Any] {
        (try? JSONSerialization.jsonObject(with: Data(text.utf8))) as? [String: Any] ?? [:]
    }

    @Test("Discovery, events, motion, stats, switches, a broker restart and the last will, from a running recorder")
    func recorderOnMQTT() throws {
        let dir = try CLI.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let broker = try MosquittoBroker()
        defer { broker.close() }
        try broker.start()
        for name in ["recorder", "camera"] { _ = try CLI.run(["keygen", "--out", "\(name).key"], in: dir) }
        // The persistent session that must get every event, across the broker's restart.
        #expect(MosquittoBroker.run("/usr/bin/mosquitto_sub", ["-h", "127.0.0.1", "-p", "\(broker.port)", "-t", "xt/events", "-q", "1",
                                                              "-c", "-i", "events-sub", "-E"]) == 0)
        try """
            storage = recordings
            min-free = 0
            cooldown = 2
            mqtt.host = 127.0.0.1
            mqtt.port = \(broker.port)
            mqtt.prefix = xt
            mqtt.motion-off-delay = 1
            mqtt.stats-interval = 5
            """.write(to: dir.appendingPathComponent("recorder.conf"), atomically: true, encoding: .utf8)
        let port = Int.random(in: 20_000...32_000)
        let recorder = try CLI.background(["recorder", "--config", "recorder.conf", "--http", "none", "--bind", "127.0.0.1", "--ports", "\(port)",
                                           "--key", "recorder.key", "--open"], in: dir, log: "recorder.log")
        defer { if recorder.isRunning { kill(recorder.processIdentifier, SIGKILL) } }
        let live = try Subscriber(port: broker.port, topic: "#", count: 100_000, seconds: 22)
        Thread.sleep(forTimeInterval: 0.5)
        // Something crosses the picture at 1-2.5 s of every 8 s: events at 1, 9, (17: detection
        // off), 25 (the broker is away) and 33.
        let start = Date()
        let camera = try CLI.background(["agent", "--config", "none.conf", "--key", "camera.key", "--host", "127.0.0.1:\(port)",
                                         "--host-key", "@recorder.key.pub", "--name", "yard", "--id", "1.20", "--width", "320",
                                         "--height", "180", "--seconds", "40", "--set", "motion=1-2.5:0.2,0.5>0.8,0.5:0.3",
                                         "--set", "motion-period=8"], in: dir, log: "camera.log")
        defer { camera.terminate() }
        func at(_ seconds: Double) { Thread.sleep(forTimeInterval: max(0, seconds - Date().timeIntervalSince(start))) }
        at(6)  // the camera is announced (discovery) within 2 s of appearing
        publish(broker.port, "homeassistant/status", "online")  // HA's birth message: discovery again
        at(12)
        publish(broker.port, "xt/yard/motion/set", "OFF")
        publish(broker.port, "xt/yard/recordings/set", "off")
        publish(broker.port, "xt/nosuchcamera/motion/set", "OFF")  // an unknown camera: logged, ignored
        publish(broker.port, "xt/yard/motion/set", "maybe")  // not ON or OFF: logged, ignored
        at(20)
        publish(broker.port, "xt/yard/motion/set", "ON")
        publish(broker.port, "xt/yard/recordings/set", "ON")
        let messages = split(live.lines())
        // The broker goes away for 6 s around the fourth event.
        at(23)
        broker.stop()
        at(29)
        try broker.start()
        camera.waitUntilExit()
        Thread.sleep(forTimeInterval: 5)  // the last event's cooldown, and a reconnect

        // Discovery: seven retained configs per camera, twice (when it appears, then HA's birth).
        let configs = messages.filter { $0.topic.hasPrefix("homeassistant/") && $0.topic.hasSuffix("/config") }
        #expect(Set(configs.map(\.topic)).count == 7 && configs.count >= 14, "\(configs.map(\.topic))")
        for config in configs.prefix(7) {
            let body = json(config.payload)
            #expect(body["unique_id"] as? String != nil && body["availability_topic"] as? String == "xt/available", "\(config.payload)")
            #expect(((body["device"] as? [String: Any])?["identifiers"] as? [String])?.isEmpty == false, "\(config.payload)")
        }
        #expect(messages.contains { $0.topic == "xt/available" && $0.payload == "online" })
        // Motion ON and OFF for the first two events, in that order.
        let motion = messages.filter { $0.topic == "xt/yard/motion" }.map(\.payload)
        #expect(motion.filter { $0 == "ON" }.count == 2 && motion.last == "OFF", "\(motion)")
        let toggles = motion.enumerated().filter { $0.offset == 0 || motion[$0.offset - 1] != $0.element }.map(\.element)
        #expect(toggles.suffix(4) == ["ON", "OFF", "ON", "OFF"], "\(motion)")
        // Alarms, as `xt alarms` prints them.
        let alarms = messages.filter { $0.topic == "xt/alarms" }.map { json($0.payload) }
        #expect(alarms.map { $0["kind"] as? String ?? "" } == ["started", "ended", "started", "ended"], "\(alarms)")
        #expect(alarms.allSatisfy { $0["camera"] as? String == "yard" })
        // A snapshot (JPEG) of each event.
        let snapshots = messages.filter { $0.topic == "xt/yard/motion/snapshot" }
        #expect(!snapshots.isEmpty)
        // Stats: the camera's frame rate and its link.
        let stats = messages.filter { $0.topic == "xt/stats" }.map { json($0.payload) }
        let yard = (stats.last?["cameras"] as? [String: Any])?["yard"] as? [String: Any] ?? [:]
        #expect(((yard["camera_fps"] as? NSNumber)?.doubleValue ?? 0) > 5, "\(stats.last ?? [:])")
        #expect((yard["link_rtt_ms"] as? NSNumber) != nil && (yard["link_loss_percent"] as? NSNumber) != nil, "\(yard)")
        #expect(((stats.last?["service"] as? [String: Any])?["storage"] as? [String: Any])?.isEmpty == false)
        // The switches: each state follows its command; the unknown camera and the bad payload change nothing.
        #expect(messages.filter { $0.topic == "xt/yard/motion/state" }.map(\.payload).suffix(2) == ["OFF", "ON"], "\(messages.filter { $0.topic.hasSuffix("/state") })")
        #expect(messages.filter { $0.topic == "xt/yard/recordings/state" }.map(\.payload).suffix(2) == ["OFF", "ON"])
        #expect(!messages.contains { $0.topic.hasPrefix("xt/nosuchcamera/") && !$0.topic.hasSuffix("/set") })

        // Every event the recorder saved reached the persistent session, new and end, across the
        // broker's restart; none while detection was off.
        let saved = try JSONSerialization.jsonObject(with: Data(try CLI.run(["recorder", "events", "--storage", "recordings"], in: dir).stdout.utf8))
            as? [[String: Any]] ?? []
        let ids = Set(saved.compactMap { ($0["id"] as? NSNumber).map { "\($0)" } })
        let events = split(try Subscriber(port: broker.port, topic: "xt/events", count: 1000, id: "events-sub", seconds: 3).lines()).map { json($0.payload) }
        let news = Set(events.filter { $0["type"] as? String == "new" }.compactMap { ($0["after"] as? [String: Any])?["id"] as? String })
        let ends = Set(events.filter { $0["type"] as? String == "end" }.compactMap { ($0["after"] as? [String: Any])?["id"] as? String })
        #expect(ids.count == 4 && news == ids && ends == ids, "saved \(ids.sorted()), new \(news.sorted()), end \(ends.sorted())")
        let origin = start.timeIntervalSince1970
        let starts = saved.compactMap { ($0["start"] as? NSNumber).map { $0.doubleValue / 1e9 - origin } }
        #expect(!starts.contains { (13...21).contains($0) }, "an event while detection was off: \(starts)")
        // Recording was off from 12 to 20 s: the timeline has that gap.
        let timeline = try CLI.timelines(dir, storage: "recordings").first { $0["kind"] as? String == "video" } ?? [:]
        let gaps = (timeline["gaps"] as? [[String: Any]] ?? []).compactMap { ($0["milliseconds"] as? NSNumber)?.doubleValue }
        #expect(gaps.contains { (5_000...10_000).contains($0) }, "gaps \(gaps)")

        // kill -9: the broker publishes the will, and the retained availability says offline.
        kill(recorder.processIdentifier, SIGKILL)
        recorder.waitUntilExit()
        let available = CLI.wait(timeout: 10) {
            (try? Subscriber(port: broker.port, topic: "xt/available", count: 1, seconds: 2).lines()) == ["xt/available offline"]
        }
        #expect(available, "\(CLI.text(dir, "recorder.log").suffix(3000))")
    }
}
