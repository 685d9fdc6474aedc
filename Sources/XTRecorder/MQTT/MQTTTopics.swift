// What the recorder publishes over MQTT, as pure functions of its state: Frigate's topic layout
// and payloads (docs.frigate.video/integrations/mqtt: `available`, `events` with new/update/end,
// `CAMERA/motion` ON/OFF, `CAMERA/motion/snapshot`, `stats`, `CAMERA/motion|recordings/set` and
// `/state`) under a prefix, and Home Assistant MQTT discovery configs
// (home-assistant.io/integrations/mqtt, "MQTT Discovery"): one device per camera.
import Foundation
public import XTMQTT
public import XTMedia

/// Topics and payloads under one prefix.
public struct MQTTTopics: Sendable, Equatable {
    public var prefix: String
    public var discoveryPrefix: String

    public init(prefix: String, discoveryPrefix: String = "homeassistant") {
        self.prefix = prefix
        self.discoveryPrefix = discoveryPrefix
    }

    /// `online` (retained) while the recorder runs; `offline` when it stops or vanishes (the will).
    public var availability: String { "\(prefix)/available" }
    public var events: String { "\(prefix)/events" }
    public var stats: String { "\(prefix)/stats" }
    /// Every alarm as `xt alarms` prints it (an ``AlarmNotice``: kind started/ended).
    public var alarms: String { "\(prefix)/alarms" }
    /// Home Assistant's birth message (`online` when it starts: configs are published again).
    public var homeAssistantStatus: String { "\(discoveryPrefix)/status" }

    /// ON while the camera sees motion, OFF after the off-delay without.
    public func motion(_ camera: String) -> String { "\(prefix)/\(Self.level(camera))/motion" }
    /// The JPEG of the latest event's peak (retained).
    public func snapshot(_ camera: String) -> String { "\(prefix)/\(Self.level(camera))/motion/snapshot" }

    /// The switches Home Assistant and automations can flip.
    public enum Switch: String, Sendable, CaseIterable {
        case motion
        case recordings
    }

    /// `ON`/`OFF` commands, and the retained state after each.
    public func command(_ camera: String, _ which: Switch) -> String { "\(prefix)/\(Self.level(camera))/\(which.rawValue)/set" }
    public func state(_ camera: String, _ which: Switch) -> String { "\(prefix)/\(Self.level(camera))/\(which.rawValue)/state" }
    /// The filter that matches every camera's commands.
    public var commands: String { "\(prefix)/+/+/set" }

    /// A command topic's camera level and switch, or nil if it is not one.
    public func parseCommand(_ topic: String) -> (cameraLevel: String, which: Switch)? {
        guard topic.hasPrefix(prefix + "/") else { return nil }
        let rest = topic.dropFirst(prefix.count + 1).split(separator: "/", omittingEmptySubsequences: false)
        guard rest.count == 3, rest[2] == "set", let which = Switch(rawValue: String(rest[1])), !rest[0].isEmpty else { return nil }
        return (String(rest[0]), which)
    }

    /// A camera name as one topic level: `/`, `+` and `#` (which would split it or match
    /// others) become `_`.
    public static func level(_ camera: String) -> String {
        String(camera.map { $0 == "/" || $0 == "+" || $0 == "#" ? "_" : $0 })
    }

    /// A camera name as a Home Assistant object id: letters, digits, `_` and `-` only.
    public static func objectID(_ camera: String) -> String {
        String(camera.map { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "_" || $0 == "-") ? $0 : "_" })
    }

    // MARK: events

    /// Frigate's event message: `{"type": "new"|"update"|"end", "before": {…}, "after": {…}}`,
    /// each side an event object (`id`, `camera`, `label` "motion", `start_time`, `end_time`
    /// (null while it lasts), `top_score`, `score`, `current_zones`, `entered_zones`,
    /// `has_snapshot`, `has_clip`, `active`, …; times in seconds since 1970). QoS 1: a broker
    /// restart loses none.
    public func event(type: String, before: EventRecord?, after: EventRecord) -> MQTTMessage {
        let body: [String: Any] = ["type": type, "before": Self.eventObject(before ?? after), "after": Self.eventObject(after)]
        let data = (try? JSONSerialization.data(withJSONObject: body, options: [.sortedKeys])) ?? Data()
        return MQTTMessage(topic: events, payload: Array(data), qos: 1)
    }

    /// An alarm for an event that started or ended, as the JSON of an ``AlarmNotice`` (its
    /// `id` is the event's: MQTT has no outbox, whose ids are per subscriber). QoS 1.
    public func alarm(_ event: EventRecord, started: Bool, at time: CaptureTime = .now) -> MQTTMessage {
        let alarm = Alarm(id: event.id ?? 0, event: event.id ?? 0, kind: started ? .started : .ended, camera: event.camera, zone: event.zone,
                          start: event.start, end: event.end, peakTime: event.peakTime, peakScore: event.peakScore, snapshot: event.snapshot)
        return MQTTMessage(topic: alarms, text: AlarmNotice(alarm, at: time).json, qos: 1)
    }

    static func eventObject(_ event: EventRecord) -> [String: Any] {
        let seconds = { (nanoseconds: Int64) in Double(nanoseconds) / 1e9 }
        let zones: [String] = event.zone.isEmpty ? [] : [event.zone]
        return [
            "id": event.id.map { "\($0)" } ?? "",
            "camera": event.camera,
            "label": "motion",
            "sub_label": NSNull(),
            "start_time": seconds(event.start),
            "end_time": event.end.map { seconds($0) as Any } ?? NSNull(),
            "frame_time": seconds(event.peakTime),
            "score": event.peakScore,
            "top_score": event.peakScore,
            "false_positive": false,
            "current_zones": event.end == nil ? zones : [],
            "entered_zones": zones,
            "has_snapshot": event.snapshot != nil,
            "has_clip": true,
            "active": event.end == nil,
            "stationary": false,
            "thumbnail": NSNull(),
        ]
    }

    // MARK: Home Assistant discovery

    /// The retained discovery configs for one camera: a motion binary sensor, a camera entity
    /// fed by the snapshot topic, sensors for fps and the link's RTT and loss (from `stats`),
    /// and switches for motion detection and recording, all in one device. Each carries a
    /// `unique_id`, the device's `identifiers` and the availability topic.
    public func discovery(camera: String, recorder: String, version: String, url: String?) -> [MQTTMessage] {
        let id = "xt_" + Self.objectID(camera)
        var device: [String: Any] = ["identifiers": [id], "name": camera, "manufacturer": "XTransport", "model": "XT camera on \(recorder)",
                                     "sw_version": version]
        if let url { device["configuration_url"] = url }
        let statsValue = { (key: String) in "{{ value_json.cameras[\(Self.jsonString(camera))].\(key) }}" }
        func config(_ component: String, _ object: String, _ fields: [String: Any]) -> MQTTMessage {
            var body = fields
            body["unique_id"] = "\(id)_\(object)"
            body["object_id"] = "\(id)_\(object)"
            body["device"] = device
            body["availability_topic"] = availability
            let data = (try? JSONSerialization.data(withJSONObject: body, options: [.sortedKeys])) ?? Data()
            return MQTTMessage(topic: "\(discoveryPrefix)/\(component)/\(id)_\(object)/config", payload: Array(data), qos: 1, retain: true)
        }
        return [
            config("binary_sensor", "motion", ["name": "Motion", "device_class": "motion", "state_topic": motion(camera)]),
            config("camera", "snapshot", ["name": "Motion snapshot", "topic": snapshot(camera)]),
            config("sensor", "fps", ["name": "Frames per second", "state_topic": stats, "value_template": statsValue("camera_fps"),
                                     "unit_of_measurement": "fps", "state_class": "measurement", "entity_category": "diagnostic"]),
            config("sensor", "link_rtt", ["name": "Link round trip", "state_topic": stats, "value_template": statsValue("link_rtt_ms"),
                                          "unit_of_measurement": "ms", "state_class": "measurement", "entity_category": "diagnostic"]),
            config("sensor", "link_loss", ["name": "Link loss", "state_topic": stats, "value_template": statsValue("link_loss_percent"),
                                           "unit_of_measurement": "%", "state_class": "measurement", "entity_category": "diagnostic"]),
            config("switch", "motion_detection", ["name": "Motion detection", "command_topic": command(camera, .motion),
                                                  "state_topic": state(camera, .motion)]),
            config("switch", "recordings", ["name": "Recording", "command_topic": command(camera, .recordings),
                                            "state_topic": state(camera, .recordings)]),
        ]
    }

    /// A string as a JSON literal (for a Jinja template's key).
    static func jsonString(_ text: String) -> String {
        let data = (try? JSONSerialization.data(withJSONObject: [text], options: [])) ?? Data("[\"\"]".utf8)
        return String(String(decoding: data, as: UTF8.self).dropFirst().dropLast())
    }
}
