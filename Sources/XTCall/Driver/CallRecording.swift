// A call recorded to an MP4 by a node without a screen: both directions, audio and video, as
// the packets were sent and received (no second encode). Tracks: this node's video and voice,
// then each party's video and voice. A party's times are its capture times moved onto this
// node's clock by the offset its first packet showed, so its picture and sound stay together.
// The file opens once every expected video track has shown its first keyframe (an MP4 track
// needs its SPS and PPS up front), or after `openWithin` without the late ones.
import Foundation
public import XTMedia
import XTransport

/// Writes one call to an MP4. Used from one task (the call agent's).
public final class CallRecording {
    public let path: String
    /// How long to wait for the video tracks' first keyframes before opening without them: a
    /// sender's keyframe interval (10 s at 15 fps) and a second, so a party whose first keyframe
    /// was lost still has its video recorded from the next (3 s once left a bench call's
    /// recording without the door's video when its first pictures were late). Audio waits in
    /// memory meanwhile.
    public static let openWithin: Duration = .seconds(11)

    private struct Track: Hashable {
        var party: String  // "" for this node
        var kind: CallMediaPacket.Kind
    }

    private let me: String
    private let audio: StreamDescription
    private var expected: [Track] = []
    private var descriptions: [Track: StreamDescription] = [:]
    private var pending: [(Track, EncodedFrame)] = []
    private var writer: MediaFileWriter?
    private var order: [Track] = []
    private var offsets: [String: Int64] = [:]
    private var started: Timestamp?
    /// Why the file could not be written (once set, nothing more is written).
    public private(set) var failure: String?
    /// Frames written per track, "me video", "door audio", ….
    public var written: [String: Int] {
        Dictionary(uniqueKeysWithValues: counts.map { track, count in ("\(track.party.isEmpty ? me : track.party) \(track.kind == .video ? "video" : "audio")", count) })
    }
    private var counts: [Track: Int] = [:]
    /// Each track's last frame written: its capture time (ns; times written only rise) and data.
    private var lastWritten: [Track: (time: Int64, data: [UInt8])] = [:]

    /// - Parameters:
    ///   - me: this node's name (its tracks' title).
    ///   - audioSampleRate: the call's Opus sample rate (16 kHz).
    public init(path: String, me: String, audioSampleRate: Int) {
        self.path = path
        self.me = me
        audio = StreamDescription(codec: .opus, sampleRate: audioSampleRate, channels: 1, configuration: Self.opusHead(sampleRate: audioSampleRate))
    }

    /// The tracks to expect: this node's (video if it has a camera) and each party's.
    public func expect(parties: [String], localVideo: Bool, localAudio: Bool, partyVideo: Bool) {
        guard writer == nil else { return }
        var tracks: [Track] = []
        if localVideo { tracks.append(Track(party: "", kind: .video)) }
        if localAudio { tracks.append(Track(party: "", kind: .audio)) }
        for party in parties {
            if partyVideo { tracks.append(Track(party: party, kind: .video)) }
            tracks.append(Track(party: party, kind: .audio))
        }
        expected = tracks
        for track in tracks where track.kind == .audio { descriptions[track] = audio }
        if started == nil { started = .monotonicNow }
    }

    /// A packet this node sent (`party` nil) or received from `party`.
    /// - Parameter video: the sender's stream description, for its first keyframe (SPS and PPS).
    public func add(_ packet: CallMediaPacket, from party: String?, video: StreamDescription? = nil) {
        guard failure == nil, packet.kind != .keyframeRequest, !packet.payload.isEmpty else { return }
        let track = Track(party: party ?? "", kind: packet.kind)
        guard expected.contains(track) else { return }
        let nowWall = CaptureTime.now.nanoseconds
        var capture = Int64(clamping: packet.captureMicroseconds) &* 1000
        if let party {
            let offset = offsets[party] ?? (nowWall - capture)
            offsets[party] = offset
            capture &+= offset
        }
        let isKeyframe = packet.kind == .audio || packet.flags.contains(.keyframe)
        let frame = EncodedFrame(codec: packet.kind == .audio ? .opus : .h264, data: Array(packet.primary), captureTime: CaptureTime(nanoseconds: capture),
                                 duration: packet.kind == .audio ? 20_000_000 : 0, isKeyframe: isKeyframe)
        if packet.kind == .video, descriptions[track] == nil {
            guard isKeyframe else { return }  // a track starts at a keyframe
            let sets = H264Bitstream.parameterSets(packet.payload)
            guard !sets.isEmpty else { return }
            var description = video ?? StreamDescription(codec: .h264)
            description.configuration = sets
            if let shape = H264StreamShape.read(keyframe: packet.payload) {
                description.width = shape.width
                description.height = shape.height
            }
            descriptions[track] = description
        }
        if let writer {
            write(frame, track: track, to: writer)
            return
        }
        pending.append((track, frame))
        openIfReady()
    }

    /// Opens the file when every expected video track has its description, or the wait is over.
    private func openIfReady(force: Bool = false) {
        let waited = force || started.map { Timestamp.monotonicNow.nanoseconds(since: $0) >= Self.openWithin.nanoseconds } ?? false
        guard expected.allSatisfy({ descriptions[$0] != nil }) || waited else { return }
        order = expected.filter { descriptions[$0] != nil }
        guard !order.isEmpty else { return }
        do {
            let opened = try MediaFileWriter(path: path, format: "mp4", streams: order.map { descriptions[$0]! },
                                             options: ["movflags": "+faststart"],
                                             metadata: ["title": "call: \(([me] + Set(order.map(\.party)).filter { !$0.isEmpty }.sorted()).joined(separator: ", "))"])
            writer = opened
            // The earliest first, so each track's times rise from the file's start.
            for (track, frame) in pending.sorted(by: { $0.1.captureTime < $1.1.captureTime }) { write(frame, track: track, to: opened) }
            pending = []
        } catch {
            failure = "cannot record the call to \(path): \(error)"
        }
    }

    private func write(_ frame: EncodedFrame, track: Track, to writer: MediaFileWriter) {
        guard let index = order.firstIndex(of: track) else { return }
        // A party's clock stamps its frames (a browser's in whole milliseconds): two may share a
        // time, or go back a little. A muxer needs each track's times to rise, so such a frame
        // is placed a millisecond after the one before (the file's finest common step).
        // The same picture twice (a copy that came by a second path) is written once.
        var frame = frame
        if let last = lastWritten[track], frame.captureTime.nanoseconds <= last.time {
            guard frame.captureTime.nanoseconds < last.time || frame.data != last.data else { return }
            frame.captureTime = CaptureTime(nanoseconds: last.time + 1_000_000)
        }
        lastWritten[track] = (frame.captureTime.nanoseconds, frame.data)
        do {
            try writer.write(frame, stream: index)
            counts[track, default: 0] += 1
        } catch {
            failure = "recording the call to \(path) stopped: \(error)"
        }
    }

    /// Ends the file (its index written). Safe to call twice.
    /// - Returns: why the file is incomplete or missing, if it is.
    @discardableResult
    public func finish() -> String? {
        if writer == nil, failure == nil, !pending.isEmpty {
            openIfReady(force: true)
        }
        if let writer {
            do { try writer.finish() } catch { failure = failure ?? "finishing \(path): \(error)" }
            self.writer = nil
        } else if failure == nil {
            failure = "nothing of the call reached \(path)"
        }
        return failure
    }

    /// An OpusHead (RFC 7845 §5.1) for mono Opus at `sampleRate`: the MP4 track's configuration.
    static func opusHead(sampleRate: Int) -> [UInt8] {
        var head = Array("OpusHead".utf8)
        head.append(1)
        head.append(1)
        let preSkip: UInt16 = 312  // 6.5 ms of encoder delay at 48 kHz (libopus's lookahead)
        head += [UInt8(preSkip & 0xFF), UInt8(preSkip >> 8)]
        let rate = UInt32(sampleRate)
        head += [UInt8(rate & 0xFF), UInt8((rate >> 8) & 0xFF), UInt8((rate >> 16) & 0xFF), UInt8(rate >> 24)]
        head += [0, 0, 0]
        return head
    }
}
