// HLS of a recorded range (a VOD playlist), made from the recording's own fMP4 segment files:
// each file is one HLS segment, its `ftyp moov` the init segment (EXT-X-MAP) and the rest its
// media, served as byte ranges of the file — nothing is re-encoded or re-muxed. Each file's
// media time starts at zero, so every segment after the first follows an EXT-X-DISCONTINUITY.
import Foundation
import XTMedia

/// The HLS view of recordings.
public struct RecordingHLS: Sendable {
    public let root: String
    public let index: any RecorderIndex

    public init(root: String, index: any RecorderIndex) {
        self.root = root
        self.index = index
    }

    /// The closed segments of `camera` overlapping `from`...`to` (ns since 1970), oldest first.
    /// A camera with video lists only segments with video: the few milliseconds of sound a
    /// camera may record before its first keyframe would change the tracks between segments,
    /// which players (ffmpeg's among them) take badly.
    func segments(camera: String, from: Int64, to: Int64) async throws(StorageError) -> [SegmentRecord] {
        let all = try await index.segments(camera: camera, from: from, to: to).filter { !$0.isOpen && $0.end > $0.start }.sorted { $0.start < $1.start }
        return all.contains { $0.videoFrames > 0 } ? all.filter { $0.videoFrames > 0 } : all
    }

    /// The VOD playlist of a range. Segment URIs name each file by its start (ns): `seg-START.m4s`
    /// and `init-START.mp4`. EXT-X-START puts the player at `from` inside the first file.
    /// - Throws: ``StorageError`` (`notFound` when nothing was recorded then).
    public func playlist(camera: String, from: Int64, to: Int64) async throws(StorageError) -> String {
        let segments = try await segments(camera: camera, from: from, to: to)
        guard let first = segments.first else {
            throw StorageError(.notFound, "nothing of \(camera) was recorded between \(CaptureTime(nanoseconds: from)) and \(CaptureTime(nanoseconds: to))")
        }
        let longest = segments.map { Double($0.end - $0.start) / 1e9 }.max() ?? 1
        var lines = [
            "#EXTM3U",
            "#EXT-X-VERSION:7",
            // EXTINF durations rounded to the nearest second may not exceed it.
            "#EXT-X-TARGETDURATION:\(max(Int(longest.rounded()), 1))",
            "#EXT-X-PLAYLIST-TYPE:VOD",
            "#EXT-X-MEDIA-SEQUENCE:0",
            "#EXT-X-INDEPENDENT-SEGMENTS",
        ]
        if from > first.start { lines.append("#EXT-X-START:TIME-OFFSET=\(HLSPackager.decimal(Double(from - first.start) / 1e9)),PRECISE=YES") }
        for (number, segment) in segments.enumerated() {
            if number > 0 { lines.append("#EXT-X-DISCONTINUITY") }
            lines.append("#EXT-X-MAP:URI=\"init-\(segment.start).mp4\"")
            lines.append("#EXT-X-PROGRAM-DATE-TIME:\(HLSPackager.dateTime(milliseconds: segment.start / 1_000_000))")
            lines.append("#EXTINF:\(HLSPackager.decimal(Double(segment.end - segment.start) / 1e9)),")
            lines.append("seg-\(segment.start).m4s")
        }
        lines.append("#EXT-X-ENDLIST")
        return lines.joined(separator: "\n") + "\n"
    }

    /// The init segment (`header`) or the media (otherwise) of the file of `camera` that starts at
    /// `start`, when that file overlaps the playlist's range `from`..<`to` (a link signed for a
    /// range reaches nothing outside it).
    /// - Throws: ``StorageError``: `notFound` when no such file is in the index or the range (or
    ///   retention removed it).
    public func bytes(camera: String, start: Int64, header: Bool, from: Int64, to: Int64) async throws(StorageError) -> [UInt8] {
        guard let segment = try await index.segments(camera: camera, from: start, to: start + 1).first(where: { $0.start == start && !$0.isOpen }),
              segment.start < to, segment.end > from
        else { throw StorageError(.notFound, "no recorded segment of \(camera) in this playlist starts at \(start): reload the playlist") }
        let path = (root as NSString).appendingPathComponent(segment.path)
        let structure: FragmentedMP4.Structure
        do { structure = try FragmentedMP4.structure(of: path) } catch {
            throw StorageError(.notFound, "the segment file \(segment.path) cannot be read (\(error)): it may have been removed")
        }
        guard structure.hasHeader else { throw StorageError(.corruptSegment, "the segment file \(segment.path) has no MP4 header") }
        let range = header ? 0..<structure.headerLength : structure.headerLength..<structure.completeLength
        guard let handle = FileHandle(forReadingAtPath: path) else { throw StorageError(.notFound, "the segment file \(segment.path) is gone") }
        defer { try? handle.close() }
        do {
            try handle.seek(toOffset: UInt64(range.lowerBound))
            return Array(try handle.read(upToCount: range.count) ?? Data())
        } catch {
            throw StorageError(.io, "cannot read \(segment.path): \(error.localizedDescription)")
        }
    }
}
