// A source's clock made continuous: steady timestamps pass as they are (pauses under 10 s
// included), a step back, a leap forward or an MPEG-TS wrap goes on where the last packet
// ended and is reported once, and a reopened file continues without a report. The shared clock
// keeps audio and video together across a step and paces a file by its own timestamps.
import Synchronization
import Testing
@testable import XTMedia

struct SourceTimelineTests {
    let frame: Int64 = 40_000_000

    @Test func steadyTimestampsAndShortPausesPassAsTheyAre() {
        var timeline = SourceTimeline()
        var times: [Int64] = []
        for index in 0..<10 { times.append(timeline.place(5_000_000_000 + Int64(index) * frame, duration: frame).time) }
        #expect(times == (0..<10).map { 5_000_000_000 + Int64($0) * frame })
        // A 3 s pause (a camera that dropped frames) is kept: it is real.
        #expect(timeline.place(5_000_000_000 + 9 * frame + 3_000_000_000, duration: frame).jump == nil)
        #expect(timeline.discontinuities == 0)
    }

    @Test(arguments: [
        ("forward an hour", Int64(3_600_000_000_000)),
        ("back 5 s", Int64(-5_000_000_000)),
        ("MPEG-TS wrap", -((Int64(1) << 33) * 1_000_000_000 / 90_000)),
        ("forward to Int64's end", Int64.max / 2),
    ])
    func aStepIsReBasedAndReportedOnce(_ name: String, _ step: Int64) {
        var timeline = SourceTimeline()
        var last: Int64 = 0
        for index in 0..<25 { last = timeline.place(Int64(index) * frame, duration: frame).time }
        // The next packet comes `step` off where it was due.
        let due = 25 * frame
        let placed = timeline.place(due &+ step, duration: frame)
        #expect(placed.time == last + frame, "\(name): continues one frame later")
        #expect(placed.jump == step, "\(name)")
        var reports = 0
        var previous = placed.time
        for index in 1..<25 {
            let next = timeline.place(due &+ step &+ Int64(index) * frame, duration: frame)
            if next.jump != nil { reports += 1 }
            #expect(next.time - previous == frame, "\(name): no stall, no burst")
            previous = next.time
        }
        #expect(reports == 0 && timeline.discontinuities == 1)
    }

    @Test func decodeTimesOnlyRiseAndASpliceIsSmoothedOverQuietly() {
        // Two B-frame clips joined by presentation time: the second's first decode time is two
        // frames before the first's last.
        var timeline = SourceTimeline()
        var times: [Int64] = []
        for index in 0..<50 { times.append(timeline.place(Int64(index) * frame, duration: frame).time) }
        for index in 0..<50 { times.append(timeline.place(48 * frame + Int64(index) * frame, duration: frame).time) }
        #expect(zip(times, times.dropFirst()).allSatisfy { $1 - $0 == frame })
        #expect(timeline.discontinuities == 0)
    }

    @Test func aReopenedFileContinuesWithoutAReport() {
        var timeline = SourceTimeline()
        for index in 0..<50 { _ = timeline.place(Int64(index) * frame, duration: frame) }
        timeline.restart()
        let again = timeline.place(0, duration: frame)
        #expect(again.time == 50 * frame && again.jump == nil && timeline.discontinuities == 0)
    }

    /// A clock for tests: the wall and monotonic clocks stand where the test puts them.
    final class FakeNow: Sendable {
        let nanoseconds = Atomic<Int64>(0)
        let wall = CaptureTime(nanoseconds: 1_800_000_000_000_000_000)
        var clock: FileClock {
            FileClock { [self] in (wall.adding(nanoseconds: nanoseconds.load(ordering: .relaxed)), nanoseconds.load(ordering: .relaxed)) }
        }
        func advance(_ delta: Int64) { nanoseconds.add(delta, ordering: .relaxed) }
    }

    @Test(arguments: [false, true])
    func audioAndVideoStayTogetherAcrossAStepReportedOnce(soundFirst: Bool) {
        let now = FakeNow()
        let clock = now.clock
        let audioPacket: Int64 = 21_333_333
        // Two seconds of a file starting at 1.4 s (as MPEG-TS does), then a cut to 3605 s.
        var reports = 0
        var videoTimes: [(source: Int64, capture: Int64)] = [], audioTimes: [(source: Int64, capture: Int64)] = []
        for part in [Int64(1_400_000_000), 3_605_000_000_000] {
            var video: Int64 = 0, audio: Int64 = 0
            while video < 2_000_000_000 || audio < 2_000_000_000 {
                if soundFirst ? video < audio : video <= audio {
                    let placed = clock.place(.video, source: part + video, duration: frame, paced: true)
                    if placed.jump != nil { reports += 1 }
                    #expect(placed.wait <= 0 || placed.wait < 50_000_000, "no stall")
                    now.advance(max(placed.wait, 0))
                    videoTimes.append((video, placed.captureTime.nanoseconds))
                    video += frame
                } else {
                    let placed = clock.place(.audio, source: part + audio, duration: audioPacket, paced: true)
                    if placed.jump != nil { reports += 1 }
                    now.advance(max(placed.wait, 0))
                    audioTimes.append((audio, placed.captureTime.nanoseconds))
                    audio += audioPacket
                }
            }
        }
        #expect(reports == 1)
        #expect(clock.discontinuities == [.video: 1, .audio: 1])
        // Frame after frame one interval apart, the cut included.
        for (earlier, later) in zip(videoTimes, videoTimes.dropFirst()) { #expect(later.capture - earlier.capture == frame) }
        // The first picture and the first sound after the cut were captured together: they still
        // are (the second kind takes the first one's shift).
        // (Sound that met the step first follows within a packet.)
        let videoAfter = videoTimes.first { $0.source == 0 && $0.capture > videoTimes[0].capture }!
        let audioAfter = audioTimes.first { $0.source == 10 * audioPacket && $0.capture > audioTimes[10].capture }!
        #expect(audioAfter.capture - videoAfter.capture == 10 * audioPacket)
    }

    @Test func aFilePlaysAtItsOwnPaceAndALaggingOneMovesOn() {
        let now = FakeNow()
        let clock = now.clock
        #expect(clock.place(.video, source: 0, duration: frame, paced: true).wait == 0)
        #expect(clock.place(.video, source: frame, duration: frame, paced: true).wait == frame)
        now.advance(frame)
        // Three seconds behind its pace: due now, not a three-second burst.
        now.advance(3_000_000_000)
        let late = clock.place(.video, source: 2 * frame, duration: frame, paced: true)
        #expect(late.wait == 0)
        #expect(clock.place(.video, source: 3 * frame, duration: frame, paced: true).wait == frame)
        // A live input is never waited for.
        let live = now.clock
        _ = live.place(.video, source: 0, duration: frame, paced: false)
        #expect(live.place(.video, source: frame, duration: frame, paced: false).wait == 0)
    }
}
