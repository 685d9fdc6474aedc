// The REST API through HummingbirdTesting: logins (wrong passwords refused, lock-out, cookies),
// every route refusing anonymous callers, the timeline merging segments into spans with gaps
// and events, snapshots, the admin-only Users API, and bad requests answered with a JSON
// reason.
import Foundation
import Hummingbird
import HummingbirdTesting
import Testing
import XTBackup
@testable import XTRecorder
import XTMedia
import XTNet

@Suite struct RecorderAPITests {
    struct Setup {
        let root: String
        let index: SQLiteIndex
        var web: RecorderWeb
        let app: Application<RouterResponder<WebRequestContext>>
    }

    /// A recorder's web layer over an index with camera `door`: segments 0–10 s, 10–20 s and
    /// 30–40 s (at `base`), one motion event with a snapshot; users `alice` (admin) and `bob`
    /// (viewer), passwords `alice-password` and `bob-password`.
    func setUp() async throws -> Setup {
        let root = Fixtures.temporaryDirectory("web")
        let index = try SQLiteIndex(path: "\(root)/index.sqlite")
        let base: Int64 = 1_800_000_000_000
        try await index.saveCamera(CameraRecord(name: "door", firstSeen: base * 1_000_000, lastSeen: (base + 40_000) * 1_000_000,
                                                video: "H.264 640x360@30", audio: "Opus 48000 Hz 1 ch"))
        for (start, end) in [(0, 10), (10, 20), (30, 40)] {
            try await index.saveSegment(SegmentRecord(path: "door/\(start).mp4", camera: "door", start: (base + Int64(start) * 1000) * 1_000_000,
                                                      end: (base + Int64(end) * 1000) * 1_000_000, bytes: 1000, videoFrames: 300,
                                                      audioFrames: 500, isOpen: false))
        }
        try FileManager.default.createDirectory(atPath: "\(root)/door/events", withIntermediateDirectories: true)
        try Data([0xFF, 0xD8, 0xFF, 0xD9]).write(to: URL(fileURLWithPath: "\(root)/door/events/1.jpg"))
        _ = try await index.saveEvent(EventRecord(camera: "door", zone: "all", start: (base + 5000) * 1_000_000, end: (base + 8000) * 1_000_000,
                                                  clipStart: base * 1_000_000, clipEnd: (base + 13_000) * 1_000_000,
                                                  peakTime: (base + 6000) * 1_000_000, peakScore: 0.4, snapshot: "door/events/1.jpg"))
        let accounts = try WebAccounts(configured: [
            UserAccount(name: "alice", role: .admin, passwordHash: UserAccount.hash(password: "alice-password", rounds: 100_000)),
        ], file: "\(root)/web-users.conf", rounds: 100_000)
        try await accounts.save(name: "bob", role: .viewer, password: "bob-password")
        let web = RecorderWeb(root: root, index: index, accounts: accounts, live: LiveHub())
        let app = Application(router: RecorderHTTPServer.router(web: web, metrics: nil, webRoot: nil, logger: Fixtures.logger))
        return Setup(root: root, index: index, web: web, app: app)
    }

    static func json(_ buffer: ByteBuffer) -> [String: Any] {
        (try? JSONSerialization.jsonObject(with: Data(buffer.readableBytesView))) as? [String: Any] ?? [:]
    }

    static func jsonArray(_ buffer: ByteBuffer) -> [[String: Any]] {
        (try? JSONSerialization.jsonObject(with: Data(buffer.readableBytesView))) as? [[String: Any]] ?? []
    }

    /// Logs in; returns the Cookie header value.
    func login(_ client: some TestClientProtocol, _ name: String, _ password: String) async throws -> String {
        try await client.execute(uri: "/api/login", method: .post, headers: [.contentType: "application/json"],
                                 body: ByteBuffer(string: #"{"name":"\#(name)","password":"\#(password)"}"#)) { response in
            #expect(response.status == .ok)
            let cookie = response.headers[.setCookie] ?? ""
            #expect(cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"))
            return String(cookie.split(separator: ";").first ?? "")
        }
    }

    @Test func loginRefusesWrongPasswordsAndLocksAfterFive() async throws {
        let setup = try await setUp()
        defer { try? FileManager.default.removeItem(atPath: setup.root) }
        try await setup.app.test(.router) { client in
            try await client.execute(uri: "/api/cameras", method: .get) { response in
                #expect(response.status == .unauthorized)
                #expect(Self.json(response.body)["error"] as? String == "log in first (POST /api/login)")
            }
            for _ in 0..<5 {
                try await client.execute(uri: "/api/login", method: .post, headers: [.contentType: "application/json"],
                                         body: ByteBuffer(string: #"{"name":"bob","password":"guess"}"#)) { response in
                    #expect(response.status == .unauthorized)
                    #expect(response.headers[.setCookie] == nil)
                    #expect(Self.json(response.body)["error"] as? String == "wrong user name or password")
                }
            }
            // Even the right password waits out the lock.
            try await client.execute(uri: "/api/login", method: .post, headers: [.contentType: "application/json"],
                                     body: ByteBuffer(string: #"{"name":"bob","password":"bob-password"}"#)) { response in
                #expect(response.status == .tooManyRequests)
            }
            let cookie = try await login(client, "alice", "alice-password")
            try await client.execute(uri: "/api/me", method: .get, headers: [.cookie: cookie]) { response in
                #expect(Self.json(response.body)["name"] as? String == "alice" && Self.json(response.body)["role"] as? String == "admin")
            }
            try await client.execute(uri: "/api/logout", method: .post, headers: [.cookie: cookie]) { #expect($0.status == .noContent) }
            try await client.execute(uri: "/api/me", method: .get, headers: [.cookie: cookie]) { #expect($0.status == .unauthorized) }
            try await client.execute(uri: "/api/login", method: .post, headers: [.contentType: "application/json"],
                                     body: ByteBuffer(string: #"{"name":"alice"}"#)) { response in
                #expect(response.status == .badRequest)
                let reason = Self.json(response.body)["error"] as? String ?? ""
                #expect(reason.contains("password"), "\(reason)")
            }
        }
    }

    @Test func timelineEventsAndSnapshots() async throws {
        let setup = try await setUp()
        defer { try? FileManager.default.removeItem(atPath: setup.root) }
        try await setup.app.test(.router) { client in
            let cookie = try await login(client, "bob", "bob-password")
            try await client.execute(uri: "/api/cameras", method: .get, headers: [.cookie: cookie]) { response in
                let cameras = Self.jsonArray(response.body)
                #expect(cameras.count == 1 && cameras[0]["name"] as? String == "door" && cameras[0]["segments"] as? Int == 3)
                #expect(cameras[0]["live"] as? Bool == false)
            }
            try await client.execute(uri: "/api/cameras/door/timeline?from=1799999990000&to=1800000050000", method: .get,
                                     headers: [.cookie: cookie]) { response in
                #expect(response.status == .ok)
                let timeline = Self.json(response.body)
                let spans = (timeline["spans"] as? [[String: Int64]]) ?? []
                #expect(spans == [["start": 1_800_000_000_000, "end": 1_800_000_020_000], ["start": 1_800_000_030_000, "end": 1_800_000_040_000]])
                #expect((timeline["gaps"] as? [[String: Int64]]) == [["start": 1_800_000_020_000, "end": 1_800_000_030_000]])
                #expect((timeline["events"] as? [[String: Any]])?.first?["snapshot"] as? String == "/api/events/1/snapshot.jpg")
            }
            try await client.execute(uri: "/api/cameras/door/timeline?from=yesterday", method: .get, headers: [.cookie: cookie]) { response in
                #expect(response.status == .badRequest)
                #expect((Self.json(response.body)["error"] as? String)?.contains("'from' is not a time") == true)
            }
            try await client.execute(uri: "/api/events?camera=door", method: .get, headers: [.cookie: cookie]) { response in
                let events = Self.jsonArray(response.body)
                #expect(events.count == 1 && events[0]["zone"] as? String == "all" && events[0]["start"] as? Int64 == 1_800_000_005_000)
            }
            try await client.execute(uri: "/api/events/1/snapshot.jpg", method: .get, headers: [.cookie: cookie]) { response in
                #expect(response.status == .ok && response.headers[.contentType] == "image/jpeg")
                #expect(Array(response.body.readableBytesView) == [0xFF, 0xD8, 0xFF, 0xD9])
            }
            try await client.execute(uri: "/api/events/9/snapshot.jpg", method: .get, headers: [.cookie: cookie]) { response in
                #expect(response.status == .notFound && Self.json(response.body)["error"] as? String == "no event 9")
            }
            try await client.execute(uri: "/api/cameras/door/clips", method: .post, headers: [.cookie: cookie, .contentType: "application/json"],
                                     body: ByteBuffer(string: #"{"from":1800000000000,"to":1800009000000}"#)) { response in
                #expect(response.status == .badRequest)
                #expect((Self.json(response.body)["error"] as? String)?.contains("at most an hour") == true)
            }
            // The index lists the segments, but their files are not there: a clear error, not a crash.
            try await client.execute(uri: "/api/cameras/door/clips", method: .post, headers: [.cookie: cookie, .contentType: "application/json"],
                                     body: ByteBuffer(string: #"{"from":1800000001000,"to":1800000002000}"#)) { response in
                #expect(response.status != .ok && response.status != .created)
                #expect(Self.json(response.body)["error"] is String)
            }
            try await client.execute(uri: "/api/clips/nothing.mp4", method: .get, headers: [.cookie: cookie]) { response in
                #expect(response.status == .notFound && (Self.json(response.body)["error"] as? String)?.contains("no such clip") == true)
            }
            try await client.execute(uri: "/api/no/such/route", method: .get, headers: [.cookie: cookie]) { response in
                #expect(response.status == .notFound && Self.json(response.body)["error"] as? String == "no such page or API: /api/no/such/route")
            }
        }
    }

    /// The issue's crash (a time past 2262 overflowed ms → ns, SIGILL) and its kind: every
    /// number a logged-in viewer sends is checked where it enters and answered with a 400 that
    /// says what is allowed; the recorder keeps answering.
    @Test(arguments: [
        "/api/cameras/door/timeline?from=9300000000000&to=9300000001000",
        "/api/cameras/door/timeline?to=-9223372036854775808",
        "/api/cameras/door/timeline?from=9223372036854775807",
        "/api/cameras/door/timeline?from=9999-12-31T23:59:59Z",
        "/api/cameras/door/timeline?from=nan",
        "/api/events?from=9300000000000",
        "/api/events?to=-9223372036854775807",
        "/api/events?limit=99999999999999999999",
    ])
    func numbersOutOfRangeAreRefusedNotCrashedOn(_ uri: String) async throws {
        let setup = try await setUp()
        defer { try? FileManager.default.removeItem(atPath: setup.root) }
        try await setup.app.test(.router) { client in
            let cookie = try await login(client, "bob", "bob-password")
            try await client.execute(uri: uri, method: .get, headers: [.cookie: cookie]) { response in
                #expect(response.status == .badRequest, "\(uri)")
                let error = Self.json(response.body)["error"] as? String ?? ""
                #expect(error.contains("1970 to 2199") || error.contains("whole number from"), "\(uri): \(error)")
            }
            try await client.execute(uri: "/api/me", method: .get, headers: [.cookie: cookie]) { response in #expect(response.status == .ok) }
        }
    }

    @Test(arguments: [
        #"{"from":-9223372036854775807,"to":0}"#, #"{"from":0,"to":9223372036854775807}"#, #"{"from":9300000000000,"to":9300000001000}"#,
        #"{"from":-1,"to":1000}"#, #"{"from":1e300,"to":1}"#, #"{"from":"x","to":1}"#, #"{"from":1800000000000}"#,
    ])
    func clipBoundsOutOfRangeAreRefused(_ body: String) async throws {
        let setup = try await setUp()
        defer { try? FileManager.default.removeItem(atPath: setup.root) }
        try await setup.app.test(.router) { client in
            let cookie = try await login(client, "bob", "bob-password")
            try await client.execute(uri: "/api/cameras/door/clips", method: .post, headers: [.cookie: cookie, .contentType: "application/json"],
                                     body: ByteBuffer(string: body)) { response in
                #expect(response.status == .badRequest, "\(body)")
                #expect(Self.json(response.body)["error"] is String, "\(body)")
            }
        }
    }

    @Test func refusedNodesAreListedWithHowToLetThemIn() async throws {
        var setup = try await setUp()
        defer { try? FileManager.default.removeItem(atPath: setup.root) }
        setup.web.refusedNodes = {
            [NodeStatus(refused: NodeStatus.Refusal(key: "AAAA", address: "10.0.0.9:4000", attempts: 3, lastMilliseconds: 1_800_000_000_000,
                                                    reason: "its key is not in the authorized keys: add a line AAAA NAME AREA.LOCAL"))]
        }
        let app = Application(router: RecorderHTTPServer.router(web: setup.web, metrics: nil, webRoot: nil, logger: Fixtures.logger))
        try await app.test(.router) { client in
            let cookie = try await login(client, "bob", "bob-password")
            try await client.execute(uri: "/api/nodes/refused", method: .get, headers: [.cookie: cookie]) { response in
                let refused = Self.jsonArray(response.body)
                #expect(refused.count == 1 && refused[0]["key"] as? String == "AAAA" && refused[0]["attempts"] as? Int == 3)
                #expect((refused[0]["reason"] as? String)?.contains("authorized keys") == true)
            }
            try await client.execute(uri: "/api/nodes/refused", method: .get) { response in #expect(response.status == .unauthorized) }
        }
    }

    @Test func theBackupStatusNeedsALoginAndSaysWhetherItIsOn() async throws {
        var setup = try await setUp()
        defer { try? FileManager.default.removeItem(atPath: setup.root) }
        let app = Application(router: RecorderHTTPServer.router(web: setup.web, metrics: nil, webRoot: nil, logger: Fixtures.logger))
        try await app.test(.router) { client in
            let cookie = try await login(client, "bob", "bob-password")
            try await client.execute(uri: "/api/backup", method: .get, headers: [.cookie: cookie]) { response in
                #expect(response.status == .ok && Self.json(response.body)["enabled"] as? Bool == false)
            }
            try await client.execute(uri: "/api/backup", method: .get) { response in #expect(response.status == .unauthorized) }
        }
        var settings = RecorderBackupSettings()
        settings.to = []
        setup.web.backup = RecorderBackup(settings: settings, pis: ["pi1", "pi2"], root: setup.root, index: setup.web.index, copyIndex: nil,
                                          logger: Fixtures.logger) { throw BackupError.unreachable("no Pi in this test") }
        let withBackup = Application(router: RecorderHTTPServer.router(web: setup.web, metrics: nil, webRoot: nil, logger: Fixtures.logger))
        try await withBackup.test(.router) { client in
            let cookie = try await login(client, "bob", "bob-password")
            try await client.execute(uri: "/api/backup", method: .get, headers: [.cookie: cookie]) { response in
                let status = Self.json(response.body)
                #expect(status["enabled"] as? Bool == true && status["what"] as? String == "events" && status["pis"] as? [String] == ["pi1", "pi2"])
            }
        }
    }

    @Test func aNodeInACallShowsItsPath() async throws {
        var setup = try await setUp()
        defer { try? FileManager.default.removeItem(atPath: setup.root) }
        setup.web.activities = { ["door": "in a call with phone (direct)"] }
        let index = setup.index
        let app = Application(router: RecorderHTTPServer.router(web: setup.web, metrics: nil, webRoot: nil, logger: Fixtures.logger))
        try await app.test(.router) { client in
            let cookie = try await login(client, "bob", "bob-password")
            // Both seen on the recorder's own clock (CaptureTime: the wall clock at start, then
            // monotonic; a wall clock stepped since then put Date() off by more than the 15 s a
            // node counts as online in CI), stamped a minute ahead: a loaded machine running the
            // whole suite once took longer than those 15 s between this line and the request,
            // and a CI run stalled more than a minute; ten minutes ahead holds through both.
            let now = CaptureTime.now.nanoseconds + 600_000_000_000
            try await index.saveNodes([
                NodeRecord(name: "door", id: "1.1", key: "AAAA", firstSeen: now, lastSeen: now, channels: [61], rttMilliseconds: 1, lossPercent: 0, retransmittedBytes: 0),
                NodeRecord(name: "shed", id: "1.2", key: "BBBB", firstSeen: now, lastSeen: now, channels: [], rttMilliseconds: 1, lossPercent: 0, retransmittedBytes: 0),
            ])
            try await client.execute(uri: "/api/nodes", method: .get, headers: [.cookie: cookie]) { response in
                let nodes = Dictionary(uniqueKeysWithValues: Self.jsonArray(response.body).map { ($0["name"] as? String ?? "", $0) })
                #expect(nodes["door"]?["activity"] as? String == "in a call with phone (direct)", "\(nodes)")
                #expect(nodes["shed"]?["activity"] == nil)
            }
        }
    }

    @Test func onlyAdminsManageUsers() async throws {
        let setup = try await setUp()
        defer { try? FileManager.default.removeItem(atPath: setup.root) }
        try await setup.app.test(.router) { client in
            let viewer = try await login(client, "bob", "bob-password")
            try await client.execute(uri: "/api/users", method: .get, headers: [.cookie: viewer]) { response in
                #expect(response.status == .forbidden && Self.json(response.body)["error"] as? String == "only an admin may do this")
            }
            let admin = try await login(client, "alice", "alice-password")
            try await client.execute(uri: "/api/users", method: .post, headers: [.cookie: admin, .contentType: "application/json"],
                                     body: ByteBuffer(string: #"{"name":"carol","role":"viewer","password":"short"}"#)) { response in
                #expect(response.status == .badRequest && Self.json(response.body)["error"] as? String == "a password needs at least 8 characters")
            }
            try await client.execute(uri: "/api/users", method: .post, headers: [.cookie: admin, .contentType: "application/json"],
                                     body: ByteBuffer(string: #"{"name":"carol","role":"owner","password":"carol-password"}"#)) { response in
                #expect(response.status == .badRequest)
            }
            try await client.execute(uri: "/api/users", method: .post, headers: [.cookie: admin, .contentType: "application/json"],
                                     body: ByteBuffer(string: #"{"name":"carol","role":"viewer","password":"carol-password"}"#)) { response in
                #expect(response.status == .created)
            }
            _ = try await login(client, "carol", "carol-password")
            try await client.execute(uri: "/api/users/alice", method: .delete, headers: [.cookie: admin]) { response in
                #expect(response.status == .conflict)
            }
            try await client.execute(uri: "/api/users/bob", method: .delete, headers: [.cookie: admin]) { #expect($0.status == .noContent) }
            // Bob's session ended with him.
            try await client.execute(uri: "/api/me", method: .get, headers: [.cookie: viewer]) { #expect($0.status == .unauthorized) }
            try await client.execute(uri: "/api/users", method: .get, headers: [.cookie: admin]) { response in
                #expect(Self.jsonArray(response.body).compactMap { $0["name"] as? String } == ["alice", "carol"])
            }
        }
        // The users file keeps carol (hash only) for the next start.
        let text = try String(contentsOfFile: "\(setup.root)/web-users.conf", encoding: .utf8)
        #expect(text.contains("user.carol = viewer pbkdf2-sha256$100000$") && !text.contains("carol-password") && !text.contains("user.bob"))
        let reread = try WebAccounts(configured: [], file: "\(setup.root)/web-users.conf")
        #expect(reread.users().map(\.user.name) == ["carol"])
    }

    /// docs/openapi.yaml and the router agree: every documented route answers (not "no such
    /// page"), and every route in RecorderAPI.swift is documented.
    @Test func theOpenAPIDocumentMatchesTheRoutes() async throws {
        let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent()
        let yaml = try String(contentsOf: repository.appendingPathComponent("docs/openapi.yaml"), encoding: .utf8)
        var documented: [(path: String, method: String)] = []
        var path: String?
        for line in yaml.split(separator: "\n", omittingEmptySubsequences: false) {
            if line.hasPrefix("  /"), line.hasSuffix(":") { path = String(line.dropFirst(2).dropLast()) }
            else if !line.hasPrefix(" ") { path = nil }
            else if let path, line.hasPrefix("    "), !line.hasPrefix("     "), let method = ["get", "post", "delete"].first(where: { line == "    \($0):" }) {
                documented.append((path, method))
            }
        }
        #expect(documented.count >= 15)
        let source = try String(contentsOf: repository.appendingPathComponent("Sources/XTRecorder/Web/RecorderAPI.swift"), encoding: .utf8)
        let routes = source.matches(of: /(api|router)\.(get|post|delete|ws)\("([^"]+)"/).map { match in
            let path = "/" + (match.output.1 == "api" ? "api/" : "") + match.output.3
            return (path.replacing(/:([a-z]+)/) { "{\($0.output.1)}" }, match.output.2 == "ws" ? "get" : String(match.output.2))
        }
        for route in routes {
            #expect(documented.contains { $0.path == route.0 && $0.method == route.1 }, "\(route.1) \(route.0) is not in docs/openapi.yaml")
        }
        let setup = try await setUp()
        defer { try? FileManager.default.removeItem(atPath: setup.root) }
        let pairs = documented
        // WebSocket routes are not on the plain router (the upgrade router serves them).
        let sockets = Set(source.matches(of: /\.ws\("([^"]+)"/).map { ("/" + $0.output.1).replacing(/:([a-z]+)/) { "{\($0.output.1)}" } })
        try await setup.app.test(.router) { client in
            let admin = try await login(client, "alice", "alice-password")
            for (path, method) in pairs where !sockets.contains(path) && !["/metrics", "/api/logout"].contains(path) {
                let uri = path.replacingOccurrences(of: "{camera}", with: "door").replacingOccurrences(of: "{id}", with: "1")
                    .replacingOccurrences(of: "{file}", with: "none.mp4").replacingOccurrences(of: "{name}", with: "nobody")
                try await client.execute(uri: uri, method: method == "get" ? .get : method == "post" ? .post : .delete,
                                         headers: [.cookie: admin, .contentType: "application/json"], body: ByteBuffer(string: "{}")) { response in
                    let reason = Self.json(response.body)["error"] as? String ?? ""
                    #expect(!reason.hasPrefix("no such page or API"), "\(method) \(uri): \(reason)")
                }
            }
        }
    }
}
