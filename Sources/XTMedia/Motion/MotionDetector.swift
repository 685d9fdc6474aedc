// Motion detection on raw pictures: a coarse map of where the picture differs from the scene's
// background, robust to what is not motion. The picture's luma is reduced to 96×54 by box
// averaging (sensor noise averages out), divided by the scene's overall gain against the
// background (a lighting change moves every pixel alike, so the median ratio absorbs it), and
// compared with a background that adapts slowly, relative to each pixel's own noise. The
// result is a 32×18 grid of how much of each cell changed — small enough to travel as
// metadata from an agent to the recorder, where zones, masks and thresholds are applied.
import Foundation

/// How much of each cell of a 32×18 grid changed against the background.
public struct MotionGrid: Hashable, Sendable {
    public static let columns = 32
    public static let rows = 18

    /// Row by row: the share of the cell's pixels that changed, 0…255.
    public var cells: [UInt8]
    /// When the analysed picture was captured.
    public var captureTime: CaptureTime

    public init(cells: [UInt8], captureTime: CaptureTime) {
        self.cells = cells
        self.captureTime = captureTime
    }

    /// No change anywhere.
    public static func still(at time: CaptureTime) -> MotionGrid {
        MotionGrid(cells: [UInt8](repeating: 0, count: columns * rows), captureTime: time)
    }

    public subscript(column: Int, row: Int) -> UInt8 { cells[row * Self.columns + column] }
}

/// The background model of one camera. Feed it pictures of one size in capture order.
public final class MotionDetector {
    static let width = 96
    static let height = 54
    private var background: [Float] = []
    private var noise: [Float] = []
    private var reduced = [Float](repeating: 0, count: width * height)
    /// Pictures seen (the first only teaches the background).
    public private(set) var pictures = 0
    /// The last picture's lighting against the background: picture ≈ gain × background +
    /// offset (1 and 0: unchanged). A dimmer or brighter exposure scales; a lamp switched on
    /// (or a brightness step) adds.
    public private(set) var gain: Float = 1
    public private(set) var offset: Float = 0

    /// A pixel changed when it differs by more than this many times its noise, plus a floor.
    let noiseFactor: Float = 4
    let floor: Float = 6
    /// How fast the background follows: still pixels, and pixels that changed (a parked car
    /// becomes background in a few minutes).
    let stillRate: Float = 0.05
    let changedRate: Float = 0.002
    /// Luma at which a reduced pixel counts as blown out.
    static let saturation: Float = 240
    /// More than this share of the picture changing at once is light, not motion: a lamp
    /// switched on, the IR-cut filter at dusk, exposure jumping (Frigate's "lightning
    /// threshold" idea). The background is learned again from that picture.
    static let globalChangeShare: Float = 0.6
    /// Pictures taken as a lighting change.
    public private(set) var lightingChanges = 0
    /// Bands of the picture that are never motion, as shares of its height from the top and
    /// from the bottom (an overlay the source itself draws: the test pattern's clock and bar code).
    public var ignoredTop: Double = 0
    public var ignoredBottom: Double = 0

    public init() {}

    /// Analyses one picture (planar YUV or NV12: only luma is read).
    public func analyze(_ frame: VideoFrame) -> MotionGrid {
        reduce(frame)
        pictures += 1
        guard background.count == reduced.count else {
            background = reduced
            // Start cautious: the noise estimate comes down as still pictures teach it.
            noise = [Float](repeating: 4, count: reduced.count)
            return .still(at: frame.captureTime)
        }
        (gain, offset) = lighting()
        var changed = [Bool](repeating: false, count: reduced.count)
        for index in reduced.indices {
            let expected = background[index] * gain + offset
            let difference = abs(reduced[index] - expected)
            // A pixel at the top of the range (blown out, or expected to be) says little about
            // the scene: it neither counts as motion nor teaches the background.
            let saturated = reduced[index] >= Self.saturation
            let clipped = expected >= Self.saturation || (saturated && expected >= 200)
            let isChanged = !clipped && difference > noiseFactor * noise[index] + floor
            changed[index] = isChanged
            let normalized = (reduced[index] - offset) / max(gain, 0.05)
            if saturated {
                continue
            } else if isChanged {
                background[index] += (normalized - background[index]) * changedRate
            } else {
                background[index] += (normalized - background[index]) * stillRate
                if !clipped { noise[index] = max(0.5, noise[index] * 0.95 + difference * 0.05) }
            }
        }
        // A change over most of the picture at once is the light: start again from this picture.
        // The source's own overlays are never motion.
        let top = Int((ignoredTop * Double(Self.height)).rounded(.up)), bottom = Int((ignoredBottom * Double(Self.height)).rounded(.up))
        if top > 0 || bottom > 0 {
            for y in 0..<Self.height where y < top || y >= Self.height - bottom {
                for x in 0..<Self.width { changed[y * Self.width + x] = false }
            }
        }
        let counted = changed.count { $0 }
        if Float(counted) > Self.globalChangeShare * Float(reduced.count) {
            lightingChanges += 1
            background = reduced
            gain = 1
            offset = 0
            return .still(at: frame.captureTime)
        }
        let cellWidth = Self.width / MotionGrid.columns, cellHeight = Self.height / MotionGrid.rows
        var cells = [UInt8](repeating: 0, count: MotionGrid.columns * MotionGrid.rows)
        for row in 0..<MotionGrid.rows {
            for column in 0..<MotionGrid.columns {
                var count = 0
                for y in (row * cellHeight)..<((row + 1) * cellHeight) {
                    for x in (column * cellWidth)..<((column + 1) * cellWidth) where changed[y * Self.width + x] { count += 1 }
                }
                cells[row * MotionGrid.columns + column] = UInt8(count * 255 / (cellWidth * cellHeight))
            }
        }
        return MotionGrid(cells: cells, captureTime: frame.captureTime)
    }

    /// Box-averages the luma plane into `reduced`, sampling at most 4×4 points per output pixel.
    private func reduce(_ frame: VideoFrame) {
        let width = frame.width, height = frame.height
        frame.withPlane(0) { plane, stride in
            guard plane.baseAddress != nil else { return }
            for y in 0..<Self.height {
                let top = y * height / Self.height, bottom = max(top + 1, (y + 1) * height / Self.height)
                let rowStep = max(1, (bottom - top) / 4)
                for x in 0..<Self.width {
                    let left = x * width / Self.width, right = max(left + 1, (x + 1) * width / Self.width)
                    let columnStep = max(1, (right - left) / 4)
                    var total = 0, samples = 0
                    var row = top
                    while row < bottom {
                        var column = left
                        let base = row * stride
                        while column < right {
                            total += Int(plane[base + column])
                            samples += 1
                            column += columnStep
                        }
                        row += rowStep
                    }
                    reduced[y * Self.width + x] = Float(total) / Float(max(samples, 1))
                }
            }
        }
    }

    /// The lighting model, fitted to the pixels that agree with it (robust to an object that
    /// covers up to half the picture): of a pure gain (the median ratio: exposure) and a pure
    /// offset (the median difference: a lamp switched on, a brightness step), the one that
    /// leaves the smaller median residual; then gain and offset fitted by least squares on the
    /// half of the pixels it fits best.
    private func lighting() -> (gain: Float, offset: Float) {
        // Pixels neither blown out nor learned blown out say something about the light.
        @inline(__always) func usable(_ index: Int) -> Bool { reduced[index] < Self.saturation && background[index] < Self.saturation }
        var usableCount = 0
        var differences = [Int](repeating: 0, count: 511)
        for index in reduced.indices where usable(index) {
            usableCount += 1
            differences[min(max(Int(reduced[index] - background[index]) + 255, 0), 510)] += 1
        }
        guard usableCount > reduced.count / 10 else { return (medianRatio(), 0) }
        let medianDifference = Float(Self.median(of: differences, count: usableCount) - 255)
        func medianResidual(_ model: (gain: Float, offset: Float)) -> Float {
            var histogram = [Int](repeating: 0, count: 256)
            for index in reduced.indices where usable(index) {
                histogram[min(Int(abs(reduced[index] - (background[index] * model.gain + model.offset))), 255)] += 1
            }
            return Float(Self.median(of: histogram, count: usableCount))
        }
        let candidates = [(gain: medianRatio(), offset: Float(0)), (gain: Float(1), offset: medianDifference)].map { ($0, medianResidual($0)) }
        var (best, limit) = candidates[0].1 <= candidates[1].1 ? candidates[0] : candidates[1]
        // Least squares on the pixels the model fits best.
        var count: Float = 0, sumB: Float = 0, sumR: Float = 0, sumBB: Float = 0, sumBR: Float = 0
        for index in reduced.indices where usable(index) && abs(reduced[index] - (background[index] * best.gain + best.offset)) <= limit {
            let b = background[index], r = reduced[index]
            count += 1; sumB += b; sumR += r; sumBB += b * b; sumBR += b * r
        }
        if count > 100 {
            let variance = sumBB / count - (sumB / count) * (sumB / count)
            let gain = variance >= 64 ? min(max((sumBR / count - sumB / count * sumR / count) / variance, 0.25), 4) : best.gain
            let refined = (gain: gain, offset: sumR / count - gain * sumB / count)
            let residual = medianResidual(refined)
            if residual <= limit { (best, limit) = (refined, residual) }
        }
        return best
    }

    /// The bin holding the median of `count` samples in `histogram`.
    private static func median(of histogram: [Int], count: Int) -> Int {
        var seen = 0
        for (bin, samples) in histogram.enumerated() {
            seen += samples
            if seen * 2 >= count { return bin }
        }
        return histogram.count - 1
    }

    /// The median of picture / background over all pixels (a histogram of ratios 0.25…4).
    private func medianRatio() -> Float {
        var histogram = [Int](repeating: 0, count: 512)
        for index in reduced.indices where reduced[index] < Self.saturation {
            let ratio = (reduced[index] + 1) / (background[index] + 1)
            // log2 ratio in −2…2 over 512 bins
            let bin = Int(((log2(ratio) + 2) / 4 * 511).rounded())
            histogram[min(max(bin, 0), 511)] += 1
        }
        let total = histogram.reduce(0, +)
        guard total > 0 else { return gain }
        var seen = 0
        for (bin, count) in histogram.enumerated() {
            seen += count
            if seen * 2 >= total { return Float(pow(2, Double(bin) / 511 * 4 - 2)) }
        }
        return 1
    }
}
