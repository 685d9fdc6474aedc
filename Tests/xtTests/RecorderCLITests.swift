// `xt recorder` as a user runs it: killed with SIGKILL while two cameras record, it comes back
// with every segment playable, the index matching the files, and at most the last second of
// each camera lost; `--reindex` rebuilds the index from the files; `export` takes a time range.
import Foundation
import Testing

@Suite("xt recorder", .serialized, .enabled(if: FileManager.default.isExecutableFile(atPath: CLI.xt), "xt is not built"))
struct RecorderCLITests {
    /// A capture time as `xt recorder check` prints it (UTC, milliseconds).
    static func date(_ text: String) throws -> Date {
        try Date.ISO8601FormatStyle(includingFractionalSeconds: true).parse(text + "Z")
    }

    func start(_ dir: URL, port: Int, extra: [String] = [], log: String = "recorder.log") throws -> Process {
        try CLI.background(["recorder", "--http", "none", "--bind", "127.0.0.1", "--ports", "\(port)", "--key", "recorder.key", "--open",
                            "--storage", "recordings", "--min-free", "0"] + extra, in: dir, log: log)
    }

    func camera(_ dir: URL, _ name: String, id: Int, port: Int, seconds: Int) throws -> Process {
        try CLI.background(["agent", "--config", "none.conf", "--key", "\(name).key", "--host", "127.0.0.1:\(port)",
                            "--host-key", "@recorder.key.pub", "--name", name, "--id", "1.\(id)", "--channel", "\(100 + 2 * (id - 30))",
                            "--width", "640", "--height", "360", "--bitrate", "800", "--seconds", "\(seconds)"], in: dir, log: "\(name).log")
    }

    @Test("kill -9 while recording: every segment plays, the index matches the files, at most 1 s lost per camera")
    func killNineLosesAtMostOneSecond() throws {
        let dir = try CLI.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        for name in ["recorder", "front", "back"] { _ = try CLI.run(["keygen", "--out", "\(name).key"], in: dir) }
        let port = Int.random(in: 20_000...32_000)
        let recorder = try start(dir, port: port)
        Thread.sleep(forTimeInterval: 0.5)
        let cameras = [try camera(dir, "front", id: 31, port: port, seconds: 60), try camera(dir, "back", id: 32, port: port, seconds: 60)]
        Thread.sleep(forTimeInterval: 14.3)
        kill(recorder.processIdentifier, SIGKILL)
        let killedAt = Date().timeIntervalSince1970
        recorder.waitUntilExit()
        // The cameras go too, so nothing is backfilled: what is on disk is all there is.
        for camera in cameras {
            kill(camera.processIdentifier, SIGKILL)
            camera.waitUntilExit()
        }

        let restart = try CLI.run(["recorder", "--http", "none", "--bind", "127.0.0.1", "--ports", "\(port)", "--key", "recorder.key", "--open",
                                   "--storage", "recordings", "--min-free", "0", "--seconds", "0.5"], in: dir)
        #expect(restart.status == 0, "\(restart.stderr)")
        #expect((restart.stdout + restart.stderr).contains("repaired a segment an unclean stop left"))

        let timelines = try CLI.timelines(dir, storage: "recordings")
        #expect(Set(timelines.compactMap { $0["camera"] as? String }) == ["front", "back"])
        for timeline in timelines {
            #expect((timeline["problems"] as? [String])?.isEmpty == true, "index and files disagree: \(timeline)")
            #expect((timeline["gaps"] as? [Any])?.isEmpty == true, "\(timeline)")
            // The last frame on disk was captured at most a second before the kill.
            let last = try #require(timeline["lastCapture"] as? String)
            let date = try Self.date(last)
            #expect(killedAt - date.timeIntervalSince1970 <= 1.1, "\(timeline["camera"]!) lost \(killedAt - date.timeIntervalSince1970) s")
        }
        // Every segment plays.
        let files = FileManager.default.enumerator(atPath: dir.appendingPathComponent("recordings").path)!
            .compactMap { $0 as? String }.filter { $0.hasSuffix(".mp4") }
        #expect(files.count >= 4)
        for file in files {
            let probe = try CLI.tool("ffprobe", ["-v", "error", "-count_frames", "-show_entries", "stream=nb_read_frames", "-of", "csv=p=0",
                                                 dir.appendingPathComponent("recordings/\(file)").path])
            #expect(probe.status == 0 && probe.stderr.isEmpty, "\(file): \(probe.stderr)")
        }

        // The index rebuilt from the files says the same.
        let before = try CLI.timelines(dir, storage: "recordings")
        try FileManager.default.removeItem(at: dir.appendingPathComponent("recordings/index.sqlite"))
        let reindex = try CLI.run(["recorder", "--http", "none", "--bind", "127.0.0.1", "--ports", "\(port)", "--key", "recorder.key", "--open",
                                   "--storage", "recordings", "--min-free", "0", "--reindex", "--seconds", "0"], in: dir)
        #expect(reindex.status == 0, "\(reindex.stderr)")
        #expect(reindex.stdout.contains("reindexed recordings: \(files.count) segments of 2 cameras"), "\(reindex.stdout)")
        let after = try CLI.timelines(dir, storage: "recordings")
        #expect(after.map { $0["frames"] as? Int } == before.map { $0["frames"] as? Int })
        #expect(after.allSatisfy { ($0["problems"] as? [String])?.isEmpty == true })

        // An export of a time range spans segment boundaries.
        let first = try #require(before.first { $0["kind"] as? String == "video" && $0["camera"] as? String == "front" })
        let from = try Self.date(first["firstCapture"] as! String).timeIntervalSince1970
        let export = try CLI.run(["recorder", "export", "--storage", "recordings", "--camera", "front", "--out", "range.mp4",
                                  "--from", String(from + 8), "--to", String(from + 13)], in: dir)
        #expect(export.status == 0 && export.stdout.contains("from 2 segments"), "\(export.stdout) \(export.stderr)")
        let probe = try CLI.tool("ffprobe", ["-v", "error", "-show_entries", "format=duration", "-of", "csv=p=0",
                                             dir.appendingPathComponent("range.mp4").path])
        let duration = Double(probe.stdout.trimmingCharacters(in: .whitespacesAndNewlines)) ?? 0
        // 5 s over the segment cut (at the first keyframe after 10 s: 10–12 s), from the keyframe
        // at or before the start (the agent's GOP is 2 s).
        #expect((4...7.2).contains(duration), "export of 5 s lasts \(duration) s")
    }

    @Test("Bad settings give a clear error naming the line")
    func badSettings() throws {
        let dir = try CLI.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        _ = try CLI.run(["keygen", "--out", "recorder.key"], in: dir)
        try "storage = recordings\ncamera.porch.zone.door = 0.5,0.5 2,0.5 1,1\n".write(to: dir.appendingPathComponent("recorder.conf"),
                                                                                          atomically: true, encoding: .utf8)
        let result = try CLI.run(["recorder", "--http", "none", "--config", "recorder.conf", "--key", "recorder.key", "--open", "--seconds", "0"], in: dir)
        #expect(result.status == 1)
        #expect(result.stderr.contains("recorder.conf line 2: '0.5,0.5 2,0.5 1,1' is not a valid camera.porch.zone.door: expected a polygon"),
                "\(result.stderr)")
        // A user line from `xt recorder passwd` is accepted as it is.
        let passwd = try CLI.run(["recorder", "passwd", "ann", "--role", "admin"], in: dir, input: "a long password\n")
        #expect(passwd.status == 0 && passwd.stdout.hasPrefix("user.ann = admin pbkdf2-sha256$600000$"), "\(passwd.stderr)")
        try "storage = recordings\n\(passwd.stdout)".write(to: dir.appendingPathComponent("users.conf"), atomically: true, encoding: .utf8)
        let accepted = try CLI.run(["recorder", "--http", "none", "--config", "users.conf", "--key", "recorder.key", "--open", "--seconds", "0",
                                    "--bind", "127.0.0.1", "--ports", "\(Int.random(in: 20_000...32_000))"], in: dir)
        #expect(accepted.status == 0, "\(accepted.stderr)")
        let unknown = try CLI.run(["recorder", "--http", "none", "--set", "colour=red", "--key", "recorder.key", "--open", "--seconds", "0"], in: dir)
        #expect(unknown.status == 1 && unknown.stderr.contains("--set: unknown key 'colour'"), "\(unknown.stderr)")
    }

    @Test("With no web users, a recorder started in a terminal asks for the first admin; without a terminal it says how to add one")
    func firstRunPrompt() throws {
        let dir = try CLI.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        _ = try CLI.run(["keygen", "--out", "recorder.key"], in: dir)
        let port = Int.random(in: 20_000...30_000)
        let arguments = ["recorder", "--storage", "recordings", "--http", "127.0.0.1:\(port + 10_000)", "--bind", "127.0.0.1",
                         "--ports", "\(port)", "--key", "recorder.key", "--open", "--seconds", "1"]
        let headless = try CLI.run(arguments, in: dir)
        #expect(headless.status == 0 && headless.stdout.contains("no web users yet: the web UI refuses every login until one is added"),
                "\(headless.stdout) \(headless.stderr)")
        // script(1) gives the recorder a terminal, as a person starting it by hand has.
        let terminal = Process()
        terminal.executableURL = URL(fileURLWithPath: "/usr/bin/script")
        terminal.arguments = ["-qec", ([CLI.xt] + arguments).joined(separator: " "), "/dev/null"]
        terminal.currentDirectoryURL = dir
        let input = Pipe(), output = Pipe()
        terminal.standardInput = input
        terminal.standardOutput = output
        terminal.standardError = output
        try terminal.run()
        Thread.sleep(forTimeInterval: 1)
        input.fileHandleForWriting.write(Data("root\n".utf8))
        Thread.sleep(forTimeInterval: 0.5)
        input.fileHandleForWriting.write(Data("first-admin-password\n".utf8))
        #expect(CLI.wait(timeout: 30) { !terminal.isRunning })
        let printed = String(decoding: output.fileHandleForReading.availableData, as: UTF8.self)
        #expect(printed.contains("Create the first admin") && printed.contains("admin 'root' saved"), "\(printed)")
        #expect(!printed.contains("first-admin-password"), "the password was echoed")
        let users = CLI.text(dir, "recordings/web-users.conf")
        #expect(users.contains("user.root = admin pbkdf2-sha256$") && !users.contains("first-admin-password"), "\(users)")
        let mode = (try FileManager.default.attributesOfItem(atPath: dir.appendingPathComponent("recordings/web-users.conf").path)[.posixPermissions] as? Int) ?? 0
        #expect(mode == 0o600)
    }

    @Test("Prometheus metrics: per camera, per link, disk and alarms")
    func metrics() throws {
        let dir = try CLI.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        for name in ["recorder", "porch"] { _ = try CLI.run(["keygen", "--out", "\(name).key"], in: dir) }
        let port = Int.random(in: 20_000...32_000), http = Int.random(in: 40_001...50_000)
        let recorder = try CLI.background(["recorder", "--http", "127.0.0.1:\(http)", "--bind", "127.0.0.1", "--ports", "\(port)",
                                           "--key", "recorder.key", "--open", "--storage", "recordings", "--min-free", "0"], in: dir, log: "recorder.log")
        defer { recorder.terminate() }
        Thread.sleep(forTimeInterval: 0.5)
        let camera = try camera(dir, "porch", id: 31, port: port, seconds: 8)
        defer { camera.terminate() }
        Thread.sleep(forTimeInterval: 5)
        let scrape = try CLI.tool("curl", ["-s", "http://127.0.0.1:\(http)/metrics"])
        #expect(scrape.status == 0, "\(scrape.stderr) \(CLI.text(dir, "recorder.log"))")
        var values: [String: Double] = [:]
        for line in scrape.stdout.split(separator: "\n") where !line.hasPrefix("#") {
            let parts = line.split(separator: " ")
            if parts.count == 2, let value = Double(parts[1]) { values[String(parts[0])] = value }
        }
        #expect((25...35).contains(values["xt_camera_frames_per_second{camera=\"porch\"}"] ?? 0), "\(scrape.stdout)")
        #expect((values["xt_camera_bitrate_bits_per_second{camera=\"porch\"}"] ?? 0) > 50_000)
        #expect(values["xt_camera_gaps_last_day{camera=\"porch\"}"] == 0)
        #expect(values["xt_camera_backfilled_seconds_total{camera=\"porch\"}"] != nil)
        #expect((values["xt_link_rtt_seconds{node=\"porch\"}"] ?? -1) >= 0 && values["xt_link_loss_ratio{node=\"porch\"}"] != nil)
        #expect(values["xt_link_retransmitted_bytes_total{node=\"porch\"}"] != nil)
        #expect((values["xt_disk_free_bytes"] ?? 0) > 0 && values["xt_disk_recordings_bytes"] != nil && values["xt_segments_deleted_total"] == 0)
        #expect(values["xt_alarms_pending"] == 0 && values["xt_alarms_delivered_total"] == 0)
        // The index lists the node with its link.
        let nodes = try CLI.run(["recorder", "nodes", "--storage", "recordings"], in: dir)
        let list = try JSONSerialization.jsonObject(with: Data(nodes.stdout.utf8)) as? [[String: Any]] ?? []
        #expect(list.contains { $0["name"] as? String == "porch" && $0["id"] as? String == "1.31" && $0["channels"] != nil && ($0["key"] as? String)?.count == 44 },
                "\(nodes.stdout) \(nodes.stderr)")
    }
}
