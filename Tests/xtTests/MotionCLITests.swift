// Motion detection as a user runs it: a synthetic camera agent with scripted objects and
// distractors (a lighting ramp, sensor noise, an object moving inside a masked area) publishes
// to a recorder configured with that mask; the recorder's events match the scripted objects
// (precision and recall ≥ 0.95) and nothing else.
import Foundation
import Testing

@Suite("motion events end to end", .serialized, .enabled(if: FileManager.default.isExecutableFile(atPath: CLI.xt), "xt is not built"))
struct MotionCLITests {
    @Test("Scripted objects become events at their times; distractors become none")
    func scriptedMotionOverTheNetwork() throws {
        let dir = try CLI.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        for name in ["recorder", "camera"] { _ = try CLI.run(["keygen", "--out", "\(name).key"], in: dir) }
        try """
            storage = recordings
            min-free = 0
            cooldown = 2
            mask.overlays-top = 0,0 1,0 1,0.12 0,0.12
            mask.overlays-bottom = 0,0.9 1,0.9 1,1 0,1
            camera.yard.mask.tree = 0,0.2 0.25,0.2 0.25,0.8 0,0.8
            """.write(to: dir.appendingPathComponent("recorder.conf"), atomically: true, encoding: .utf8)
        let port = Int.random(in: 20_000...32_000)
        let recorder = try CLI.background(["recorder", "--config", "recorder.conf", "--http", "none", "--bind", "127.0.0.1", "--ports", "\(port)",
                                           "--key", "recorder.key", "--open"], in: dir, log: "recorder.log")
        defer { recorder.terminate() }
        Thread.sleep(forTimeInterval: 0.5)
        let scripted: [(Double, Double)] = [(3, 5), (9, 11.5), (16, 18), (30, 32.5)]
        let objects = scripted.enumerated().map { index, span in "\(span.0)-\(span.1):0.35,\([0.3, 0.5, 0.7][index % 3])>0.9,0.5:0.25" }
        let distractors = ["light 20-24:1.4", "light 25-28:1", "noise:12", "34-39:0.08,0.3>0.12,0.7:0.12"]
        let camera = try CLI.background(["agent", "--config", "none.conf", "--key", "camera.key", "--host", "127.0.0.1:\(port)",
                                         "--host-key", "@recorder.key.pub", "--name", "yard", "--id", "1.20", "--width", "320", "--height", "180",
                                         "--audio", "none", "--seconds", "41", "--set", "motion=\((objects + distractors).joined(separator: "; "))"],
                                        in: dir, log: "camera.log")
        camera.waitUntilExit()
        Thread.sleep(forTimeInterval: 4)  // the last event's cooldown
        recorder.terminate()
        recorder.waitUntilExit()

        let events = try CLI.run(["recorder", "events", "--storage", "recordings"], in: dir)
        let list = try JSONSerialization.jsonObject(with: Data(events.stdout.utf8)) as? [[String: Any]] ?? []
        let timeline = try CLI.timelines(dir, storage: "recordings")
        let first = try #require(timeline.first { $0["kind"] as? String == "video" }?["firstCapture"] as? String)
        let origin = try Date.ISO8601FormatStyle(includingFractionalSeconds: true).parse(first + "Z").timeIntervalSince1970
        let found = list.compactMap { event -> (Double, Double)? in
            guard let start = (event["start"] as? NSNumber)?.doubleValue, let end = (event["end"] as? NSNumber)?.doubleValue else { return nil }
            return (start / 1e9 - origin, end / 1e9 - origin)
        }
        let matched = found.filter { event in scripted.contains { abs(event.0 - $0.0) <= 0.5 && abs(event.1 - $0.1) <= 0.7 } }
        let precision = found.isEmpty ? 0 : Double(matched.count) / Double(found.count)
        let recall = Double(Set(scripted.indices.filter { index in matched.contains { abs($0.0 - scripted[index].0) <= 0.5 } }).count) / Double(scripted.count)
        #expect(precision >= 0.95 && recall >= 0.95, "events \(found) against \(scripted); \(CLI.text(dir, "recorder.log").suffix(2000))")
        #expect(list.allSatisfy { ($0["snapshot"] as? String)?.hasSuffix(".jpg") == true })
    }
}
