import Foundation
import Testing
@testable import XTMedia

@Suite("Synthetic camera and microphone")
struct SyntheticSourceTests {
    @Test("A microphone that starts late joins its camera's stream time: the beep stays on the marker")
    func aLateMicrophoneJoinsTheCamerasStreamTime() throws {
        let epoch = SourceEpoch()
        let camera = try SyntheticVideoSource(width: 64, height: 64, frameRate: 10, epoch: epoch)
        guard case .raw(let first) = try camera.next() else { Issue.record("the camera gave no picture"); return }
        // The microphone's thread runs 130 ms later (a loaded machine in CI ran it 48 ms late).
        Thread.sleep(forTimeInterval: 0.13)
        let microphone = SyntheticAudioSource(sampleRate: 48_000, epoch: epoch)
        let block = try microphone.next()
        let offset = block.captureTime.nanoseconds - first.captureTime.nanoseconds
        // Its first block is the next whole 20 ms block of the camera's stream time, not a
        // stream of its own that starts 130 ms late.
        #expect(offset % 20_000_000 == 0, "the microphone's first block is \(offset) ns after the camera's first frame")
        #expect((120_000_000...1_000_000_000).contains(offset))
        // And what it plays there is what the camera's stream time says: a hum, no beep (the
        // beep sounds in the first 100 ms of each second).
        #expect(block.samples.map { abs(Int($0)) }.max() ?? 0 < 1_000)
    }

    @Test("On their own, sources start their stream time at their first frame")
    func aSourceOfItsOwnStartsAtItsFirstFrame() throws {
        let microphone = SyntheticAudioSource(sampleRate: 16_000)
        let before = CaptureTime.now
        let first = try microphone.next()
        let second = try microphone.next()
        #expect(abs(first.captureTime.nanoseconds - before.nanoseconds) < 50_000_000)
        #expect(second.captureTime.nanoseconds - first.captureTime.nanoseconds == 20_000_000)
    }
}
