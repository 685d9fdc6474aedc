// Segment files: fragmented MP4 (H.264 + Opus) under `<root>/<camera>/<date>/<hour>/`, named
// by the capture time (UTC) of their first frame. Each carries its camera and exact start
// time as tags, so the index can be rebuilt from the files alone. Here: naming, reading a
// segment back into frames, writing frames as segments cut at keyframes, and inspecting one.
import Foundation
public import XTMedia

/// Segment files on disk.
public enum SegmentFile {
    /// Tags every segment carries.
    static let cameraTag = "xt_camera"
    static let startTag = "xt_start"

    /// `<camera>/<yyyy-mm-dd>/<HH>/<HH-MM-SS.mmm>.mp4` for a segment starting at `start` (UTC).
    public static func relativePath(camera: String, start: Int64) -> String {
        var seconds = time_t(start / 1_000_000_000)
        var parts = tm()
        gmtime_r(&seconds, &parts)
        let milliseconds = Int((start % 1_000_000_000) / 1_000_000)
        let day = String(format: "%04d-%02d-%02d", Int(parts.tm_year) + 1900, Int(parts.tm_mon) + 1, Int(parts.tm_mday))
        let hour = String(format: "%02d", Int(parts.tm_hour))
        let name = String(format: "%02d-%02d-%02d.%03d.mp4", Int(parts.tm_hour), Int(parts.tm_min), Int(parts.tm_sec), milliseconds)
        return "\(camera)/\(day)/\(hour)/\(name)"
    }

    /// `relativePath`, with "-1", "-2"… added while a file (or a name in `taken`) has it.
    static func uniquePath(camera: String, start: Int64, root: String, taken: Set<String> = []) -> String {
        let base = relativePath(camera: camera, start: start)
        var candidate = base
        var attempt = 1
        while taken.contains(candidate) || FileManager.default.fileExists(atPath: (root as NSString).appendingPathComponent(candidate)) {
            candidate = base.replacingOccurrences(of: ".mp4", with: "-\(attempt).mp4")
            attempt += 1
        }
        return candidate
    }

    /// The frames of a segment and how to decode them.
    public struct Contents: Sendable {
        public var camera: String?
        public var start: Int64
        public var video: StreamDescription?
        public var audio: StreamDescription?
        /// Every frame in capture-time order per track (video in Annex B).
        public var frames: [EncodedFrame]

        /// Capture time of the end of its last frame.
        public var end: Int64 { frames.map { $0.captureTime.nanoseconds + $0.duration }.max() ?? start }
        public var videoFrames: Int { frames.count { $0.codec == .h264 } }
        public var audioFrames: Int { frames.count { $0.codec == .opus } }
    }

    /// The start time a segment's name gives (to the millisecond), for files that lack the tag.
    static func start(fromName path: String) -> Int64? {
        let parts = path.split(separator: "/")
        guard parts.count >= 3 else { return nil }
        let day = parts[parts.count - 3].split(separator: "-").compactMap { Int($0) }
        let clock = parts[parts.count - 1].replacingOccurrences(of: ".mp4", with: "").split(whereSeparator: { $0 == "-" || $0 == "." }).compactMap { Int($0) }
        // Names are ours (1970–2199, a real clock): anything else is not a segment's name.
        guard day.count == 3, clock.count == 4, (1970...2199).contains(day[0]), (1...12).contains(day[1]), (1...31).contains(day[2]),
              (0...23).contains(clock[0]), (0...59).contains(clock[1]), (0...60).contains(clock[2]), (0...999).contains(clock[3]) else { return nil }
        var parts2 = tm()
        parts2.tm_year = Int32(day[0] - 1900)
        parts2.tm_mon = Int32(day[1] - 1)
        parts2.tm_mday = Int32(day[2])
        parts2.tm_hour = Int32(clock[0])
        parts2.tm_min = Int32(clock[1])
        parts2.tm_sec = Int32(clock[2])
        return Int64(timegm(&parts2)) * 1_000_000_000 + Int64(clock[3]) * 1_000_000
    }

    /// Reads a whole segment.
    /// - Throws: ``StorageError`` (``StorageError/Code/corruptSegment``) when it does not parse.
    public static func read(_ path: String, withData: Bool = true) throws(StorageError) -> Contents {
        let reader: MediaFileReader
        do { reader = try MediaFileReader(path: path) } catch {
            throw .corruptSegment("segment \(path) cannot be read (\(error.reason)): move it out of the storage root, then run `xt recorder --reindex`")
        }
        guard let start = reader.metadata[startTag].flatMap({ Int64($0) }) ?? Self.start(fromName: path) else {
            throw .corruptSegment("segment \(path) has no start time: it was not written by xt recorder; move it out of the storage root")
        }
        guard CaptureTime(nanoseconds: start).isValid else {
            throw .corruptSegment("segment \(path) says it starts \(start) ns after 1970, outside 1970–2199: move it out of the storage root, then run `xt recorder --reindex`")
        }
        var contents = Contents(camera: reader.metadata[cameraTag], start: start, frames: [])
        var kinds: [MediaKind?] = []
        for track in reader.tracks {
            kinds.append(track.kind)
            switch track.kind {
            case .video?:
                var configuration = track.configuration
                if configuration.first == 1 { configuration = avcConfigurationToAnnexB(configuration) }
                contents.video = StreamDescription(codec: .h264, width: track.width, height: track.height, configuration: configuration)
            case .audio?:
                contents.audio = StreamDescription(codec: .opus, sampleRate: track.sampleRate, channels: track.channels,
                                                   configuration: track.configuration)
            case nil: continue
            }
        }
        while true {
            let packet: MediaFileReader.Packet?
            do { packet = try reader.next() } catch {
                throw .corruptSegment("segment \(path) is damaged (\(error.reason)): move it out of the storage root, then run `xt recorder --reindex`")
            }
            guard let packet else { break }
            // A time the file cannot mean (damaged, or crafted) is dropped, not added up.
            guard packet.track < kinds.count, let kind = kinds[packet.track], let offset = packet.decodeNanoseconds,
                  CaptureTime(nanoseconds: CaptureTime.saturating(start, plus: offset)).isValid,
                  (0...EncodedFrame.maximumCompositionOffset).contains(packet.duration) else { continue }
            let data = !withData ? [] : kind == .video ? H264Bitstream.annexB(lengthPrefixed: packet.data) : packet.data
            contents.frames.append(EncodedFrame(codec: kind == .video ? .h264 : .opus, data: data,
                                                captureTime: CaptureTime(nanoseconds: start + offset),
                                                duration: packet.duration, isKeyframe: packet.isKeyframe,
                                                compositionOffset: kind == .video ? packet.compositionOffset : 0))
        }
        return contents
    }

    /// An avcC record's SPS and PPS in Annex B.
    static func avcConfigurationToAnnexB(_ record: [UInt8]) -> [UInt8] {
        guard record.count > 6 else { return [] }
        var result: [UInt8] = []
        var index = 5
        let spsCount = Int(record[index] & 0x1F)
        index += 1
        func take() -> Bool {
            guard index + 2 <= record.count else { return false }
            let length = Int(record[index]) << 8 | Int(record[index + 1])
            index += 2
            guard index + length <= record.count else { return false }
            result += [0, 0, 0, 1] + record[index..<(index + length)]
            index += length
            return true
        }
        for _ in 0..<spsCount where !take() { return result }
        guard index < record.count else { return result }
        let ppsCount = Int(record[index])
        index += 1
        for _ in 0..<ppsCount where !take() { return result }
        return result
    }

    /// Opens a segment for live writing: fragments go to disk at each ``MediaFileWriter/flushFragment()``.
    /// - Throws: ``StorageError`` when the file cannot be created.
    static func create(at path: String, camera: String, start: Int64, video: StreamDescription?, audio: StreamDescription?) throws(StorageError) -> MediaFileWriter {
        let directory = (path as NSString).deletingLastPathComponent
        do {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        } catch {
            throw .io("cannot create \(directory) (\(error.localizedDescription)): check the storage root is writable and has free space")
        }
        do {
            return try MediaFileWriter(path: path, format: "mp4", streams: [video, audio].compactMap { $0 },
                                       origin: CaptureTime(nanoseconds: start), fragmented: true,
                                       metadata: [cameraTag: camera, startTag: String(start)])
        } catch {
            throw .media(error)
        }
    }

    /// Writes frames (sorted by capture time, the first video frame a keyframe) as one segment
    /// at `path`, flushed in fragments of about `fragment` nanoseconds of capture time.
    /// - Throws: ``StorageError`` when the file cannot be written (a full disk, for one).
    static func write(_ frames: [EncodedFrame], to path: String, camera: String, video: StreamDescription?,
                      audio: StreamDescription?, fragment: Int64 = 1_000_000_000) throws(StorageError) -> (start: Int64, bytes: Int64) {
        let video = frames.contains { $0.codec == .h264 } ? video : nil
        let audio = frames.contains { $0.codec == .opus } ? audio : nil
        guard let first = frames.first else { throw .io("no frames to write to \(path)") }
        let start = first.captureTime.nanoseconds
        let writer = try create(at: path, camera: camera, start: start, video: video, audio: audio)
        var lastFlush = start
        do {
            for frame in frames {
                let track = frame.codec == .h264 ? 0 : (video == nil ? 0 : 1)
                if frame.codec == .h264 ? video == nil : audio == nil { continue }
                if frame.captureTime.nanoseconds - lastFlush >= fragment {
                    try writer.flushFragment()
                    lastFlush = frame.captureTime.nanoseconds
                }
                try writer.write(frame, stream: track)
            }
            try writer.finish()
        } catch {
            throw .media(error)
        }
        let size = (try? FileManager.default.attributesOfItem(atPath: path)[.size] as? Int) ?? 0
        return (start, Int64(size))
    }

    /// Splits frames (sorted by capture time) into segments of about `target` nanoseconds,
    /// each starting at a video keyframe (at any frame when there is no video).
    static func cut(_ frames: [EncodedFrame], target: Int64) -> [[EncodedFrame]] {
        let hasVideo = frames.contains { $0.codec == .h264 }
        var pieces: [[EncodedFrame]] = []
        var current: [EncodedFrame] = []
        var start: Int64 = 0
        for frame in frames {
            let boundary = hasVideo ? frame.codec == .h264 && frame.isKeyframe : true
            if !current.isEmpty, boundary, frame.captureTime.nanoseconds - start >= target {
                pieces.append(current)
                current = []
            }
            if current.isEmpty { start = frame.captureTime.nanoseconds }
            current.append(frame)
        }
        if !current.isEmpty { pieces.append(current) }
        return pieces
    }
}
