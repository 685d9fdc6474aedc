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

    /// `xt` inside namespace `ns`, in the background.
    static func spawn(_ ns: String, _ arguments: [String], in directory: URL) throws -> (process: Process, output: Pipe) {
        try CLI.spawn(arguments, in: directory, namespace: ns)
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
        Bridge.shell(["pkill", "-KILL", "-f", "xt host --bind 10.78.0.1"])
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
