// Retention: recordings older than their camera's maximum age go, then the oldest of all
// cameras while the recordings exceed their total size or the disk has less free space than
// the minimum. A write that failed for want of space (ENOSPC) makes the next pass free 5% of
// the disk at once, so recording goes on. Segments still being written are never deleted.
import Foundation
import XTMedia

/// How long recordings are kept and how much of the disk they may use.
public struct RetentionPolicy: Sendable, Equatable {
    /// Recordings older than this go (nil: kept until space runs short).
    public var maximumAge: Duration? = .seconds(30 * 86_400)
    /// Per-camera maximum ages, overriding ``maximumAge``.
    public var cameraMaximumAge: [String: Duration] = [:]
    /// All recordings together stay under this many bytes (nil: no limit).
    public var maximumBytes: Int64?
    /// The disk keeps at least this much free.
    public var minimumFreeBytes: Int64 = 1 << 30
    /// Recording around motion events (their clips) is kept this long, beyond the maximum age
    /// (nil: like the rest). Size and free-space limits still take the oldest first.
    public var eventMaximumAge: Duration? = .seconds(90 * 86_400)
    /// How often retention runs.
    public var interval: Duration = .seconds(10)

    public init() {}
}

/// What retention has done, and the disk as it last saw it.
public struct RetentionReport: Sendable, Codable, Equatable {
    public var runs = 0
    public var segmentsDeleted = 0
    public var bytesDeleted: Int64 = 0
    /// Writes that failed for want of space.
    public var diskFull = 0
    public var recordingBytes: Int64 = 0
    public var diskFreeBytes: Int64 = 0
    public var diskTotalBytes: Int64 = 0
}

/// Free and total bytes of the filesystem holding `path`.
func diskSpace(_ path: String) -> (free: Int64, total: Int64)? {
    var stats = statvfs()
    guard statvfs(path, &stats) == 0 else { return nil }
    return (Int64(stats.f_bavail) * Int64(stats.f_frsize), Int64(stats.f_blocks) * Int64(stats.f_frsize))
}

extension RecordingStore {
    /// Deletes what the policy says must go; oldest first.
    func applyRetention(now: Int64 = CaptureTime.now.nanoseconds) async {
        let policy = retention
        var report = retentionReport
        report.runs += 1
        do {
            // Age, per camera; event clips are kept longer.
            for use in try await index.storageUse() {
                guard let age = policy.cameraMaximumAge[use.camera] ?? policy.maximumAge else { continue }
                let cutoff = now - age.nanoseconds
                let eventCutoff = policy.eventMaximumAge.map { now - $0.nanoseconds } ?? cutoff
                let clips = eventCutoff < cutoff
                    ? try await index.events(camera: use.camera, from: eventCutoff, to: cutoff + 3_600_000_000_000).map { ($0.clipStart, $0.clipEnd ?? .max) } : []
                let expired = try await index.segments(camera: use.camera, from: nil, to: cutoff).filter { segment in
                    !segment.isOpen && segment.end < cutoff
                        && !clips.contains { segment.end >= $0.0 && segment.start <= $0.1 && $0.1 >= eventCutoff }
                }
                for batch in stride(from: 0, to: expired.count, by: 200) {
                    try await delete(Array(expired[batch..<min(batch + 200, expired.count)]), report: &report)
                }
                // Events whose clips are past keeping go too, with their snapshots.
                for event in try await index.deleteEvents(endingBefore: min(eventCutoff, cutoff), camera: use.camera) {
                    if let snapshot = event.snapshot { unlink((root as NSString).appendingPathComponent(snapshot)) }
                }
            }
            // Total size.
            var total = try await index.storageUse().reduce(0) { $0 + $1.bytes }
            if let maximum = policy.maximumBytes {
                while total > maximum {
                    let oldest = try await index.oldestSegments(camera: nil, limit: 20)
                    guard !oldest.isEmpty else { break }
                    var batch: [SegmentRecord] = []
                    for segment in oldest where total > maximum {
                        batch.append(segment)
                        total -= segment.bytes
                    }
                    try await delete(batch, report: &report)
                }
            }
            // Free disk: the minimum, and after a full disk 5% more at once.
            if let disk = diskSpace(root) {
                let wanted = max(policy.minimumFreeBytes, needsSpace ? disk.total / 20 : 0)
                var free = disk.free
                while free < wanted {
                    let oldest = try await index.oldestSegments(camera: nil, limit: 5)
                    guard !oldest.isEmpty else {
                        logger.error("the disk is full and no recording is left to delete: free space on \(root)'s disk",
                                     metadata: ["free bytes": "\(free)"])
                        break
                    }
                    try await delete(oldest, report: &report)
                    free = diskSpace(root)?.free ?? wanted
                    total -= oldest.reduce(0) { $0 + $1.bytes }
                }
                report.diskFreeBytes = diskSpace(root)?.free ?? free
                report.diskTotalBytes = disk.total
            }
            report.recordingBytes = max(0, total)
            needsSpace = false
        } catch {
            logger.error("retention failed; it runs again shortly", metadata: ["reason": "\(error.reason)"])
        }
        retentionReport = report
    }

    /// Deletes segment files (first, so a full disk gets space back even if the index cannot be
    /// written yet) and then their rows.
    private func delete(_ segments: [SegmentRecord], report: inout RetentionReport) async throws(StorageError) {
        guard !segments.isEmpty else { return }
        for segment in segments {
            let path = (root as NSString).appendingPathComponent(segment.path)
            unlink(path)
            // Empty hour and day folders go too.
            let hour = (path as NSString).deletingLastPathComponent
            if rmdir(hour) == 0 { rmdir((hour as NSString).deletingLastPathComponent) }
        }
        try await index.deleteSegments(segments.map(\.path))
        report.segmentsDeleted += segments.count
        report.bytesDeleted += segments.reduce(0) { $0 + $1.bytes }
        logger.info("retention deleted the oldest recordings", metadata: [
            "segments": "\(segments.count)", "from": "\(CaptureTime(nanoseconds: segments.first!.start))",
        ])
    }
}
