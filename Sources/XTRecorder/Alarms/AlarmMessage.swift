// The alarm protocol between the recorder and the nodes that want to hear of motion, carried
// as node-network messages on the alarm channel (docs/PROTOCOL.md, "Alarms"):
//   node → recorder: subscribe (cameras and zones, empty for all), unsubscribe, ack;
//   recorder → node: alarm (an event that started or ended), until the node acknowledges it.
import Foundation
public import XTMedia

/// What a node wants to hear of.
public struct AlarmSubscription: Hashable, Sendable, Codable {
    /// The node's name in the network.
    public var node: String
    /// Only these cameras, and of them only these zones (empty: all).
    public var cameras: [String]
    public var zones: [String]

    public init(node: String, cameras: [String] = [], zones: [String] = []) {
        self.node = node
        self.cameras = cameras
        self.zones = zones
    }

    /// Whether an event of `camera` in `zone` concerns this subscriber.
    public func matches(camera: String, zone: String) -> Bool {
        (cameras.isEmpty || cameras.contains(camera)) && (zones.isEmpty || zones.contains(zone))
    }
}

/// One alarm: an event that started or ended.
public struct Alarm: Hashable, Sendable, Codable {
    public enum Kind: UInt8, Hashable, Sendable, Codable {
        case started = 1
        case ended = 2
    }

    /// The recorder's alarm number (rises; each subscriber gets each number once).
    public var id: Int64
    public var event: Int64
    public var kind: Kind
    public var camera: String
    public var zone: String
    /// Capture times (ns): the motion's start, its end (for `ended`), its peak.
    public var start: Int64
    public var end: Int64?
    public var peakTime: Int64
    /// Share of the zone that changed at the peak (0…1).
    public var peakScore: Double
    /// The snapshot's path under the storage root.
    public var snapshot: String?

    public init(id: Int64, event: Int64, kind: Kind, camera: String, zone: String, start: Int64, end: Int64? = nil, peakTime: Int64,
                peakScore: Double, snapshot: String? = nil) {
        self.id = id
        self.event = event
        self.kind = kind
        self.camera = camera
        self.zone = zone
        self.start = start
        self.end = end
        self.peakTime = peakTime
        self.peakScore = peakScore
        self.snapshot = snapshot
    }
}

/// A message of the alarm protocol.
public enum AlarmMessage: Hashable, Sendable {
    case subscribe(AlarmSubscription)
    case unsubscribe(node: String)
    case alarm(Alarm)
    case ack([Int64])

    /// The node-network channel alarms travel on.
    public static let channel: UInt16 = 60
    public static let version: UInt8 = 1

    private enum Kind: UInt8 {
        case subscribe = 1, unsubscribe = 2, alarm = 3, ack = 4
    }

    public func encoded() -> [UInt8] {
        var writer = MediaWriter()
        writer.u8(Self.version)
        switch self {
        case .subscribe(let subscription):
            writer.u8(Kind.subscribe.rawValue)
            writer.text(subscription.node)
            for list in [subscription.cameras, subscription.zones] {
                writer.u16(UInt16(min(list.count, 1024)))
                for item in list.prefix(1024) { writer.text(item) }
            }
        case .unsubscribe(let node):
            writer.u8(Kind.unsubscribe.rawValue)
            writer.text(node)
        case .alarm(let alarm):
            writer.u8(Kind.alarm.rawValue)
            writer.i64(alarm.id)
            writer.i64(alarm.event)
            writer.u8(alarm.kind.rawValue)
            writer.text(alarm.camera)
            writer.text(alarm.zone)
            writer.i64(alarm.start)
            writer.i64(alarm.end ?? .min)
            writer.i64(alarm.peakTime)
            writer.u32(UInt32(min(max(alarm.peakScore, 0), 1) * 1_000_000))
            writer.text(alarm.snapshot ?? "")
        case .ack(let ids):
            writer.u8(Kind.ack.rawValue)
            writer.u16(UInt16(min(ids.count, 65_535)))
            for id in ids.prefix(65_535) { writer.i64(id) }
        }
        return writer.bytes
    }

    /// Parses a message.
    /// - Throws: ``MediaError`` (malformed) for anything that is not a whole message of this version.
    public static func decode(_ bytes: [UInt8]) throws(MediaError) -> AlarmMessage {
        var reader = MediaReader(bytes)
        let version = try reader.u8()
        guard version == Self.version else {
            throw .malformed("alarm message version \(version) is not understood (this build speaks \(Self.version)): update the older side")
        }
        guard let kind = Kind(rawValue: try reader.u8()) else { throw .malformed("unknown alarm message kind") }
        let message: AlarmMessage
        switch kind {
        case .subscribe:
            let node = try reader.text()
            var lists: [[String]] = []
            for _ in 0..<2 {
                var list: [String] = []
                for _ in 0..<(try reader.u16()) { list.append(try reader.text()) }
                lists.append(list)
            }
            message = .subscribe(AlarmSubscription(node: node, cameras: lists[0], zones: lists[1]))
        case .unsubscribe:
            message = .unsubscribe(node: try reader.text())
        case .alarm:
            let id = try reader.i64(), event = try reader.i64()
            guard let alarmKind = Alarm.Kind(rawValue: try reader.u8()) else { throw .malformed("unknown alarm kind") }
            let camera = try reader.text(), zone = try reader.text()
            let start = try reader.i64(), end = try reader.i64(), peak = try reader.i64()
            // Times are checked where they enter, as the media protocol's are (1970–2199).
            guard CaptureTime(nanoseconds: start).isValid, CaptureTime(nanoseconds: peak).isValid, end == .min || CaptureTime(nanoseconds: end).isValid else {
                throw .malformed("an alarm's times lie outside 1970–2199: check the recorder's clock")
            }
            let score = Double(try reader.u32()) / 1_000_000
            let snapshot = try reader.text()
            message = .alarm(Alarm(id: id, event: event, kind: alarmKind, camera: camera, zone: zone, start: start, end: end == .min ? nil : end,
                                   peakTime: peak, peakScore: score, snapshot: snapshot.isEmpty ? nil : snapshot))
        case .ack:
            var ids: [Int64] = []
            for _ in 0..<(try reader.u16()) { ids.append(try reader.i64()) }
            message = .ack(ids)
        }
        guard reader.remaining == 0 else { throw .malformed("\(reader.remaining) bytes follow an alarm message") }
        return message
    }
}

/// An alarm as people and programs read it: `xt alarms` prints it as a JSON line, webhooks
/// receive it as the body of a POST.
public struct AlarmNotice: Codable, Sendable, Equatable {
    public var id: Int64
    public var event: Int64
    public var kind: String
    public var camera: String
    public var zone: String
    /// ISO 8601 (UTC) capture times of the motion's start and end.
    public var start: String
    public var end: String?
    public var startNanoseconds: Int64
    public var score: Double
    public var snapshot: String?
    /// When it was sent or received (ns since 1970), for latency measurements.
    public var receivedNanoseconds: Int64

    public init(_ alarm: Alarm, at time: CaptureTime = .now) {
        id = alarm.id
        event = alarm.event
        kind = alarm.kind == .started ? "started" : "ended"
        camera = alarm.camera
        zone = alarm.zone
        start = CaptureTime(nanoseconds: alarm.start).description + "Z"
        end = alarm.end.map { CaptureTime(nanoseconds: $0).description + "Z" }
        startNanoseconds = alarm.start
        score = alarm.peakScore
        snapshot = alarm.snapshot
        receivedNanoseconds = time.nanoseconds
    }

    /// One line of JSON, keys sorted.
    public var json: String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return String(decoding: (try? encoder.encode(self)) ?? Data(), as: UTF8.self)
    }
}
