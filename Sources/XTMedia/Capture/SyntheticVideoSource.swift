// The synthetic camera: a test pattern with objects that move at scripted times, a clock
// overlay a person can read, a bar code of the capture time a program can read (glass-to-glass
// latency), and a marker that lights for the first 100 ms of every second of stream time (the
// synthetic microphone beeps at the same moments, so A/V sync can be measured).
import Foundation

/// A test-pattern camera.
public final class SyntheticVideoSource: VideoSource {
    public let width: Int
    public let height: Int
    public let frameRate: Int
    public let script: MotionScript
    public let pacing: Pacing
    private var background: [UInt8]
    private var frameIndex: Int64 = 0
    private var clock: SourceClock
    /// Pictures handed out before: one the encoder has let go of is drawn into again, so a
    /// frame costs no allocation and no fresh pages.
    private var pool: [VideoFrame] = []

    /// Bits of the capture time (milliseconds since 1970, low bits) in the bar code.
    public static let barcodeBits = 40
    /// The bands its overlays occupy (clock and marker at the top, bar code at the bottom), as
    /// shares of the picture's height: instrumentation, not scene, for a motion detector.
    public static let overlayTop = 0.12
    public static let overlayBottom = 0.10
    /// The marker is lit for this long after every whole second of stream time.
    public static let markerNanoseconds: Int64 = 100_000_000

    /// - Parameter epoch: shared with a synthetic microphone, so the marker lights as it beeps.
    /// - Throws: ``MediaError`` for an impossible size or frame rate.
    public init(width: Int, height: Int, frameRate: Int, script: MotionScript = MotionScript(), pacing: Pacing = .realTime,
                epoch: SourceEpoch = SourceEpoch()) throws(MediaError) {
        guard width >= 64, height >= 64, width <= 7680, height <= 4320, width % 2 == 0, height % 2 == 0 else {
            throw .invalidConfiguration("synthetic size \(width)x\(height) is not supported: use even sizes from 64x64 to 7680x4320")
        }
        guard (1...120).contains(frameRate) else {
            throw .invalidConfiguration("frame rate \(frameRate) is not supported: use 1 to 120 fps")
        }
        self.width = width
        self.height = height
        self.frameRate = frameRate
        self.script = script
        self.pacing = pacing
        clock = SourceClock(pacing, epoch: epoch)
        // A gradient with a grid: enough texture that the encoder has real work, and static so
        // that only the scripted objects, the clock and the marker move.
        background = [UInt8](repeating: 0, count: width * height)
        for y in 0..<height {
            for x in 0..<width {
                let onGrid = x % max(width / 16, 1) == 0 || y % max(height / 9, 1) == 0
                background[y * width + x] = onGrid ? 90 : UInt8(48 + (x * 120 / width) + (y * 40 / height))
            }
        }
    }

    public var summary: String { "synthetic \(width)x\(height) at \(frameRate) fps" }

    public func next() throws(MediaError) -> VideoSourceOutput {
        if let joined = clock.join() {
            // The first frame due at or after the moment it joins its epoch.
            frameIndex = (joined * Int64(frameRate) + 999_999_999) / 1_000_000_000
        }
        // Exact, not index × a rounded interval: frame 30 at 30 fps is at 1 s, not 999.99999 ms.
        let offset = frameIndex * 1_000_000_000 / Int64(frameRate)
        // A camera's shutter fires on its own clock: the frame is due at its moment.
        let captureTime = clock.captureTime(offset: offset, ready: offset)
        let frame = try reusableFrame(captureTime: captureTime)
        render(into: frame, streamNanoseconds: offset)
        frameIndex += 1
        return .raw(frame)
    }

    private func reusableFrame(captureTime: CaptureTime) throws(MediaError) -> VideoFrame {
        for index in pool.indices where isKnownUniquelyReferenced(&pool[index]) && pool[index].isWritable {
            pool[index].captureTime = captureTime
            pool[index].forceKeyframe = false
            return pool[index]
        }
        let frame = try VideoFrame(width: width, height: height, format: .yuv420p, captureTime: captureTime)
        if pool.count < 4 { pool.append(frame) }
        return frame
    }

    /// Draws the picture for `streamNanoseconds` after the start into `frame`.
    func render(into frame: VideoFrame, streamNanoseconds: Int64) {
        let time = Double(streamNanoseconds) / 1e9
        // A picture drawn before needs only its objects' old places restored: the clock, the bar
        // code and the marker are drawn whole every time.
        let identity = ObjectIdentifier(frame)
        if let previous = objectsDrawn[identity], !script.altersScene {
            for area in previous { restore(frame, area) }
        } else {
            restore(frame, (0, 0, width, height))
        }
        var drawn: [(Int, Int, Int, Int)] = []
        for object in script.objects(at: time) {
            let side = Int(object.size * Double(height))
            let area = (Int(object.x * Double(width)) - side / 2, Int(object.y * Double(height)) - side / 2, side, side)
            fill(frame, x: area.0, y: area.1, width: area.2, height: area.3, luma: 235, u: 90, v: 200)
            drawn.append(area)
        }
        objectsDrawn[identity] = drawn
        if script.altersScene { light(frame, gain: script.gain(at: time)) }
        let marker = streamNanoseconds % 1_000_000_000 < Self.markerNanoseconds
        let markerSide = max(height / 12, 8)
        fill(frame, x: width - markerSide - markerSide / 2, y: markerSide / 2, width: markerSide, height: markerSide,
             luma: marker ? 235 : 16, u: 128, v: 128)
        drawClock(frame, time: frame.captureTime)
        drawBarcode(frame, milliseconds: frame.captureTime.nanoseconds / 1_000_000)
    }

    // MARK: - Drawing

    /// Where each pooled picture has objects drawn (x, y, width, height).
    private var objectsDrawn: [ObjectIdentifier: [(Int, Int, Int, Int)]] = [:]

    /// State of the noise generator (xorshift: fast, and the same pictures every run).
    private var noiseState: UInt64 = 0x9E37_79B9_7F4A_7C15

    /// Scales the scene's luma by `gain` and adds the script's sensor noise.
    private func light(_ frame: VideoFrame, gain: Double) {
        let amount = script.noise
        let scale = Int(gain * 256)
        var state = noiseState
        frame.withPlane(0) { plane, stride in
            for row in 0..<height {
                let base = row * stride
                for column in 0..<width {
                    var value = (Int(plane[base + column]) * scale) >> 8
                    if amount > 0 {
                        state ^= state << 13
                        state ^= state >> 7
                        state ^= state << 17
                        value += Int(state % UInt64(2 * amount + 1)) - amount
                    }
                    plane[base + column] = UInt8(clamping: value)
                }
            }
        }
        noiseState = state
    }

    /// Puts the background back in a rectangle.
    private func restore(_ frame: VideoFrame, _ area: (Int, Int, Int, Int)) {
        let x0 = max(area.0, 0) & ~1, y0 = max(area.1, 0) & ~1
        let x1 = min(area.0 + area.2 + 1, width) & ~1, y1 = min(area.1 + area.3 + 1, height) & ~1
        guard x1 > x0, y1 > y0 else { return }
        frame.withPlane(0) { plane, stride in
            background.withUnsafeBufferPointer { source in
                for row in y0..<y1 {
                    UnsafeMutableRawPointer(plane.baseAddress! + row * stride + x0)
                        .copyMemory(from: source.baseAddress! + row * width + x0, byteCount: x1 - x0)
                }
            }
        }
        for plane in 1...2 {
            frame.withPlane(plane) { bytes, stride in
                for row in (y0 / 2)..<(y1 / 2) { memset(bytes.baseAddress! + row * stride + x0 / 2, 128, (x1 - x0) / 2) }
            }
        }
    }

    private func fill(_ frame: VideoFrame, x: Int, y: Int, width w: Int, height h: Int, luma: UInt8, u: UInt8, v: UInt8) {
        let x0 = max(x, 0) & ~1, y0 = max(y, 0) & ~1
        let x1 = min(x + w, width) & ~1, y1 = min(y + h, height) & ~1
        guard x1 > x0, y1 > y0 else { return }
        frame.withPlane(0) { plane, stride in
            for row in y0..<y1 { memset(plane.baseAddress! + row * stride + x0, Int32(luma), x1 - x0) }
        }
        for (index, value) in [(1, u), (2, v)] {
            frame.withPlane(index) { plane, stride in
                for row in (y0 / 2)..<(y1 / 2) { memset(plane.baseAddress! + row * stride + x0 / 2, Int32(value), (x1 - x0) / 2) }
            }
        }
    }

    /// Seven-segment digits: which of the segments a–g each digit lights.
    private static let segments: [UInt8] = [0x3F, 0x06, 0x5B, 0x4F, 0x66, 0x6D, 0x7D, 0x07, 0x7F, 0x6F]

    /// "HH:MM:SS.mmm" (UTC) at the top left, on a black box.
    private func drawClock(_ frame: VideoFrame, time: CaptureTime) {
        let scale = max(height / 180, 1)
        let digitWidth = 6 * scale, digitHeight = 10 * scale, thickness = max(scale, 2)
        let milliseconds = time.nanoseconds / 1_000_000
        let secondsOfDay = Int((milliseconds / 1000) % 86_400)
        let text = String(format: "%02d:%02d:%02d.%03d", secondsOfDay / 3600, (secondsOfDay / 60) % 60, secondsOfDay % 60,
                          Int(milliseconds % 1000))
        let left = 2 * scale, top = 2 * scale
        fill(frame, x: left - scale, y: top - scale, width: text.count * (digitWidth + 2 * scale) + 2 * scale,
             height: digitHeight + 2 * scale, luma: 16, u: 128, v: 128)
        var x = left
        for character in text {
            if let digit = character.wholeNumberValue {
                let lit = Self.segments[digit]
                let half = digitHeight / 2
                // a (top), b (top right), c (bottom right), d (bottom), e (bottom left), f (top left), g (middle)
                let bars: [(Int, Int, Int, Int)] = [
                    (x, top, digitWidth, thickness), (x + digitWidth - thickness, top, thickness, half),
                    (x + digitWidth - thickness, top + half, thickness, half), (x, top + digitHeight - thickness, digitWidth, thickness),
                    (x, top + half, thickness, half), (x, top, thickness, half), (x, top + half - thickness / 2, digitWidth, thickness),
                ]
                for (bit, bar) in bars.enumerated() where lit & (1 << bit) != 0 {
                    fill(frame, x: bar.0, y: bar.1, width: bar.2, height: bar.3, luma: 235, u: 128, v: 128)
                }
            } else if character == "." || character == ":" {
                fill(frame, x: x + digitWidth / 2 - thickness / 2, y: top + digitHeight - thickness, width: thickness, height: thickness,
                     luma: 235, u: 128, v: 128)
                if character == ":" {
                    fill(frame, x: x + digitWidth / 2 - thickness / 2, y: top + thickness * 2, width: thickness, height: thickness,
                         luma: 235, u: 128, v: 128)
                }
            }
            x += digitWidth + 2 * scale
        }
    }

    /// The capture time's low milliseconds as black and white cells along the bottom edge:
    /// a white guard cell, then ``barcodeBits`` bits, most significant first.
    private func drawBarcode(_ frame: VideoFrame, milliseconds: Int64) {
        let cells = Self.barcodeBits + 2
        let cell = (width / cells) & ~1
        let cellHeight = max(cell / 2, 4) & ~1
        let top = height - cellHeight
        fill(frame, x: 0, y: top, width: width, height: cellHeight, luma: 16, u: 128, v: 128)
        fill(frame, x: 0, y: top, width: cell, height: cellHeight, luma: 235, u: 128, v: 128)
        for bit in 0..<Self.barcodeBits where (milliseconds >> (Self.barcodeBits - 1 - bit)) & 1 == 1 {
            fill(frame, x: (bit + 1) * cell, y: top, width: cell, height: cellHeight, luma: 235, u: 128, v: 128)
        }
    }

    /// Reads the bar code back from a decoded picture: the capture time's low milliseconds.
    /// Returns nil when the picture carries no readable code.
    public static func readBarcode(_ frame: VideoFrame) -> Int64? {
        let cells = barcodeBits + 2
        let cell = (frame.width / cells) & ~1
        let cellHeight = max(cell / 2, 4) & ~1
        guard cell >= 2 else { return nil }
        let y = frame.height - cellHeight / 2 - 1
        func lit(_ index: Int) -> Bool { frame.meanLuma(x: index * cell + cell / 4, y: y, width: cell / 2, height: 1) > 128 }
        guard lit(0) else { return nil }
        var value: Int64 = 0
        for bit in 0..<barcodeBits { value = value << 1 | (lit(bit + 1) ? 1 : 0) }
        return value
    }

    /// Whether the sync marker is lit in a decoded picture.
    public static func markerLit(_ frame: VideoFrame) -> Bool {
        let side = max(frame.height / 12, 8)
        return frame.meanLuma(x: frame.width - side - side / 2 + side / 4, y: side / 2 + side / 4, width: side / 2, height: side / 2) > 128
    }
}
