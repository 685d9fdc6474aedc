// Recordings as the browser plays and downloads them: a stretch of one camera's recording
// joined across segments into one MP4 (``Recording/export``), kept for a while under
// `<storage>/.web-clips/` and served with range requests, so that the page's <video> can seek
// and change speed natively. The same stretch asked for again is served from the same file.
import Foundation
import XTMedia

/// One clip ready to play or download.
public struct ClipInfo: Sendable, Codable, Equatable {
    /// Where the page fetches it.
    public var url: String
    public var camera: String
    /// Capture times (ms since 1970) of its first and last frame: media time 0 is `start`.
    public var start: Int64
    public var end: Int64
    public var videoFrames: Int
    public var audioFrames: Int
    public var segments: Int
    public var bytes: Int64
    /// Picture sizes in order: more than one when the camera's stream changed in the clip.
    public var videoSizes: [String]
    /// What the clip could not hold as recorded (see ``Recording/ExportSummary/notes``).
    public var notes: [String]
    /// It ends where the camera's stream changed shape: the next clip, from `end`, goes on.
    public var continues: Bool
}

/// The clips made for the web UI.
public actor ClipCache {
    /// A clip spans at most this long.
    public static let longest: Int64 = 3_600_000
    /// Clips are deleted this long after they were last asked for.
    static let keep: Duration = .seconds(30 * 60)
    /// And at most this many are kept.
    static let most = 64

    public let directory: String
    private let root: String
    private let index: any RecorderIndex
    private var made: [String: (clip: ClipInfo, used: ContinuousClock.Instant)] = [:]

    /// Clips to play of cameras whose H.264 browsers cannot play are re-encoded.
    private let transcode: Bool

    /// Clips of the recordings under `root`, kept in `<root>/.web-clips` (emptied now).
    public init(root: String, index: any RecorderIndex, transcode: Bool = false) {
        self.root = root
        self.index = index
        self.transcode = transcode
        directory = (root as NSString).appendingPathComponent(".web-clips")
        try? FileManager.default.removeItem(atPath: directory)
    }

    /// The clip of `camera` from `from` to `to` (ms since 1970), starting at the keyframe at or
    /// before `from`. A clip to play stops where the camera's stream changed shape (browsers
    /// play one size per file: the page goes on with the next clip); a `whole` one (a download)
    /// holds every part, each at its own size.
    public func clip(camera: String, from: Int64, to: Int64, whole: Bool = false) async throws(StorageError) -> ClipInfo {
        let key = "\(camera)-\(from)-\(to)-\(whole)"
        let now = ContinuousClock.now
        if let existing = made[key], FileManager.default.fileExists(atPath: path(existing.clip)) {
            made[key]!.used = now
            return existing.clip
        }
        clean(now)
        do {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        } catch {
            throw .io("cannot create \(directory): \(error.localizedDescription)")
        }
        let name = "\(UInt64.random(in: 0...UInt64.max)).mp4"
        let file = (directory as NSString).appendingPathComponent(name)
        let summary = try await Recording.export(root: root, index: index, camera: camera, to: file,
                                                 from: CaptureTime(nanoseconds: from * 1_000_000), to: CaptureTime(nanoseconds: to * 1_000_000),
                                                 fromKeyframeBefore: true, untilShapeChange: !whole, transcode: transcode && !whole)
        let bytes = ((try? FileManager.default.attributesOfItem(atPath: file))?[.size] as? NSNumber)?.int64Value ?? 0
        let clip = ClipInfo(url: "/api/clips/\(name)", camera: camera, start: summary.start / 1_000_000, end: summary.end / 1_000_000,
                            videoFrames: summary.videoFrames, audioFrames: summary.audioFrames, segments: summary.segments, bytes: bytes,
                            videoSizes: summary.videoSizes, notes: summary.notes, continues: summary.continues)
        made[key] = (clip, now)
        return clip
    }

    private func path(_ clip: ClipInfo) -> String {
        (directory as NSString).appendingPathComponent((clip.url as NSString).lastPathComponent)
    }

    /// Deletes clips not asked for in a while, and the oldest beyond ``most``.
    private func clean(_ now: ContinuousClock.Instant) {
        let byAge = made.sorted { $0.value.used > $1.value.used }
        for (position, (key, entry)) in byAge.enumerated() where now - entry.used > Self.keep || position >= Self.most - 1 {
            unlink(path(entry.clip))
            made[key] = nil
        }
    }
}
