// Bonded backup across real links (root only; skipped with the reason otherwise): a client and
// a Pi in two namespaces joined by three veth links at 50, 100 and 200 Mbit/s (tbf), the middle
// one dropping 1% (nft). The third link is down at the start and brought up mid-run: it must
// carry data within 2 s. The second is then cut (everything dropped): the transfer may not stall
// for a second. And a camera's live stream on a link during a backup keeps its latency under the
// live deadline (LEDBAT yields to it).
import Foundation
import Testing

enum Links {
    static let script = CLI.root.appendingPathComponent("scripts/netlinks.sh").path

    static var skipReason: String? {
        if getuid() != 0 { return "network-namespace tests need root" }
        if !FileManager.default.isExecutableFile(atPath: "/usr/sbin/ip") && !FileManager.default.isExecutableFile(atPath: "/sbin/ip") {
            return "iproute2 (ip) is not installed"
        }
        if !FileManager.default.isExecutableFile(atPath: "/usr/sbin/nft") { return "nftables (nft) is not installed" }
        if !FileManager.default.isExecutableFile(atPath: CLI.xt) { return "\(CLI.xt) is not built" }
        return nil
    }

    static func shell(_ arguments: [String]) { Bridge.shell(arguments) }

    /// Keys, a backup key, and a targets file naming the Pi at its three link addresses.
    static func prepare(_ dir: URL) throws {
        for name in ["client", "pi"] { _ = try CLI.run(["keygen", "--out", "\(name).key"], in: dir) }
        _ = try CLI.run(["backup", "init", "--backup-key", "backup.key"], in: dir)
        try FileManager.default.copyItem(at: dir.appendingPathComponent("client.key.pub"), to: dir.appendingPathComponent("authorized_keys"))
        let key = try String(contentsOf: dir.appendingPathComponent("pi.key.pub"), encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
        try "pi \(key) 10.81.0.2:7400,10.82.0.2:7400,10.83.0.2:7400\n".write(to: dir.appendingPathComponent("targets"), atomically: true, encoding: .utf8)
    }

    /// The run's progress lines (JSON), in order.
    static func progress(_ output: String) -> [[String: Any]] {
        output.split(separator: "\n").compactMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }.filter { $0["phase"] != nil }
    }

    static func linkBytes(_ line: [String: Any], _ address: String) -> Double {
        let links = line["links"] as? [String: [String: Double]] ?? [:]
        return links.filter { $0.key.hasPrefix(address + ":") }.values.reduce(0) { $0 + ($1["bytes"] ?? 0) }
    }
}

@Suite("Backup over bonded links in namespaces", .serialized, .enabled(if: Links.skipReason == nil, "skipped: \(Links.skipReason ?? "")"))
struct BackupNamespaceTests {
    @Test("A link brought up mid-run carries data within 2 s; a link cut mid-run stalls nothing for 1 s; the restore is byte-identical")
    func linksComeAndGo() throws {
        let prefix = "xtbk"
        let dir = try CLI.temporaryDirectory()
        Links.shell(["bash", Links.script, "up", prefix, "50mbit,100mbit,200mbit", "0,10,0"])
        defer {
            Links.shell(["pkill", "-KILL", "-f", "xt backup serve --store \(dir.path)"])
            Links.shell(["bash", Links.script, "down", prefix])
            try? FileManager.default.removeItem(at: dir)
        }
        try Links.prepare(dir)
        try BackupFixture.tree(dir, count: 16, size: 16 << 20)  // 256 MiB: about 7 s over the three links
        Links.shell(["bash", Links.script, "linkdown", prefix, "3"])
        let pi = try CLI.spawn(["backup", "serve", "--store", "\(dir.path)/store", "--listen", "0.0.0.0:7400", "--key", "pi.key",
                                "--authorized-keys", "authorized_keys", "--quota", "10G"], in: dir, namespace: "\(prefix)b")
        defer { if pi.process.isRunning { pi.process.terminate() } }
        Thread.sleep(forTimeInterval: 0.5)
        let client = try CLI.spawn(["backup", "run", "data", "--copies", "1", "--json", "--progress-interval", "0.1",
                                    "--via", "\(prefix)a1,\(prefix)a2,\(prefix)a3", "--connections", "4"] + BackupFixture.client,
                                   in: dir, namespace: "\(prefix)a", errors: true)
        // Read the progress as it comes, to act on it.
        let reader = LineCollector(client.output)
        #expect(BackupFixture.waitUntil(timeout: 20) { reader.lines.count >= 10 })
        let upAt = Date()
        Links.shell(["bash", Links.script, "linkup", prefix, "3"])
        #expect(BackupFixture.waitUntil(timeout: 10) { reader.progress.contains { Links.linkBytes($0, "10.83.0.1") > 0 } })
        let firstBytes = Date().timeIntervalSince(upAt)
        #expect(firstBytes < 2, "link 3 carried its first bytes \(firstBytes) s after it came up")
        Thread.sleep(forTimeInterval: 0.5)
        let beforeCut = reader.progress.last
        let cutAt = beforeCut?["seconds"] as? Double ?? 0
        let sentBeforeCut = beforeCut?["bytes_sent"] as? Double ?? 0
        Links.shell(["bash", Links.script, "cut", prefix, "2"])
        client.process.waitUntilExit()
        #expect(client.process.terminationStatus == 0, "\(reader.text.split(separator: "\n").filter { !$0.hasPrefix("{") }.suffix(5))")
        let lines = reader.progress
        let final = try #require(BackupFixture.summary(reader.text), "\(reader.text.suffix(2000))")
        // The longest time with no byte confirmed, from the cut to the end of the data.
        var longest = 0.0
        var lastChange = cutAt
        var lastBytes = -1.0
        for line in lines where (line["seconds"] as? Double ?? 0) >= cutAt && line["phase"] as? String == "backing up" {
            let bytes = line["bytes_sent"] as? Double ?? 0
            let time = line["seconds"] as? Double ?? 0
            if bytes > lastBytes {
                longest = max(longest, time - lastChange)
                lastChange = time
                lastBytes = bytes
            }
        }
        print("backup over 3 links: link 3 used \(firstBytes) s after coming up; longest stall after the cut \(longest) s; \(final)")
        // The cut came while data was moving: a good share of it moved after.
        #expect((final["bytes_sent"] as? Double ?? 0) - sentBeforeCut > 50_000_000, "sent \(sentBeforeCut) of \(final["bytes_sent"] ?? 0) before the cut")
        #expect(longest < 1, "the transfer stalled \(longest) s after link 2 was cut")
        let byLink = final["bytes_by_link"] as? [String: Double] ?? [:]
        #expect(byLink.keys.contains { $0.hasPrefix("10.81.0.1") } && byLink.keys.contains { $0.hasPrefix("10.83.0.1") }, "\(byLink)")

        let restore = try CLI.spawn(["backup", "restore", "latest", "--to", "restored", "--via", "\(prefix)a1,\(prefix)a3"] + BackupFixture.client,
                                    in: dir, namespace: "\(prefix)a", errors: true)
        restore.process.waitUntilExit()
        #expect(restore.process.terminationStatus == 0, "\(String(decoding: restore.output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self))")
        #expect(try BackupFixture.same(dir.appendingPathComponent("data"), dir.appendingPathComponent("restored/data")))
    }

    @Test("A camera's live stream keeps its latency under the live deadline during a backup on the same link")
    func cameraKeepsItsLatency() throws {
        let prefix = "xtbl"
        let dir = try CLI.temporaryDirectory()
        Links.shell(["bash", Links.script, "up", prefix, "50mbit", "0"])
        defer {
            Links.shell(["pkill", "-KILL", "-f", "xt host --bind 10.81.0.2 --ports 9300"])
            Links.shell(["bash", Links.script, "down", prefix])
            try? FileManager.default.removeItem(at: dir)
        }
        try Links.prepare(dir)
        for name in ["host", "cam", "viewer"] { _ = try CLI.run(["keygen", "--out", "\(name).key"], in: dir) }
        try BackupFixture.tree(dir, count: 8, size: 16 << 20)  // 128 MiB: about 22 s at 50 Mbit/s
        let pi = try CLI.spawn(["backup", "serve", "--store", "\(dir.path)/store", "--listen", "10.81.0.2:7400", "--key", "pi.key",
                                "--authorized-keys", "authorized_keys"], in: dir, namespace: "\(prefix)b")
        defer { if pi.process.isRunning { pi.process.terminate() } }
        let host = try CLI.spawn(["host", "--bind", "10.81.0.2", "--ports", "9300", "--key", "host.key", "--open"], in: dir, namespace: "\(prefix)b")
        defer { if host.process.isRunning { kill(host.process.processIdentifier, SIGKILL) } }
        Thread.sleep(forTimeInterval: 0.5)
        let common = ["--host-key", "@host.key.pub", "--host", "10.81.0.2:9300", "--config", "none"]
        let messages = 6000  // 4 Mbit/s of 1000-byte messages for 12 s: a camera's live stream
        let viewer = try CLI.spawn(["sub", "--channel", "9", "--report", "--count", "\(messages)", "--seconds", "25", "--key", "viewer.key",
                                    "--id", "1.3", "--name", "viewer"] + common, in: dir, namespace: "\(prefix)b")
        defer { if viewer.process.isRunning { viewer.process.terminate() } }
        Thread.sleep(forTimeInterval: 0.7)
        let backup = try CLI.spawn(["backup", "run", "data", "--copies", "1", "--json"] + BackupFixture.client, in: dir, namespace: "\(prefix)a")
        let backupOutput = LineCollector(backup.output)
        Thread.sleep(forTimeInterval: 1.5)  // the backup has the link to itself first
        let camera = try CLI.spawn(["pub", "--multicast", "--channel", "9", "--rate", "4000", "--size", "1000", "--messages", "\(messages)",
                                    "--key", "cam.key", "--id", "1.2", "--name", "cam"] + common, in: dir, namespace: "\(prefix)a")
        camera.process.waitUntilExit()
        let stillBackingUp = backup.process.isRunning
        viewer.process.waitUntilExit()
        backup.process.waitUntilExit()
        #expect(backup.process.terminationStatus == 0)
        #expect(stillBackingUp, "the backup ended before the camera: the link was not shared the whole time: \(backupOutput.text.suffix(600))")
        let output = String(decoding: viewer.output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        let line = try #require(output.split(separator: "\n").last { $0.hasPrefix("{") }, "no report in: \(output)")
        let report = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
        let latency = report["latency_ms"] as? [String: Double] ?? [:]
        let received = report["messages"] as? Int ?? 0
        print("camera (4 Mbit/s, live) during a backup on a 50 Mbit/s link: \(received) of \(messages) messages, latency \(latency)")
        #expect((latency["p99"] ?? 1e9) < 500, "live latency p99 \(latency) ms: over the 500 ms deadline")
        #expect(received >= messages * 99 / 100, "\(received) of \(messages) messages arrived")
    }
}

/// Collects a pipe's lines as they arrive.
final class LineCollector: @unchecked Sendable {
    private let lock = NSLock()
    private var buffer = ""

    init(_ pipe: Pipe) {
        pipe.fileHandleForReading.readabilityHandler = { [weak self] handle in
            let data = handle.availableData
            guard let self, !data.isEmpty else { return }
            self.lock.lock()
            self.buffer += String(decoding: data, as: UTF8.self)
            self.lock.unlock()
        }
    }

    var text: String { lock.lock(); defer { lock.unlock() }; return buffer }
    var lines: [Substring] { text.split(separator: "\n") }
    var progress: [[String: Any]] { Links.progress(text) }
}
