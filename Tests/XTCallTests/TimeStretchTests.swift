// Time-stretching by one pitch period: a voiced frame loses or gains exactly one period with no
// click at the joins; noise and silence are left alone; speech keeps its pitch.
import Foundation
import Testing
import XTCall

@Suite("Time stretch")
struct TimeStretchTests {
    private static func sine(_ frequency: Double, count: Int = 320, rate: Double = 16_000, phase: Double = 0.3) -> [Int16] {
        (0..<count).map { Int16(8000 * sin(2 * .pi * frequency * Double($0) / rate + phase)) }
    }

    private static func largestStep(_ samples: [Int16]) -> Int {
        zip(samples, samples.dropFirst()).map { abs(Int($1) - Int($0)) }.max() ?? 0
    }

    @Test("A voiced frame loses or gains exactly one period, without a click")
    func sine() {
        let stretch = TimeStretch()
        let frame = Self.sine(200)  // period 80 samples
        #expect(stretch.period(of: frame) == 80)
        let shorter = stretch.accelerate(frame)
        let longer = stretch.expand(frame)
        #expect(shorter.count == 240 && longer.count == 400)
        let natural = Self.largestStep(frame)
        #expect(Self.largestStep(shorter) <= natural * 12 / 10 && Self.largestStep(longer) <= natural * 12 / 10)
        // Still a 200 Hz tone: the stretched frames repeat with the same period.
        #expect(stretch.period(of: longer) == 80)
    }

    @Test("Noise and silence have no period and stay as they are")
    func noPeriod() {
        let stretch = TimeStretch()
        var generator = SystemRandomNumberGenerator()
        let noise = (0..<320).map { _ in Int16.random(in: -8000...8000, using: &generator) }
        #expect(stretch.period(of: noise) == nil)
        #expect(stretch.accelerate(noise) == noise && stretch.expand(noise) == noise)
        let silence = [Int16](repeating: 0, count: 320)
        #expect(stretch.accelerate(silence) == silence)
        #expect(stretch.accelerate([1, 2, 3]) == [1, 2, 3], "too short to search")
    }

    @Test("Voiced speech frames are shortened and lengthened by a period of 2.5–10 ms",
          .enabled(if: FileManager.default.isExecutableFile(atPath: "/usr/bin/espeak-ng"), "espeak-ng is not installed"))
    func speech() throws {
        let stretch = TimeStretch()
        let speech = try Speech.samples("Someone is at the front door. Hello, who is there?")
        var stretched = 0
        for start in stride(from: 0, to: speech.count - 320, by: 320) {
            let frame = Array(speech[start..<start + 320])
            guard let period = stretch.period(of: frame) else { continue }
            #expect((40...160).contains(period))
            #expect(stretch.accelerate(frame).count == 320 - period && stretch.expand(frame).count == 320 + period)
            stretched += 1
        }
        #expect(stretched >= 40, "\(stretched) voiced frames")
    }
}
