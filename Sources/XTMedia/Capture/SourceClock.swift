// The clock of a synthetic or file source: on `.realTime` it waits until each frame's moment
// and stamps it on the wall clock from where the source started; on `.virtual` it stamps
// without waiting, from a given start.
import Foundation

struct SourceClock {
    let pacing: Pacing
    private var start: CaptureTime?
    private var startMonotonic: Int64 = 0

    init(_ pacing: Pacing) { self.pacing = pacing }

    /// The capture time of what begins `offset` ns after the source's start; in real time,
    /// first waits until `ready` ns after the start (when the frame or block is complete).
    mutating func captureTime(offset: Int64, ready: Int64) -> CaptureTime {
        switch pacing {
        case .realTime:
            if start == nil {
                start = .now
                startMonotonic = CaptureTime.monotonicNow
            }
            let wait = startMonotonic + ready - CaptureTime.monotonicNow
            if wait > 0 { Thread.sleep(forTimeInterval: Double(wait) / 1e9) }
            return start!.adding(nanoseconds: offset)
        case .virtual(let origin):
            return origin.adding(nanoseconds: offset)
        }
    }
}
