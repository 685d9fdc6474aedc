// A source's own timestamps (a file's or an IP camera's) mapped onto one continuous timeline.
// Files and cameras step their clocks: two recordings cut together, a camera that reboots or
// sets its clock, MPEG-TS's 33-bit timestamps wrapping after 26.5 hours. Played by its own
// timestamps such a source would stall for an hour or burst five seconds of frames at once.
// Here a step back (decode times only rise), or forward by more than ffmpeg's
// `-dts_delta_threshold` (10 s), is a discontinuity: the timeline goes on where the previous
// packet ended, and a step of half a second or more is reported once. `FileClock` shares one anchor between a file's audio and video, so that they
// stay in step across it.
import Foundation
import Synchronization

/// One stream's timestamps, made continuous. Pure: feed decode times, read timeline times.
public struct SourceTimeline: Sendable, Equatable {
    /// A step forward larger than this (ns) is a discontinuity, not a pause (ffmpeg's
    /// `-dts_delta_threshold` default, 10 s).
    public static let forwardThreshold: Int64 = 10_000_000_000

    /// Timeline time = source time + offset; nil before the first packet.
    private var offset: Int64?
    /// Timeline time of the last packet and where the next one is expected.
    private var last: Int64 = 0
    private var expected: Int64 = 0
    /// The next packet starts a new run (a reopened file): it continues the timeline silently.
    private var restarting = false
    /// Steps smaller than this (ns) are re-based without a report.
    public static let reportedStep: UInt64 = 500_000_000

    /// Discontinuities found (restarts and small steps not counted).
    public private(set) var discontinuities = 0

    public init() {}

    /// Places a packet whose decode time is `source` (ns on the source's clock, relative to the
    /// shared origin) and which plays `duration` ns.
    /// - Parameters:
    ///   - adopting: at a discontinuity or restart, the shift (ns) another stream of the same
    ///     source applied to the same step, taken so that audio and video move together and keep
    ///     the source's own alignment — when it lands within a second of where this stream was
    ///     expected, and after its last packet unless `allowsOverlap`.
    ///   - allowsOverlap: this stream may go back a little (sound, whose overlapping samples its
    ///     source cuts off) to stay with the other.
    /// - Returns: its time on the timeline (ns); at a discontinuity the source's step (ns:
    ///   positive forward, negative back) measured from where the packet was expected; and the
    ///   shift applied (ns) at a discontinuity or restart.
    public mutating func place(_ source: Int64, duration: Int64, adopting: Int64? = nil,
                               allowsOverlap: Bool = false) -> (time: Int64, jump: Int64?, shift: Int64?) {
        let duration = min(max(duration, 0), 10_000_000_000)
        guard let offset else {
            // The first packet keeps its place against the shared origin (audio that starts
            // 100 ms after video stays 100 ms after), unless that is itself a leap.
            let time = Self.magnitude(source) <= Self.forwardThreshold ? source : 0
            self.offset = time &- source
            return advance(to: time, duration: duration, jump: nil, shift: nil)
        }
        let (time, overflow) = source.addingReportingOverflow(offset)
        let step = overflow ? Int64.max : time &- expected
        // Not after the last packet (decode times only rise: two clips spliced by their
        // presentation times overlap by the reorder delay), or forward by more than the
        // threshold: re-base.
        if restarting || overflow || step > Self.forwardThreshold || time <= last {
            var shifted = expected &- source
            // Another stream's shift is taken when it lands this one after its last packet and
            // within a second of where it was expected.
            if let adopting {
                let (candidate, overflow) = offset.addingReportingOverflow(adopting)
                let placed = source &+ candidate
                let earliest = allowsOverlap ? expected &- 1_000_000_000 : last &+ 1
                if !overflow, placed >= earliest, placed <= expected &+ 1_000_000_000 { shifted = candidate }
            }
            let shift = shifted &- offset
            self.offset = shifted
            // A step of less than half a second (a splice) is smoothed over without a report.
            let reported = !restarting && step.magnitude >= Self.reportedStep
            restarting = false
            if reported { discontinuities += 1 }
            return advance(to: source &+ shifted, duration: duration, jump: reported ? step : nil, shift: shift)
        }
        return advance(to: time, duration: duration, jump: nil, shift: nil)
    }

    /// Moves the timeline by `delta` ns from here on (to follow the other stream's shift at a
    /// step this one met first).
    public mutating func move(by delta: Int64) {
        guard let offset else { return }
        self.offset = offset &+ delta
        last &+= delta
        expected &+= delta
    }

    /// The source was opened again (a file plays from its start after its end): its next
    /// packet continues the timeline without counting as a discontinuity.
    public mutating func restart() {
        if offset != nil { restarting = true }
    }

    private mutating func advance(to time: Int64, duration: Int64, jump: Int64?, shift: Int64?) -> (time: Int64, jump: Int64?, shift: Int64?) {
        last = time
        expected = max(expected, time &+ duration)
        return (time, jump, shift)
    }

    private static func magnitude(_ value: Int64) -> Int64 { value == .min ? .max : abs(value) }
}

/// The clock a file's (or a network camera's) audio and video sources share: one anchor on
/// the wall clock, each kind's timestamps made continuous by a ``SourceTimeline``, and for
/// files the moment each packet is due, so that they play at their own pace.
public final class FileClock: Sendable {
    /// A placed packet.
    public struct Placement: Sendable, Equatable {
        /// Its capture time on the wall clock.
        public var captureTime: CaptureTime
        /// Nanoseconds to wait before it is due (files; 0 or less: due now).
        public var wait: Int64
        /// The source's clock stepped by this much (ns) just before it: reported once for
        /// audio and video together.
        public var jump: Int64?
    }

    /// A file that falls this far behind its own pace (a machine too slow to keep up) moves
    /// its anchor on rather than bursting to catch up; a network camera whose timestamps drift
    /// this far from the wall clock is re-anchored.
    public static let maximumLag: Int64 = 2_000_000_000

    private struct State {
        var anchor: (wall: CaptureTime, monotonic: Int64)?
        var origin: Int64 = 0
        var timelines: [MediaKind: SourceTimeline] = [:]
        var lastReported: (jump: Int64, at: Int64)?
        /// The last shift each kind applied at a step or restart (when, whether it was video's).
        var lastShift: [MediaKind: (shift: Int64, at: Int64, followsVideo: Bool)] = [:]
        /// A move audio still has to make to follow video's shift.
        var audioCorrection: Int64?
    }

    private let state = Mutex(State())
    /// Anchored to the wall clock at the first packet; tests give a fixed one.
    private let now: @Sendable () -> (wall: CaptureTime, monotonic: Int64)
    private let isVirtual: Bool

    /// A clock that anchors at the wall clock (`now`) when the first packet comes.
    public init(now: @escaping @Sendable () -> (wall: CaptureTime, monotonic: Int64) = { (.now, CaptureTime.monotonicNow) }) {
        self.now = now
        isVirtual = false
    }

    /// A clock for ``Pacing``: real time as above, or virtual — nothing waits, and capture
    /// times start at the given moment (tests that read a file as fast as it decodes).
    public convenience init(pacing: Pacing) {
        switch pacing {
        case .realTime: self.init()
        case .virtual(let start): self.init(virtualStart: start)
        }
    }

    private init(virtualStart: CaptureTime) {
        now = { (virtualStart, 0) }
        isVirtual = true
    }

    /// Places a packet of `kind` whose decode time on the source's clock is `source` ns.
    /// - Parameter paced: a file (due at its moment) rather than a live input (due on arrival).
    public func place(_ kind: MediaKind, source: Int64, duration: Int64, paced: Bool) -> Placement {
        let clock = now()
        return state.withLock { state in
            if state.anchor == nil {
                state.anchor = (clock.wall, clock.monotonic)
                state.origin = source
            }
            let relative = source.subtractingReportingOverflow(state.origin)
            var timeline = state.timelines[kind] ?? SourceTimeline()
            // At a step, video leads: its frames stay one interval apart, and sound follows the
            // same shift (cutting what overlaps). Sound that met the step first moves again
            // once video has.
            func recent(_ shift: (shift: Int64, at: Int64, followsVideo: Bool)?) -> Bool {
                shift.map { clock.monotonic &- $0.at < 2_000_000_000 } ?? false
            }
            if kind == .audio, let correction = state.audioCorrection {
                timeline.move(by: correction)
                state.audioCorrection = nil
            }
            let adopting = kind == .audio && recent(state.lastShift[.video]) ? state.lastShift[.video]!.shift : nil
            let placed = timeline.place(relative.overflow ? .max : relative.partialValue, duration: duration, adopting: adopting,
                                        allowsOverlap: kind == .audio)
            state.timelines[kind] = timeline
            if let shift = placed.shift {
                state.lastShift[kind] = (shift, clock.monotonic, adopting == shift)
                if kind == .video, let audio = state.lastShift[.audio], recent(audio), !audio.followsVideo, audio.shift != shift {
                    state.audioCorrection = shift &- audio.shift
                    state.lastShift[.audio] = nil
                }
            }
            var wait = isVirtual ? 0 : state.anchor!.monotonic &+ placed.time &- clock.monotonic
            // Too far behind (or, live, ahead): move the anchor so that this packet is due now.
            if paced ? wait < -Self.maximumLag : wait.magnitude > Self.maximumLag {
                state.anchor!.monotonic &-= wait
                state.anchor!.wall = state.anchor!.wall.adding(nanoseconds: -wait)
                wait = 0
            }
            // Audio and video step together: the second kind's step within 2 s is the same one.
            var jump = placed.jump
            if let step = jump {
                if let last = state.lastReported, clock.monotonic &- last.at < 2_000_000_000, (last.jump &- step).magnitude < 2_000_000_000 {
                    jump = nil
                }
                state.lastReported = (step, clock.monotonic)
            }
            return Placement(captureTime: state.anchor!.wall.adding(nanoseconds: placed.time), wait: paced ? wait : 0, jump: jump)
        }
    }

    /// The source of `kind` was opened again: its next packet continues the timeline.
    public func restart(_ kind: MediaKind) {
        state.withLock { state in state.timelines[kind]?.restart() }
    }

    /// Discontinuities found so far, per kind.
    public var discontinuities: [MediaKind: Int] { state.withLock { $0.timelines.mapValues(\.discontinuities) } }
}
