// The node network across real network namespaces on a bridge (root only; skipped with the
// reason otherwise): one host and three nodes. The host process is killed with SIGKILL while a
// node sends reliable messages to another, and restarted: both nodes are back within 3 s and
// every message arrives exactly once.
import Foundation
import Testing

enum Bridge {
    static let script = CLI.root.appendingPathComponent("scripts/netbridge.sh").path

    static var skipReason: String? {
        if getuid() != 0 { return "network-namespace tests need root" }
        if !FileManager.default.isExecutableFile(atPath: "/usr/sbin/ip") && !FileManager.default.isExecutableFile(atPath: "/sbin/ip") {
            return "iproute2 (ip) is not installed"
        }
        if !FileManager.default.isExecutableFile(atPath: CLI.xt) { return "\(CLI.xt) is not built" }
        return nil
    }

    /// `xt` inside namespace `ns`, in the background; with `errors`, its standard error goes to the same pipe.
    static func spawn(_ ns: String, _ arguments: [String], in directory: URL, errors: Bool = false) throws -> (process: Process, output: Pipe) {
        try CLI.spawn(arguments, in: directory, namespace: ns, errors: errors)
    }

    static func shell(_ arguments: [String]) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = arguments
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try? process.run()
        process.waitUntilExit()
    }
}

@Suite("Node network in namespaces", .serialized, .enabled(if: Bridge.skipReason == nil, "skipped: \(Bridge.skipReason ?? "")"))
struct NodeNetworkNamespaceTests {
    @Test("Host killed and restarted: nodes back within 3 s, no message lost or duplicated")
    func hostRestart() throws {
        let prefix = "xtn"
        let dir = try CLI.temporaryDirectory()
        Bridge.shell(["bash", Bridge.script, "up", prefix, "4"])
        defer {
            Bridge.shell(["bash", Bridge.script, "down", prefix, "4"])
            try? FileManager.default.removeItem(at: dir)
        }
        for name in ["host", "tx", "rx", "ops"] { _ = try CLI.run(["keygen", "--out", "\(name).key"], in: dir) }
        let hostArguments = ["host", "--bind", "10.78.0.1", "--ports", "9000-9000", "--key", "host.key", "--open", "--dead-node-interval", "8"]
        var host = try Bridge.spawn("\(prefix)0", hostArguments, in: dir)
        defer { if host.process.isRunning { kill(host.process.processIdentifier, SIGKILL) } }
        Thread.sleep(forTimeInterval: 0.5)
        let common = ["--host-key", "@host.key.pub", "--host", "10.78.0.1:9000", "--config", "none"]
        let total = 150
        let rx = try Bridge.spawn("\(prefix)2", ["sub", "--key", "rx.key", "--id", "1.2", "--name", "rx", "--count", "\(total)"] + common, in: dir)
        defer { if rx.process.isRunning { rx.process.terminate() } }
        Thread.sleep(forTimeInterval: 0.7)
        let tx = try Bridge.spawn("\(prefix)1", ["msg", "rx", "n", "--repeat", "\(total)", "--interval", "20", "--key", "tx.key",
                                                  "--id", "1.1", "--name", "tx"] + common, in: dir)
        defer { if tx.process.isRunning { tx.process.terminate() } }
        Thread.sleep(forTimeInterval: 1.0)

        // `ip netns exec` runs xt as its child: kill the xt process itself.
        Bridge.shell(["pkill", "-KILL", "-f", "xt host --bind 10.78.0.1 --ports 9000-9000"])
        host.process.waitUntilExit()
        Thread.sleep(forTimeInterval: 0.3)
        host = try Bridge.spawn("\(prefix)0", hostArguments, in: dir)
        let restarted = Date()

        // Both nodes are back when the host lists them.
        var back: TimeInterval?
        while back == nil, Date().timeIntervalSince(restarted) < 10 {
            let inside = try Bridge.spawn("\(prefix)3", ["status", "--json", "--key", "ops.key", "--id", "1.3", "--name", "ops"] + common, in: dir)
            inside.process.waitUntilExit()
            let json = String(decoding: inside.output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            if json.contains("\"rx\"") && json.contains("\"tx\"") { back = Date().timeIntervalSince(restarted) }
            else { Thread.sleep(forTimeInterval: 0.1) }
        }
        let reconnect = try #require(back, "the nodes did not come back within 10 s")
        print("node network: both nodes back \(String(format: "%.2f", reconnect)) s after the host restart")
        #expect(reconnect < 3, "back \(reconnect) s after the restart")

        let deadline = Date().addingTimeInterval(30)
        while (tx.process.isRunning || rx.process.isRunning) && Date() < deadline { Thread.sleep(forTimeInterval: 0.1) }
        #expect(tx.process.terminationStatus == 0)
        let lines = String(decoding: rx.output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self).split(separator: "\n")
        let numbers = lines.compactMap { line -> Int? in
            guard line.hasPrefix("[direct]"), let last = line.split(separator: " ").last else { return nil }
            return Int(last)
        }
        #expect(numbers.sorted() == Array(0..<total), "each message exactly once (\(numbers.count) received)")
    }
}

extension NodeNetworkNamespaceTests {
    @Test("Across the bridge: name routing, an unknown name, a spoofed id, an unauthorized key, and a killed node reported dead")
    func namesAndRefusals() throws {
        let prefix = "xtr"
        let dir = try CLI.temporaryDirectory()
        Bridge.shell(["bash", Bridge.script, "up", prefix, "4"])
        defer {
            Bridge.shell(["pkill", "-KILL", "-f", "xt host --bind 10.78.0.1 --ports 9400"])
            Bridge.shell(["bash", Bridge.script, "down", prefix, "4"])
            try? FileManager.default.removeItem(at: dir)
        }
        for name in ["host", "alice", "bob", "carol", "eve"] { _ = try CLI.run(["keygen", "--out", "\(name).key"], in: dir) }
        func key(_ name: String) throws -> String {
            try String(contentsOf: dir.appendingPathComponent("\(name).key.pub"), encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
        }
        try Data("\(try key("alice")) alice 1.1\n\(try key("bob")) bob 1.2\n\(try key("carol")) carol 1.3\n".utf8)
            .write(to: dir.appendingPathComponent("nodes"))
        let host = try Bridge.spawn("\(prefix)0", ["host", "--bind", "10.78.0.1", "--ports", "9400", "--key", "host.key",
                                                   "--authorized-keys", "nodes", "--hold-time", "0", "--dead-node-interval", "2"], in: dir)
        defer { if host.process.isRunning { kill(host.process.processIdentifier, SIGKILL) } }
        Thread.sleep(forTimeInterval: 0.5)
        let common = ["--host-key", "@host.key.pub", "--host", "10.78.0.1:9400", "--config", "none"]
        let bob = try Bridge.spawn("\(prefix)2", ["sub", "--key", "bob.key", "--id", "1.2", "--name", "bob", "--count", "1"] + common, in: dir)
        defer { if bob.process.isRunning { bob.process.terminate() } }
        let carol = try Bridge.spawn("\(prefix)3", ["sub", "--key", "carol.key", "--id", "1.3", "--name", "carol"] + common, in: dir)
        defer { if carol.process.isRunning { carol.process.terminate() } }
        Thread.sleep(forTimeInterval: 1.0)

        func alice(_ arguments: [String], key: String = "alice.key", id: String = "1.1", name: String = "alice") throws -> (status: Int32, output: String) {
            let run = try Bridge.spawn("\(prefix)1", arguments + ["--key", key, "--id", id, "--name", name, "--connect-timeout", "3"] + common, in: dir,
                                       errors: true)
            run.process.waitUntilExit()
            return (run.process.terminationStatus, String(decoding: run.output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self))
        }
        let delivered = try alice(["msg", "bob", "hello bob"])
        #expect(delivered.status == 0, "\(delivered.output)")
        let unknown = try alice(["msg", "nobody", "hi"])
        #expect(unknown.status == 1 && unknown.output.contains("no node named 'nobody' is connected"), "\(unknown.output)")
        let spoofed = try alice(["msg", "bob", "hi"], id: "1.7", name: "mallory")
        #expect(spoofed.status == 1 && spoofed.output.contains("registered as alice (1.1)"), "\(spoofed.output)")
        let unauthorized = try alice(["msg", "bob", "hi"], key: "eve.key", id: "1.9", name: "eve")
        #expect(unauthorized.status == 1 && unauthorized.output.contains("has this node's key"), "\(unauthorized.output)")

        // carol's process dies without a word; the host notices within its 2 s interval.
        Bridge.shell(["pkill", "-KILL", "-f", "xt sub --key carol.key"])
        Thread.sleep(forTimeInterval: 3.5)
        Bridge.shell(["pkill", "-TERM", "-f", "xt host --bind 10.78.0.1 --ports 9400"])
        host.process.waitUntilExit()
        bob.process.waitUntilExit()
        let hostLog = String(decoding: host.output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        #expect(hostLog.contains("refused: mallory"), "\(hostLog)")
        #expect(hostLog.contains("left: carol (1.3)"), "\(hostLog)")
        let bobLog = String(decoding: bob.output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        #expect(bobLog.contains("[direct] from 1.1: hello bob"), "\(bobLog)")
    }
}
