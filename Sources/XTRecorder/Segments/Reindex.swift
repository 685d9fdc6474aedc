// Rebuilding the index from the segment files alone (`xt recorder --reindex`): each file's
// tags give its camera and start, reading it gives its end and frame counts. A torn last
// fragment is cut off; a file that does not parse is reported and left where it is.
import Foundation
public import Logging
import XTMedia

/// What a rebuild found.
public struct ReindexSummary: Sendable, Codable, Equatable {
    public var cameras: Int
    public var segments: Int
    public var seconds: Double
    public var bytes: Int64
    /// Files that could not be read, with the reason.
    public var corrupt: [String]
}

extension RecordingStore {
    /// Forgets what the index says about recordings and lists the files under `root` again.
    /// - Throws: ``StorageError`` when the root or the index cannot be used.
    public static func reindex(root: String, index: any RecorderIndex, logger: Logger) async throws(StorageError) -> ReindexSummary {
        try prepareRoot(root)
        try await index.clearRecordings()
        var summary = ReindexSummary(cameras: 0, segments: 0, seconds: 0, bytes: 0, corrupt: [])
        var cameras: [String: (Int64, Int64)] = [:]
        let fileManager = FileManager.default
        for camera in ((try? fileManager.contentsOfDirectory(atPath: root)) ?? []).sorted() where !camera.hasPrefix(".") {
            var batch: [SegmentRecord] = []
            for relative in Recording.segmentFiles(root: root, camera: camera) {
                let path = (root as NSString).appendingPathComponent(relative)
                do throws(StorageError) {
                    let structure: FragmentedMP4.Structure
                    do { structure = try FragmentedMP4.repair(path) } catch { throw StorageError.media(error) }
                    guard structure.hasHeader else { throw StorageError.corruptSegment("\(relative) is not a fragmented MP4 segment") }
                    let contents = try SegmentFile.read(path, withData: false)
                    guard !contents.frames.isEmpty else {
                        unlink(path)
                        continue
                    }
                    let record = SegmentRecord(path: relative, camera: contents.camera ?? camera, start: contents.start, end: contents.end,
                                               bytes: Int64(structure.completeLength), videoFrames: contents.videoFrames,
                                               audioFrames: contents.audioFrames, isOpen: false)
                    batch.append(record)
                    let seen = cameras[record.camera] ?? (record.start, record.end)
                    cameras[record.camera] = (min(seen.0, record.start), max(seen.1, record.end))
                    summary.segments += 1
                    summary.seconds += record.seconds
                    summary.bytes += record.bytes
                } catch {
                    summary.corrupt.append("\(relative): \(error.reason)")
                    logger.error("skipping a segment that cannot be read", metadata: ["segment": "\(relative)", "reason": "\(error.reason)"])
                }
                if batch.count >= 500 {
                    try await index.replaceSegments([], with: batch, moves: [])
                    batch.removeAll()
                }
            }
            try await index.replaceSegments([], with: batch, moves: [])
        }
        for (name, span) in cameras { try await index.saveCamera(CameraRecord(name: name, firstSeen: span.0, lastSeen: span.1)) }
        summary.cameras = cameras.count
        return summary
    }
}
