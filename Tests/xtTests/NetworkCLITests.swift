// `xt host`, `xt sub`, `xt msg`, `xt pub` and `xt status` as a user runs them on loopback: a
// message by name, a channel publication, a clear error for an unknown name, a node claiming
// an id its key is not registered for refused with the reason, and the status table and JSON.
import Foundation
import Testing

extension CLI {
    /// Starts `xt` in the background (inside network namespace `namespace` if given); its
    /// standard output goes to the returned pipe.
    static func spawn(_ arguments: [String], in directory: URL, namespace: String? = nil, errors: Bool = false,
                      environment: [String: String] = [:], input: Pipe? = nil) throws -> (process: Process, output: Pipe) {
        let process = Process()
        if !environment.isEmpty { process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 } }
        if let input { process.standardInput = input }
        if let namespace {
            process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
            process.arguments = ["ip", "netns", "exec", namespace, xt] + arguments
        } else {
            process.executableURL = URL(fileURLWithPath: xt)
            process.arguments = arguments
        }
        process.currentDirectoryURL = directory
        let output = Pipe()
        process.standardOutput = output
        process.standardError = errors ? output : FileHandle.nullDevice
        try process.run()
        return (process, output)
    }
}

@Suite("xt node network commands", .serialized, .enabled(if: FileManager.default.isExecutableFile(atPath: CLI.xt), "xt is not built"))
struct NetworkCLITests {
    @Test("host, sub, msg and pub: routing by name and channel, unknown names and spoofed ids")
    func hostAndNodes() throws {
        let dir = try CLI.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        for name in ["host", "alice", "bob"] { _ = try CLI.run(["keygen", "--out", "\(name).key"], in: dir) }
        let alice = try String(contentsOf: dir.appendingPathComponent("alice.key.pub"), encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
        let bob = try String(contentsOf: dir.appendingPathComponent("bob.key.pub"), encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
        try Data("\(alice) alice 1.1\n\(bob) bob 1.2\n".utf8).write(to: dir.appendingPathComponent("nodes"))
        let port = Int.random(in: 20_000...32_000)

        let (host, hostOut) = try CLI.spawn(["host", "--bind", "127.0.0.1", "--ports", "\(port)-\(port)", "--key", "host.key",
                                             "--authorized-keys", "nodes", "--hold-time", "0"], in: dir)
        defer { if host.isRunning { host.terminate() } }
        Thread.sleep(forTimeInterval: 0.5)

        let common = ["--host-key", "@host.key.pub", "--host", "127.0.0.1:\(port)", "--config", "none"]
        let (sub, subOut) = try CLI.spawn(["sub", "--key", "bob.key", "--id", "1.2", "--name", "bob", "--channel", "30", "--count", "2"] + common,
                                          in: dir)
        defer { if sub.isRunning { sub.terminate() } }
        Thread.sleep(forTimeInterval: 0.7)

        let asAlice = ["--key", "alice.key", "--id", "1.1", "--name", "alice"] + common
        let message = try CLI.run(["msg", "bob", "hello bob"] + asAlice, in: dir)
        #expect(message.status == 0, "\(message.stderr)")
        let status = try CLI.run(["status"] + asAlice, in: dir)
        #expect(status.status == 0, "\(status.stderr)")
        #expect(status.stdout.contains("bob") && status.stdout.contains("30"), "\(status.stdout)")
        let json = try CLI.run(["status", "--json"] + asAlice, in: dir)
        let nodes = try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [[String: Any]]
        #expect(nodes?.contains { $0["name"] as? String == "bob" && ($0["channels"] as? [Int]) == [30] } == true, "\(json.stdout)")
        // bob exits after its second message, so the status is taken before the publication.
        let published = try CLI.run(["pub", "--channel", "30", "motion"] + asAlice, in: dir)
        #expect(published.status == 0, "\(published.stderr)")
        let unknown = try CLI.run(["msg", "carol", "hi"] + asAlice, in: dir)
        #expect(unknown.status == 1)
        #expect(unknown.errorLines.last?.contains("no node named 'carol' is connected") == true, "\(unknown.stderr)")
        let spoofed = try CLI.run(["msg", "bob", "hi", "--key", "alice.key", "--id", "1.7", "--name", "mallory",
                                   "--connect-timeout", "3"] + common, in: dir)
        #expect(spoofed.status == 1)
        #expect(spoofed.errorLines.last?.contains("registered as alice (1.1)") == true, "\(spoofed.stderr)")

        let deadline = Date().addingTimeInterval(10)
        while sub.isRunning && Date() < deadline { Thread.sleep(forTimeInterval: 0.05) }
        let received = String(decoding: subOut.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        #expect(received.contains("[direct] from 1.1: hello bob"), "\(received)")
        #expect(received.contains("[channel 30] from 1.1: motion"), "\(received)")
        host.terminate()
        host.waitUntilExit()
        let hostLog = String(decoding: hostOut.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        #expect(hostLog.contains("joined: bob (1.2)"), "\(hostLog)")
        #expect(hostLog.contains("refused: mallory"), "\(hostLog)")
    }
}

extension NetworkCLITests {
    @Test("A node killed without a word is reported dead within the host's dead-node interval")
    func deadNode() throws {
        let dir = try CLI.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        for name in ["host", "bob"] { _ = try CLI.run(["keygen", "--out", "\(name).key"], in: dir) }
        let port = Int.random(in: 20_000...32_000)
        let (host, hostOut) = try CLI.spawn(["host", "--bind", "127.0.0.1", "--ports", "\(port)-\(port)", "--key", "host.key", "--open",
                                             "--dead-node-interval", "2"], in: dir)
        defer { if host.isRunning { host.terminate() } }
        Thread.sleep(forTimeInterval: 0.5)
        let (sub, _) = try CLI.spawn(["sub", "--key", "bob.key", "--id", "1.2", "--name", "bob", "--host-key", "@host.key.pub",
                                      "--host", "127.0.0.1:\(port)", "--config", "none"], in: dir)
        Thread.sleep(forTimeInterval: 1.0)
        kill(sub.processIdentifier, SIGKILL)
        sub.waitUntilExit()
        let killed = Date()
        Thread.sleep(forTimeInterval: 3.5)  // the 2 s interval, plus a margin for the check
        host.terminate()
        host.waitUntilExit()
        let log = String(decoding: hostOut.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        #expect(log.contains("joined: bob (1.2)"), "\(log)")
        #expect(log.contains("left: bob (1.2)"), "dead within \(Date().timeIntervalSince(killed)) s: \(log)")
    }
}

extension NetworkCLITests {
    @Test("xt node runs from its config file: it joins under the configured name and channel")
    func nodeFromConfig() throws {
        let dir = try CLI.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        for name in ["host", "cam", "ops"] { _ = try CLI.run(["keygen", "--out", "\(name).key"], in: dir) }
        let port = Int.random(in: 20_000...32_000)
        try Data("id = 2.7\nname = cam\nhost = 127.0.0.1:\(port)\nchannel = 44\n".utf8).write(to: dir.appendingPathComponent("node.conf"))
        let (host, _) = try CLI.spawn(["host", "--bind", "127.0.0.1", "--ports", "\(port)-\(port)", "--key", "host.key", "--open"], in: dir)
        defer { if host.isRunning { host.terminate() } }
        Thread.sleep(forTimeInterval: 0.5)
        let (node, nodeOut) = try CLI.spawn(["node", "--config", "node.conf", "--key", "cam.key", "--host-key", "@host.key.pub"], in: dir)
        defer { if node.isRunning { node.terminate() } }
        Thread.sleep(forTimeInterval: 0.8)
        let published = try CLI.run(["pub", "--channel", "44", "hello cams", "--key", "ops.key", "--id", "1.1", "--name", "ops",
                                     "--host-key", "@host.key.pub", "--host", "127.0.0.1:\(port)", "--config", "none"], in: dir)
        #expect(published.status == 0, "\(published.stderr)")
        Thread.sleep(forTimeInterval: 0.3)
        node.terminate()
        node.waitUntilExit()
        let log = String(decoding: nodeOut.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        #expect(log.contains("node cam (2.7) joined 127.0.0.1:\(port), channel 44"), "\(log)")
        #expect(log.contains("[channel 44] from 1.1: hello cams"), "\(log)")
    }
}
