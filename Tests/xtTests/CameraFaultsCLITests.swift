// What real cameras send, end to end through `xt agent` and `xt recorder` on loopback, each
// input made with ffmpeg's lavfi sources: B-frames (Main/High profile) are recorded — live and
// by backfill — and exported in their display order with no bursts; a clock that jumps an hour mid-file neither stalls nor
// bursts, is logged once, and keeps sound with picture.
import Foundation
import Testing
import XTMedia

extension CLI {
    /// Makes `name` in `dir` with ffmpeg (`-v error`, then `arguments`, then the path).
    static func makeClip(_ dir: URL, _ name: String, _ arguments: [String]) throws {
        let made = try tool("ffmpeg", ["-v", "error"] + arguments + [dir.appendingPathComponent(name).path])
        try #require(made.status == 0, "\(made.stderr)")
    }

    /// MPEG-TS parts cut together into `name`, as a camera's stream that changes or jumps.
    static func join(_ dir: URL, _ parts: [String], into name: String) throws {
        try parts.reduce(Data()) { $0 + (try Data(contentsOf: dir.appendingPathComponent($1))) }.write(to: dir.appendingPathComponent(name))
    }

    /// A recorder with its web UI on random ports, `recorder.key` in `dir`, user `user`
    /// (password `password`) and any further settings lines; returns once the UI is served.
    static func webRecorder(_ dir: URL, user: String = "admin", role: String = "admin", password: String = "correct horse",
                            settings: String = "") throws -> (process: Process, port: Int, web: Int) {
        let passwd = try run(["recorder", "passwd", user, "--role", role], in: dir, input: "\(password)\n")
        try "storage = recordings\nmin-free = 0\n\(settings)\(passwd.stdout)".write(to: dir.appendingPathComponent("recorder.conf"),
                                                                                 atomically: true, encoding: .utf8)
        let port = Int.random(in: 20_000...30_000), web = port + 10_000
        let recorder = try background(["recorder", "--config", "recorder.conf", "--http", "127.0.0.1:\(web)", "--bind", "127.0.0.1",
                                       "--ports", "\(port)", "--key", "recorder.key", "--open"], in: dir, log: "recorder.log")
        #expect(wait(timeout: 20) { text(dir, "recorder.log").contains("web UI on") }, "\(text(dir, "recorder.log"))")
        return (recorder, port, web)
    }
}

@Suite("Real cameras' streams through xt agent and xt recorder", .serialized,
       .enabled(if: FileManager.default.isExecutableFile(atPath: CLI.xt), "xt is not built"))
struct CameraFaultsCLITests {
    /// Decode and presentation times (ms) of a file's video packets, in file order.
    static func packets(_ path: String) throws -> [(decode: Int, presentation: Int)] {
        let probe = try CLI.tool("ffprobe", ["-v", "error", "-select_streams", "v", "-show_entries", "packet=pts_time,dts_time", "-of", "csv=p=0", path])
        return probe.stdout.split(separator: "\n").compactMap { line in
            let fields = line.split(separator: ",").compactMap { Double($0) }
            return fields.count == 2 ? (Int((fields[1] * 1000).rounded()), Int((fields[0] * 1000).rounded())) : nil
        }
    }

    /// Picture sizes of a file's decoded frames, as runs in order: [("1280x720", 250), ...].
    static func sizeRuns(_ path: String) throws -> [(size: String, frames: Int)] {
        let probe = try CLI.tool("ffprobe", ["-v", "error", "-select_streams", "v", "-show_entries", "frame=width,height", "-of", "csv=p=0", path])
        var runs: [(size: String, frames: Int)] = []
        for line in probe.stdout.split(separator: "\n") {
            let fields = line.split(separator: ",")
            guard fields.count >= 2 else { continue }
            let size = "\(fields[0])x\(fields[1])"
            if runs.last?.size == size { runs[runs.count - 1].frames += 1 } else { runs.append((size, 1)) }
        }
        return runs
    }

    /// The segment files under a camera's directory.
    static func segments(_ directory: String) -> [String] {
        let walker = FileManager.default.enumerator(atPath: directory)
        var files: [String] = []
        while let item = walker?.nextObject() as? String {
            if item.hasSuffix(".mp4") { files.append((directory as NSString).appendingPathComponent(item)) }
        }
        return files.sorted()
    }

    /// Starts a recorder and an agent; with `recorderLate`, the agent first, so that its first
    /// seconds reach the recorder by backfill (the ring, the fill journal and the fill pass).
    func start(_ dir: URL, video: String, audio: String, seconds: Int, recorderLate: Bool = false) throws -> (recorder: Process, agent: Process) {
        for name in ["recorder", "camera"] { _ = try CLI.run(["keygen", "--out", "\(name).key"], in: dir) }
        let port = Int.random(in: 20_000...32_000)
        func recorder() throws -> Process {
            try CLI.background(["recorder", "--http", "none", "--bind", "127.0.0.1", "--ports", "\(port)", "--key", "recorder.key",
                                "--open", "--storage", "recordings", "--min-free", "0"], in: dir, log: "recorder.log")
        }
        let early = recorderLate ? nil : try recorder()
        if early != nil { Thread.sleep(forTimeInterval: 0.5) }
        let agent = try CLI.background(["agent", "--key", "camera.key", "--host", "127.0.0.1:\(port)", "--host-key", "@recorder.key.pub",
                                        "--name", "gate", "--id", "1.21", "--video", video, "--audio", audio, "--seconds", "\(seconds)",
                                        "--report", "agent.json"], in: dir, log: "agent.log")
        if recorderLate { Thread.sleep(forTimeInterval: 3) }
        return (try early ?? recorder(), agent)
    }

    @Test("B-frames are recorded and exported in their display order, one frame interval apart")
    func bFrames() throws {
        let dir = try CLI.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        // The issue's recipe: Main profile with one B-frame between references.
        try CLI.makeClip(dir, "bf.ts", ["-f", "lavfi", "-i", "testsrc2=s=640x360:r=25", "-t", "5", "-c:v", "libx264", "-bf", "1", "-g", "50", "-f", "mpegts"])
        let source = try Self.packets(dir.appendingPathComponent("bf.ts").path)
        try #require(source.count == 125)
        let sourceOffsets = source.map { $0.presentation - $0.decode }

        // The recorder comes 3 s late: those seconds come from the agent's ring by backfill.
        let (recorder, agent) = try start(dir, video: "file:bf.ts", audio: "none", seconds: 8, recorderLate: true)
        defer { recorder.terminate() }
        agent.waitUntilExit()
        #expect(agent.terminationStatus == 0, "\(CLI.text(dir, "agent.log"))")
        Thread.sleep(forTimeInterval: 2)
        let report = try JSONSerialization.jsonObject(with: Data(CLI.text(dir, "agent.json").utf8)) as? [String: Any]
        #expect(((report?["publisher"] as? [String: Any])?["backfilledFrames"] as? Int ?? 0) > 25, "\(report ?? [:])")
        let export = try CLI.run(["recorder", "export", "--storage", "recordings", "--camera", "gate", "--out", "gate.mp4"], in: dir)
        #expect(export.status == 0, "\(export.stderr)")

        let segments = Self.segments(dir.appendingPathComponent("recordings/gate").path)
        #expect(!segments.isEmpty)
        for file in [dir.appendingPathComponent("gate.mp4").path] + segments {
            let recorded = try Self.packets(file)
            let name = (file as NSString).lastPathComponent
            #expect(recorded.count > 25, "\(name)")
            // The file loops: the recording is the source's sequence from some keyframe on, again and again.
            let offsets = recorded.map { $0.presentation - $0.decode }
            let phase = (0..<125).first { start in offsets.indices.allSatisfy { offsets[$0] == sourceOffsets[(start + $0) % 125] } }
            #expect(phase != nil, "\(name): composition offsets \(offsets.prefix(12)) are not the source's \(sourceOffsets.prefix(12))")
            // Shown in the source's order: sorted by presentation, each picture is one interval after the last.
            // (The recording's end may cut a B-frame's reference from the B-frame that follows it
            // in decode order: only what is shown before the last frame's decode time is whole.)
            let shown = recorded.map(\.presentation).filter { $0 <= recorded.last!.decode }.sorted()
            #expect(zip(shown, shown.dropFirst()).allSatisfy { $1 - $0 == 40 }, "\(name): presentation steps \(zip(shown, shown.dropFirst()).enumerated().filter { $0.element.1 - $0.element.0 != 40 }.map { "\($0.offset): \($0.element.1 - $0.element.0)" })")
            // Capture (decode) times one interval apart: no bursts.
            let steps = zip(recorded, recorded.dropFirst()).map { $1.decode - $0.decode }
            #expect(steps.allSatisfy { $0 > 0 && $0 <= 60 }, "\(name): capture-time steps \(Set(steps))")
        }
    }

    @Test("A source whose clock jumps an hour plays on without a stall, logs it once, and keeps sound with picture")
    func clockJump() throws {
        let dir = try CLI.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        // Two 5 s parts, the second stamped 3605 s on (the issue's recipe), each with the
        // synthetic camera's sync marker lit and a beep for the first 100 ms of every second.
        let marker = "drawbox=x=iw-45:y=15:w=30:h=30:color=white:t=fill:enable='lt(mod(t\\,1)\\,0.1)'"
        for (index, offset) in ["0", "3605"].enumerated() {
            try CLI.makeClip(dir, "part\(index).ts", ["-f", "lavfi", "-i", "color=c=black:s=640x360:r=25,\(marker)",
                                                     "-f", "lavfi", "-i", "aevalsrc='0.5*sin(2*PI*1000*t)*lt(mod(t,1),0.1)':s=48000",
                                                     "-t", "5", "-c:v", "libx264", "-bf", "1", "-g", "25", "-c:a", "aac", "-output_ts_offset", offset,
                                                     "-f", "mpegts"])
        }
        try CLI.join(dir, ["part0.ts", "part1.ts"], into: "jump.ts")

        let (recorder, agent) = try start(dir, video: "file:jump.ts", audio: "file:jump.ts", seconds: 12)
        defer { recorder.terminate() }
        agent.waitUntilExit()
        let log = CLI.text(dir, "agent.log")
        #expect(agent.terminationStatus == 0, "\(log)")
        Thread.sleep(forTimeInterval: 2)
        // Logged once, for sound and picture together.
        #expect(log.components(separatedBy: "jumped forward").count - 1 == 1, "\(log)")

        let timelines = try CLI.timelines(dir, storage: "recordings")
        for timeline in timelines {
            #expect((timeline["gaps"] as? [Any])?.isEmpty == true, "gaps in \(timeline)")
        }
        // 12 s at 25 fps: not one frame a second after the jump.
        let video = timelines.first { $0["kind"] as? String == "video" }
        #expect((video?["frames"] as? Int ?? 0) >= 270, "\(video ?? [:])")
        let export = try CLI.run(["recorder", "export", "--storage", "recordings", "--camera", "gate", "--out", "gate.mp4"], in: dir)
        #expect(export.status == 0, "\(export.stderr)")
        let path = dir.appendingPathComponent("gate.mp4").path
        let steps = try Self.packets(path).map(\.decode)
        #expect(zip(steps, steps.dropFirst()).allSatisfy { $1 - $0 > 0 && $1 - $0 <= 60 }, "capture-time steps")
        let sync = try AVSyncProbe.measure(path: path)
        #expect(sync.drifts.count >= 9, "\(sync)")
        #expect(sync.maximumDriftMilliseconds <= 40, "A/V drift \(sync.drifts)")
    }

    @Test("A stream that changes size mid-way: a new segment there, and an export with every part at its own size")
    func changingStream() throws {
        let dir = try CLI.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        // The issue's recipe: 10 s at 1280x720, then 10 s at 640x360 whose timestamps continue.
        for (name, size, offset) in [("a", "1280x720", "0"), ("b", "640x360", "10")] {
            try CLI.makeClip(dir, "\(name).ts", ["-f", "lavfi", "-i", "testsrc2=s=\(size):r=25", "-t", "10", "-c:v", "libx264",
                                                "-preset", "ultrafast", "-g", "25", "-output_ts_offset", offset, "-f", "mpegts"])
        }
        try CLI.join(dir, ["a.ts", "b.ts"], into: "change.ts")
        let (recorder, agent) = try start(dir, video: "file:change.ts", audio: "none", seconds: 22)
        defer { recorder.terminate() }
        agent.waitUntilExit()
        let log = CLI.text(dir, "agent.log")
        #expect(agent.terminationStatus == 0, "\(log)")
        #expect(log.contains("changed from 1280x720 Baseline (4:2:0, 8-bit) to 640x360 Baseline (4:2:0, 8-bit)"), "\(log)")
        Thread.sleep(forTimeInterval: 2)

        // Each segment holds one size; the 640x360 part begins a segment of its own.
        var segmentSizes: [String] = []
        for file in Self.segments(dir.appendingPathComponent("recordings/gate").path) {
            let runs = try Self.sizeRuns(file)
            #expect(runs.count == 1, "\((file as NSString).lastPathComponent) holds \(runs.map(\.size))")
            if let size = runs.first?.size, segmentSizes.last != size { segmentSizes.append(size) }
        }
        #expect(Array(segmentSizes.prefix(2)) == ["1280x720", "640x360"], "\(segmentSizes)")

        let export = try CLI.run(["recorder", "export", "--storage", "recordings", "--camera", "gate", "--out", "gate.mp4"], in: dir)
        #expect(export.status == 0, "\(export.stderr)")
        #expect(export.stdout.contains("the camera changed size: 1280x720 → 640x360"), "\(export.stdout)")
        let runs = try Self.sizeRuns(dir.appendingPathComponent("gate.mp4").path)
        // All of both parts, each at its own size (the file plays again from its start at 20 s).
        #expect(Array(runs.map(\.size).prefix(2)) == ["1280x720", "640x360"], "\(runs)")
        #expect(runs.count >= 2 && runs[0].frames >= 240 && runs[1].frames == 250, "\(runs)")
        let tag = try CLI.tool("ffprobe", ["-v", "error", "-select_streams", "v", "-show_entries", "stream=codec_tag_string", "-of", "csv=p=0",
                                           dir.appendingPathComponent("gate.mp4").path])
        #expect(tag.stdout.trimmingCharacters(in: .whitespacesAndNewlines) == "avc3")
    }

    @Test("A decoded (HEVC) camera keeps its own size and frame rate, one frame interval apart")
    func decodedSourceKeepsItsShape() throws {
        let dir = try CLI.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        try CLI.makeClip(dir, "hevc.ts", ["-f", "lavfi", "-i", "testsrc2=s=640x360:r=15", "-t", "6", "-c:v", "libx265",
                                          "-x265-params", "log-level=error", "-f", "mpegts"])
        let (recorder, agent) = try start(dir, video: "file:hevc.ts", audio: "none", seconds: 8)
        defer { recorder.terminate() }
        agent.waitUntilExit()
        let log = CLI.text(dir, "agent.log")
        #expect(agent.terminationStatus == 0, "\(log)")
        #expect(log.contains("fps=15") && log.contains("size=640x360") && log.contains("source=640x360 "), "\(log)")
        Thread.sleep(forTimeInterval: 2)
        let export = try CLI.run(["recorder", "export", "--storage", "recordings", "--camera", "gate", "--out", "gate.mp4"], in: dir)
        #expect(export.status == 0, "\(export.stderr)")
        let path = dir.appendingPathComponent("gate.mp4").path
        #expect(try Self.sizeRuns(path).map(\.size) == ["640x360"])
        let times = try Self.packets(path).map(\.decode)
        // 15 fps for about 8 s, each picture one interval (67 ms) after the last.
        #expect(times.count >= 100 && times.count <= 125, "\(times.count) pictures")
        let steps = zip(times, times.dropFirst()).map { $1 - $0 }
        #expect(steps.allSatisfy { (50...100).contains($0) }, "capture-time steps \(Set(steps))")
    }

    @Test("H.264 browsers cannot play (High 4:2:2) is recorded as it is, said so, and re-encoded for clips with transcode = auto")
    func unplayableH264() throws {
        let dir = try CLI.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        try CLI.makeClip(dir, "422.ts", ["-f", "lavfi", "-i", "testsrc2=s=640x360:r=25", "-t", "4", "-c:v", "libx264",
                                         "-pix_fmt", "yuv422p", "-g", "25", "-f", "mpegts"])
        for name in ["recorder", "camera"] { _ = try CLI.run(["keygen", "--out", "\(name).key"], in: dir) }
        let (recorder, port, web) = try CLI.webRecorder(dir, user: "ann", role: "viewer", password: "a long password", settings: "transcode = auto\n")
        defer { recorder.terminate() }
        let agent = try CLI.background(["agent", "--key", "camera.key", "--host", "127.0.0.1:\(port)", "--host-key", "@recorder.key.pub",
                                        "--name", "gate", "--id", "1.21", "--video", "file:422.ts", "--audio", "none", "--seconds", "6"],
                                       in: dir, log: "agent.log")
        agent.waitUntilExit()
        #expect(CLI.text(dir, "agent.log").contains("H.264 High 4:2:2, which browsers cannot play: it is recorded as it is"), "\(CLI.text(dir, "agent.log"))")
        Thread.sleep(forTimeInterval: 2)
        // Recorded as it is.
        for file in Self.segments(dir.appendingPathComponent("recordings/gate").path) {
            let format = try CLI.tool("ffprobe", ["-v", "error", "-select_streams", "v", "-show_entries", "stream=pix_fmt", "-of", "csv=p=0", file])
            #expect(format.stdout.trimmingCharacters(in: .whitespacesAndNewlines) == "yuv422p")
        }
        // The API says so; a clip to play is re-encoded.
        let base = "http://127.0.0.1:\(web)"
        let login = try CLI.tool("curl", ["-s", "-c", dir.appendingPathComponent("cookies").path, "-H", "content-type: application/json",
                                          "-d", #"{"name":"ann","password":"a long password"}"#, base + "/api/login"])
        #expect(login.stdout.contains("ann"), "\(login.stdout)")
        let cameras = try CLI.tool("curl", ["-s", "-b", dir.appendingPathComponent("cookies").path, base + "/api/cameras"])
        let camera = (try JSONSerialization.jsonObject(with: Data(cameras.stdout.utf8)) as? [[String: Any]])?.first
        #expect(camera?["playable"] as? Bool == false, "\(cameras.stdout)")
        #expect((camera?["note"] as? String)?.contains("re-encoded for browsers") == true, "\(cameras.stdout)")
        let now = Int64(Date().timeIntervalSince1970 * 1000)
        let clip = try CLI.tool("curl", ["-s", "-b", dir.appendingPathComponent("cookies").path, "-H", "content-type: application/json",
                                         "-d", "{\"from\":\(now - 7000),\"to\":\(now)}", base + "/api/cameras/gate/clips"])
        let url = ((try JSONSerialization.jsonObject(with: Data(clip.stdout.utf8)) as? [String: Any])?["url"] as? String) ?? ""
        #expect(!url.isEmpty, "\(clip.stdout)")
        _ = try CLI.tool("curl", ["-s", "-b", dir.appendingPathComponent("cookies").path, "-o", dir.appendingPathComponent("clip.mp4").path, base + url])
        let format = try CLI.tool("ffprobe", ["-v", "error", "-count_frames", "-select_streams", "v", "-show_entries", "stream=pix_fmt,nb_read_frames",
                                              "-of", "csv=p=0", dir.appendingPathComponent("clip.mp4").path])
        let fields = format.stdout.trimmingCharacters(in: .whitespacesAndNewlines).split(separator: ",")
        #expect(fields.first == "yuv420p" && (Int(fields.last ?? "") ?? 0) >= 100, "\(format.stdout) \(format.stderr)")
    }

    @Test("A misconfigured agent says what is wrong within the connect timeout, keeps trying, and keeps its ring filling")
    func misconfiguredNodeSaysWhy() throws {
        let dir = try CLI.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        for name in ["recorder", "camera", "other"] { _ = try CLI.run(["keygen", "--out", "\(name).key"], in: dir) }
        // The recorder admits only "other": the camera's key is not in its authorized keys.
        let other = try String(contentsOf: dir.appendingPathComponent("other.key.pub"), encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
        try "\(other) other 1.30\n".write(to: dir.appendingPathComponent("authorized_keys"), atomically: true, encoding: .utf8)
        let port = Int.random(in: 20_000...32_000)
        let recorder = try CLI.background(["recorder", "--http", "none", "--bind", "127.0.0.1", "--ports", "\(port)", "--key", "recorder.key",
                                           "--authorized-keys", "authorized_keys", "--storage", "recordings", "--min-free", "0"], in: dir, log: "recorder.log")
        defer { recorder.terminate() }
        Thread.sleep(forTimeInterval: 0.5)
        let refused = try CLI.background(["agent", "--key", "camera.key", "--host", "127.0.0.1:\(port)", "--host-key", "@recorder.key.pub",
                                          "--name", "gate", "--id", "1.21", "--seconds", "4", "--width", "320", "--height", "180",
                                          "--report", "refused.json"], in: dir, log: "refused.log")
        // And one that dials the wrong host key: nothing answers it.
        let wrongKey = try CLI.background(["agent", "--key", "camera.key", "--host", "127.0.0.1:\(port)", "--host-key", "@other.key.pub",
                                           "--name", "gate", "--id", "1.21", "--seconds", "4", "--connect-timeout", "2", "--width", "320", "--height", "180"],
                                          in: dir, log: "wrong.log")
        refused.waitUntilExit()
        wrongKey.waitUntilExit()
        let camera = try String(contentsOf: dir.appendingPathComponent("camera.key.pub"), encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
        let refusedLog = CLI.text(dir, "refused.log")
        #expect(refusedLog.components(separatedBy: "the host refused this node's key; add this line to its authorized_keys").count - 1 == 1,
                "said once: \(refusedLog)")
        #expect(refusedLog.contains("\(camera) gate 1.21"), "\(refusedLog)")
        let wrongLog = CLI.text(dir, "wrong.log")
        #expect(wrongLog.contains("no answer from 127.0.0.1:\(port) with the key you gave"), "\(wrongLog)")
        // The host lists the refused key (xt status from an authorized node), with how to let it in.
        let status = try CLI.run(["status", "--json", "--key", "other.key", "--host", "127.0.0.1:\(port)", "--host-key", "@recorder.key.pub",
                                  "--name", "other", "--id", "1.30"], in: dir)
        let nodes = (try? JSONSerialization.jsonObject(with: Data(status.stdout.utf8)) as? [[String: Any]]) ?? []
        let refusal = nodes.compactMap { $0["refused"] as? [String: Any] }.first { $0["key"] as? String == camera }
        #expect((refusal?["attempts"] as? Int ?? 0) >= 1 && (refusal?["reason"] as? String)?.contains("authorized keys") == true,
                "\(status.stdout) \(status.stderr)")
        // While refused, the ring kept what was captured.
        let report = try JSONSerialization.jsonObject(with: Data(CLI.text(dir, "refused.json").utf8)) as? [String: Any]
        let publisher = report?["publisher"] as? [String: Any]
        #expect((publisher?["offline"] as? Int ?? 0) > 50 && (publisher?["ringBytes"] as? Int ?? 0) > 0, "\(publisher ?? [:])")
    }
}
