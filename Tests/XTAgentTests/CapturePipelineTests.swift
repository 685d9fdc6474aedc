// A source that cannot be opened (an unreachable RTSP camera, a missing file) is tried again
// less often each time — doubling to 30 s, with jitter — instead of every second forever, and
// its failure is logged once, not once a try.
import Foundation
import Logging
import Synchronization
import Testing
@testable import XTAgent
import XTMedia

@Suite struct CapturePipelineTests {
    @Test func backoffDoublesToItsMaximumWithJitterAndStartsOver() {
        var backoff = RetryBackoff()
        var waits: [Double] = []
        for _ in 0..<8 {
            let wait = backoff.next()
            waits.append(Double(wait.components.seconds) + Double(wait.components.attoseconds) / 1e18)
        }
        for (wait, base) in zip(waits, [1.0, 2, 4, 8, 16, 30, 30, 30]) {
            #expect(wait >= base * 0.8 - 1e-9 && wait <= base * 1.2 + 1e-9, "\(waits)")
        }
        // Jitter: the waits are not all the nominal ones.
        #expect(Set(waits).count == 8)
        backoff.reset()
        #expect(backoff.next() <= .milliseconds(1200))
    }

    /// Collects what a logger is told.
    final class Lines: LogHandler, @unchecked Sendable {
        let lines = Mutex<[String]>([])
        var metadata: Logger.Metadata = [:]
        var logLevel: Logger.Level = .trace
        subscript(metadataKey key: String) -> Logger.Metadata.Value? { get { metadata[key] } set { metadata[key] = newValue } }
        func log(level: Logger.Level, message: Logger.Message, metadata: Logger.Metadata?, source: String, file: String, function: String, line: UInt) {
            lines.withLock { $0.append("\(level) \(message)") }
        }
    }

    @Test func anUnreachableSourceIsTriedLessOftenAndLoggedOnce() async throws {
        let lines = Lines()
        let logger = Logger(label: "test") { _ in lines }
        // Scaled down: 50 ms doubling to 400 ms. In 1.6 s that is about 6 tries, not 32.
        let pipeline = CapturePipeline.video(name: "gate video", settings: H264Settings(width: 320, height: 180, frameRate: 25),
                                             backoff: RetryBackoff(initial: .milliseconds(50), maximum: .milliseconds(400)), logger: logger,
                                             open: { () throws(MediaError) -> any VideoSource in
                                                 throw MediaError.deviceMissing("rtsp://127.0.0.1:9/camera refused the connection")
                                             }) { _ in }
        let started = ContinuousClock.now
        pipeline.start()
        try await Task.sleep(for: .milliseconds(1600))
        await pipeline.stop()
        // (The suite may keep this test waiting longer than asked: count against what passed.)
        let elapsed = ContinuousClock.now - started
        let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
        let attempts = pipeline.stats.openAttempts
        // 50, 100, 200, then every 400 ms (± 20%) — against 32 a second at a fixed 50 ms.
        #expect(attempts >= 4 && attempts <= 5 + Int(seconds / 0.32), "\(attempts) tries in \(seconds) s")
        let failures = lines.lines.withLock { $0 }.filter { $0.contains("cannot open the source") }
        #expect(failures.count == 1, "\(lines.lines.withLock { $0 })")
    }
}
