// `xt bench --sessions N`: open N sessions on one socket to a listener, report handshakes per
// second and the memory each idle session costs this process, then check they stay up.
import Foundation
import XTransport
import XTransportNIO

enum SessionBench {
    /// Resident set size of this process, in bytes (from /proc/self/status).
    static func residentBytes() -> Int {
        guard let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8) else { return 0 }
        for line in status.split(separator: "\n") where line.hasPrefix("VmRSS:") {
            let kilobytes = line.split(separator: " ").compactMap { Int($0) }.first ?? 0
            return kilobytes * 1024
        }
        return 0
    }

    struct Result {
        var sessions: Int
        var seconds: Double
        var bytesPerSession: Double
        var stillOpen: Int
    }

    static func run(endpoint: TransportEndpoint, address: NetworkAddress, peerKey: PublicKey, count: Int,
                    concurrency: Int = 256, idle: Duration = .seconds(3)) async throws -> Result {
        let before = residentBytes()
        let start = ContinuousClock.now
        var sessions: [TransportSession] = []
        sessions.reserveCapacity(count)
        try await withThrowingTaskGroup(of: TransportSession.self) { group in
            var started = 0
            while started < min(concurrency, count) {
                group.addTask { try await endpoint.connect(to: address, peerKey: peerKey) }
                started += 1
            }
            while let session = try await group.next() {
                sessions.append(session)
                if started < count {
                    group.addTask { try await endpoint.connect(to: address, peerKey: peerKey) }
                    started += 1
                }
            }
        }
        let elapsed = ContinuousClock.now - start
        let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
        try await Task.sleep(for: idle)
        let after = residentBytes()
        let open = try await endpoint.sessionIDs().count
        for session in sessions { session.abort(reason: "bench done") }
        return Result(sessions: count, seconds: seconds, bytesPerSession: Double(after - before) / Double(count), stillOpen: open)
    }
}
