// `xt alarms` against a recording recorder and a camera with scripted motion, with both sides
// killed and restarted along the way: every alarm the recorder raised reaches the subscriber
// exactly once, and nothing is left pending.
import Foundation
import Testing

@Suite("xt alarms", .serialized, .enabled(if: FileManager.default.isExecutableFile(atPath: CLI.xt), "xt is not built"))
struct AlarmsCLITests {
    func recorder(_ dir: URL, port: Int, log: String) throws -> Process {
        try CLI.background(["recorder", "--http", "none", "--bind", "127.0.0.1", "--ports", "\(port)", "--key", "recorder.key", "--open",
                            "--storage", "recordings", "--min-free", "0"], in: dir, log: log)
    }

    func subscriber(_ dir: URL, port: Int, log: String) throws -> Process {
        try CLI.background(["alarms", "--config", "none.conf", "--key", "phone.key", "--host", "127.0.0.1:\(port)",
                            "--host-key", "@recorder.key.pub", "--name", "phone", "--id", "1.50", "--state", "phone.state"], in: dir, log: log)
    }

    /// The alarms a subscriber printed: (id, kind, received ns, start ns).
    func printed(_ dir: URL, _ log: String) -> [(id: Int, kind: String, received: Int64, start: Int64)] {
        CLI.text(dir, log).split(separator: "\n").compactMap { line in
            guard line.hasPrefix("{"), let object = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any],
                  let id = object["id"] as? Int, let kind = object["kind"] as? String,
                  let received = (object["receivedNanoseconds"] as? NSNumber)?.int64Value,
                  let start = (object["startNanoseconds"] as? NSNumber)?.int64Value else { return nil }
            return (id, kind, received, start)
        }
    }

    @Test("Alarms across a subscriber restart and a recorder restart arrive exactly once")
    func alarmsArriveExactlyOnceAcrossRestarts() throws {
        let dir = try CLI.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        for name in ["recorder", "camera", "phone"] { _ = try CLI.run(["keygen", "--out", "\(name).key"], in: dir) }
        let port = Int.random(in: 20_000...32_000)
        var first = try recorder(dir, port: port, log: "recorder1.log")
        Thread.sleep(forTimeInterval: 0.5)
        var phone = try subscriber(dir, port: port, log: "phone1.log")
        // Something crosses the picture for 1.5 s every 8 s: an event (two alarms) each time.
        let camera = try CLI.background(["agent", "--config", "none.conf", "--key", "camera.key", "--host", "127.0.0.1:\(port)",
                                         "--host-key", "@recorder.key.pub", "--name", "yard", "--id", "1.20", "--width", "320",
                                         "--height", "180", "--seconds", "62", "--set", "motion=1-2.5:0.2,0.5>0.8,0.5:0.3",
                                         "--set", "motion-period=8"], in: dir, log: "camera.log")
        defer { camera.terminate() }

        // The subscriber dies at 14 s and comes back at 24 s: what was raised meanwhile waits.
        Thread.sleep(forTimeInterval: 14)
        kill(phone.processIdentifier, SIGKILL)
        phone.waitUntilExit()
        Thread.sleep(forTimeInterval: 10)
        phone = try subscriber(dir, port: port, log: "phone2.log")
        // The recorder dies at 36 s and comes back at 40 s on the same storage.
        Thread.sleep(forTimeInterval: 12)
        kill(first.processIdentifier, SIGKILL)
        first.waitUntilExit()
        Thread.sleep(forTimeInterval: 4)
        first = try recorder(dir, port: port, log: "recorder2.log")
        camera.waitUntilExit()
        // The last alarms, and acks of everything.
        Thread.sleep(forTimeInterval: 8)
        phone.terminate()
        phone.waitUntilExit()
        first.terminate()
        first.waitUntilExit()

        let alarms = printed(dir, "phone1.log") + printed(dir, "phone2.log")
        let ids = alarms.map(\.id)
        #expect(Set(ids).count == ids.count, "alarms printed twice: \(ids)")
        #expect(alarms.filter { $0.kind == "started" }.count >= 5, "\(alarms.map { "\($0.id) \($0.kind)" })")
        // Every alarm the recorder raised was delivered, and only once: none pending, all printed.
        let outbox = try CLI.run(["recorder", "alarms", "--storage", "recordings"], in: dir)
        let summary = try JSONSerialization.jsonObject(with: Data(outbox.stdout.utf8)) as? [String: Any]
        #expect((summary?["pending"] as? [String])?.isEmpty == true, "\(outbox.stdout)")
        #expect(summary?["delivered"] as? Int == ids.count, "\(outbox.stdout) vs \(ids)")
        // Ids rise from 1 without holes: nothing raised went missing.
        #expect(ids.sorted() == Array(1...ids.count), "\(ids.sorted())")
    }
}
