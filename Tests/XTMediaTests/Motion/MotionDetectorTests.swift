// The motion detector on the synthetic camera: a moving object lights up the cells where it
// is; a lighting ramp and heavy sensor noise light up nothing.
import Foundation
import Testing
@testable import XTMedia

@Suite struct MotionDetectorTests {
    let start = CaptureTime(nanoseconds: 1_700_000_000_000_000_000)

    /// Pictures of the test pattern, each changed by `alter` (picture number, luma plane, stride).
    func pictures(_ count: Int, script: MotionScript = MotionScript(), alter: ((Int, UnsafeMutableBufferPointer<UInt8>, Int) -> Void)? = nil)
        throws -> [MotionGrid] {
        let source = try SyntheticVideoSource(width: 320, height: 180, frameRate: 10, script: script, pacing: .virtual(start: start))
        let detector = MotionDetector()
        var grids: [MotionGrid] = []
        for number in 0..<count {
            guard case .raw(let drawn) = try source.next() else { return grids }
            var picture = drawn
            if let alter {
                // The source reuses its pictures: alter a copy.
                picture = try VideoFrame(width: drawn.width, height: drawn.height, captureTime: drawn.captureTime)
                drawn.withPlane(0) { source, sourceStride in
                    picture.withPlane(0) { target, targetStride in
                        for row in 0..<drawn.height {
                            UnsafeMutableRawPointer(target.baseAddress! + row * targetStride)
                                .copyMemory(from: source.baseAddress! + row * sourceStride, byteCount: drawn.width)
                        }
                        alter(number, target, targetStride)
                    }
                }
            }
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
        // The whole scene brightens by 40% over three seconds.
        let ramp = try pictures(60) { number, plane, stride in
            let gain = 1 + 0.4 * min(max(Double(number - 10) / 30, 0), 1)
            for row in 0..<180 { for column in 0..<320 { plane[row * stride + column] = UInt8(min(255, Double(plane[row * stride + column]) * gain)) } }
        }
        #expect(ramp.allSatisfy { changed($0).isEmpty }, "\(ramp.map { changed($0).count })")
        // Heavy sensor noise (±24 per pixel, independent every picture).
        var generator = SystemRandomNumberGenerator()
        let noisy = try pictures(40) { _, plane, stride in
            for row in 0..<180 {
                for column in 0..<320 {
                    let value = Int(plane[row * stride + column]) + Int.random(in: -24...24, using: &generator)
                    plane[row * stride + column] = UInt8(clamping: value)
                }
            }
        }
        #expect(noisy.allSatisfy { changed($0).isEmpty }, "\(noisy.map { changed($0).count })")
    }
}
