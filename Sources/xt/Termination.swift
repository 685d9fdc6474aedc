// Waiting for Ctrl-C or `systemctl stop` (SIGINT, SIGTERM), so long-running commands can stop
// cleanly: flush what they write, leave the network, print their report.
import Dispatch
import Foundation
#if canImport(Glibc)
import Glibc
#endif

enum Termination {
    /// Returns when SIGINT or SIGTERM arrives, or after `seconds` if given.
    static func wait(seconds: Double? = nil) async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let once = Once(continuation)
            var sources: [any DispatchSourceSignal] = []
            for number in [SIGINT, SIGTERM] {
                signal(number, SIG_IGN)
                let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
                source.setEventHandler { once.fire() }
                source.resume()
                sources.append(source)
            }
            if let seconds {
                DispatchQueue.global().asyncAfter(deadline: .now() + seconds) { once.fire() }
            }
            once.keep(sources)
        }
    }

    /// Resumes its continuation the first time it fires.
    private final class Once: @unchecked Sendable {
        private var continuation: CheckedContinuation<Void, Never>?
        private var sources: [any DispatchSourceSignal] = []
        private let lock = NSLock()

        init(_ continuation: CheckedContinuation<Void, Never>) { self.continuation = continuation }

        func keep(_ sources: [any DispatchSourceSignal]) {
            lock.lock()
            self.sources = sources
            lock.unlock()
        }

        func fire() {
            lock.lock()
            let pending = continuation
            continuation = nil
            lock.unlock()
            pending?.resume()
        }
    }
}


