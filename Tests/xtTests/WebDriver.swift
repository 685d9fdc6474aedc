// Just enough of the W3C WebDriver protocol to drive Debian's headless Chromium through
// chromedriver from a test: open pages, run JavaScript, wait for conditions, take screenshots,
// and let downloads land in a folder. Plain JSON over HTTP on loopback.
import Foundation

/// A chromedriver process and one browser session.
final class WebDriver {
    struct Failure: Error, CustomStringConvertible {
        var description: String
    }

    static let chromedriver = ["/usr/bin/chromedriver", "/usr/lib/chromium/chromedriver"].first { FileManager.default.isExecutableFile(atPath: $0) }

    private let process: Process
    private let base: URL
    private var session = ""

    /// Starts chromedriver and a headless Chromium whose downloads go to `downloads`.
    /// - Parameter arguments: more Chromium flags (fake camera and microphone for calls).
    init(downloads: URL, arguments: [String] = []) async throws {
        guard let chromedriver = Self.chromedriver else { throw Failure(description: "chromedriver is not installed (apt-get install chromium-driver)") }
        let port = Int.random(in: 41_000...49_000)
        process = Process()
        process.executableURL = URL(fileURLWithPath: chromedriver)
        process.arguments = ["--port=\(port)"]
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        base = URL(string: "http://127.0.0.1:\(port)")!
        var ready = false
        for _ in 0..<100 where !ready {
            try await Task.sleep(for: .milliseconds(100))
            ready = (try? await request("GET", "/status")) != nil
        }
        guard ready else {
            kill(process.processIdentifier, SIGKILL)
            throw Failure(description: "chromedriver did not start")
        }
        let capabilities: [String: Any] = ["capabilities": ["alwaysMatch": [
            "browserName": "chrome",
            "goog:chromeOptions": [
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1280,900",
                         "--autoplay-policy=no-user-gesture-required"] + arguments,
                "prefs": ["download.default_directory": downloads.path, "download.prompt_for_download": false],
            ] as [String: Any],
        ] as [String: Any]]]
        let created: Any
        do { created = try await request("POST", "/session", capabilities) } catch {
            kill(process.processIdentifier, SIGKILL)
            throw error
        }
        guard let id = (created as? [String: Any])?["sessionId"] as? String else {
            kill(process.processIdentifier, SIGKILL)
            throw Failure(description: "no session: \(created)")
        }
        session = id
        _ = try? await request("POST", "/session/\(session)/goog/cdp/execute",
                               ["cmd": "Browser.setDownloadBehavior", "params": ["behavior": "allow", "downloadPath": downloads.path]])
    }

    /// Ends the session and chromedriver.
    func quit() async {
        _ = try? await request("DELETE", "/session/\(session)")
        // chromedriver does not always go on SIGTERM.
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
    }

    /// Runs `source` in every page before its own scripts (Chrome DevTools'
    /// Page.addScriptToEvaluateOnNewDocument), e.g. to take an API away.
    func onNewDocument(_ source: String) async throws {
        _ = try await request("POST", "/session/\(session)/goog/cdp/execute",
                              ["cmd": "Page.addScriptToEvaluateOnNewDocument", "params": ["source": source]])
    }

    func open(_ url: String) async throws {
        _ = try await request("POST", "/session/\(session)/url", ["url": url])
    }

    /// Runs `script` (a function body; `arguments[0]`… are `arguments`) and returns its value.
    @discardableResult
    func run(_ script: String, _ arguments: [Any] = []) async throws -> Any? {
        let value = try await request("POST", "/session/\(session)/execute/sync", ["script": script, "args": arguments])
        return value is NSNull ? nil : value
    }

    /// Waits until `script` returns true.
    /// Generous by default: the whole test suite may be running beside it on two cores.
    func wait(_ what: String, timeout: Duration = .seconds(90), _ script: String) async throws {
        let deadline = ContinuousClock.now + timeout
        var last: Any?
        while ContinuousClock.now < deadline {
            last = try? await run(script)
            if last as? Bool == true { return }
            try await Task.sleep(for: .milliseconds(200))
        }
        throw Failure(description: "timed out waiting for \(what) (last answer: \(String(describing: last)))")
    }

    /// Resizes the window (a phone's screen, say).
    func resize(width: Int, height: Int) async throws {
        _ = try await request("POST", "/session/\(session)/window/rect", ["width": width, "height": height])
    }

    /// A PNG of the window.
    func screenshot(to url: URL) async throws {
        let encoded = try await request("GET", "/session/\(session)/screenshot") as? String ?? ""
        try Data(base64Encoded: encoded)?.write(to: url)
    }

    /// One WebDriver command, through curl (URLSession on Linux refuses chromedriver's answers:
    /// "Failed writing header").
    private func request(_ method: String, _ path: String, _ body: [String: Any]? = nil) async throws -> Any {
        let curl = Process()
        curl.executableURL = URL(fileURLWithPath: "/usr/bin/curl")
        curl.arguments = ["-s", "-m", "60", "-X", method, "-H", "content-type: application/json", "-w", "\n%{http_code}"]
            + (body == nil ? [] : ["--data-binary", "@-"]) + [base.absoluteString + path]
        let input = Pipe(), output = Pipe()
        curl.standardInput = input
        curl.standardOutput = output
        curl.standardError = FileHandle.nullDevice
        try curl.run()
        if let body { input.fileHandleForWriting.write(try JSONSerialization.data(withJSONObject: body)) }
        try input.fileHandleForWriting.close()
        let data = output.fileHandleForReading.readDataToEndOfFile()
        curl.waitUntilExit()
        guard curl.terminationStatus == 0, let split = data.lastIndex(of: UInt8(ascii: "\n")) else {
            throw Failure(description: "WebDriver \(method) \(path): curl failed (\(curl.terminationStatus))")
        }
        let status = Int(String(decoding: data[(split + 1)...], as: UTF8.self)) ?? 500
        let payload = data[..<split]
        let answer = (try? JSONSerialization.jsonObject(with: payload, options: [.fragmentsAllowed])) as? [String: Any]
        let value = answer?["value"] ?? NSNull()
        if status >= 400 {
            let message = ((value as? [String: Any])?["message"] as? String) ?? String(decoding: payload, as: UTF8.self)
            throw Failure(description: "WebDriver \(method) \(path): \(message.prefix(400))")
        }
        return value
    }
}
