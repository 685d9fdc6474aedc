// Event snapshots: a picture becomes a JPEG that decodes back to the same scene, scaled down
// when it is wider than asked.
import Foundation
import Testing
@testable import XTMedia

@Suite struct JPEGEncoderTests {
    @Test func aPictureBecomesAJPEGThatDecodes() throws {
        let source = try SyntheticVideoSource(width: 1920, height: 1080, frameRate: 30, pacing: .virtual(start: CaptureTime(nanoseconds: 0)))
        guard case .raw(let picture) = try source.next() else { return }
        let encoder = try JPEGEncoder(maximumWidth: 1280)
        let jpeg = try encoder.encode(picture)
        #expect(jpeg.prefix(2) == [0xFF, 0xD8] && jpeg.suffix(2) == [0xFF, 0xD9])
        let decoder = try VideoDecoder(codec: .mjpeg)
        let decoded = try #require((decoder.decode(jpeg, captureTime: picture.captureTime) + decoder.flush()).first)
        #expect(decoded.width == 1280 && decoded.height == 720)
        #expect(abs(decoded.meanLuma(y: 100, height: 500) - picture.meanLuma(y: 150, height: 750)) < 12)
        // A second picture of another size from the same encoder.
        let small = try VideoFrame(width: 320, height: 240)
        #expect(try encoder.encode(small).prefix(2) == [0xFF, 0xD8])
    }
}
