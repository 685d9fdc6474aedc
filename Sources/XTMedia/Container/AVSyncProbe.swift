// Measures how well audio and video line up in a recording of the synthetic camera and
// microphone: the camera lights its marker and the microphone beeps at the same capture
// moments (every whole second of stream time), so in a correct file each marker onset and its
// beep onset have the same presentation time. The difference is the A/V drift.
import Foundation

/// A/V alignment of a file made from the synthetic sources.
public struct AVSyncReport: Sendable, Equatable, Codable {
    /// Marker (video) and beep (audio) onsets found, in seconds.
    public var videoOnsets: [Double]
    public var audioOnsets: [Double]
    /// Audio minus video for each matched pair, in milliseconds.
    public var drifts: [Double]
    /// Whether each track's timestamps rise.
    public var videoTimestampsRise: Bool
    public var audioTimestampsRise: Bool
    public var videoFrames: Int
    public var audioPackets: Int

    public var maximumDriftMilliseconds: Double { drifts.map(abs).max() ?? .infinity }
}

public enum AVSyncProbe {
    /// Decodes `path` and pairs each marker onset with the nearest beep onset.
    /// - Throws: ``MediaError`` when the file cannot be read or lacks a track.
    public static func measure(path: String) throws(MediaError) -> AVSyncReport {
        let reader = try MediaFileReader(path: path)
        guard let videoTrack = reader.tracks.firstIndex(where: { $0.kind == .video }),
              let audioTrack = reader.tracks.firstIndex(where: { $0.kind == .audio }) else {
            throw .unsupportedFormat("\(path) needs a video and an audio track to measure A/V sync")
        }
        let video = try VideoDecoder(codec: .h264, configuration: reader.tracks[videoTrack].configuration)
        let audio = try OpusDecoder(sampleRate: 48_000, channels: max(reader.tracks[audioTrack].channels, 1))
        let head = reader.tracks[audioTrack].configuration
        let preSkip = head.count >= 12 ? Int(head[10]) | Int(head[11]) << 8 : 0

        var report = AVSyncReport(videoOnsets: [], audioOnsets: [], drifts: [], videoTimestampsRise: true, audioTimestampsRise: true,
                                  videoFrames: 0, audioPackets: 0)
        var lastVideo = -Double.infinity, lastAudio = -Double.infinity
        var markerWasLit = true  // an onset needs a dark frame first
        var audioStart: Double?
        var pcm: [Int16] = []
        while let packet = try reader.next() {
            guard let time = packet.time else { continue }
            if packet.track == videoTrack {
                if time <= lastVideo { report.videoTimestampsRise = false }
                lastVideo = time
                // The decoder stamps each picture with the time it is given (no reordering here).
                for frame in video.decode(packet.data, captureTime: CaptureTime(nanoseconds: Int64(time * 1e9))) {
                    report.videoFrames += 1
                    let lit = SyntheticVideoSource.markerLit(frame)
                    if lit && !markerWasLit { report.videoOnsets.append(Double(frame.captureTime.nanoseconds) / 1e9) }
                    markerWasLit = lit
                }
            } else if packet.track == audioTrack {
                if time <= lastAudio { report.audioTimestampsRise = false }
                lastAudio = time
                report.audioPackets += 1
                if audioStart == nil { audioStart = time }
                pcm += (try? audio.decode(packet.data)) ?? []
            }
        }
        // Beep onsets: the first loud sample after at least 200 ms of quiet.
        let rate = 48_000.0
        var quiet = 0
        let start = audioStart ?? 0
        for index in preSkip..<max(pcm.count, preSkip) {
            if abs(Int(pcm[index])) > 8000 {
                if quiet >= 9600 { report.audioOnsets.append(start + Double(index - preSkip) / rate) }
                quiet = 0
            } else {
                quiet += 1
            }
        }
        // The first audio onset counts only if quiet preceded it from the start.
        for onset in report.videoOnsets {
            guard let nearest = report.audioOnsets.min(by: { abs($0 - onset) < abs($1 - onset) }), abs(nearest - onset) < 0.5 else { continue }
            report.drifts.append((nearest - onset) * 1000)
        }
        return report
    }
}
