// The recorder's REST API (documented in docs/openapi.yaml), which the web UI's pages use:
// login, cameras, each camera's timeline, clips to play or download, motion events and their
// snapshots, nodes, alarm subscriptions, users; and the live view's WebSocket. Times are
// milliseconds since 1970 (capture times, the agents' clocks).
import Foundation
import Hummingbird
import HummingbirdWebSocket
import NIOCore
import XTMedia
import XTMQTT
public import struct XTNet.NodeStatus

/// What the web layer reads and serves.
public struct RecorderWeb: Sendable {
    public var root: String
    public var index: any RecorderIndex
    public var accounts: WebAccounts
    public var live: LiveHub
    public var clips: ClipCache
    /// `transcode = auto`: what browsers cannot play is re-encoded for them.
    public var transcode: Bool
    /// Nodes that tried to connect and were refused (from the host), for the Nodes page.
    public var refusedNodes: @Sendable () async -> [NodeStatus] = { [] }
    /// What each connected node says it is doing, by name ("in a call with phone (direct)").
    public var activities: @Sendable () async -> [String: String] = { [:] }
    /// Where the recorder's own backup stands (nil: it does not back itself up).
    public var backup: RecorderBackup?
    /// The recorder's MQTT bridge (nil: `mqtt.host` is not set).
    public var mqtt: RecorderMQTT?
    /// Live HLS of the cameras (made from `live`'s fragments).
    public var hls: LiveHLS
    /// Signs the stream links players use without the session cookie (nil: only the cookie works).
    public var links: SignedLinks?
    /// The call page's socket (`/api/call`): run for logged-in user `user`, with the page's
    /// messages in and a way to write to it; nil: calls are not served (the route says so).
    public var callPage: (@Sendable (_ user: String, _ inbound: AsyncStream<CallPageMessage>,
                                     _ write: @escaping @Sendable (CallPageMessage) async throws -> Void) async -> Void)?

    /// - Parameter transcode: clips of cameras whose H.264 browsers cannot play are re-encoded.
    public init(root: String, index: any RecorderIndex, accounts: WebAccounts, live: LiveHub, transcode: Bool = false) {
        self.root = root
        self.index = index
        self.accounts = accounts
        self.live = live
        self.transcode = transcode
        clips = ClipCache(root: root, index: index, transcode: transcode)
        hls = LiveHLS(live: live)
    }
}

/// API bodies.
public enum API {
    public struct Login: Codable, Sendable { public var name: String; public var password: String }
    public struct NewUser: Codable, Sendable { public var name: String; public var role: String; public var password: String }
    public struct User: Codable, Sendable { public var name: String; public var role: String; public var inConfig: Bool }
    /// A time in milliseconds from outside, checked against ``CaptureTime/validRange``.
    /// - Throws: a 400 ``APIError`` naming the field and the range allowed.
    static func checkedTime(_ milliseconds: Int64, _ name: String) throws -> Int64 {
        guard CaptureTime(milliseconds: milliseconds) != nil else {
            throw APIError(.badRequest, "'\(name)' is \(milliseconds): it must be \(CaptureTime.validRangeDescription)")
        }
        return milliseconds
    }

    /// The MQTT bridge: whether it is on, where to, and how the connection stands.
    public struct MQTTStatus: Codable, Sendable {
        public var enabled: Bool
        public var broker: String
        public var prefix: String
        public var connected: Bool
        /// Why it is not connected (unreachable, refused with the broker's reason, lost).
        public var lastError: String?
        public var published: Int
        public var dropped: Int
        public var unacknowledged: Int

        init(_ mqtt: RecorderMQTT?) {
            let status = mqtt?.client.status ?? MQTTClientStatus()
            enabled = mqtt != nil
            broker = mqtt.map { "\($0.settings.host ?? ""):\($0.settings.resolvedPort)\($0.settings.tls ? " (TLS)" : "")" } ?? ""
            prefix = mqtt?.settings.prefix ?? ""
            connected = status.connected
            lastError = status.lastError
            published = status.published
            dropped = status.dropped
            unacknowledged = status.unacknowledged
        }
    }

    /// A node refused by the host: its key is not authorized, or it claimed a name or id pinned
    /// to another key.
    public struct RefusedNode: Codable, Sendable {
        public var name: String
        public var id: String
        public var key: String
        public var address: String
        public var attempts: Int
        public var last: Int64
        public var reason: String
    }

    public struct ClipRequest: Codable, Sendable {
        public var from: Int64
        public var to: Int64
        /// A download: the whole range in one file, over any change of the camera's shape. A
        /// clip to play stops where the shape changes (the page goes on with the next clip).
        public var whole: Bool?
    }
    public struct Span: Codable, Sendable, Equatable { public var start: Int64; public var end: Int64 }

    public struct Camera: Codable, Sendable {
        public var name: String
        /// Sending live video now.
        public var live: Bool
        /// Has sound (live).
        public var audio: Bool
        public var video: String?
        public var audioDescription: String?
        public var firstSeen: Int64
        public var lastSeen: Int64
        public var recordedFrom: Int64?
        public var segments: Int
        public var bytes: Int64
        /// Whether browsers play its video as recorded.
        public var playable: Bool
        /// What a viewer should know: recorded in a form browsers cannot play, and whether the
        /// recorder re-encodes it for them (`transcode = auto`).
        public var note: String?
    }

    public struct Event: Codable, Sendable {
        public var id: Int64
        public var camera: String
        public var zone: String
        public var start: Int64
        public var end: Int64?
        public var clipStart: Int64
        public var clipEnd: Int64?
        public var peakScore: Double
        public var snapshot: String?
    }

    public struct Timeline: Codable, Sendable {
        public var camera: String
        public var from: Int64
        public var to: Int64
        /// Stretches recorded without a break.
        public var spans: [Span]
        public var gaps: [Span]
        public var events: [Event]
    }

    public struct Node: Codable, Sendable {
        public var name: String
        public var id: String
        public var key: String
        public var online: Bool
        public var firstSeen: Int64
        public var lastSeen: Int64
        public var channels: [UInt16]
        public var rttMilliseconds: Double
        public var lossPercent: Double
        public var retransmittedBytes: Int64
        /// What the node says it is doing now, when online (a call and its path); nil: nothing.
        public var activity: String?
    }

    public struct Subscription: Codable, Sendable {
        public var node: String
        public var cameras: [String]
        public var zones: [String]
        public var online: Bool
        /// Alarms waiting for this node's acknowledgement.
        public var pending: Int
    }
}

extension RecorderWeb {
    /// A node not heard from in this long is shown offline.
    static let onlineWithin: Int64 = 15_000

    /// Adds the API's routes to `router`.
    func addRoutes(to router: Router<WebRequestContext>) {
        let api = router.group("api")
        api.post("login") { request, context -> Response in
            let login = try await request.decode(as: API.Login.self, context: context)
            do {
                let (token, user) = try await accounts.login(name: login.name, password: login.password)
                var response = try JSON.response(user)
                response.setCookie(Cookie(name: WebAccounts.cookieName, value: token, maxAge: Int(WebAccounts.idleLimit.components.seconds),
                                          path: "/", httpOnly: true, sameSite: .strict))
                return response
            } catch let error as WebAccountError {
                switch error {
                case .wrongPassword: throw APIError(.unauthorized, error.description)
                case .locked: throw APIError(.tooManyRequests, error.description)
                case .noUsers: throw APIError(.serviceUnavailable, error.description)
                default: throw APIError(.badRequest, error.description)
                }
            }
        }
        api.post("logout") { request, _ -> Response in
            if let token = request.cookies[WebAccounts.cookieName]?.value { accounts.logout(token: token) }
            var response = Response(status: .noContent)
            response.setCookie(Cookie(name: WebAccounts.cookieName, value: "", maxAge: 0, path: "/", httpOnly: true, sameSite: .strict))
            return response
        }
        api.get("me") { _, context in try JSON.response(try context.requireUser()) }
        addHLSRoutes(to: api)

        api.get("cameras") { _, context in
            _ = try context.requireUser()
            return try JSON.response(try await cameras())
        }
        api.get("cameras/:camera/timeline") { request, context in
            _ = try context.requireUser()
            let camera = try context.parameters.decoded("camera")
            let to = try request.time("to") ?? CaptureTime.now.nanoseconds / 1_000_000
            let from = try request.time("from") ?? to - 24 * 3_600_000
            guard from < to else { throw APIError(.badRequest, "'from' must be before 'to'") }
            return try JSON.response(try await timeline(camera: camera, from: from, to: to))
        }
        api.post("cameras/:camera/clips") { request, context in
            _ = try context.requireUser()
            let camera = try context.parameters.decoded("camera")
            let range = try await request.decode(as: API.ClipRequest.self, context: context)
            _ = try API.checkedTime(range.from, "from")
            _ = try API.checkedTime(range.to, "to")
            guard range.from < range.to else { throw APIError(.badRequest, "'from' must be before 'to'") }
            guard range.to - range.from <= ClipCache.longest else {
                throw APIError(.badRequest, "a clip spans at most an hour: ask for shorter clips, or use `xt recorder export` for long ranges")
            }
            return try JSON.response(try await clips.clip(camera: camera, from: range.from, to: range.to, whole: range.whole ?? false),
                                     status: .created)
        }
        api.get("events") { request, context in
            _ = try context.requireUser()
            let limit = try request.integer("limit", in: 1...10_000) ?? 500
            let events = try await index.events(camera: request.uri.queryParameters.get("camera"),
                                                from: try request.time("from").map { $0 * 1_000_000 }, to: try request.time("to").map { $0 * 1_000_000 })
            return try JSON.response(events.reversed().prefix(limit).map(Self.event))
        }
        api.get("events/:id/snapshot.jpg") { _, context -> Response in
            _ = try context.requireUser()
            guard let id = Int64(try context.parameters.require("id")) else { throw APIError(.badRequest, "an event id is a number") }
            guard let event = try await index.event(id: id) else { throw APIError(.notFound, "no event \(id)") }
            guard let snapshot = event.snapshot,
                  let data = FileManager.default.contents(atPath: (root as NSString).appendingPathComponent(snapshot)) else {
                throw APIError(.notFound, "event \(id) has no snapshot (yet, or retention deleted it)")
            }
            return Response(status: .ok, headers: [.contentType: "image/jpeg", .cacheControl: "private, max-age=86400"],
                            body: ResponseBody(byteBuffer: ByteBuffer(bytes: data)))
        }
        api.get("nodes") { _, context in
            _ = try context.requireUser()
            let now = CaptureTime.now.nanoseconds / 1_000_000
            let activities = await activities()
            return try JSON.response(try await index.nodes().map { node in
                let online = now - node.lastSeen / 1_000_000 < Self.onlineWithin
                return API.Node(name: node.name, id: node.id, key: node.key, online: online,
                                firstSeen: node.firstSeen / 1_000_000, lastSeen: node.lastSeen / 1_000_000, channels: node.channels,
                                rttMilliseconds: node.rttMilliseconds, lossPercent: node.lossPercent, retransmittedBytes: node.retransmittedBytes,
                                activity: online ? activities[node.name] : nil)
            })
        }
        api.get("backup") { _, context in
            _ = try context.requireUser()
            return try JSON.response(await backup?.currentStatus ?? RecorderBackupStatus.off())
        }
        api.get("mqtt") { [mqtt] _, context in
            _ = try context.requireUser()
            return try JSON.response(API.MQTTStatus(mqtt))
        }
        api.get("nodes/refused") { _, context in
            _ = try context.requireUser()
            return try JSON.response(await refusedNodes().compactMap { node in
                node.refused.map { API.RefusedNode(name: node.name, id: node.id, key: $0.key, address: $0.address, attempts: $0.attempts,
                                                   last: $0.lastMilliseconds, reason: $0.reason) }
            })
        }
        api.get("subscriptions") { _, context in
            _ = try context.requireUser()
            let pending = Dictionary(grouping: try await index.pendingDeliveries(target: nil, limit: 100_000), by: \.target).mapValues(\.count)
            let now = CaptureTime.now.nanoseconds / 1_000_000
            let online = Set(try await index.nodes().filter { now - $0.lastSeen / 1_000_000 < Self.onlineWithin }.map(\.name))
            return try JSON.response(try await index.subscriptions().map {
                API.Subscription(node: $0.node, cameras: $0.cameras, zones: $0.zones, online: online.contains($0.node), pending: pending[$0.node] ?? 0)
            })
        }
        api.get("users") { _, context in
            _ = try context.requireAdmin()
            return try JSON.response(accounts.users().map { API.User(name: $0.user.name, role: $0.user.role.rawValue, inConfig: $0.inConfig) })
        }
        api.post("users") { request, context in
            _ = try context.requireAdmin()
            let user = try await request.decode(as: API.NewUser.self, context: context)
            guard let role = UserAccount.Role(rawValue: user.role) else { throw APIError(.badRequest, "role '\(user.role)' is not viewer or admin") }
            do { try await accounts.save(name: user.name, role: role, password: user.password) } catch let error as WebAccountError { throw Self.apiError(error) }
            return try JSON.response(API.User(name: user.name, role: role.rawValue, inConfig: false), status: .created)
        }
        api.delete("users/:name") { _, context -> Response in
            let admin = try context.requireAdmin()
            let name = try context.parameters.decoded("name")
            guard name != admin.name else { throw APIError(.conflict, "you cannot delete yourself: log in as another admin") }
            do { try accounts.remove(name: name) } catch let error as WebAccountError { throw Self.apiError(error) }
            return Response(status: .noContent)
        }
    }

    static func apiError(_ error: WebAccountError) -> APIError {
        switch error {
        case .notFound: APIError(.notFound, error.description)
        case .fromConfig: APIError(.conflict, error.description)
        case .cannotSave: APIError(.internalServerError, error.description)
        default: APIError(.badRequest, error.description)
        }
    }

    static func event(_ event: EventRecord) -> API.Event {
        API.Event(id: event.id ?? 0, camera: event.camera, zone: event.zone, start: event.start / 1_000_000, end: event.end.map { $0 / 1_000_000 },
                  clipStart: event.clipStart / 1_000_000, clipEnd: event.clipEnd.map { $0 / 1_000_000 }, peakScore: event.peakScore,
                  snapshot: event.snapshot == nil ? nil : "/api/events/\(event.id ?? 0)/snapshot.jpg")
    }

    /// Whether a camera's video summary (``RecordingStore/summary(_:)``) is one browsers play.
    static func playable(_ summary: String?) -> Bool { !(summary?.contains(RecordingStore.unplayableMark) ?? false) }

    /// Every camera the index knows, with what it holds of each and whether it is live now.
    func cameras() async throws -> [API.Camera] {
        let use = Dictionary(try await index.storageUse().map { ($0.camera, $0) }, uniquingKeysWith: { first, _ in first })
        let live = self.live.cameras
        return try await index.cameras().map { camera in
            API.Camera(name: camera.name, live: live[camera.name] != nil, audio: live[camera.name] ?? false, video: camera.video,
                       audioDescription: camera.audio, firstSeen: camera.firstSeen / 1_000_000, lastSeen: camera.lastSeen / 1_000_000,
                       recordedFrom: use[camera.name]?.oldest.map { $0 / 1_000_000 }, segments: use[camera.name]?.segments ?? 0,
                       bytes: use[camera.name]?.bytes ?? 0, playable: Self.playable(camera.video),
                       note: Self.playable(camera.video) ? nil : transcode
                           ? "recorded as \(camera.video ?? "") is kept as it is; the live view and clips are re-encoded for browsers (transcode = auto)"
                           : "recorded as \(camera.video ?? ""), which browsers cannot play: set transcode = auto in recorder.conf to re-encode it for the live view and clips")
        }
    }

    /// One camera's recordings, gaps and events between two times.
    func timeline(camera: String, from: Int64, to: Int64) async throws -> API.Timeline {
        let segments = try await index.segments(camera: camera, from: from * 1_000_000, to: to * 1_000_000)
        var spans: [API.Span] = []
        for segment in segments {
            let span = API.Span(start: segment.start / 1_000_000, end: segment.end / 1_000_000)
            // Segments that follow on within a frame or so are one stretch.
            if let last = spans.last, span.start - last.end <= 300 { spans[spans.count - 1].end = max(last.end, span.end) } else { spans.append(span) }
        }
        let gaps = try await index.gaps(camera: camera, from: from * 1_000_000, to: to * 1_000_000)
            .map { API.Span(start: $0.start / 1_000_000, end: $0.end / 1_000_000) }
        let events = try await index.events(camera: camera, from: from * 1_000_000, to: to * 1_000_000).map(Self.event)
        return API.Timeline(camera: camera, from: from, to: to, spans: spans, gaps: gaps, events: events)
    }

    /// Adds the call page's WebSocket, `/api/call`: the logged-in user's node in calls (see
    /// XTCall's `WebCallBridge` for what it carries).
    func addCallRoute(to router: Router<LiveSocketContext>) {
        router.ws("api/call") { _, context in
            guard context.user != nil else { throw APIError.loginNeeded }
            return .upgrade([:])
        } onUpgrade: { inbound, outbound, context in
            guard let user = context.requestContext.user?.name else { return }
            guard let callPage else {
                try await outbound.write(.text(#"{"type":"error","message":"this recorder does not serve calls"}"#))
                return
            }
            let (messages, continuation) = AsyncStream<CallPageMessage>.makeStream(bufferingPolicy: .bufferingNewest(256))
            let writer = CallPageWriter(outbound)
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask {
                    for try await message in inbound.messages(maxSize: 1 << 20) {
                        switch message {
                        case .text(let text): continuation.yield(.text(text))
                        case .binary(let buffer): continuation.yield(.binary(Array(buffer.readableBytesView)))
                        }
                    }
                    continuation.finish()
                }
                group.addTask { await callPage(user, messages, { try await writer.write($0) }) }
                _ = try await group.next()
                continuation.finish()
                group.cancelAll()
            }
        }
    }

    /// Adds the live view's WebSocket: `/api/cameras/NAME/live[?audio=1]` sends the stream's
    /// ``LiveHub/Info`` as text, then the MP4 header and fragments as binary messages; or a
    /// text `{"error": …}` when the camera is not live.
    func addLiveRoute(to router: Router<LiveSocketContext>) {
        router.ws("api/cameras/:camera/live") { _, context in
            guard context.user != nil else { throw APIError.loginNeeded }
            return .upgrade([:])
        } onUpgrade: { inbound, outbound, context in
            let camera = (try? context.requestContext.parameters.decoded("camera")) ?? ""
            let audio = context.request.uri.queryParameters.get("audio") == "1"
            let watched: (id: UInt64, packets: AsyncStream<LivePacket>)
            do {
                watched = try live.watch(camera, audio: audio)
            } catch {
                struct Failure: Encodable { var error: String }
                let reason = (error as? LiveHub.LiveError)?.description ?? "\(error)"
                let text = String(decoding: try JSON.encoder.encode(Failure(error: reason)), as: UTF8.self)
                try await outbound.write(.text(text))
                return
            }
            try await withThrowingTaskGroup(of: Void.self) { group in
                // Reading notices the page closing; the stream ends on its own otherwise.
                group.addTask { for try await _ in inbound {} }
                group.addTask {
                    for await packet in watched.packets {
                        switch packet {
                        case .info(let info): try await outbound.write(.text(String(decoding: try JSON.encoder.encode(info), as: UTF8.self)))
                        case .header(let bytes): try await outbound.write(.binary(ByteBuffer(bytes: bytes)))
                        case .fragment(let fragment): try await outbound.write(.binary(ByteBuffer(bytes: fragment.bytes)))
                        }
                    }
                }
                _ = try await group.next()
                group.cancelAll()
            }
        }
    }
}

/// A message on the call page's socket.
public enum CallPageMessage: Sendable, Equatable {
    case text(String)
    case binary([UInt8])
}

/// Writes to a call page's socket from any task, one message at a time.
private actor CallPageWriter {
    private let outbound: WebSocketOutboundWriter
    init(_ outbound: WebSocketOutboundWriter) { self.outbound = outbound }
    func write(_ message: CallPageMessage) async throws {
        switch message {
        case .text(let text): try await outbound.write(.text(text))
        case .binary(let bytes): try await outbound.write(.binary(ByteBuffer(bytes: bytes)))
        }
    }
}
