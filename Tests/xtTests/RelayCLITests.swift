// `xt relay` as the benchmark uses it: a file crosses a jittery, lossy, rate-limited link in
// user space byte for byte, the relay's counters add up, the receiver got next to nothing twice,
// and bad numbers are refused with one line naming the option.
import Foundation
import Testing

@Suite("xt relay", .serialized, .enabled(if: FileManager.default.isExecutableFile(atPath: CLI.xt), "xt is not built"))
struct RelayCLITests {
    private static func lastJSON(_ text: String) throws -> [String: Any] {
        let line = try #require(text.split(separator: "\n").last(where: { $0.hasPrefix("{") }), "no JSON line in: \(text)")
        return try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
    }

    @Test("A file crosses a jittery link (20 Mbit/s, 10 ms each way, 0…2 ms jitter, burst loss): intact, few bytes received twice")
    func jitteryTransfer() throws {
        let dir = try CLI.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        #expect(try CLI.run(["keygen", "--out", "server.key"], in: dir).status == 0)
        #expect(try CLI.run(["keygen", "--out", "client.key"], in: dir).status == 0)
        try FileManager.default.copyItem(at: dir.appendingPathComponent("client.key.pub"), to: dir.appendingPathComponent("authorized_keys"))
        var payload = [UInt8](repeating: 0, count: 6 << 20)
        var generator = SystemRandomNumberGenerator()
        for i in stride(from: 0, to: payload.count, by: 8) { withUnsafeBytes(of: generator.next() as UInt64) { payload.replaceSubrange(i..<i + 8, with: $0) } }
        try Data(payload).write(to: dir.appendingPathComponent("payload.bin"))
        let serverPort = Int.random(in: 20_000...25_000)
        let relayPort = serverPort + 5000
        let relay = try CLI.spawn(["relay", "--listen", "127.0.0.1:\(relayPort)", "--to", "127.0.0.1:\(serverPort)", "--rate", "20mbit",
                                   "--delay", "10", "--jitter", "2", "--burst-loss", "0.01,0.25", "--seed", "7"], in: dir)
        let listener = try CLI.spawn(["listen", "--bind", "127.0.0.1:\(serverPort)", "--key", "server.key", "--authorized-keys", "authorized_keys",
                                      "--out-dir", "received", "--sessions", "1", "--stats-json"], in: dir)
        defer {
            if relay.process.isRunning { relay.process.terminate() }
            if listener.process.isRunning { listener.process.terminate() }
        }
        Thread.sleep(forTimeInterval: 0.5)
        let send = try CLI.run(["send", "--to", "127.0.0.1:\(relayPort)", "--peer-key", "@server.key.pub", "--key", "client.key",
                                "--file", "payload.bin", "--stats-json"], in: dir, timeout: 90)
        #expect(send.status == 0, "\(send.stderr)")
        listener.process.waitUntilExit()
        relay.process.terminate()  // SIGTERM: the relay prints its counters and exits
        relay.process.waitUntilExit()
        #expect(relay.process.terminationStatus == 0)
        #expect(try Data(contentsOf: dir.appendingPathComponent("received/payload.bin")) == Data(payload))

        let sender = try Self.lastJSON(send.stdout)
        let receiver = try Self.lastJSON(String(decoding: listener.output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self))
        let counters = try Self.lastJSON(String(decoding: relay.output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self))
        let forward = try #require(counters["client_to_server"] as? [String: Int])
        let backward = try #require(counters["server_to_client"] as? [String: Int])
        // The relay's books balance, and it did lose datagrams in bursts both ways.
        for direction in [forward, backward] {
            let dropped = ["dropped_burst", "dropped_random", "dropped_queue", "dropped_mtu"].reduce(0) { $0 + (direction[$1] ?? 0) }
            #expect(direction["offered"] == (direction["delivered"] ?? 0) + dropped)
            #expect((direction["dropped_burst"] ?? 0) > 0)
        }
        // What the sender counted is what crossed the relay, and what was lost came again.
        let sent = try #require(sender["packets_sent"] as? Int)
        #expect(abs((forward["offered"] ?? 0) - sent) <= 8, "relay saw \(forward["offered"] ?? 0) datagrams, the sender sent \(sent)")
        let retransmitted = try #require(sender["bytes_retransmitted"] as? Int)
        #expect(retransmitted > 0)
        // The receiver's own count of bytes it already had: spurious retransmissions stay under 2%.
        let duplicate = try #require(receiver["payload_bytes_duplicate"] as? Int)
        #expect(Double(duplicate) < Double(payload.count) * 0.02, "\(duplicate) bytes received twice; sender: \(sender)")
        #expect((sender["reorder_window_quarters"] as? Int ?? 0) >= 1, "the sender saw the reordering")
    }

    @Test("Bad numbers are refused with one line naming the option and the range")
    func badNumbers() throws {
        let base = ["relay", "--listen", "127.0.0.1:29999", "--to", "127.0.0.1:29998"]
        for (extra, expected) in [(["--rate", "5xbit"], "--rate"), (["--rate", "1e12"], "--rate"), (["--delay", "nan"], "--delay"),
                                  (["--jitter=-1"], "--jitter"), (["--loss", "101"], "--loss"), (["--burst-loss", "0.1"], "--burst-loss"),
                                  (["--burst-loss", "0.1,0"], "--burst-loss"), (["--mtu", "100"], "--mtu"), (["--queue", "0"], "--queue")] {
            let result = try CLI.run(base + extra)
            #expect(result.status == 1, "\(extra)")
            #expect(result.errorLines.count == 1 && result.stderr.contains(expected), "\(extra): \(result.stderr)")
        }
        let unresolvable = try CLI.run(["relay", "--listen", "127.0.0.1", "--to", "127.0.0.1:29998"])
        #expect(unresolvable.status == 1 && unresolvable.stderr.contains("host:port"), "\(unresolvable.stderr)")
    }
}
