// Two network namespaces joined by veth, with `tc tbf` at 500 Mbit/s and `nft` dropping a
// share of the packets: `xt send` moves a file across and it must arrive byte-identical.
// Needs root and iproute2/nftables; skipped with the reason printed otherwise.
import Foundation
import Testing

enum NamespaceEnvironment {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    static let xt = root.appendingPathComponent(".build/debug/xt").path
    static let script = root.appendingPathComponent("scripts/netns.sh").path

    /// Why the namespace tests cannot run here, or nil if they can.
    static var skipReason: String? {
        if getuid() != 0 { return "network-namespace tests need root" }
        if !FileManager.default.isExecutableFile(atPath: "/usr/sbin/ip") && !FileManager.default.isExecutableFile(atPath: "/sbin/ip") {
            return "iproute2 (ip) is not installed"
        }
        if !FileManager.default.isExecutableFile(atPath: "/usr/sbin/nft") { return "nftables (nft) is not installed" }
        if !FileManager.default.isExecutableFile(atPath: xt) { return "\(xt) is not built (run swift build first)" }
        return nil
    }

    @discardableResult
    static func run(_ arguments: [String], timeout: TimeInterval = 120) throws -> (status: Int32, output: String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = arguments
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        try process.run()
        let deadline = Date().addingTimeInterval(timeout)
        while process.isRunning && Date() < deadline { Thread.sleep(forTimeInterval: 0.05) }
        if process.isRunning { process.terminate() }
        process.waitUntilExit()
        let output = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        return (process.terminationStatus, output)
    }
}

@Suite("Network namespaces", .serialized, .enabled(if: NamespaceEnvironment.skipReason == nil, "skipped: \(NamespaceEnvironment.skipReason ?? "")"))
struct NetworkNamespaceTests {
    @Test("A file crosses a 500 Mbit/s veth with 5% random drop byte-identical", arguments: [0, 50])
    func fileAcrossVeth(dropPerMille: Int) throws {
        let prefix = "xtt\(dropPerMille)"
        let work = FileManager.default.temporaryDirectory.appendingPathComponent("xt-netns-\(dropPerMille)-\(getpid())")
        try? FileManager.default.removeItem(at: work)
        try FileManager.default.createDirectory(at: work, withIntermediateDirectories: true)
        defer {
            _ = try? NamespaceEnvironment.run(["bash", NamespaceEnvironment.script, "down", prefix])
            try? FileManager.default.removeItem(at: work)
        }
        let xt = NamespaceEnvironment.xt
        let dir = work.path
        try NamespaceEnvironment.run([xt, "keygen", "--out", "\(dir)/server.key"])
        try NamespaceEnvironment.run([xt, "keygen", "--out", "\(dir)/client.key"])
        try FileManager.default.copyItem(atPath: "\(dir)/client.key.pub", toPath: "\(dir)/authorized_keys")
        let payload = Data((0..<(16 << 20)).map { UInt8(truncatingIfNeeded: ($0 &* 2_654_435_761) >> 7) })
        try payload.write(to: work.appendingPathComponent("payload.bin"))

        let setup = try NamespaceEnvironment.run(["bash", NamespaceEnvironment.script, "up", prefix, "500mbit", "\(dropPerMille)"])
        #expect(setup.status == 0, "namespace setup failed: \(setup.output)")

        let listener = Process()
        listener.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        listener.arguments = ["ip", "netns", "exec", "\(prefix)b", xt, "listen", "--bind", "10.77.0.2:9555", "--key", "\(dir)/server.key",
                              "--authorized-keys", "\(dir)/authorized_keys", "--out-dir", "\(dir)/received", "--sessions", "1"]
        listener.standardOutput = FileHandle.nullDevice
        listener.standardError = FileHandle.nullDevice
        try listener.run()
        defer { if listener.isRunning { listener.terminate() } }
        Thread.sleep(forTimeInterval: 0.5)
        let send = try NamespaceEnvironment.run(["ip", "netns", "exec", "\(prefix)a", xt, "send", "--to", "10.77.0.2:9555",
                                                 "--peer-key", "@\(dir)/server.key.pub", "--key", "\(dir)/client.key",
                                                 "--file", "\(dir)/payload.bin", "--stats"])
        #expect(send.status == 0, "xt send failed: \(send.output)")
        #expect(send.output.contains("sha256 verified"))
        let received = try Data(contentsOf: work.appendingPathComponent("received/payload.bin"))
        #expect(received == payload)
        if dropPerMille > 0 {
            #expect(!send.output.contains("lost 0 "), "drops were repaired: \(send.output)")
        }
    }
}
