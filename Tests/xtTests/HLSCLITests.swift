// HLS from a running recorder, played by the players people use: ffmpeg and VLC (cvlc) decode
// a camera's live LL-HLS and a recorded range (VOD) through a signed link; without a login, or
// with a link for another camera, an expired one or a tampered one, every file is refused.
import Foundation
import Testing

@Suite("HLS in ffmpeg and VLC", .serialized, .enabled(if: FileManager.default.isExecutableFile(atPath: CLI.xt), "xt is not built"))
struct HLSCLITests {
    static let vlc = "/usr/bin/cvlc"

    /// `curl` with the session cookie of `dir`; returns the body.
    func get(_ dir: URL, _ url: String) throws -> String {
        try CLI.tool("curl", ["-s", "-b", dir.appendingPathComponent("cookies").path, url]).stdout
    }

    func status(_ url: String) throws -> String {
        try CLI.tool("curl", ["-s", "-o", "/dev/null", "-w", "%{http_code}", url]).stdout
    }

    /// Frames ffmpeg decodes from `url` (video, up to `seconds` of media).
    func ffmpegFrames(_ url: String, seconds: Int) throws -> Int {
        let result = try CLI.tool("ffmpeg", ["-hide_banner", "-nostats", "-loglevel", "error", "-rw_timeout", "10000000", "-i", url, "-t", "\(seconds)",
                                             "-map", "0:v", "-f", "framemd5", "-"])
        return result.stdout.split(separator: "\n").filter { !$0.hasPrefix("#") }.count
    }

    /// Pictures VLC decodes from `url` in `seconds`: its scene filter writes every tenth as a PNG.
    /// VLC refuses to run as root, so it runs as nobody.
    func vlcPictures(_ url: String, seconds: Int) throws -> Int {
        let scenes = FileManager.default.temporaryDirectory.appendingPathComponent("xt-vlc-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: scenes, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o777])
        defer { try? FileManager.default.removeItem(at: scenes) }
        let command = [Self.vlc, "--no-audio", "--vout=dummy", "--play-and-exit", "--run-time", "\(seconds)", "--video-filter=scene",
                       "--scene-path=\(scenes.path)", "--scene-format=png", "--scene-ratio=10", "--scene-prefix=f", url]
        let arguments = getuid() == 0 ? ["-u", "nobody", "--", "env", "HOME=\(scenes.path)"] + command : command
        _ = try CLI.tool(getuid() == 0 ? "runuser" : "env", getuid() == 0 ? arguments : arguments)
        return ((try? FileManager.default.contentsOfDirectory(atPath: scenes.path)) ?? []).filter { $0.hasSuffix(".png") }.count
    }

    @Test("Live LL-HLS and a recorded range play in ffmpeg and VLC through signed links; without a login they are refused")
    func hlsPlays() throws {
        let dir = try CLI.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        for name in ["recorder", "yard", "gate"] { _ = try CLI.run(["keygen", "--out", "\(name).key"], in: dir) }
        let (recorder, port, web) = try CLI.webRecorder(dir, user: "ann", password: "a long password")
        defer { if recorder.isRunning { kill(recorder.processIdentifier, SIGKILL) }; recorder.waitUntilExit() }
        var agents: [Process] = []
        for (number, name) in ["yard", "gate"].enumerated() {
            agents.append(try CLI.background(["agent", "--config", "none.conf", "--key", "\(name).key", "--host", "127.0.0.1:\(port)",
                                              "--host-key", "@recorder.key.pub", "--name", name, "--id", "1.\(11 + number)",
                                              "--channel", "\(100 + 2 * number)", "--width", "320", "--height", "180", "--seconds", "120"],
                                             in: dir, log: "\(name).log"))
        }
        defer { for agent in agents { kill(agent.processIdentifier, SIGTERM); agent.waitUntilExit() } }
        let base = "http://127.0.0.1:\(web)"
        let started = Int64(Date().timeIntervalSince1970 * 1000)
        Thread.sleep(forTimeInterval: 3)
        let login = try CLI.tool("curl", ["-s", "-c", dir.appendingPathComponent("cookies").path, "-H", "content-type: application/json",
                                          "-d", #"{"name":"ann","password":"a long password"}"#, base + "/api/login"])
        #expect(login.stdout.contains("ann"), "\(login.stdout)")
        func link(_ query: String) throws -> String {
            let body = try get(dir, base + "/api/cameras/yard/hls" + query)
            return ((try JSONSerialization.jsonObject(with: Data(body.utf8)) as? [String: Any])?["url"] as? String).map { base + $0 } ?? body
        }

        // Live: the playlist is LL-HLS; ffmpeg and VLC decode it.
        let live = try link("")
        let playlist = try CLI.tool("curl", ["-s", live]).stdout
        #expect(playlist.contains("#EXT-X-PART:") && playlist.contains("#EXT-X-PRELOAD-HINT:") && playlist.contains("CAN-BLOCK-RELOAD=YES"), "\(playlist)")
        #expect(try ffmpegFrames(live, seconds: 3) >= 60)
        if FileManager.default.isExecutableFile(atPath: Self.vlc) { #expect(try vlcPictures(live, seconds: 6) >= 3) }

        // A recorded range (VOD): all of it decodes.
        Thread.sleep(forTimeInterval: 12)  // a whole 10 s segment closes
        let now = Int64(Date().timeIntervalSince1970 * 1000)
        let recorded = try link("?from=\(started)&to=\(now)")
        let vod = try CLI.tool("curl", ["-s", recorded]).stdout
        #expect(vod.contains("#EXT-X-PLAYLIST-TYPE:VOD") && vod.contains("#EXT-X-ENDLIST"), "\(vod)")
        #expect(try ffmpegFrames(recorded, seconds: 60) >= 200)
        // A link signed for the first 5 s reaches only the files of those 5 s.
        let files = vod.split(separator: "\n").filter { $0.hasPrefix("seg-") }.map(String.init)
        #expect(files.count >= 2, "\(vod)")
        let first = try link("?from=\(started)&to=\(started + 5000)").replacingOccurrences(of: "/index.m3u8", with: "")
        #expect(try status(first + "/" + files[0]) == "200")
        #expect(try status(first + "/" + files[files.count - 1]) == "404")
        #expect(try status(recorded.replacingOccurrences(of: "/index.m3u8", with: "/") + files[files.count - 1]) == "200")
        // (VLC plays a VOD playlist in real time, after buffering: 15 s leaves room for a slow start.)
        if FileManager.default.isExecutableFile(atPath: Self.vlc) { #expect(try vlcPictures(recorded, seconds: 15) >= 3) }

        // Refused: no login, a link for another camera, a tampered link, bad ranges and numbers.
        let folder = live.replacingOccurrences(of: "/index.m3u8", with: "")
        let token = String(live.split(separator: "/")[4])
        #expect(try status(base + "/api/hls/\(token)/live/yard/index.m3u8") == "200")
        #expect(try status(base + "/api/hls/session/live/yard/index.m3u8") == "401")
        #expect(try status(base + "/api/hls/session/recordings/yard/\(started)-\(now)/index.m3u8") == "401")
        #expect(try status(folder + "/init-0.mp4") == "200")
        #expect(try status(base + "/api/hls/\(token)/live/gate/index.m3u8") == "401")
        #expect(try status(base + "/api/hls/\(token.dropLast(2))AA/live/yard/index.m3u8") == "401")
        #expect(try status(base + "/api/hls/\(token)/live/yard/part-99999999999999999999.0.m4s") == "404")
        #expect(try status(folder + "/seg-1.m4s") == "404")
        #expect(try get(dir, base + "/api/cameras/yard/hls?hours=100000").contains("hours"))
        #expect(try get(dir, base + "/api/cameras/yard/hls?from=5").contains("both"))
        #expect(try CLI.tool("curl", ["-s", "-b", dir.appendingPathComponent("cookies").path,
                                      base + "/api/hls/session/recordings/yard/9-2/index.m3u8"]).stdout.contains("FROM before TO"))
        #expect(try status(base + "/api/cameras/yard/hls") == "401")
    }
}
