// The web UI in a real browser (Debian's headless Chromium through chromedriver), against a
// real `xt recorder` with two synthetic camera agents on loopback: a wrong password is
// refused; the right one logs in; live video plays (its time advances and its picture
// changes); the timeline shows the recorded segments; a motion event's snapshot loads; an
// export downloads an MP4 that ffprobe accepts. A camera whose stream changes size mid-way is
// followed in place by the live view (no reload) and a clip across the change plays both
// sizes. Screenshots go to test-artifacts/web/.
import Foundation
import Testing

@Suite("Web UI in Chromium", .serialized,
       .enabled(if: FileManager.default.isExecutableFile(atPath: CLI.xt) && WebDriver.chromedriver != nil, "xt or chromedriver missing"))
struct WebBrowserTests {
    static let artifacts = CLI.root.appendingPathComponent("test-artifacts/web")

    @Test("log in, live view, timeline, event snapshot, export; a wrong password refused")
    func browser() async throws {
        let dir = try CLI.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        try FileManager.default.createDirectory(at: Self.artifacts, withIntermediateDirectories: true)
        for name in ["recorder", "door", "yard"] { _ = try CLI.run(["keygen", "--out", "\(name).key"], in: dir) }
        let (recorder, port, web) = try CLI.webRecorder(dir)
        defer { if recorder.isRunning { kill(recorder.processIdentifier, SIGKILL) }; recorder.waitUntilExit() }
        var agents: [Process] = []
        for (number, name) in ["door", "yard"].enumerated() {
            agents.append(try CLI.background(["agent", "--config", "none.conf", "--key", "\(name).key", "--host", "127.0.0.1:\(port)",
                                              "--host-key", "@recorder.key.pub", "--name", name, "--id", "1.\(11 + number)",
                                              "--channel", "\(100 + 2 * number)", "--width", "640", "--height", "360", "--bitrate", "800",
                                              "--set", "motion=3-7:0.1,0.6>0.8,0.6", "--set", "motion-period=30", "--seconds", "600"], in: dir, log: "\(name).log"))
        }
        defer { for agent in agents { kill(agent.processIdentifier, SIGTERM); agent.waitUntilExit() } }

        let downloads = dir.appendingPathComponent("downloads")
        try FileManager.default.createDirectory(at: downloads, withIntermediateDirectories: true)
        let browser = try await WebDriver(downloads: downloads)
        do {
            try await run(browser, base: "http://127.0.0.1:\(web)", downloads: downloads)
            // Stopping the recorder while a page watches live: the viewers are let go, and it exits.
            try await browser.open("http://127.0.0.1:\(web)/")
            try await browser.wait("live video again",
                                   "const v = document.querySelector('#tile-door video'); return !!v && v.readyState >= 2 && v.currentTime > 0")
            kill(recorder.processIdentifier, SIGTERM)
            #expect(CLI.wait(timeout: 60) { !recorder.isRunning }, "the recorder did not stop on SIGTERM with a live viewer")
            #expect(CLI.text(dir, "recorder.log").contains("recorder stopped:"))
        } catch {
            try? await browser.screenshot(to: Self.artifacts.appendingPathComponent("failure.png"))
            await browser.quit()
            Issue.record("\(error)\nrecorder log:\n\(CLI.text(dir, "recorder.log").suffix(3000))")
            return
        }
        await browser.quit()
    }

    @Test("a camera that changes size: the live view follows without a reload, a clip across the change plays both sizes")
    func changingStream() async throws {
        let dir = try CLI.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        try FileManager.default.createDirectory(at: Self.artifacts, withIntermediateDirectories: true)
        for name in ["recorder", "gate"] { _ = try CLI.run(["keygen", "--out", "\(name).key"], in: dir) }
        // 6 s at 640x360, then 6 s at 320x180 whose timestamps continue; the agent plays it in a loop.
        for (name, size, offset) in [("a", "640x360", "0"), ("b", "320x180", "6")] {
            try CLI.makeClip(dir, "\(name).ts", ["-f", "lavfi", "-i", "testsrc2=s=\(size):r=25", "-t", "6", "-c:v", "libx264",
                                                "-g", "25", "-output_ts_offset", offset, "-f", "mpegts"])
        }
        try CLI.join(dir, ["a.ts", "b.ts"], into: "change.ts")
        let (recorder, port, web) = try CLI.webRecorder(dir)
        defer { if recorder.isRunning { kill(recorder.processIdentifier, SIGKILL) }; recorder.waitUntilExit() }
        let agent = try CLI.background(["agent", "--config", "none.conf", "--key", "gate.key", "--host", "127.0.0.1:\(port)",
                                        "--host-key", "@recorder.key.pub", "--name", "gate", "--id", "1.13", "--channel", "110",
                                        "--video", "file:change.ts", "--audio", "none", "--seconds", "600"], in: dir, log: "gate.log")
        defer { kill(agent.processIdentifier, SIGTERM); agent.waitUntilExit() }

        let browser = try await WebDriver(downloads: dir)
        do {
            let base = "http://127.0.0.1:\(web)"
            try await login(browser, base: base)
            let size = "const v = document.querySelector('#tile-gate video'); return v && v.readyState >= 2 ? `${v.videoWidth}x${v.videoHeight}` : null"
            try await browser.wait("live video", "const v = document.querySelector('#tile-gate video'); return !!v && v.readyState >= 2 && v.videoWidth > 0")
            try await browser.run("window.samePage = true")
            // Whatever size it shows now, it shows the other one within a loop of the file, in place.
            let first = try await browser.run(size) as? String
            let other = first == "640x360" ? "320x180" : "640x360"
            try await browser.wait("the live view at \(other)", timeout: .seconds(60), """
                const v = document.querySelector('#tile-gate video');
                return (v.readyState >= 2 && `${v.videoWidth}x${v.videoHeight}` === '\(other)') || `${v.videoWidth}x${v.videoHeight}`
                """)
            #expect(try await browser.run("return window.samePage === true") as? Bool == true, "the page reloaded")
            #expect((try await browser.run("return window.players.gate.changes || 0") as? Int ?? 0) >= 1)
            try await browser.screenshot(to: Self.artifacts.appendingPathComponent("6-live-changed-size.png"))

            // Playing from the start of the recording, over the change: the first clip ends there and
            // the page goes on with the next, so both sizes play. (Some seconds of the new size are
            // recorded first: a clip that reaches the present simply ends.)
            try await Task.sleep(for: .seconds(4))
            try await browser.open(base + "/camera.html?camera=gate")
            try await browser.wait("the timeline", "return document.querySelectorAll('.timeline .span').length >= 1")
            try await browser.run("""
                window.sizes = new Set();
                const v = document.getElementById('video');
                const note = () => { if (v.videoWidth) window.sizes.add(`${v.videoWidth}x${v.videoHeight}`); v.requestVideoFrameCallback(note); };
                v.requestVideoFrameCallback(note);
                v.addEventListener('loadeddata', () => v.requestVideoFrameCallback(note));
                document.getElementById('speed').value = '4';
                playFrom(state.timeline.spans[0].start + 200);
                """)
            try await browser.wait("both sizes in the clip", timeout: .seconds(60), """
                return (window.sizes.has('640x360') && window.sizes.has('320x180')) ||
                  `${[...window.sizes]}, clip ${JSON.stringify(state.clip)}, error '${document.getElementById('error').textContent}', ended ${document.getElementById('video').ended}, time ${document.getElementById('video').currentTime} of ${document.getElementById('video').duration}, paused ${document.getElementById('video').paused}, ready ${document.getElementById('video').readyState}, now ${Date.now()}, spans ${JSON.stringify(state.timeline.spans)}`
                """)
        } catch {
            try? await browser.screenshot(to: Self.artifacts.appendingPathComponent("failure-changing-stream.png"))
            await browser.quit()
            let segments = CameraFaultsCLITests.segments(dir.appendingPathComponent("recordings/gate").path).map {
                "\(($0 as NSString).lastPathComponent): \((try? CameraFaultsCLITests.sizeRuns($0)) ?? [])"
            }
            Issue.record("\(error)\nsegments: \(segments)\nrecorder log:\n\(CLI.text(dir, "recorder.log").suffix(3000))\nagent log:\n\(CLI.text(dir, "gate.log").suffix(2000))")
            return
        }
        await browser.quit()
    }

    @Test("without Media Source Extensions (an older iPhone): live plays through HLS, recordings still play")
    func withoutMediaSource() async throws {
        let dir = try CLI.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        try FileManager.default.createDirectory(at: Self.artifacts, withIntermediateDirectories: true)
        for name in ["recorder", "yard"] { _ = try CLI.run(["keygen", "--out", "\(name).key"], in: dir) }
        let (recorder, port, web) = try CLI.webRecorder(dir)
        defer { if recorder.isRunning { kill(recorder.processIdentifier, SIGKILL) }; recorder.waitUntilExit() }
        let agent = try CLI.background(["agent", "--config", "none.conf", "--key", "yard.key", "--host", "127.0.0.1:\(port)",
                                        "--host-key", "@recorder.key.pub", "--name", "yard", "--id", "1.11", "--width", "640", "--height", "360",
                                        "--seconds", "600"], in: dir, log: "yard.log")
        defer { kill(agent.processIdentifier, SIGTERM); agent.waitUntilExit() }
        let browser = try await WebDriver(downloads: dir)
        do {
            try await browser.onNewDocument("delete window.MediaSource; delete window.ManagedMediaSource; delete window.WebKitMediaSource;")
            let base = "http://127.0.0.1:\(web)"
            try await login(browser, base: base)
            #expect(try await browser.run("return typeof window.MediaSource") as? String == "undefined")
            try await browser.wait("live video through HLS", """
                const p = window.players && window.players.yard; const v = document.querySelector('#tile-yard video');
                return (!!p && p.path === 'hls' && v.readyState >= 2 && v.currentTime > 1) ||
                  `path ${p && p.path}, readyState ${v && v.readyState}, time ${v && v.currentTime}, error ${v && v.error && v.error.message}, status '${document.querySelector('#tile-yard .status')?.textContent}'`
                """)
            let time = try await browser.run("return document.querySelector('#tile-yard video').currentTime") as? Double ?? 0
            try await browser.wait("the live playhead to advance", "return document.querySelector('#tile-yard video').currentTime > \(time + 1)")
            try await browser.screenshot(to: Self.artifacts.appendingPathComponent("5-live-hls.png"))
            try await browser.open(base + "/camera.html?camera=yard")
            try await browser.wait("the timeline", "return document.querySelectorAll('.timeline .span').length >= 1")
            try await browser.run("playFrom(Math.max(Date.now() - 6000, state.timeline.spans[0].start + 200))")
            try await browser.wait("recorded playback", """
                const v = document.getElementById('video');
                return (v.readyState >= 2 && v.currentTime > 0) || `readyState ${v.readyState}, time ${v.currentTime}, error '${document.getElementById('error').textContent}'`
                """)
            // A stream link for VLC: signed, and it plays without the page's cookie.
            try await browser.run("document.getElementById('link-live').click()")
            try await browser.wait("a live link", "return document.getElementById('link').value.includes('/live/yard/index.m3u8')")
            let link = try await browser.run("return document.getElementById('link').value") as? String ?? ""
            #expect(try CLI.tool("curl", ["-s", link]).stdout.hasPrefix("#EXTM3U"), "\(link)")
        } catch {
            try? await browser.screenshot(to: Self.artifacts.appendingPathComponent("failure-hls.png"))
            await browser.quit()
            Issue.record("\(error)\nrecorder log:\n\(CLI.text(dir, "recorder.log").suffix(3000))")
            return
        }
        await browser.quit()
    }

    func login(_ browser: WebDriver, base: String) async throws {
        try await browser.open(base + "/login.html")
        try await browser.run("""
            document.getElementById('name').value = arguments[0];
            document.getElementById('password').value = arguments[1];
            document.getElementById('submit').click();
            """, ["admin", "correct horse"])
        try await browser.wait("the live page", "return location.pathname === '/'")
    }

    func run(_ browser: WebDriver, base: String, downloads: URL) async throws {
        // Anything but the login page sends an anonymous visitor to it.
        try await browser.open(base + "/")
        try await browser.wait("the login page", "return location.pathname === '/login.html'")
        let login = """
            document.getElementById('name').value = arguments[0];
            document.getElementById('password').value = arguments[1];
            document.getElementById('submit').click();
            """
        try await browser.run(login, ["admin", "wrong horse"])
        try await browser.wait("the refusal", "return document.getElementById('error').textContent.length > 0")
        #expect(try await browser.run("return document.getElementById('error').textContent") as? String == "wrong user name or password")
        #expect(try await browser.run("return location.pathname") as? String == "/login.html")
        try await browser.screenshot(to: Self.artifacts.appendingPathComponent("1-wrong-password.png"))

        try await browser.run(login, ["admin", "correct horse"])
        try await browser.wait("the live page", "return location.pathname === '/' && document.querySelectorAll('.tile').length === 2")
        // Live: the playhead advances and the picture changes (its clock and bar code move).
        let playing = "const v = document.querySelector('#tile-door video'); return v.readyState >= 2 && v.currentTime > 0"
        try await browser.wait("live video", playing)
        let picture = """
            const v = document.querySelector('#tile-door video'); const c = document.createElement('canvas');
            c.width = v.videoWidth; c.height = v.videoHeight; const g = c.getContext('2d'); g.drawImage(v, 0, 0);
            const d = g.getImageData(0, 0, c.width, c.height).data; let h = 0;
            for (let i = 0; i < d.length; i += 4) h = (h * 31 + d[i] + d[i + 1] * 7 + d[i + 2] * 13) >>> 0;
            return [v.currentTime, h];
            """
        let first = try await browser.run(picture) as? [Any]
        let time1 = (first?[0] as? Double) ?? 0
        try await browser.wait("the playhead to advance a second", "return document.querySelector('#tile-door video').currentTime > \(time1 + 1)")
        let second = try await browser.run(picture) as? [Any]
        #expect((first?[1] as? Int) != (second?[1] as? Int), "the live picture did not change")
        let latency = try await browser.run("return window.players.door.latency()")
        print("glass-to-glass in this run (not a benchmark): \(String(describing: latency))")
        try await browser.screenshot(to: Self.artifacts.appendingPathComponent("2-live.png"))
        // Sound on demand: the tile reconnects with the audio track, and it plays.
        try await browser.run("document.querySelector('#tile-door .sound').click()")
        try await browser.wait("live sound", """
            const v = document.querySelector('#tile-door video');
            return (!v.muted && v.currentTime > 0.5 && v.webkitAudioDecodedByteCount > 0) ||
              `muted ${v.muted}, time ${v.currentTime}, audio bytes ${v.webkitAudioDecodedByteCount}, status '${document.querySelector('#tile-door .status').textContent}'`
            """)
        #expect(try await browser.run("return window.players.door.info.audio") as? Bool == true)
        // On a phone the grid is one column.
        try await browser.resize(width: 390, height: 844)
        try await browser.wait("one column", """
            const tiles = document.querySelectorAll('.tile');
            return tiles[1].getBoundingClientRect().top >= tiles[0].getBoundingClientRect().bottom - 1
            """)
        try await browser.screenshot(to: Self.artifacts.appendingPathComponent("2-live-phone.png"))
        try await browser.resize(width: 1280, height: 900)

        // The timeline shows the recorded segments.
        try await browser.open(base + "/camera.html?camera=door")
        try await browser.wait("the timeline", "return document.querySelectorAll('.timeline .span').length >= 1")
        let width = try await browser.run("return document.querySelector('.timeline .span').getBoundingClientRect().width") as? Double ?? 0
        #expect(width > 0)
        try await browser.run("playFrom(Math.max(Date.now() - 6000, state.timeline.spans[0].start + 200))")
        try await browser.wait("playback", """
            const v = document.getElementById('video');
            return (v.readyState >= 2 && v.currentTime > 0) ||
              `readyState ${v.readyState}, time ${v.currentTime}, paused ${v.paused}, error '${document.getElementById('error').textContent}', clip ${JSON.stringify(state.clip)}`
            """)
        try await browser.run("document.getElementById('timeline').scrollIntoView({block: 'center'})")
        try await browser.screenshot(to: Self.artifacts.appendingPathComponent("3-timeline.png"))

        // Export: the last 5 s as one MP4 download.
        try await browser.run("""
            document.getElementById('export-from').value = toLocalInput(Date.now() - 6000);
            document.getElementById('export-to').value = toLocalInput(Date.now() - 1000);
            document.getElementById('export').click();
            """)
        var downloaded: URL?
        let deadline = Date().addingTimeInterval(90)
        while downloaded == nil, Date() < deadline {
            try await Task.sleep(for: .milliseconds(300))
            downloaded = (try? FileManager.default.contentsOfDirectory(at: downloads, includingPropertiesForKeys: nil))?
                .first { $0.pathExtension == "mp4" }
        }
        let status = (try? await browser.run("return document.getElementById('export-status').textContent")) ?? nil
        let file = try #require(downloaded, "no MP4 was downloaded: \(String(describing: status))")
        let probe = try CLI.tool("ffprobe", ["-v", "error", "-count_frames", "-select_streams", "v", "-show_entries", "stream=nb_read_frames",
                                                       "-of", "csv=p=0", file.path])
        #expect(probe.status == 0 && probe.stderr.isEmpty, "\(probe.stderr)")
        #expect((Int(probe.stdout.trimmingCharacters(in: .whitespacesAndNewlines)) ?? 0) >= 100, "\(probe.stdout)")

        // Events: the scripted motion's snapshot loads.
        try await browser.open(base + "/events.html?camera=door")
        let snapshot = "const i = document.querySelector('.event-card img[src]'); return !!i && i.complete && i.naturalWidth > 0"
        let deadlineEvents = ContinuousClock.now + .seconds(90)
        while ContinuousClock.now < deadlineEvents, (try? await browser.run(snapshot)) as? Bool != true {
            try await Task.sleep(for: .seconds(1))
            try await browser.run("show()")
        }
        try await browser.wait("an event snapshot", snapshot)
        try await browser.screenshot(to: Self.artifacts.appendingPathComponent("4-events.png"))

        // Nodes: both agents listed (beside "web", the recorder's doorbell node for call pages).
        try await browser.open(base + "/nodes.html")
        try await browser.wait("the nodes", """
            const names = [...document.querySelectorAll('#nodes tbody tr td:first-child')].map((c) => c.textContent);
            return names.includes('door') && names.includes('yard') && names.includes('web') && names.length === 3
            """)
        try await browser.screenshot(to: Self.artifacts.appendingPathComponent("5-nodes.png"))
    }
}
