// The motion detector on the synthetic camera: a moving object lights up the cells where it
// is; a lighting ramp and heavy sensor noise light up nothing.
import Foundation
import Testing
@testable import XTMedia

@Suite struct MotionDetectorTests {
    let start = CaptureTime(nanoseconds: 1_700_000_000_000_000_000)

    /// The detector's grids for pictures of the test pattern.
    func pictures(_ count: Int, script: MotionScript = MotionScript()) throws -> [MotionGrid] {
        let source = try SyntheticVideoSource(width: 320, height: 180, frameRate: 10, script: script, pacing: .virtual(start: start))
        let detector = MotionDetector()
        var grids: [MotionGrid] = []
        for number in 0..<count {
            guard case .raw(let picture) = try source.next() else { return grids }
            grids.append(detector.analyze(picture))
        }
        return grids
    }

    /// Cells that changed, outside the corner overlays (clock, bar code, marker).
    func changed(_ grid: MotionGrid) -> [(Int, Int)] {
        var cells: [(Int, Int)] = []
        for row in 3..<MotionGrid.rows - 3 {
            for column in 0..<MotionGrid.columns where grid[column, row] > 64 { cells.append((column, row)) }
        }
        return cells
    }

    @Test func aMovingObjectLightsUpWhereItIs() throws {
        let script = try MotionScript(parsing: "3-6:0.2,0.5>0.8,0.5:0.2")
        let grids = try pictures(60, script: script)
        #expect(grids[10...29].allSatisfy { changed($0).isEmpty })
        let during = grids[35...55].map { changed($0) }
        #expect(during.allSatisfy { !$0.isEmpty })
        // At 4.5 s the object is at x = 0.5: the cells it covers are around column 16, row 9.
        let middle = during[10]
        #expect(middle.contains { abs($0.0 - 16) <= 3 && abs($0.1 - 9) <= 2 }, "\(middle)")
        #expect(middle.allSatisfy { abs($0.1 - 9) <= 3 })
    }

    @Test func lightingAndNoiseAreNotMotion() throws {
        // The whole scene brightens by 40% over three seconds, then dims back.
        let ramp = try pictures(80, script: MotionScript(parsing: "light 1-4:1.4; light 5-7:1"))
        #expect(ramp.allSatisfy { changed($0).isEmpty }, "\(ramp.map { changed($0).count })")
        // Heavy sensor noise (±24 per pixel, independent every picture).
        let noisy = try pictures(40, script: MotionScript(parsing: "noise:24"))
        #expect(noisy.allSatisfy { changed($0).isEmpty }, "\(noisy.map { changed($0).count })")
        // And an object still shows through both.
        let both = try pictures(60, script: MotionScript(parsing: "3-5:0.2,0.5>0.8,0.5:0.2; light 0-6:1.3; noise:24"))
        #expect(both[35...45].allSatisfy { !changed($0).isEmpty })
        #expect(both[10...29].allSatisfy { changed($0).isEmpty })
    }

    @Test func theScriptParsesItsDistractors() throws {
        let script = try MotionScript(parsing: "light 60-70:1.4; noise:20; 1-2:0.1,0.1>0.2,0.2")
        #expect(script.noise == 20 && script.lights == [LightRamp(start: 60, end: 70, gain: 1.4)] && script.motions.count == 1)
        #expect(script.gain(at: 50) == 1 && abs(script.gain(at: 65) - 1.2) < 1e-9 && script.gain(at: 80) == 1.4)
        // The source really draws it: the scene is 1.2 times as bright after the ramp.
        let source = try SyntheticVideoSource(width: 160, height: 120, frameRate: 10, script: MotionScript(parsing: "light 0.5-1:1.2"),
                                              pacing: .virtual(start: start))
        var means: [Double] = []
        for _ in 0..<20 { if case .raw(let picture) = try source.next() { means.append(picture.meanLuma(y: 20, height: 80)) } }
        #expect(abs(means[19] / means[0] - 1.2) < 0.03, "\(means)")
        #expect(throws: MediaError.self) { try MotionScript(parsing: "light 60:1.4") }
        #expect(throws: MediaError.self) { try MotionScript(parsing: "noise:500") }
    }
}
