// The `xt` command as a user meets it: bad arguments, an unreadable key, a port in use and
// an unreachable peer each give one clear error line and a non-zero exit.
import Foundation
import Testing

enum CLI {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    static let xt = root.appendingPathComponent(".build/debug/xt").path

    struct Result {
        var status: Int32
        var stdout: String
        var stderr: String
        var errorLines: [Substring] { stderr.split(separator: "\n") }
    }

    static func run(_ arguments: [String], in directory: URL? = nil, timeout: TimeInterval = 30, input: String? = nil,
                    environment: [String: String]? = nil) throws -> Result {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: xt)
        process.arguments = arguments
        if let environment { process.environment = environment }
        if let directory { process.currentDirectoryURL = directory }
        let out = Pipe()
        let err = Pipe()
        process.standardOutput = out
        process.standardError = err
        let feed = Pipe()
        if input != nil { process.standardInput = feed }
        try process.run()
        if let input {
            feed.fileHandleForWriting.write(Data(input.utf8))
            try? feed.fileHandleForWriting.close()
        }
        let deadline = Date().addingTimeInterval(timeout)
        while process.isRunning && Date() < deadline { Thread.sleep(forTimeInterval: 0.02) }
        if process.isRunning { process.terminate() }
        process.waitUntilExit()
        return Result(status: process.terminationStatus,
                      stdout: String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self),
                      stderr: String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self))
    }

    static func temporaryDirectory() throws -> URL {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("xt-cli-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }
}

@Suite("xt command line", .serialized, .enabled(if: FileManager.default.isExecutableFile(atPath: CLI.xt), "xt is not built"))
struct CLITests {
    @Test("keygen writes a key pair and prints the public key; it will not overwrite by accident")
    func keygen() throws {
        let dir = try CLI.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let first = try CLI.run(["keygen", "--out", "k/node.key"], in: dir)
        #expect(first.status == 0)
        let publicKey = try String(contentsOf: dir.appendingPathComponent("k/node.key.pub"), encoding: .utf8)
        #expect(first.stdout.trimmingCharacters(in: .whitespacesAndNewlines) == publicKey.trimmingCharacters(in: .whitespacesAndNewlines))
        let attributes = try FileManager.default.attributesOfItem(atPath: dir.appendingPathComponent("k/node.key").path)
        #expect((attributes[.posixPermissions] as? NSNumber)?.intValue == 0o600)
        let again = try CLI.run(["keygen", "--out", "k/node.key"], in: dir)
        #expect(again.status != 0)
        #expect(again.errorLines.count == 1 && again.stderr.contains("--force"))
    }

    @Test("Bad arguments are refused with a clear first line")
    func badArguments() throws {
        let missing = try CLI.run(["send", "--message", "hi"])
        #expect(missing.status != 0)
        #expect(missing.errorLines.first?.contains("--to") == true)
        let nothing = try CLI.run(["send", "--to", "127.0.0.1:9", "--peer-key", "AAAA"])
        #expect(nothing.status != 0)
        #expect(nothing.errorLines.first?.contains("--message") == true)
        let badMTU = try CLI.run(["bench", "--to", "127.0.0.1:9", "--peer-key", "AAAA", "--mtu", "80"])
        #expect(badMTU.status != 0)
        #expect(badMTU.errorLines.count == 1 && badMTU.stderr.contains("MTU 80"))
        let badCipher = try CLI.run(["send", "--to", "127.0.0.1:9", "--peer-key", "AAAA", "--message", "x", "--cipher", "rot13"])
        #expect(badCipher.status == 1)
        #expect(badCipher.errorLines.count == 1 && badCipher.stderr.contains("chacha20-poly1305"))
    }

    @Test("An unreadable key and a malformed peer key each give one line")
    func badKeys() throws {
        let dir = try CLI.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let noKey = try CLI.run(["send", "--to", "127.0.0.1:9", "--peer-key", "AAAA", "--message", "x", "--key", "missing.key"], in: dir)
        #expect(noKey.status == 1)
        #expect(noKey.errorLines.count == 1)
        #expect(noKey.stderr.contains("xt keygen"))
        try Data("not a key\n".utf8).write(to: dir.appendingPathComponent("bad.key"))
        let badKey = try CLI.run(["send", "--to", "127.0.0.1:9", "--peer-key", "AAAA", "--message", "x", "--key", "bad.key"], in: dir)
        #expect(badKey.status == 1 && badKey.errorLines.count == 1 && badKey.stderr.contains("bad.key"))
        _ = try CLI.run(["keygen", "--out", "node.key"], in: dir)
        let badPeer = try CLI.run(["send", "--to", "127.0.0.1:9", "--peer-key", "%%%", "--message", "x", "--key", "node.key"], in: dir)
        #expect(badPeer.status == 1 && badPeer.errorLines.count == 1 && badPeer.stderr.contains("not base64"))
    }

    @Test("A port in use and an unreachable peer each give one line and exit 1")
    func portInUseAndUnreachable() throws {
        let dir = try CLI.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        _ = try CLI.run(["keygen", "--out", "node.key"], in: dir)
        try Data().write(to: dir.appendingPathComponent("authorized_keys"))
        let port = 20_000 + Int(getpid() % 20_000)
        let listener = Process()
        listener.executableURL = URL(fileURLWithPath: CLI.xt)
        listener.arguments = ["listen", "--bind", "127.0.0.1:\(port)", "--key", "node.key", "--authorized-keys", "authorized_keys"]
        listener.currentDirectoryURL = dir
        listener.standardOutput = FileHandle.nullDevice
        try listener.run()
        defer { listener.terminate() }
        Thread.sleep(forTimeInterval: 0.5)
        let second = try CLI.run(["listen", "--bind", "127.0.0.1:\(port)", "--key", "node.key", "--authorized-keys", "authorized_keys"], in: dir)
        #expect(second.status == 1)
        #expect(second.errorLines.count == 1 && second.stderr.contains("already in use"))

        // The listener does not admit this key: it says so (authenticated), at once.
        let publicKey = try String(contentsOf: dir.appendingPathComponent("node.key.pub"), encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
        let unreachable = try CLI.run(["send", "--to", "127.0.0.1:\(port)", "--peer-key", publicKey, "--message", "x",
                                       "--key", "node.key", "--connect-timeout", "1"], in: dir)
        #expect(unreachable.status == 1)
        #expect(unreachable.errorLines.count == 1 && unreachable.stderr.contains("refused this node's key"), "\(unreachable.stderr)")
    }

    /// Numbers from the command line that used to reach trapping arithmetic (SIGILL): each is
    /// now one clear error line naming the option and what it allows.
    @Test("Out-of-range numbers on the command line are one clear error, never a crash", arguments: [
        (["recorder", "export", "--storage", "recordings", "--camera", "c", "--out", "x.mp4", "--from", "nan"], "'nan' is not a time from 1970 to 2199"),
        (["recorder", "export", "--storage", "recordings", "--camera", "c", "--out", "x.mp4", "--to", "2300-01-01T00:00:00Z"], "is not a time from 1970 to 2199"),
        (["recorder", "export", "--storage", "recordings", "--camera", "c", "--out", "x.mp4", "--from", "1e300"], "is not a time from 1970 to 2199"),
        (["sub", "--channel", "1", "--host-key", "AAAA", "--seconds", "nan"], "--seconds nan is out of range"),
        (["sub", "--channel", "1", "--host-key", "AAAA", "--nodes", "70000"], "--nodes 70000 is out of range"),
        (["pub", "--channel", "1", "--host-key", "AAAA", "--rate", "1000", "--seconds", "inf"], "--seconds inf is out of range"),
        (["pub", "--channel", "1", "--host-key", "AAAA", "--rate", "9223372036854775807"], "--rate 9223372036854775807 is out of range"),
        (["alarms", "--host-key", "AAAA", "--seconds=-1"], "--seconds -1.0 is out of range"),
        (["testpattern", "--out", "x.yuv", "--seconds", "nan"], "--seconds nan is out of range"),
        (["bench", "--to", "127.0.0.1:9", "--peer-key", "AAAA", "--bytes=-5"], "--bytes -5 is out of range"),
        (["send", "--to", "127.0.0.1:9", "--peer-key", "AAAA", "--message", "x", "--connect-timeout=-9223372037"], "connect (handshake) timeout"),
        (["send", "--to", "127.0.0.1:9", "--peer-key", "AAAA", "--message", "x", "--packetburst", "200000000000000"], "packetburst 200000000000000 is out of range"),
        (["recorder", "--http", "none", "--open", "--key", "k.key", "--retention-days", "inf", "--seconds", "0"], "retention-days"),
        (["recorder", "--http", "none", "--open", "--key", "k.key", "--seconds", "nan"], "--seconds nan is out of range"),
    ])
    func numbersOutOfRange(_ arguments: [String], _ expected: String) throws {
        let dir = try CLI.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        _ = try CLI.run(["keygen", "--out", "k.key"], in: dir)
        try FileManager.default.createDirectory(at: dir.appendingPathComponent("recordings"), withIntermediateDirectories: true)
        let needsKey = !arguments.contains("--key") && !["export", "testpattern"].contains(arguments.count > 1 && arguments[0] == "recorder" ? arguments[1] : arguments[0])
        let result = try CLI.run(arguments + (needsKey ? ["--key", "k.key"] : []), in: dir)
        #expect(result.status == 1, "\(arguments): exit \(result.status), \(result.stderr)")
        #expect(result.stderr.contains(expected), "\(arguments): \(result.stderr)")
        #expect(!result.stderr.contains("Fatal error") && !result.stderr.contains("Crash"), "\(arguments)")
    }
}

@Suite("FFmpeg on first use", .enabled(if: FileManager.default.isExecutableFile(atPath: CLI.xt), "xt is not built"))
struct FFmpegLoadingTests {
    /// FFmpeg's libraries replaced by empty files, found first through LD_LIBRARY_PATH.
    private static func brokenFFmpeg(in dir: URL) throws -> [String: String] {
        let libraries = dir.appendingPathComponent("broken-ffmpeg")
        try FileManager.default.createDirectory(at: libraries, withIntermediateDirectories: true)
        for name in ["libavutil.so.57", "libavcodec.so.59", "libavformat.so.59", "libswscale.so.6", "libswresample.so.4"] {
            FileManager.default.createFile(atPath: libraries.appendingPathComponent(name).path, contents: Data())
        }
        var environment = ProcessInfo.processInfo.environment
        environment["LD_LIBRARY_PATH"] = libraries.path
        return environment
    }

    @Test("Commands without media start without FFmpeg; a broken FFmpeg is one line naming the packages, not a crash")
    func loadedOnFirstUse() throws {
        let dir = try CLI.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let environment = try Self.brokenFFmpeg(in: dir)
        // keygen and a transfer never load FFmpeg: the broken copies are never opened.
        let keygen = try CLI.run(["keygen", "--out", "node.key"], in: dir, environment: environment)
        #expect(keygen.status == 0, "\(keygen.stderr)")
        let help = try CLI.run(["send", "--help"], in: dir, environment: environment)
        #expect(help.status == 0 && help.stdout.contains("--stats-json"), "\(help.stderr)")
        // The agent touches media at once: it names the library and the packages, exit status 1.
        let agent = try CLI.run(["agent", "--config", "none.conf", "--key", "node.key", "--host", "127.0.0.1:9", "--host-key", "@node.key.pub",
                                  "--video", "synthetic", "--audio", "none"], in: dir, environment: environment)
        #expect(agent.status == 1)
        #expect(agent.errorLines.count == 1 && agent.stderr.contains("cannot load libavutil.so.57") && agent.stderr.contains("apt-get install libavformat59"),
                "\(agent.stderr)")
    }
}
