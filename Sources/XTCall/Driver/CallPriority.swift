// A call is real time end to end: a frame that waits behind a busy machine's other work is a
// frame the far end's jitter buffer must conceal. The audio threads ask for SCHED_FIFO; the
// rest of the process (the transport's event loops, the tasks between them) for a higher
// nice, as PipeWire's clients get from RTKit.
import Foundation

/// Scheduling for a call's threads and process.
public enum CallPriority {
    /// The nice the whole process asks for (−20 highest … 19 lowest).
    public static let processNice: Int32 = -10

    /// Asks for real-time scheduling for the calling thread (SCHED_FIFO, priority 10), as
    /// PipeWire and WebRTC do for audio; without the privilege, a nice of −10 (per thread on
    /// Linux); without that, it stays as it was. Only for threads that block on a device or
    /// sleep every period, so that they cannot hold a core.
    static func raiseAudioThread() {
        var parameters = sched_param()
        parameters.sched_priority = 10
        if pthread_setschedparam(pthread_self(), Int32(SCHED_FIFO), &parameters) == 0 { return }
        _ = setpriority(__priority_which_t(PRIO_PROCESS.rawValue), 0, processNice)
    }

    /// Gives every thread of this process a nice of ``processNice``; threads made later inherit
    /// it from the thread that makes them. On Linux a nice is per thread, so each thread in
    /// /proc/self/task is set.
    /// - Returns: false when this process may not (not root, no CAP_SYS_NICE, RLIMIT_NICE too
    ///   low): it then runs as it was, and a loaded machine may delay its frames.
    @discardableResult
    public static func raiseProcess() -> Bool {
        guard let threads = try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/task") else { return false }
        var raised = false
        for thread in threads.compactMap({ id_t($0) }) {
            if setpriority(__priority_which_t(PRIO_PROCESS.rawValue), thread, processNice) == 0 { raised = true }
        }
        return raised
    }
}
