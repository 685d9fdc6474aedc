// The recorder's settings: storage and index, the camera channels, segments, retention,
// motion (defaults and per camera: zones and masks as polygons, thresholds), alarm webhooks.
// Read from Config/recorder.conf (key = value; per-camera keys are `camera.NAME.KEY`, zones
// `zone.NAME` and masks `mask.NAME`), then XT_RECORDER_* variables, then command-line options.
import Foundation
public import XTNet

/// Everything `xt recorder` can be told in its file.
public struct RecorderConfiguration: KeyValueSettings, Sendable, Equatable {
    public var storage = "/var/lib/xt/recordings"
    /// The index database (nil: `<storage>/index.sqlite`).
    public var index: String?
    public var channels: ClosedRange<UInt16> = 100...199
    public var deadlineMilliseconds = 500
    public var segments = SegmentSettings()
    public var retention = RetentionPolicy()
    /// Motion settings for every camera.
    public var motion = MotionSettings()
    /// Per camera, the motion keys set for it alone (applied over ``motion``).
    public var cameraMotionKeys: [String: [Setting]] = [:]

    /// One `key = value`.
    public struct Setting: Sendable, Equatable {
        public var key: String
        public var value: String
    }

    /// Each configured camera's motion settings: the defaults with its own keys on top.
    public var cameraMotion: [String: MotionSettings] {
        cameraMotionKeys.mapValues { settings in
            var resolved = motion
            for setting in settings { try? Self.setMotion(setting.key, setting.value, in: &resolved, key: setting.key) }
            return resolved
        }
    }
    /// Where alarms are also POSTed (JSON), by name.
    public var webhooks: [String: String] = [:]
    /// People who may log in to the web UI, by name.
    public var users: [String: UserAccount] = [:]
    /// Where the HTTP server (metrics, and the web UI) listens; nil: nowhere.
    public var http: (host: String, port: Int)? = ("127.0.0.1", 8480)
    /// `transcode = auto`: cameras whose H.264 browsers cannot play (High 4:2:2, High 10,
    /// 4:4:4) are re-encoded for the live view and clips; the recording keeps the original.
    public var transcode = false
    /// The recorder's own backup to Pis (`backup.*`; off unless `backup.to` is set).
    public var backup = RecorderBackupSettings()
    /// MQTT: Frigate-style topics and Home Assistant discovery (`mqtt.*`; off unless `mqtt.host` is set).
    public var mqtt = RecorderMQTTSettings()

    public static func == (lhs: RecorderConfiguration, rhs: RecorderConfiguration) -> Bool {
        lhs.storage == rhs.storage && lhs.index == rhs.index && lhs.channels == rhs.channels && lhs.deadlineMilliseconds == rhs.deadlineMilliseconds
            && lhs.segments == rhs.segments && lhs.retention == rhs.retention && lhs.motion == rhs.motion
            && lhs.cameraMotionKeys == rhs.cameraMotionKeys && lhs.webhooks == rhs.webhooks && lhs.users == rhs.users
            && lhs.http?.host == rhs.http?.host && lhs.http?.port == rhs.http?.port && lhs.transcode == rhs.transcode
            && lhs.backup == rhs.backup && lhs.mqtt == rhs.mqtt
    }

    public init() {}

    /// Keys a file or the environment may set (per-camera keys are `camera.NAME.` + a motion
    /// or retention key; zones and masks are `zone.NAME` / `mask.NAME`, for every camera or
    /// after `camera.NAME.`).
    public static let keys: [(key: String, takes: String)] = [
        ("storage", "a directory"), ("index", "a file (default: <storage>/index.sqlite)"), ("channels", "first-last, e.g. 100-199"),
        ("deadline", "milliseconds, 50…10000"), ("segment-seconds", "seconds, 1…600"),
        ("retention-days", "days from 0 to 36525 (0: only when space runs short)"), ("event-retention-days", "days from 0 to 36525 (0: like the rest)"),
        ("max-size", "e.g. 500G, 800M (at most 1024P), or none"), ("min-free", "e.g. 2G (at most 1024P)"),
        ("motion", "on or off"), ("sensitivity", "0…1 (higher: smaller changes count)"),
        ("min-area", "share of a zone, 0…1, e.g. 0.01"), ("min-duration", "seconds, e.g. 0.3"), ("cooldown", "seconds without motion that end an event"),
        ("pre-roll", "seconds kept before an event"), ("post-roll", "seconds kept after an event"),
        ("zone.NAME", "a polygon: x,y x,y x,y … in fractions of the picture"), ("mask.NAME", "a polygon, as for zones"),
        ("camera.NAME.KEY", "any motion key, zone./mask., or retention-days, for one camera"),
        ("webhook.NAME", "an http:// or https:// URL that alarms are POSTed to"),
        ("http", "host:port for metrics and the web UI, or none"),
        ("transcode", "auto (re-encode H.264 browsers cannot play — High 4:2:2, High 10, 4:4:4 — for the live view and clips) or off"),
        ("user.NAME", "viewer or admin, then a password hash from `xt recorder passwd NAME`"),
    ] + RecorderBackupSettings.keys + RecorderMQTTSettings.keys

    public mutating func set(_ key: String, _ value: String) throws(NodeConfigurationError) {
        let value = value.trimmingCharacters(in: .whitespaces)
        let bad = NodeConfigurationError.badValue(key: key, value: value, expected: Self.expected(key))
        if key.hasPrefix("camera.") {
            let parts = key.split(separator: ".", maxSplits: 2).map(String.init)
            guard parts.count == 3, !parts[1].isEmpty else { throw bad }
            let camera = parts[1], setting = parts[2]
            if setting == "retention-days" {
                guard let days = Self.days(value) else { throw bad }
                retention.cameraMaximumAge[camera] = days > 0 ? .seconds(days * 86_400) : nil
                return
            }
            var check = motion
            try Self.setMotion(setting, value, in: &check, key: key)  // refused here, with the line, if bad
            cameraMotionKeys[camera, default: []].append(Setting(key: setting, value: value))
            return
        }
        switch key {
        case "storage":
            guard !value.isEmpty else { throw bad }
            storage = value
        case "index": index = value.isEmpty ? nil : value
        case "http":
            if value == "none" { http = nil; return }
            guard let colon = value.lastIndex(of: ":"), let port = Int(value[value.index(after: colon)...]), (1...65_535).contains(port),
                  colon > value.startIndex else { throw bad }
            http = (String(value[..<colon]), port)
        case "channels":
            let bounds = value.split(separator: "-").compactMap { UInt16($0) }
            guard (1...2).contains(bounds.count), bounds.first! <= bounds.last!, bounds.last! < UInt16.max else { throw bad }
            channels = bounds.first!...bounds.last!
        case "deadline":
            guard let milliseconds = Int(value), (50...10_000).contains(milliseconds) else { throw bad }
            deadlineMilliseconds = milliseconds
        case "segment-seconds":
            guard let seconds = Double(value), (1...600).contains(seconds) else { throw bad }
            segments.segmentDuration = .milliseconds(Int64(seconds * 1000))
        case "retention-days":
            guard let days = Self.days(value) else { throw bad }
            retention.maximumAge = days > 0 ? .seconds(days * 86_400) : nil
        case "event-retention-days":
            guard let days = Self.days(value) else { throw bad }
            retention.eventMaximumAge = days > 0 ? .seconds(days * 86_400) : nil
        case "max-size":
            if value == "none" { retention.maximumBytes = nil } else {
                guard let bytes = Self.bytes(value) else { throw bad }
                retention.maximumBytes = bytes
            }
        case "transcode":
            guard value == "auto" || value == "off" else { throw bad }
            transcode = value == "auto"
        case "min-free":
            guard let bytes = Self.bytes(value) else { throw bad }
            retention.minimumFreeBytes = bytes
        case _ where key.hasPrefix("user."):
            let name = String(key.dropFirst(5))
            guard let user = UserAccount(name: name, setting: value) else {
                throw .badValue(key: key, value: value.count > 12 ? String(value.prefix(12)) + "…" : value,
                                expected: "viewer or admin, then a password hash: run `xt recorder passwd \(name)` and paste its line")
            }
            users[name] = user
        case _ where key.hasPrefix("backup.") || key.hasPrefix("mqtt."):
            do {
                if key.hasPrefix("backup.") { try backup.set(String(key.dropFirst(7)), value) } else { try mqtt.set(String(key.dropFirst(5)), value) }
            } catch {
                switch error {
                case .badValue(let key, let value, let expected): throw .badValue(key: key, value: value, expected: expected)
                case .unknownKey(let key): throw .unknownKey(key, known: Self.keys.map(\.key))
                }
            }
        case _ where key.hasPrefix("webhook."):
            guard key.count > 8, value.hasPrefix("http://") || value.hasPrefix("https://"), URL(string: value) != nil else { throw bad }
            webhooks[String(key.dropFirst(8))] = value
        default:
            try Self.setMotion(key, value, in: &motion, key: key)
        }
    }

    private static func expected(_ key: String) -> String {
        let generic = key.hasPrefix("camera.") ? String(key.split(separator: ".", maxSplits: 2).last ?? "") : key
        let lookup = generic.hasPrefix("zone.") ? "zone.NAME" : generic.hasPrefix("mask.") ? "mask.NAME" : generic.hasPrefix("webhook.") ? "webhook.NAME" : generic
        return keys.first { $0.key == lookup }?.takes ?? ""
    }

    /// Sets a motion key (`motion`, `sensitivity`, …, `zone.NAME`, `mask.NAME`) in `settings`.
    static func setMotion(_ setting: String, _ value: String, in settings: inout MotionSettings, key: String) throws(NodeConfigurationError) {
        let bad = NodeConfigurationError.badValue(key: key, value: value, expected: expected(key))
        func seconds() throws(NodeConfigurationError) -> Duration {
            guard let seconds = Double(value), seconds >= 0, seconds <= 3600 else { throw bad }
            return .milliseconds(Int64(seconds * 1000))
        }
        switch setting {
        case "motion":
            guard value == "on" || value == "off" else { throw bad }
            settings.enabled = value == "on"
        case "sensitivity":
            guard let number = Double(value), (0...1).contains(number) else { throw bad }
            settings.sensitivity = number
        case "min-area":
            guard let number = Double(value), number > 0, number <= 1 else { throw bad }
            settings.minimumArea = number
        case "min-duration": settings.minimumDuration = try seconds()
        case "cooldown": settings.cooldown = try seconds()
        case "pre-roll": settings.preRoll = try seconds()
        case "post-roll": settings.postRoll = try seconds()
        case _ where setting.hasPrefix("zone.") || setting.hasPrefix("mask."):
            let name = String(setting.dropFirst(5))
            guard !name.isEmpty, let polygon = MotionZone.polygon(parsing: value) else { throw bad }
            let zone = MotionZone(name: name, polygon: polygon)
            if setting.hasPrefix("zone.") {
                settings.zones.removeAll { $0.name == name }
                settings.zones.append(zone)
            } else {
                settings.masks.removeAll { $0.name == name }
                settings.masks.append(zone)
            }
        default:
            throw .unknownKey(key, known: keys.map(\.key))
        }
    }

    /// Days of retention: 0 (none) to 100 years; nil for anything else (NaN, infinite, negative).
    static func days(_ text: String) -> Double? {
        guard let days = Double(text), days.isFinite, (0...36_525).contains(days) else { return nil }
        return days
    }

    /// "500G", "800M", "64K" or plain bytes, up to 1 EiB (2^60); nil for anything else.
    public static func bytes(_ text: String) -> Int64? {
        let units: [Character: Double] = ["K": 1024, "M": 1_048_576, "G": 1_073_741_824, "T": 1_099_511_627_776]
        var number = text.uppercased()
        var scale = 1.0
        if let last = number.last, let unit = units[last] {
            scale = unit
            number.removeLast()
        }
        guard let value = Double(number), value.isFinite, value >= 0, value * scale <= 1_152_921_504_606_846_976 else { return nil }
        return Int64(value * scale)
    }
}
