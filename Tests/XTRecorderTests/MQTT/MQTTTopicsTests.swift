// The recorder's MQTT topics and payloads, sans broker: Frigate's layout, Home Assistant's
// discovery rules (the required key per platform, unique_id, device identifiers, one form of
// availability, object ids of [a-zA-Z0-9_-]), and the `mqtt.*` settings checked where they enter.
import Foundation
import Testing
import XTMQTT
import XTNet
@testable import XTRecorder

@Suite struct MQTTTopicsTests {
    let topics = MQTTTopics(prefix: "xt")

    @Test func frigateTopicsUnderThePrefix() {
        #expect(topics.availability == "xt/available")
        #expect(topics.motion("front door") == "xt/front door/motion")
        #expect(topics.snapshot("yard") == "xt/yard/motion/snapshot")
        #expect(topics.command("yard", .recordings) == "xt/yard/recordings/set")
        #expect(topics.state("yard", .motion) == "xt/yard/motion/state")
        // A name that would split the topic or match others is one level.
        #expect(topics.motion("a/b+#") == "xt/a_b__/motion")
        #expect(topics.parseCommand("xt/yard/motion/set")?.which == .motion)
        #expect(topics.parseCommand("xt/yard/recordings/set")?.cameraLevel == "yard")
        for bad in ["xt/yard/motion", "xt/yard/zoom/set", "other/yard/motion/set", "xt//motion/set", "xt/a/b/motion/set"] {
            #expect(topics.parseCommand(bad) == nil, "\(bad)")
        }
    }

    @Test func eventsCarryFrigatesFields() throws {
        let open = EventRecord(id: 42, camera: "yard", zone: "gate", start: 1_700_000_000_500_000_000, clipStart: 0,
                               peakTime: 1_700_000_001_000_000_000, peakScore: 0.4)
        var ended = open
        ended.end = 1_700_000_009_000_000_000
        ended.snapshot = "yard/events/2023-11-14/42.jpg"
        let message = topics.event(type: "end", before: open, after: ended)
        #expect(message.topic == "xt/events" && message.qos == 1 && !message.retain)
        let body = try #require(try JSONSerialization.jsonObject(with: Data(message.payload)) as? [String: Any])
        #expect(body["type"] as? String == "end")
        let before = try #require(body["before"] as? [String: Any])
        let after = try #require(body["after"] as? [String: Any])
        #expect(before["end_time"] is NSNull && before["active"] as? Bool == true && before["has_snapshot"] as? Bool == false)
        #expect(after["id"] as? String == "42" && after["camera"] as? String == "yard" && after["label"] as? String == "motion")
        #expect(after["start_time"] as? Double == 1_700_000_000.5 && after["end_time"] as? Double == 1_700_000_009)
        #expect(after["entered_zones"] as? [String] == ["gate"] && after["current_zones"] as? [String] == [])
        #expect(after["active"] as? Bool == false && after["has_snapshot"] as? Bool == true)
    }

    @Test func discoveryFollowsHomeAssistantsRules() throws {
        let messages = topics.discovery(camera: "front door", recorder: "nvr", version: "1.0", url: "http://nvr:8480/")
        let required = ["binary_sensor": "state_topic", "sensor": "state_topic", "switch": "command_topic", "camera": "topic"]
        var components: [String] = []
        var identifiers: Set<[String]> = []
        for message in messages {
            #expect(message.retain && message.qos == 1)
            let levels = message.topic.split(separator: "/").map(String.init)
            #expect(levels.count == 4 && levels[0] == "homeassistant" && levels[3] == "config", "\(message.topic)")
            #expect(levels[2].allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "_" || $0 == "-") }, "\(message.topic)")
            let body = try #require(try JSONSerialization.jsonObject(with: Data(message.payload)) as? [String: Any])
            let component = levels[1]
            components.append(component)
            #expect(body[try #require(required[component])] is String, "\(component) needs \(required[component]!)")
            #expect((body["unique_id"] as? String)?.isEmpty == false)
            #expect(body["availability_topic"] as? String == "xt/available" && body["availability"] == nil)
            let device = try #require(body["device"] as? [String: Any])
            identifiers.insert(try #require(device["identifiers"] as? [String]))
        }
        #expect(components.sorted() == ["binary_sensor", "camera", "sensor", "sensor", "sensor", "switch", "switch"])
        #expect(identifiers == [["xt_front_door"]])  // one device per camera
        #expect(Set(messages.map(\.topic)).count == messages.count)
        // The stats sensors read this camera's entry, its name quoted as JSON.
        let fps = try #require(messages.first { $0.topic.hasSuffix("_fps/config") })
        #expect(String(decoding: fps.payload, as: UTF8.self).contains(#"value_json.cameras[\"front door\"].camera_fps"#))
    }

    @Test func settingsAreCheckedWhereTheyEnter() throws {
        var configuration = RecorderConfiguration()
        #expect(!configuration.mqtt.enabled)
        try configuration.set("mqtt.host", "broker.lan")
        try configuration.set("mqtt.tls", "on")
        try configuration.set("mqtt.prefix", "home/xt")
        try configuration.set("mqtt.motion-off-delay", "5")
        #expect(configuration.mqtt.enabled && configuration.mqtt.resolvedPort == 8883 && configuration.mqtt.prefix == "home/xt")
        #expect(configuration.mqtt.motionOffDelay == .seconds(5))
        for (key, value) in [("mqtt.port", "0"), ("mqtt.port", "70000"), ("mqtt.prefix", "xt/#"), ("mqtt.prefix", "xt//a"), ("mqtt.prefix", ""),
                             ("mqtt.tls", "yes"), ("mqtt.stats-interval", "1"), ("mqtt.motion-off-delay", "nan"), ("mqtt.host", "bad host"),
                             ("mqtt.client-id", "a b")] {
            #expect(throws: NodeConfigurationError.self, "\(key) = \(value)") { try configuration.set(key, value) }
        }
        #expect(throws: NodeConfigurationError.self) { try configuration.set("mqtt.colour", "blue") }
        try configuration.set("mqtt.host", "none")
        #expect(!configuration.mqtt.enabled)
    }
}
