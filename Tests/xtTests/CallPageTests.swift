// The browser as a phone, in a real browser: headless Chromium (through chromedriver) with its
// fake camera and a fake microphone that plays espeak-ng speech, logged in to a real
// `xt recorder`. A door node rings the doorbell name "web" with video (`xt call ring web
// --video`); the page rings, the test clicks Answer, and the page sends its microphone (Opus)
// and camera (H.264) through WebCodecs while it plays and draws the door's. The door records
// the call: the browser's voice and picture must be in it, and the page must have decoded the
// door's. Screenshots go to test-artifacts/web/.
import Foundation
import Testing

@Suite("The call page in Chromium", .serialized,
       .enabled(if: FileManager.default.isExecutableFile(atPath: CLI.xt) && WebDriver.chromedriver != nil && HeardSpeech.available,
                "xt, chromedriver, espeak-ng or pesq missing"))
struct CallPageTests {
    @Test("The doorbell rings the browser; it answers with microphone and camera; each side hears and sees the other; then the page calls a node")
    func doorbellAnsweredInTheBrowser() async throws {
        let dir = try CLI.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        try FileManager.default.createDirectory(at: WebBrowserTests.artifacts, withIntermediateDirectories: true)
        for name in ["recorder", "door"] { _ = try CLI.run(["keygen", "--out", "\(name).key"], in: dir) }
        let (recorder, port, web) = try CLI.webRecorder(dir)
        defer { if recorder.isRunning { kill(recorder.processIdentifier, SIGKILL) }; recorder.waitUntilExit() }
        // The browser's microphone: speech as a 48 kHz WAV (what Chromium's fake capture reads, in a loop).
        let browserSpeech = dir.appendingPathComponent("browser.wav")
        #expect(CallNetwork.tool("/usr/bin/espeak-ng", ["-v", "en-us", "-w", dir.appendingPathComponent("b.wav").path,
                                                  "Hello, I am on my way home. Please leave the parcel by the door."]))
        #expect(CallNetwork.tool("/usr/bin/sox", [dir.appendingPathComponent("b.wav").path, "-r", "48000", "-c", "1", "-b", "16", browserSpeech.path]))
        let doorSpeech = dir.appendingPathComponent("door.raw")
        #expect(CallNetwork.tool("/usr/bin/espeak-ng", ["-v", "en", "-w", dir.appendingPathComponent("d.wav").path,
                                                  "Hello, there is a delivery for you at the front door. Shall I leave it on the step?"]))
        #expect(CallNetwork.tool("/usr/bin/sox", [dir.appendingPathComponent("d.wav").path, "-r", "16000", "-c", "1", "-b", "16", "-e", "signed-integer",
                                            "-t", "raw", doorSpeech.path]))
        let reference = dir.appendingPathComponent("browser-16k.raw")
        #expect(CallNetwork.tool("/usr/bin/sox", [browserSpeech.path, "-r", "16000", "-c", "1", "-b", "16", "-e", "signed-integer", "-t", "raw", reference.path]))

        let browser = try await WebDriver(downloads: dir, arguments: ["--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
                                                                     "--use-file-for-fake-audio-capture=\(browserSpeech.path)"])
        do {
            let base = "http://127.0.0.1:\(web)"
            try await browser.open(base + "/login.html")
            _ = try await browser.run("""
                document.getElementById('name').value = arguments[0];
                document.getElementById('password').value = arguments[1];
                document.getElementById('submit').click();
                """, ["admin", "correct horse"])
            try await browser.wait("the live page", "return location.pathname === '/'")
            try await browser.open(base + "/call.html")
            try await browser.wait("the call page joins the network", "return !!window.callStats && window.callStats.ready")

            // The door rings "web" with its synthetic camera and its speech.
            let sound = dir.appendingPathComponent("asound.conf")
            let plugin = CLI.root.appendingPathComponent(".build/debug/libxtalsaclock.so").path
            try """
                pcm_type.xtclock { lib "\(plugin)" }
                pcm.mic { type file; slave.pcm { type xtclock } file "/dev/null" infile "\(doorSpeech.path)" format "raw" }
                pcm.speaker { type file; slave.pcm { type xtclock } file "\(dir.appendingPathComponent("door-heard.raw").path)" format "raw" }
                """.write(to: sound, atomically: true, encoding: .utf8)
            let door = try CLI.spawn(["call", "ring", "web", "--video", "--camera", "synthetic", "--microphone", "alsa:mic", "--speaker", "alsa:speaker",
                                      "--record", "door.mp4", "--report", "door.json", "--seconds", "12", "--key", "door.key", "--name", "door",
                                      "--id", "1.5", "--host", "127.0.0.1:\(port)", "--host-key", "@recorder.key.pub", "--config", "none"],
                                     in: dir, errors: true, environment: ["ALSA_CONFIG_PATH": "/usr/share/alsa/alsa.conf:" + sound.path])
            try await browser.wait("the page rings", "return window.callStats.state === 'ringing'")
            #expect(try await browser.run("return document.getElementById('caller').textContent") as? String == "door (doorbell)")
            _ = try await browser.run("document.getElementById('answer').click()")
            try await browser.wait("the page plays the door's sound and draws its pictures",
                                   "const s = window.callStats; return s.videoDecoded > 30 && s.audioPlayed > 50 && s.audioSent > 100 && s.videoSent > 30")
            try? await browser.screenshot(to: WebBrowserTests.artifacts.appendingPathComponent("call.png"))
            // The door's synthetic camera draws its capture time: the page reads it off the pictures it draws.
            let glass = try await browser.run("return window.callLatency.summary()") as? [String: Any] ?? [:]
            print("the door's video in the browser, glass to glass in this run (not a benchmark): \(glass)")
            #expect((glass["samples"] as? Int ?? 0) > 10, "the page timed the door's pictures: \(glass)")
            let rung = CallNetwork.finish(door, timeout: 30)
            #expect(rung.status == 0 && rung.output.contains("in call with web"), "\(rung.output)")
            try await browser.wait("the page shows the end", "return window.callStats.state === 'ended'")
            let errors = try await browser.run("return window.callStats.errors") as? [String] ?? []
            #expect(errors.isEmpty, "\(errors)")

            // The door's recording holds the browser's picture and voice.
            let recording = dir.appendingPathComponent("door.mp4").path
            let probe = try CLI.tool("ffprobe", ["-v", "error", "-show_entries", "stream=codec_name,width,height", "-of", "csv=p=0", recording]).stdout
            let streams = probe.split(separator: "\n").map(String.init)
            #expect(streams.count == 4 && streams[2].hasPrefix("h264,640,360") && streams[3].hasPrefix("opus"), "\(probe)")
            // Decoded at the file's own times (a browser's pictures are not evenly spaced: at the
            // 15 fps ffmpeg guesses, two a few ms apart fell on one tick of its null output and it
            // reported non-rising times, though every picture decoded).
            let decoded = try CLI.tool("ffmpeg", ["-v", "error", "-i", recording, "-map", "0:2", "-fps_mode", "passthrough", "-enc_time_base", "-1",
                                                  "-f", "null", "-"]).stderr
            #expect(decoded.isEmpty, "the browser's video decodes: \(decoded)")
            let heard = dir.appendingPathComponent("browser-heard.raw")
            _ = try CLI.tool("ffmpeg", ["-v", "error", "-i", recording, "-map", "0:3", "-ar", "16000", "-ac", "1", "-f", "s16le", heard.path])
            let score = try HeardSpeech.score(reference: reference, heard: heard)
            print("the browser's voice in the door's recording (not a benchmark): words \(score.windowCorrelation), PESQ-WB \(score.pesq)")
            #expect(score.windowCorrelation >= 0.6, "the browser's words reached the door (correlation \(score.windowCorrelation))")

            // The page calls two nodes (talking back through cameras' speakers): each answers and
            // hears the user, who is the node named "admin", and the page shows both pictures.
            for name in ["yard", "porch"] { _ = try CLI.run(["keygen", "--out", "\(name).key"], in: dir) }
            let yard = try CLI.spawn(["call", "--answer", "--camera", "synthetic", "--microphone", "none", "--speaker", "none", "--record", "yard.mp4",
                                      "--key", "yard.key", "--name", "yard", "--id", "1.6", "--host", "127.0.0.1:\(port)",
                                      "--host-key", "@recorder.key.pub", "--config", "none"], in: dir, errors: true)
            let porch = try CLI.spawn(["call", "--answer", "--camera", "synthetic", "--microphone", "none", "--speaker", "none",
                                       "--key", "porch.key", "--name", "porch", "--id", "1.7", "--host", "127.0.0.1:\(port)",
                                       "--host-key", "@recorder.key.pub", "--config", "none"], in: dir, errors: true)
            try await Task.sleep(for: .seconds(1))
            _ = try await browser.run("""
                document.getElementById('names').value = 'yard porch';
                document.getElementById('call').click();
                """)
            try await browser.wait("the group call", "const s = window.callStats; return s.state === 'active' && s.parties.includes('yard') && s.parties.includes('porch')")
            try await browser.wait("both parties' pictures, each on its own canvas",
                                   "const d = window.callStats.videoDecodedBy; return (d.yard || 0) > 30 && (d.porch || 0) > 30 && document.querySelectorAll('#remotes canvas').length === 2")
            try? await browser.screenshot(to: WebBrowserTests.artifacts.appendingPathComponent("call-group.png"))
            try await Task.sleep(for: .seconds(2))
            // The user leaves; yard and porch stay in the call together until porch hangs up (Ctrl-C).
            _ = try await browser.run("document.getElementById('hangup').click()")
            try await Task.sleep(for: .seconds(1))
            kill(porch.process.processIdentifier, SIGINT)
            let porchAnswered = CallNetwork.finish(porch, timeout: 20)
            #expect(porchAnswered.status == 0 && porchAnswered.output.contains("admin is calling (audio+video, with yard)"), "\(porchAnswered.output)")
            let answered = CallNetwork.finish(yard, timeout: 20)
            #expect(answered.status == 0 && answered.output.contains("admin is calling (audio+video, with porch)") && answered.output.contains("call ended: porch hung up"),
                    "\(answered.output)")
            let back = try CLI.tool("ffprobe", ["-v", "error", "-show_entries", "stream=codec_name", "-of", "csv=p=0", dir.appendingPathComponent("yard.mp4").path]).stdout
            let tracks = back.split(separator: "\n").map(String.init)
            #expect(tracks.filter { $0 == "h264" }.count == 3 && tracks.filter { $0 == "opus" }.count == 1,
                    "yard recorded its picture, porch's, and the user's picture and voice: \(back)")
        } catch {
            try? await browser.screenshot(to: WebBrowserTests.artifacts.appendingPathComponent("call-failure.png"))
            let stats = (try? await browser.run("return JSON.stringify(window.callStats)")) as? String ?? "-"
            await browser.quit()
            Issue.record("\(error)\npage: \(stats)\nrecorder log:\n\(CLI.text(dir, "recorder.log").suffix(3000))")
            return
        }
        await browser.quit()
    }
}
