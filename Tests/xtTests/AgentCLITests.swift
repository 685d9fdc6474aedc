// `xt agent` and `xt recorder` as a user runs them on loopback: the synthetic camera and
// microphone publish to the recorder; the recording decodes and stays in sync; a recorder that
// is away for 60 s (killed, then restarted) has no gap once the agent has backfilled it; and
// bad settings and missing devices give clear errors.
import Foundation
import Testing
import XTMedia

extension CLI {
    /// Starts `xt` in the background with its output (stdout and stderr) going to `log`.
    static func background(_ arguments: [String], in directory: URL, log: String, environment: [String: String] = [:]) throws -> Process {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: xt)
        process.arguments = arguments
        process.currentDirectoryURL = directory
        process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        let path = directory.appendingPathComponent(log).path
        FileManager.default.createFile(atPath: path, contents: nil)
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: path))
        try handle.seekToEnd()
        process.standardOutput = handle
        process.standardError = handle
        try process.run()
        return process
    }

    static func text(_ directory: URL, _ file: String) -> String {
        (try? String(contentsOf: directory.appendingPathComponent(file), encoding: .utf8)) ?? ""
    }

    /// Waits until `condition` holds (checked every 200 ms) or `timeout` passes.
    @discardableResult
    static func wait(timeout: TimeInterval, _ condition: () -> Bool) -> Bool {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if condition() { return true }
            Thread.sleep(forTimeInterval: 0.2)
        }
        return condition()
    }

    /// `xt recorder check` decoded.
    static func timelines(_ directory: URL, storage: String) throws -> [[String: Any]] {
        let result = try run(["recorder", "check", "--storage", storage], in: directory)
        return (try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [[String: Any]]) ?? []
    }
}

@Suite("xt agent and xt recorder", .serialized, .enabled(if: FileManager.default.isExecutableFile(atPath: CLI.xt), "xt is not built"))
struct AgentCLITests {
    func keys(_ dir: URL) throws {
        for name in ["recorder", "camera"] { _ = try CLI.run(["keygen", "--out", "\(name).key"], in: dir) }
    }

    func recorder(_ dir: URL, port: Int, log: String = "recorder.log") throws -> Process {
        try CLI.background(["recorder", "--http", "none", "--bind", "127.0.0.1", "--ports", "\(port)", "--key", "recorder.key", "--open",
                            "--storage", "recordings", "--report", "ingest.json", "--min-free", "0"], in: dir, log: log)
    }

    func agent(_ dir: URL, port: Int, seconds: Int, extra: [String] = []) throws -> Process {
        try CLI.background(["agent", "--key", "camera.key", "--host", "127.0.0.1:\(port)", "--host-key", "@recorder.key.pub",
                            "--name", "porch", "--id", "1.20", "--width", "640", "--height", "360", "--seconds", "\(seconds)",
                            "--report", "agent.json"] + extra, in: dir, log: "agent.log")
    }

    @Test("A synthetic camera's recording decodes, its timestamps rise and audio stays with video")
    func liveRecordingDecodesInSync() throws {
        let dir = try CLI.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        try keys(dir)
        let port = Int.random(in: 20_000...32_000)
        // The camera starts first: the recorder joins mid-GOP and asks for a keyframe, and the
        // first seconds come to it by backfill.
        let camera = try agent(dir, port: port, seconds: 12)
        Thread.sleep(forTimeInterval: 3)
        let host = try recorder(dir, port: port)
        defer { host.terminate() }
        camera.waitUntilExit()
        #expect(camera.terminationStatus == 0)
        Thread.sleep(forTimeInterval: 2)  // the last receipt and backfill round

        let timelines = try CLI.timelines(dir, storage: "recordings")
        #expect(timelines.count == 2)
        for timeline in timelines {
            #expect((timeline["gaps"] as? [Any])?.isEmpty == true, "gaps in \(timeline)")
            #expect(timeline["missingFrames"] as? Int == 0)
        }
        let export = try CLI.run(["recorder", "export", "--storage", "recordings", "--camera", "porch", "--out", "porch.mp4"], in: dir)
        #expect(export.status == 0, "\(export.stderr)")
        // ffprobe decodes every frame of both tracks.
        let probe = try CLI.tool("ffprobe", ["-v", "error", "-count_frames", "-show_entries", "stream=codec_name,nb_read_frames", "-of", "csv=p=0",
                                             dir.appendingPathComponent("porch.mp4").path])
        #expect(probe.status == 0 && probe.stderr.isEmpty, "\(probe.stderr)")
        let counts = probe.stdout.split(separator: "\n").map { $0.split(separator: ",") }
        #expect(counts.map { String($0[0]) } == ["h264", "opus"])
        #expect(counts.allSatisfy { (Int($0.last ?? "") ?? 0) > 250 })
        let sync = try AVSyncProbe.measure(path: dir.appendingPathComponent("porch.mp4").path)
        #expect(sync.videoTimestampsRise && sync.audioTimestampsRise)
        #expect(sync.drifts.count >= 8)
        #expect(sync.maximumDriftMilliseconds < 40, "A/V drift \(sync.drifts)")

        let ingest = try JSONSerialization.jsonObject(with: Data(CLI.text(dir, "ingest.json").utf8)) as? [String: Any]
        let video = ingest?["video"] as? [String: Any]
        #expect(video?["late"] as? Int == 0)
        #expect((video?["live"] as? Int ?? 0) > 200)
        #expect((video?["backfilled"] as? Int ?? 0) > 60)
        #expect(ingest?["keyframeRequests"] as? Int == 1)
        let agentReport = try JSONSerialization.jsonObject(with: Data(CLI.text(dir, "agent.json").utf8)) as? [String: Any]
        #expect((agentReport?["publisher"] as? [String: Any])?["keyframeRequests"] as? Int == 1)
    }

    @Test("A recorder away for 60 s (killed, then restarted) has no gap once the agent backfilled it")
    func outageIsBackfilled() throws {
        let dir = try CLI.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        try keys(dir)
        let port = Int.random(in: 20_000...32_000)
        let first = try recorder(dir, port: port)
        Thread.sleep(forTimeInterval: 0.5)
        let camera = try agent(dir, port: port, seconds: 95, extra: ["--bitrate", "1000"])
        defer { camera.terminate() }
        Thread.sleep(forTimeInterval: 5)
        kill(first.processIdentifier, SIGKILL)
        first.waitUntilExit()
        Thread.sleep(forTimeInterval: 60)
        let second = try recorder(dir, port: port, log: "recorder2.log")
        defer { second.terminate() }
        // Backfill: 60 s of 1 Mbit/s video and the audio, after live traffic (45 s: a debug build
        // beside the rest of the suite on two cores took over 25).
        let complete = CLI.wait(timeout: 45) {
            guard let timelines = try? CLI.timelines(dir, storage: "recordings"), timelines.count == 2 else { return false }
            return timelines.allSatisfy { ($0["gaps"] as? [Any])?.isEmpty == true && $0["missingFrames"] as? Int == 0 && ($0["seconds"] as? Double ?? 0) > 70 }
        }
        let timelines = try CLI.timelines(dir, storage: "recordings")
        #expect(complete, "recording after the outage: \(timelines)")
        let agentReport = try JSONSerialization.jsonObject(with: Data(CLI.text(dir, "agent.json").utf8)) as? [String: Any]
        let publisher = agentReport?["publisher"] as? [String: Any]
        // About 60 s × (30 video + 50 audio) frames came from the ring.
        #expect((publisher?["backfilledFrames"] as? Int ?? 0) > 4000, "\(publisher ?? [:])")
        #expect(CLI.text(dir, "recorder2.log").contains("streams already there") )
    }

    @Test("Bad settings and a missing camera give clear errors")
    func errors() throws {
        let dir = try CLI.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        try keys(dir)
        try "fps = 30\ncolour = red\n".write(to: dir.appendingPathComponent("agent.conf"), atomically: true, encoding: .utf8)
        let unknown = try CLI.run(["agent", "--config", "agent.conf", "--key", "camera.key", "--host-key", "@recorder.key.pub"], in: dir)
        #expect(unknown.status == 1)
        #expect(unknown.stderr.contains("agent.conf line 2: unknown key 'colour'"))
        let badValue = try CLI.run(["agent", "--config", "none.conf", "--key", "camera.key", "--host-key", "@recorder.key.pub", "--fps", "500"], in: dir)
        #expect(badValue.status == 1)
        #expect(badValue.stderr.contains("'500' is not a valid fps: expected 1…120"))
        let nothing = try CLI.run(["agent", "--config", "none.conf", "--key", "camera.key", "--host-key", "@recorder.key.pub", "--video", "none", "--audio", "none"], in: dir)
        #expect(nothing.status == 1)
        #expect(nothing.stderr.contains("nothing to publish"))

        // A camera that is not there: the agent says so and keeps trying (a service waits for it).
        let missing = try CLI.run(["agent", "--config", "none.conf", "--key", "camera.key", "--host-key", "@recorder.key.pub",
                                   "--host", "127.0.0.1:9", "--video", "/dev/video-xt-missing", "--audio", "none", "--seconds", "2"], in: dir)
        #expect(missing.status == 0)
        #expect((missing.stdout + missing.stderr).contains("cannot open the source; trying again, less often each time"))
        #expect((missing.stdout + missing.stderr).contains("camera /dev/video-xt-missing cannot be opened: No such file or directory"))
        // A recorder whose storage cannot be written.
        let storage = try CLI.run(["recorder", "--http", "none", "--bind", "127.0.0.1", "--ports", "\(Int.random(in: 20_000...32_000))", "--key", "recorder.key", "--open",
                                   "--storage", "/proc/xt-cannot", "--seconds", "1"], in: dir)
        #expect(storage.status == 1)
        #expect(storage.stderr.contains("storage root /proc/xt-cannot"))
    }
}

extension CLI {
    /// Runs another tool (ffprobe, ffmpeg).
    static func tool(_ name: String, _ arguments: [String]) throws -> Result {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = [name] + arguments
        let out = Pipe(), err = Pipe()
        process.standardOutput = out
        process.standardError = err
        try process.run()
        let output = out.fileHandleForReading.readDataToEndOfFile()
        let errors = err.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return Result(status: process.terminationStatus, stdout: String(decoding: output, as: UTF8.self), stderr: String(decoding: errors, as: UTF8.self))
    }
}

/// `xt agent` with the real device paths: a V4L2 camera (emulated behind libv4l2's plugin
/// interface) and an ALSA microphone (ALSA's file plugin playing espeak-ng speech).
@Suite("xt agent on V4L2 and ALSA devices", .serialized,
       .enabled(if: getuid() == 0 && FileManager.default.isExecutableFile(atPath: CLI.xt), "installing a libv4l2 plugin needs root"))
final class AgentDeviceCLITests {
    let dir: URL
    static let plugin = "/usr/lib/x86_64-linux-gnu/libv4l/plugins/libxt-test-emulated-camera-cli.so"

    init() throws {
        dir = try CLI.temporaryDirectory()
        let built = CLI.root.appendingPathComponent(".build/debug/libxtv4l2emulator.so").path
        try? FileManager.default.removeItem(atPath: Self.plugin)
        try FileManager.default.copyItem(atPath: built, toPath: Self.plugin)
        for name in ["recorder", "camera"] { _ = try CLI.run(["keygen", "--out", "\(name).key"], in: dir) }
    }

    deinit {
        try? FileManager.default.removeItem(atPath: Self.plugin)
        try? FileManager.default.removeItem(at: dir)
    }

    /// An emulated camera file of `fourcc` frames made by ffmpeg (MJPEG) or given.
    func camera(_ name: String, fourcc: String, width: Int, height: Int, frames: [[UInt8]]) throws -> String {
        func le32(_ value: Int) -> [UInt8] { (0..<4).map { UInt8((value >> ($0 * 8)) & 0xFF) } }
        func le64(_ value: Int) -> [UInt8] { (0..<8).map { UInt8((value >> ($0 * 8)) & 0xFF) } }
        var file = Array("XTV4L2E1".utf8) + Array(fourcc.utf8) + le32(width) + le32(height) + le32(30) + le32(frames.count) + [UInt8](repeating: 0, count: 36)
        var offset = 64 + 16 * frames.count
        for frame in frames {
            file += le64(offset) + le32(frame.count) + le32(1)
            offset += frame.count
        }
        for frame in frames { file += frame }
        let path = dir.appendingPathComponent(name).path
        try Data(file).write(to: URL(fileURLWithPath: path))
        return path
    }

    func mjpeg(width: Int, height: Int, count: Int) throws -> [[UInt8]] {
        let result = try CLI.tool("ffmpeg", ["-v", "error", "-f", "lavfi", "-i", "testsrc2=size=\(width)x\(height):rate=30", "-frames:v", "\(count)",
                                             "-c:v", "mjpeg", "-f", "mjpeg", dir.appendingPathComponent("frames.mjpeg").path])
        #expect(result.status == 0)
        let bytes = [UInt8](try Data(contentsOf: dir.appendingPathComponent("frames.mjpeg")))
        var starts: [Int] = []
        for index in 0..<(bytes.count - 2) where bytes[index] == 0xFF && bytes[index + 1] == 0xD8 && bytes[index + 2] == 0xFF { starts.append(index) }
        return starts.enumerated().map { position, start in Array(bytes[start..<(position + 1 < starts.count ? starts[position + 1] : bytes.count)]) }
    }

    @Test("Camera and microphone through libv4l2 and ALSA reach the recording; devices are listed; a camera with no usable format is a clear error")
    func devicesToRecording() throws {
        let device = try camera("video-emulated", fourcc: "MJPG", width: 640, height: 360, frames: try mjpeg(width: 640, height: 360, count: 30))
        let list = try CLI.run(["agent", "--config", "none.conf", "--list-devices", "--video", "v4l2:\(device)"], in: dir)
        #expect(list.stdout.contains("\(device): XTransport emulated camera (xt-emulated)"))
        #expect(list.stdout.contains("MJPG (Motion-JPEG): 640x360@30"))

        let wav = dir.appendingPathComponent("speech.wav").path, raw = dir.appendingPathComponent("speech.raw").path
        #expect(try CLI.tool("espeak-ng", ["-w", wav, "Motion at the front door. The recorder hears this sentence."]).status == 0)
        #expect(try CLI.tool("sox", [wav, "-r", "48000", "-c", "1", "-b", "16", "-e", "signed-integer", "-t", "raw", raw]).status == 0)
        let clock = CLI.root.appendingPathComponent(".build/debug/libxtalsaclock.so").path
        try """
            pcm_type.xtclock { lib "\(clock)" }
            pcm.xtmic { type file; slave.pcm { type xtclock } file "/dev/null" infile "\(raw)" format "raw" }
            """.write(to: dir.appendingPathComponent("asound.conf"), atomically: true, encoding: .utf8)

        let port = Int.random(in: 20_000...32_000)
        let recorder = try CLI.background(["recorder", "--http", "none", "--bind", "127.0.0.1", "--ports", "\(port)", "--key", "recorder.key", "--open",
                                           "--storage", "recordings"], in: dir, log: "recorder.log")
        defer { recorder.terminate() }
        Thread.sleep(forTimeInterval: 0.5)
        let agent = try CLI.background(["agent", "--config", "none.conf", "--key", "camera.key", "--host", "127.0.0.1:\(port)",
                                        "--host-key", "@recorder.key.pub", "--name", "door", "--id", "1.30", "--video", "v4l2:\(device)",
                                        "--audio", "alsa:xtmic", "--width", "640", "--height", "360", "--seconds", "6"],
                                       in: dir, log: "agent.log",
                                       environment: ["ALSA_CONFIG_PATH": "/usr/share/alsa/alsa.conf:" + dir.appendingPathComponent("asound.conf").path])
        agent.waitUntilExit()
        Thread.sleep(forTimeInterval: 2)
        let export = try CLI.run(["recorder", "export", "--storage", "recordings", "--camera", "door", "--out", "door.mkv"], in: dir)
        #expect(export.status == 0, "\(export.stderr)")
        let probe = try CLI.tool("ffprobe", ["-v", "error", "-count_frames", "-show_entries", "stream=codec_name,width,nb_read_frames", "-of", "csv=p=0",
                                             dir.appendingPathComponent("door.mkv").path])
        #expect(probe.stderr.isEmpty, "\(probe.stderr)")
        #expect(probe.stdout.contains("h264,640,"))
        #expect(probe.stdout.contains("opus"))
        // The speech is in the recording: loud enough to be a voice, not silence.
        let volume = try CLI.tool("ffmpeg", ["-v", "info", "-i", dir.appendingPathComponent("door.mkv").path, "-vn", "-af", "volumedetect", "-f", "null", "-"])
        let maximum = volume.stderr.split(separator: "\n").first { $0.contains("max_volume") }
        let decibels = maximum.flatMap { Double($0.split(separator: ":").last!.replacingOccurrences(of: " dB", with: "").trimmingCharacters(in: .whitespaces)) }
        #expect((decibels ?? -99) > -20, "\(maximum ?? "no volume line")")

        // Unplugged mid-stream and plugged back in: one line when it goes, one when it is back,
        // and the recording goes on after it.
        let saved = try Data(contentsOf: URL(fileURLWithPath: device))
        let replug = try CLI.background(["agent", "--config", "none.conf", "--key", "camera.key", "--host", "127.0.0.1:\(port)",
                                         "--host-key", "@recorder.key.pub", "--name", "yard", "--id", "1.31", "--video", "v4l2:\(device)",
                                         "--audio", "none", "--width", "640", "--height", "360", "--seconds", "9"], in: dir, log: "replug.log")
        Thread.sleep(forTimeInterval: 3)
        try FileManager.default.removeItem(atPath: device)
        Thread.sleep(forTimeInterval: 2)
        try saved.write(to: URL(fileURLWithPath: device))
        replug.waitUntilExit()
        let replugLog = CLI.text(dir, "replug.log")
        #expect(replugLog.contains("source lost; reopening it"), "\(replugLog)")
        #expect(replugLog.contains("camera \(device) disconnected"))
        #expect(replugLog.contains("source is back"))
        Thread.sleep(forTimeInterval: 1)
        let yard = try CLI.timelines(dir, storage: "recordings").first { $0["camera"] as? String == "yard" }
        // About 7 of the 9 s were captured (the camera was away for about 2).
        #expect((yard?["frames"] as? Int ?? 0) > 150, "\(yard ?? [:])")
        // One gap for the unplug; a test machine running the whole suite may starve the reader
        // for a moment besides (a stall of a few frames, not a second outage).
        let gaps = ((yard?["gaps"] as? [[String: Any]]) ?? []).compactMap { $0["milliseconds"] as? Double }
        #expect(gaps.filter { $0 >= 1000 }.count == 1, "the unplug is one gap: \(gaps)")
        #expect(gaps.allSatisfy { $0 >= 1000 || $0 < 500 }, "no other outage: \(gaps)")

        // A camera that only offers greyscale: the agent says what it offers and what it needs.
        let grey = try camera("video-grey", fourcc: "GREY", width: 320, height: 240, frames: [[UInt8](repeating: 100, count: 320 * 240)])
        let refused = try CLI.run(["agent", "--config", "none.conf", "--key", "camera.key", "--host", "127.0.0.1:9", "--host-key", "@recorder.key.pub",
                                   "--video", "v4l2:\(grey)", "--audio", "none", "--seconds", "2"], in: dir)
        #expect((refused.stdout + refused.stderr).contains("offers no format the agent can use (it offers GREY); supported are MJPEG, YUYV and H.264"))
    }
}
