// The motion policy on the real detector and the synthetic camera: scripted objects give one
// event each at the scripted times (precision and recall ≥ 0.95), and the distractors — a
// lighting ramp, sensor noise, an object moving inside a mask — give none; a lighting step and
// a switch to greyscale (the issue's recipe) give none, and a small distant object is found
// within a second, with the same defaults.
import Foundation
import Testing
import XTMedia
@testable import XTRecorder

@Suite struct MotionEvaluatorTests {
    static let overlays = [
        MotionZone(name: "clock and marker", polygon: MotionZone.polygon(parsing: "0,0 1,0 1,0.12 0,0.12")!),
        MotionZone(name: "bar code", polygon: MotionZone.polygon(parsing: "0,0.9 1,0.9 1,1 0,1")!),
    ]

    /// Runs the detector and the evaluator over `seconds` of the test pattern at 10 pictures a second.
    func events(_ script: String, seconds: Int, settings: MotionSettings) throws -> [MotionEvent] {
        let start = CaptureTime(nanoseconds: 1_700_000_000_000_000_000)
        let source = try SyntheticVideoSource(width: 320, height: 180, frameRate: 10, script: MotionScript(parsing: script),
                                              pacing: .virtual(start: start))
        let detector = MotionDetector()
        let evaluator = MotionEvaluator(camera: "yard", settings: settings)
        var ended: [MotionEvent] = []
        for _ in 0..<(seconds * 10) {
            guard case .raw(let picture) = try source.next() else { break }
            for change in evaluator.take(detector.analyze(picture)) { if case .ended(let event) = change { ended.append(event) } }
        }
        for change in evaluator.finish() { if case .ended(let event) = change { ended.append(event) } }
        return ended.map {
            var event = $0
            event.start -= start.nanoseconds
            event.end = event.end.map { $0 - start.nanoseconds }
            return event
        }
    }

    @Test func scriptedMotionGivesEventsAtTheScriptedTimes() throws {
        var settings = MotionSettings()
        settings.masks = Self.overlays + [MotionZone(name: "tree", polygon: MotionZone.polygon(parsing: "0,0.2 0.25,0.2 0.25,0.8 0,0.8")!)]
        settings.cooldown = .seconds(2)
        let scripted: [(Double, Double)] = [(5, 8), (14, 16), (22, 26), (31, 33), (52, 55), (61, 64), (70, 72), (79, 83)]
        let moves = scripted.enumerated().map { index, span in
            let y = [0.3, 0.5, 0.7][index % 3]
            return "\(span.0)-\(span.1):0.35,\(y)>0.9,\(y):0.2"
        }
        // Distractors: the light ramps up and back down, noise all along, and something moving in the masked tree.
        let script = (moves + ["light 36-40:1.5", "light 43-47:1", "noise:16", "88-95:0.08,0.4>0.12,0.6:0.12"]).joined(separator: "; ")
        let found = try events(script, seconds: 98, settings: settings)

        var matched = 0
        var unmatched: [MotionEvent] = []
        for event in found {
            let start = Double(event.start) / 1e9, end = Double(event.end ?? event.start) / 1e9
            if scripted.contains(where: { start >= $0.0 - 0.05 && start <= $0.0 + 0.5 && end >= $0.1 - 0.6 && end <= $0.1 + 0.2 }) {
                matched += 1
            } else {
                unmatched.append(event)
            }
        }
        let precision = found.isEmpty ? 0 : Double(matched) / Double(found.count)
        let recall = Double(matched) / Double(scripted.count)
        print("motion: \(found.count) events, precision \(precision), recall \(recall)")
        #expect(precision >= 0.95 && recall >= 0.95, "events: \(found.map { (Double($0.start) / 1e9, Double($0.end ?? 0) / 1e9) }), unmatched: \(unmatched)")
    }

    @Test func distractorsAloneGiveNoEvents() throws {
        var settings = MotionSettings()
        settings.masks = Self.overlays + [MotionZone(name: "tree", polygon: MotionZone.polygon(parsing: "0,0.2 0.25,0.2 0.25,0.8 0,0.8")!)]
        let found = try events("light 2-5:1.6; light 8-12:0.7; noise:24; 14-20:0.08,0.3>0.12,0.7:0.12", seconds: 22, settings: settings)
        #expect(found.isEmpty, "\(found)")
    }

    @Test func zonesMinimumAreaAndDuration() {
        var settings = MotionSettings()
        settings.zones = [MotionZone(name: "door", polygon: MotionZone.polygon(parsing: "0.5,0.5 1,0.5 1,1 0.5,1")!)]
        settings.minimumArea = 0.05
        settings.minimumDuration = .milliseconds(300)
        settings.cooldown = .seconds(1)
        let evaluator = MotionEvaluator(camera: "c", settings: settings)
        func grid(_ time: Double, cells: [(Int, Int)]) -> MotionGrid {
            var grid = MotionGrid.still(at: CaptureTime(nanoseconds: Int64(time * 1e9)))
            for (column, row) in cells { grid.cells[row * MotionGrid.columns + column] = 255 }
            return grid
        }
        let big = (16..<24).flatMap { column in (9..<12).map { (column, $0) } }  // 24 of the door's 144 cells
        // Outside the zone: nothing.
        #expect(evaluator.take(grid(0, cells: [(2, 2), (3, 3), (4, 4), (5, 5), (6, 6), (7, 7), (8, 8), (2, 3)])).isEmpty)
        // Too small: nothing.
        #expect(evaluator.take(grid(0.1, cells: [(20, 10), (21, 10)])).isEmpty)
        // Big enough, but only 200 ms: nothing yet; at 300 ms the event starts at the onset.
        #expect(evaluator.take(grid(1.0, cells: big)).isEmpty)
        #expect(evaluator.take(grid(1.2, cells: big)).isEmpty)
        let started = evaluator.take(grid(1.3, cells: big))
        #expect(started == [.started(MotionEvent(camera: "c", zone: "door", start: 1_000_000_000, peakTime: 1_300_000_000, peakScore: 24.0 / 144))])
        // A pause shorter than the cooldown continues it; a longer one ends it at the last motion.
        #expect(evaluator.take(grid(1.8, cells: [])).isEmpty)
        #expect(evaluator.take(grid(2.0, cells: big)).isEmpty)
        #expect(evaluator.take(grid(2.5, cells: [])).isEmpty)
        guard case .ended(let event)? = evaluator.take(grid(3.1, cells: [])).first else {
            Issue.record("the event did not end")
            return
        }
        #expect(event.start == 1_000_000_000 && event.end == 2_000_000_000)
    }

    /// Events from `seconds` of a lavfi source (10 fps), decoded as a camera's stream would be,
    /// through the detector and the evaluator with the default settings.
    func events(lavfi: String, seconds: Int) throws -> (events: [MotionEvent], lightingChanges: Int) {
        let (directory, clip) = try Fixtures.clip("clip.ts", ["-f", "lavfi", "-i", lavfi, "-t", "\(seconds)", "-c:v", "libx264", "-preset", "ultrafast",
                                                              "-f", "mpegts"])
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let start = CaptureTime(nanoseconds: 1_700_000_000_000_000_000)
        let source = try FileVideoSource(location: clip, clock: FileClock(pacing: .virtual(start: start)))
        let decoder = try VideoDecoder(codec: .h264)
        let detector = MotionDetector()
        let evaluator = MotionEvaluator(camera: "yard", settings: MotionSettings())
        var events: [MotionEvent] = []
        for _ in 0..<(seconds * 10 - 1) {
            guard case .encoded(let frame) = try source.next() else { break }
            let data = frame.isKeyframe ? (source.encodedDescription?.configuration ?? []) + frame.data : frame.data
            for picture in decoder.decode(data, captureTime: frame.presentationTime) {
                for change in evaluator.take(detector.analyze(picture)) { if case .started(let event) = change { events.append(event) } }
            }
        }
        return (events, detector.lightingChanges)
    }

    /// The issue's recipe: SMPTE bars with noise, brightness stepping +0.25 at 10 s, colour off
    /// (the IR-cut filter at dusk) at 20 s: no event.
    @Test func aLightingStepIsNotMotion() throws {
        let result = try events(lavfi: "smptebars=s=640x360:r=10,noise=alls=12:allf=t,eq=brightness='if(gte(t,10),0.25,0)':eval=frame,hue=s='if(gte(t,20),0,1)'",
                                seconds: 30)
        #expect(result.events.isEmpty, "\(result.events)")
    }

    /// A small distant object — 20×50 px of a 640x360 picture (0.4%), moving 15 px/s from 5 s —
    /// is found within a second of its start, with the same defaults.
    @Test func aSmallDistantObjectIsFoundWithinASecond() throws {
        let result = try events(lavfi: "color=c=gray:s=640x360:r=10,noise=alls=12:allf=t[bg];color=c=white:s=20x50:r=10[box];"
                                    + "[bg][box]overlay=x='100+15*max(t-5\\,0)':y=150:shortest=1[out0]", seconds: 10)
        let start: Int64 = 1_700_000_000_000_000_000
        let first = try #require(result.events.first, "no event")
        let seconds = Double(first.start - start) / 1e9
        #expect(seconds >= 5 && seconds <= 6, "found at \(seconds) s")
        #expect(result.events.count == 1)
    }
}
