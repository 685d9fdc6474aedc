// Multicast across real network namespaces on a bridge (root only; skipped with the reason
// otherwise): a host, a publisher and three receivers. A 4 Mbit/s stream of 1500 messages
// goes out; nftables in the host's namespace counts what it puts on the wire. Each packet
// goes on the group once, a receiver with 5% drop gets its losses repaired without slowing
// the others, and a receiver the group does not reach gets the stream relayed.
import Foundation
import Testing

@Suite("Multicast in namespaces", .serialized, .enabled(if: Bridge.skipReason == nil, "skipped: \(Bridge.skipReason ?? "")"))
struct MulticastNamespaceTests {
    static let messages = 1500  // 3 s at 4 Mbit/s of 1000-byte messages
    static let prefix = "xtm"

    /// One receiver's `xt sub --report`.
    struct Report {
        let messages: Int
        let duplicates: Int
        let viaGroup: Int
        let viaRelay: Int
        let nacked: Int
        let repaired: Int
        let lost: Int

        init(_ output: String) throws {
            let line = try #require(output.split(separator: "\n").last { $0.hasPrefix("{") }, "no report in: \(output)")
            let object = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
            let multicast = try #require(object["multicast"] as? [String: Any])
            messages = object["messages"] as? Int ?? -1
            duplicates = object["duplicates"] as? Int ?? -1
            viaGroup = multicast["via_group"] as? Int ?? -1
            viaRelay = multicast["via_relay"] as? Int ?? -1
            nacked = multicast["nacked"] as? Int ?? -1
            repaired = multicast["repaired"] as? Int ?? -1
            lost = multicast["lost"] as? Int ?? -1
        }
    }

    /// What the host's namespace counted going out: stream datagrams on the group (heartbeats
    /// are under 200 bytes) and unicast bytes to each receiver.
    struct Wire {
        let groupPackets: Int
        let groupBytes: Int
        let unicastBytes: [Int]
    }

    static func nft(_ ns: String, _ arguments: String) -> String {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["ip", "netns", "exec", ns, "nft"] + arguments.split(separator: " ").map(String.init)
        let output = Pipe()
        process.standardOutput = output
        process.standardError = FileHandle.nullDevice
        try? process.run()
        process.waitUntilExit()
        return String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
    }

    /// Runs the stream. `prepare` changes the receivers' namespaces (index 2, 3, 4) first;
    /// `viaGroup` is how many receivers the group should reach before the stream starts.
    static func stream(viaGroup expected: Int, prepare: () -> Void) throws -> (reports: [Report], wire: Wire) {
        let dir = try CLI.temporaryDirectory()
        Bridge.shell(["bash", Bridge.script, "up", prefix, "5"])
        defer {
            Bridge.shell(["pkill", "-KILL", "-f", "xt host --bind 10.78.0.1 --ports 9100"])
            Bridge.shell(["bash", Bridge.script, "down", prefix, "5"])
            try? FileManager.default.removeItem(at: dir)
        }
        for name in ["host", "tx", "r1", "r2", "r3", "ops"] { _ = try CLI.run(["keygen", "--out", "\(name).key"], in: dir) }
        let host0 = "\(prefix)0"
        _ = nft(host0, "add table ip count")
        _ = nft(host0, "add chain ip count out { type filter hook output priority 0 ; }")
        _ = nft(host0, "add rule ip count out ip daddr 239.77.0.0/16 meta length > 200 counter")
        for receiver in 3...5 { _ = nft(host0, "add rule ip count out ip daddr 10.78.0.\(receiver) counter") }
        prepare()

        let host = try Bridge.spawn(host0, ["host", "--bind", "10.78.0.1", "--ports", "9100", "--key", "host.key", "--open",
                                            "--multicast", "239.77.0.0:5960"], in: dir)
        defer { if host.process.isRunning { kill(host.process.processIdentifier, SIGKILL) } }
        Thread.sleep(forTimeInterval: 0.5)
        let common = ["--host-key", "@host.key.pub", "--host", "10.78.0.1:9100", "--config", "none"]
        let receivers = try (1...3).map { index in
            try Bridge.spawn("\(prefix)\(index + 1)", ["sub", "--channel", "7", "--report", "--count", "\(messages)", "--seconds", "30",
                                                       "--key", "r\(index).key", "--id", "1.\(10 + index)", "--name", "r\(index)"] + common, in: dir)
        }
        defer { for receiver in receivers where receiver.process.isRunning { receiver.process.terminate() } }

        // The receivers report whether the group reaches them within a few heartbeats.
        var reached = 0
        let waitUntil = Date().addingTimeInterval(10)
        while reached < expected || reached == 0 && expected == 0, Date() < waitUntil {
            Thread.sleep(forTimeInterval: 0.3)
            let status = try Bridge.spawn("\(prefix)1", ["status", "--json", "--key", "ops.key", "--id", "1.9", "--name", "ops"] + common, in: dir)
            status.process.waitUntilExit()
            let json = status.output.fileHandleForReading.readDataToEndOfFile()
            let nodes = (try? JSONSerialization.jsonObject(with: json) as? [[String: Any]]) ?? []
            let receiving = nodes.filter { ($0["name"] as? String)?.hasPrefix("r") == true }
            reached = receiving.filter { ($0["multicastViaGroup"] as? [Int]) == [7] }.count
            if expected == 0 && receiving.count == 3 { break }
        }
        #expect(reached == expected, "\(reached) receivers reached through the group before the stream")
        Thread.sleep(forTimeInterval: 1.6)  // a receiver the group misses has told the host so by now

        let publisher = try Bridge.spawn("\(prefix)1", ["pub", "--multicast", "--channel", "7", "--rate", "4000", "--size", "1000",
                                                        "--messages", "\(messages)", "--key", "tx.key", "--id", "1.1", "--name", "tx"] + common, in: dir)
        publisher.process.waitUntilExit()
        #expect(publisher.process.terminationStatus == 0)
        for receiver in receivers { receiver.process.waitUntilExit() }
        let reports = try receivers.map { try Report(String(decoding: $0.output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)) }

        let counters = nft(host0, "list table ip count").split(separator: "\n").compactMap { line -> (Int, Int)? in
            let words = line.split(separator: " ")
            guard let packets = words.firstIndex(of: "packets"), let bytes = words.firstIndex(of: "bytes"),
                  let p = Int(words[packets + 1]), let b = Int(words[bytes + 1]) else { return nil }
            return (p, b)
        }
        try #require(counters.count == 4, "nft counters: \(counters)")
        return (reports, Wire(groupPackets: counters[0].0, groupBytes: counters[0].1, unicastBytes: counters[1...].map(\.1)))
    }

    @Test("Multicast to 3 receivers: every packet is on the wire once, and all of them get all of it")
    func oneTransmission() throws {
        let (reports, wire) = try Self.stream(viaGroup: 3) {}
        print("multicast: \(wire.groupPackets) stream datagrams on the wire for \(Self.messages) messages to 3 receivers; unicast bytes to them \(wire.unicastBytes)")
        #expect(wire.groupPackets == Self.messages, "one transmission per packet")
        for (index, report) in reports.enumerated() {
            #expect(report.messages == Self.messages && report.duplicates == 0, "receiver \(index + 1): \(report)")
            #expect(report.viaGroup == Self.messages && report.viaRelay == 0, "receiver \(index + 1): \(report)")
        }
        // Nothing was fanned out by unicast: what went to each receiver is control traffic.
        for bytes in wire.unicastBytes { #expect(bytes < wire.groupBytes / 20) }
    }

    @Test("5% drop at one receiver: its losses are repaired (under 2x the loss) while the others keep full rate")
    func lossyReceiver() throws {
        let (reports, wire) = try Self.stream(viaGroup: 3) {
            Bridge.shell(["bash", Bridge.script, "drop", Self.prefix, "4", "50"])
        }
        let lossy = reports[2]
        let lostFromGroup = Self.messages - lossy.viaGroup
        let datagramBytes = Double(wire.groupBytes) / Double(wire.groupPackets)
        let repairBytes = Double(wire.unicastBytes[2] - wire.unicastBytes[0])  // over a clean receiver's control traffic
        let ratio = repairBytes / (Double(lostFromGroup) * datagramBytes)
        print("multicast repair: lossy receiver lost \(lostFromGroup) of \(Self.messages) from the group, \(lossy.repaired) repaired, " +
              "\(lossy.viaRelay) datagrams relayed; repair bytes on the wire \(Int(repairBytes)) = \(String(format: "%.2f", ratio))x the loss")
        #expect(wire.groupPackets == Self.messages, "repairs do not go to the group")
        #expect(lostFromGroup > 0, "the drop rule dropped nothing")
        #expect(lossy.messages == Self.messages && lossy.duplicates == 0 && lossy.lost == 0, "\(lossy)")
        #expect(lossy.repaired == lostFromGroup, "\(lossy)")
        #expect(Double(lossy.viaRelay) < 2 * Double(lostFromGroup), "repair datagrams \(lossy.viaRelay) for \(lostFromGroup) lost")
        #expect(ratio < 2, "repair traffic \(ratio)x the loss")
        for report in reports[0...1] {
            // The others got every message from the group as it came: no gaps waited on, nothing relayed.
            #expect(report.messages == Self.messages && report.viaGroup == Self.messages, "\(report)")
            #expect(report.nacked == 0 && report.viaRelay == 0, "\(report)")
        }
    }

    @Test("A receiver the group does not reach gets the stream relayed by the host; the others still get it once on the wire")
    func fallback() throws {
        let (reports, wire) = try Self.stream(viaGroup: 2) {
            let ns = "\(Self.prefix)4"
            _ = Self.nft(ns, "add table ip block")
            _ = Self.nft(ns, "add chain ip block in { type filter hook input priority 0 ; }")
            _ = Self.nft(ns, "add rule ip block in ip daddr 224.0.0.0/4 drop")
        }
        print("multicast fallback: \(wire.groupPackets) datagrams on the group; relayed to the cut-off receiver: \(reports[2].viaRelay)")
        #expect(wire.groupPackets == Self.messages)
        #expect(reports[2].messages == Self.messages && reports[2].viaRelay == Self.messages && reports[2].viaGroup == 0, "\(reports[2])")
        for report in reports[0...1] { #expect(report.messages == Self.messages && report.viaGroup == Self.messages, "\(report)") }
    }
}
