// The clock of a synthetic or file source: on `.realTime` it waits until each frame's moment
// and stamps it on the wall clock from where the source started; on `.virtual` it stamps
// without waiting, from a given start. A synthetic camera and microphone share a
// ``SourceEpoch``, so that their stream times (and the marker and beep on each whole second)
// are the same moments however far apart their threads first run.
import Foundation
import Synchronization

/// The moment a group of real-time synthetic sources started: the first of them to run sets
/// it, and the others (and any source reopened later) count their stream time from it.
public final class SourceEpoch: Sendable {
    private let start = Mutex<(wall: CaptureTime, monotonic: Int64)?>(nil)

    public init() {}

    /// The start, set now by the first caller.
    func begin() -> (wall: CaptureTime, monotonic: Int64) {
        start.withLock { start in
            if let start { return start }
            let now = (wall: CaptureTime.now, monotonic: CaptureTime.monotonicNow)
            start = now
            return now
        }
    }
}

struct SourceClock {
    let pacing: Pacing
    private let epoch: SourceEpoch
    private var start: (wall: CaptureTime, monotonic: Int64)?

    /// - Parameter epoch: shared with the other sources whose stream times must agree; a
    ///   source of its own by default.
    init(_ pacing: Pacing, epoch: SourceEpoch = SourceEpoch()) {
        self.pacing = pacing
        self.epoch = epoch
    }

    private var joinedEpoch = false

    /// Nanoseconds of stream time already gone when this source first runs: 0 for the first
    /// source of its epoch and on a virtual clock; for one that starts later, where it joins
    /// (it begins there rather than bursting to catch up). Nil after the first call.
    mutating func join() -> Int64? {
        guard !joinedEpoch else { return nil }
        joinedEpoch = true
        guard case .realTime = pacing else { return 0 }
        return max(0, CaptureTime.monotonicNow - anchor().monotonic)
    }

    /// The epoch's start, taken from it once.
    private mutating func anchor() -> (wall: CaptureTime, monotonic: Int64) {
        let start = start ?? epoch.begin()
        self.start = start
        return start
    }

    /// The capture time of what begins `offset` ns after the source's start; in real time,
    /// first waits until `ready` ns after the start (when the frame or block is complete).
    mutating func captureTime(offset: Int64, ready: Int64) -> CaptureTime {
        switch pacing {
        case .realTime:
            let start = anchor()
            let wait = start.monotonic + ready - CaptureTime.monotonicNow
            if wait > 0 { Thread.sleep(forTimeInterval: Double(wait) / 1e9) }
            return start.wall.adding(nanoseconds: offset)
        case .virtual(let origin):
            return origin.adding(nanoseconds: offset)
        }
    }
}
