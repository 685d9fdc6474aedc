// The `mqtt.*` keys of recorder.conf: which broker, how to log in, and the topics' prefix.
// Off unless `mqtt.host` is set.
import Foundation

/// How the recorder talks to an MQTT broker (Home Assistant, Frigate-style automations).
public struct RecorderMQTTSettings: Sendable, Equatable {
    /// The broker's host name or address; nil: no MQTT.
    public var host: String?
    /// nil: 1883, or 8883 with TLS.
    public var port: Int?
    public var user: String?
    public var password: String?
    /// A file whose first line is the password (kept out of recorder.conf).
    public var passwordFile: String?
    public var tls = false
    /// The CA certificate (PEM) to check the broker with; nil: the system's CAs.
    public var caFile: String?
    /// Topics are `PREFIX/available`, `PREFIX/events`, `PREFIX/CAMERA/motion`, ….
    public var prefix = "xt"
    /// nil: `xt-recorder-HOSTNAME`.
    public var clientID: String?
    /// Home Assistant MQTT discovery (retained configs under `discoveryPrefix`).
    public var discovery = true
    public var discoveryPrefix = "homeassistant"
    /// How long without motion before `CAMERA/motion` turns OFF (Frigate's `mqtt_off_delay`, 30 s).
    public var motionOffDelay: Duration = .seconds(30)
    /// Time between `PREFIX/stats` messages (Frigate's `stats_interval`, 60 s).
    public var statsInterval: Duration = .seconds(60)

    public init() {}

    public var enabled: Bool { host != nil }

    /// The port to connect to.
    public var resolvedPort: Int { port ?? (tls ? 8883 : 1883) }

    /// Sets one `mqtt.KEY` (`KEY` without the prefix).
    /// - Throws: a message saying what the key takes, for a bad value or an unknown key.
    public mutating func set(_ key: String, _ value: String) throws(BackupSettingError) {
        let bad = BackupSettingError.badValue(key: "mqtt." + key, value: key.hasPrefix("password") ? "…" : value,
                                              expected: Self.keys.first { $0.key == "mqtt." + key }?.takes ?? "")
        func onOff() throws(BackupSettingError) -> Bool {
            guard value == "on" || value == "off" else { throw bad }
            return value == "on"
        }
        func seconds(_ range: ClosedRange<Double>) throws(BackupSettingError) -> Duration {
            guard let seconds = Double(value), seconds.isFinite, range.contains(seconds) else { throw bad }
            return .milliseconds(Int64(seconds * 1000))
        }
        switch key {
        case "host":
            if value.isEmpty || value == "none" || value == "off" { host = nil; return }
            guard Self.isHostName(value) else { throw bad }
            host = value
        case "port":
            guard let number = Int(value), (1...65_535).contains(number) else { throw bad }
            port = number
        case "user": user = value.isEmpty ? nil : value
        case "password": password = value.isEmpty ? nil : value
        case "password-file":
            guard !value.isEmpty else { throw bad }
            passwordFile = value
        case "tls": tls = try onOff()
        case "ca":
            guard !value.isEmpty else { throw bad }
            caFile = value
        case "prefix":
            guard Self.isTopicLevelPath(value) else { throw bad }
            prefix = value
        case "client-id":
            guard !value.isEmpty, value.utf8.count <= 128, !value.contains(where: \.isWhitespace) else { throw bad }
            clientID = value
        case "discovery": discovery = try onOff()
        case "discovery-prefix":
            guard Self.isTopicLevelPath(value) else { throw bad }
            discoveryPrefix = value
        case "motion-off-delay": motionOffDelay = try seconds(0...3600)
        case "stats-interval": statsInterval = try seconds(5...3600)
        default:
            throw .unknownKey("mqtt." + key)
        }
    }

    /// A topic prefix: one or more levels of letters, digits, `_` and `-`, split by `/` (no
    /// wildcards, no empty level).
    static func isTopicLevelPath(_ text: String) -> Bool {
        let levels = text.split(separator: "/", omittingEmptySubsequences: false)
        return !text.isEmpty && text.utf8.count <= 200
            && levels.allSatisfy { !$0.isEmpty && $0.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "_" || $0 == "-") } }
    }

    static func isHostName(_ text: String) -> Bool {
        text.utf8.count <= 253 && text.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "." || $0 == "-" || $0 == ":") }
    }

    /// The keys, for messages and the example file.
    public static let keys: [(key: String, takes: String)] = [
        ("mqtt.host", "the broker's host name or address (none: no MQTT)"),
        ("mqtt.port", "1…65535 (default 1883, or 8883 with TLS)"),
        ("mqtt.user", "the user name to log in with"),
        ("mqtt.password", "its password (or mqtt.password-file)"),
        ("mqtt.password-file", "a file whose first line is the password"),
        ("mqtt.tls", "on or off"),
        ("mqtt.ca", "a CA certificate (PEM) to check the broker with (default: the system's)"),
        ("mqtt.prefix", "the topics' first levels, e.g. xt or home/xt (letters, digits, _ and -)"),
        ("mqtt.client-id", "the id the broker knows the recorder by (default: xt-recorder-HOSTNAME)"),
        ("mqtt.discovery", "on or off: Home Assistant MQTT discovery"),
        ("mqtt.discovery-prefix", "Home Assistant's discovery prefix (default: homeassistant)"),
        ("mqtt.motion-off-delay", "seconds after the camera's last event ended before CAMERA/motion turns OFF, 0…3600 (default 30)"),
        ("mqtt.stats-interval", "seconds between stats messages, 5…3600 (default 60)"),
    ]
}
