// The live view's source: each camera's live frames, muxed into fragmented MP4 in memory as
// they arrive (one fragment per video frame) for the browsers watching it. A camera nobody
// watches costs only a list of the frames since its last keyframe, so that a new viewer starts
// at once, from that keyframe, instead of waiting for the next. Viewers that want sound get
// their own feed with the audio track; the others get video only. A camera whose stream changes
// shape keeps its viewers: they get the new description and header at its first keyframe.
import Foundation
import Synchronization
public import XTMedia

/// What a live viewer receives, in order: the stream's ``LiveHub/Info`` once, the MP4 header
/// (`ftyp moov`), then fragments. A camera whose stream changes shape sends info and header again.
public enum LivePacket: Sendable {
    case info(LiveHub.Info)
    case header([UInt8])
    case fragment(LiveFragment)
}

/// One or more `moof mdat` pairs of a live feed: one per video frame, or the kept GOP as one
/// when a viewer joins.
public struct LiveFragment: Sendable, Equatable {
    public var bytes: [UInt8]
    /// Capture time of its first video frame, in nanoseconds after the feed's origin
    /// (``LiveHub/Info/origin``): its media time.
    public var time: Int64
    /// It starts with a keyframe (a player can start here; HLS segments begin at one).
    public var keyframe: Bool
    /// The GOP kept for a viewer who joins, sent as one (it has no per-frame times).
    public var catchUp: Bool

    public init(bytes: [UInt8], time: Int64, keyframe: Bool, catchUp: Bool = false) {
        self.bytes = bytes
        self.time = time
        self.keyframe = keyframe
        self.catchUp = catchUp
    }
}

/// Live frames of every camera, muxed for the browsers that watch them.
public final class LiveHub: Sendable {
    /// What a viewer needs to set up playback.
    public struct Info: Sendable, Codable, Equatable {
        public var camera: String
        /// For `MediaSource.addSourceBuffer`, e.g. `video/mp4; codecs="avc1.64001f,opus"`.
        public var mime: String
        public var width: Int
        public var height: Int
        public var audio: Bool
        /// Capture time (milliseconds since 1970) at media time zero.
        public var origin: Int64
    }

    /// Why a viewer cannot watch.
    public enum LiveError: Error, Equatable, CustomStringConvertible {
        case noSuchCamera(String)
        case noVideoYet(String)
        case muxer(String)

        public var description: String {
            switch self {
            case .noSuchCamera(let camera): "camera '\(camera)' is not sending live video: check its agent is running and connected"
            case .noVideoYet(let camera): "camera '\(camera)' has not sent a keyframe yet: try again in a few seconds"
            case .muxer(let reason): "the live stream cannot be made: \(reason)"
            }
        }
    }

    /// Fragments a viewer may fall behind by before it is dropped (about 10 s at 30 fps); the
    /// page reconnects.
    public static let viewerBacklog = 300
    /// Bytes of coded media kept per camera since its last keyframe (and as much again per feed
    /// while watched), so that a viewer starts at once, from that keyframe, whatever the GOP:
    /// 48 MiB is 96 s at 4 Mbit/s. A GOP that outgrows it is dropped whole (never cut, which
    /// would break the decode): viewers then wait for the next keyframe, which the camera's agent
    /// is asked for.
    public static let defaultGOPByteLimit = 48 << 20
    /// The limit in use (tests give a small one).
    public let gopByteLimit: Int
    /// A viewer joining when the kept keyframe is older than this asks the agent for a new one
    /// (an agent that encodes answers at once; a camera's own H.264 keeps its GOP).
    static let freshKeyframe: Int64 = 1_000_000_000

    private struct Feed {
        var writer: MediaFileWriter
        var info: Info
        var header: [UInt8]
        /// Capture time at media time zero: kept when the stream changes, so media time goes on.
        var origin: CaptureTime
        /// The camera's stream changed shape: at its next keyframe the feed starts a new MP4
        /// header (and tells its viewers the new description) on the same media timeline.
        var stale = false
        /// Fragments since the last keyframe, for viewers who join now (past the GOP limit they
        /// wait for the next keyframe).
        var sinceKeyframe = KeyframeRun<LiveFragment>()
        var viewers: [UInt64: AsyncStream<LivePacket>.Continuation] = [:]
        var lastVideo: Int64 = .min
        var lastAudio: Int64 = .min
    }

    private struct Camera {
        var video: MediaStreamHeader?
        var audio: MediaStreamHeader?
        /// Live frames since the last video keyframe (video and audio, in arrival order).
        var gop = KeyframeRun<EncodedFrame>()
        /// Feeds by whether they carry sound.
        var feeds: [Bool: Feed] = [:]
        /// Its H.264 is one browsers cannot play and `transcode` is on: viewers get it re-encoded.
        var transcodes = false
        /// While someone watches such a camera: the re-encoder and its pictures since its last keyframe.
        var transcoder: VideoTranscoder?
        var transcodedGOP = KeyframeRun<EncodedFrame>()

        /// Keeps a video or audio frame since the last keyframe, within the byte limit.
        mutating func keep(_ frame: EncodedFrame, limit: Int) {
            gop.add(frame, size: frame.data.count, isKeyframe: frame.codec == .h264 && frame.isKeyframe, limit: limit)
        }

        /// What viewers are sent: the camera's video, or its re-encoding.
        var viewDescription: StreamDescription? { transcoder?.description ?? video?.description }

        /// Re-encodes one of the camera's video frames for viewers (none while nobody watches).
        mutating func transcode(_ frame: EncodedFrame, limit: Int) -> [EncodedFrame] {
            if transcoder == nil, frame.isKeyframe, let video { transcoder = try? VideoTranscoder(input: video.description) }
            guard let transcoder, let output = try? transcoder.convert(frame) else { return [] }
            for picture in output { transcodedGOP.add(picture, size: picture.data.count, isKeyframe: picture.isKeyframe, limit: limit) }
            return output
        }

        /// Nobody watches: the re-encoder stops (it costs a core).
        mutating func stopTranscoding() {
            transcoder = nil
            transcodedGOP.clear()
        }
    }

    private struct State {
        var cameras: [String: Camera] = [:]
        var byStream: [MediaStreamID: String] = [:]
        var nextViewer: UInt64 = 0
        var fragments = 0
        var dropped = 0
    }

    private let state = Mutex(State())
    /// Re-encode H.264 that browsers cannot play (High 4:2:2, High 10, 4:4:4) for viewers.
    public let transcode: Bool

    /// - Parameter transcode: re-encode cameras whose H.264 browsers cannot play, while someone
    ///   watches them (the recorder's `transcode = auto`).
    ///   - gopByteLimit: see ``defaultGOPByteLimit``.
    public init(transcode: Bool = false, gopByteLimit: Int = LiveHub.defaultGOPByteLimit) {
        self.transcode = transcode
        self.gopByteLimit = gopByteLimit
    }

    /// Cameras with live video, and whether each has sound.
    public var cameras: [String: Bool] {
        state.withLock { state in
            state.cameras.compactMapValues { $0.video == nil ? nil : $0.audio != nil }
        }
    }

    /// Fragments sent and viewers dropped for falling behind.
    public var counters: (fragments: Int, dropped: Int) { state.withLock { ($0.fragments, $0.dropped) } }

    /// Learns a stream: the camera it belongs to and its codec. A camera whose stream changed
    /// shape (a new resolution or profile) keeps its viewers: at the new stream's first keyframe
    /// each gets the new description and MP4 header, and their pages re-initialise the decoder
    /// in place.
    public func note(_ header: MediaStreamHeader) {
        state.withLock { state in
            state.byStream[header.stream] = header.camera
            var camera = state.cameras[header.camera] ?? Camera()
            let isVideo = header.description.codec == .h264
            let old = isVideo ? camera.video : camera.audio
            if isVideo {
                camera.video = header
                camera.transcodes = transcode && !header.description.isBrowserPlayable
            } else {
                camera.audio = header
            }
            if let old, old.description != header.description {
                if isVideo {
                    camera.gop.clear()
                    camera.stopTranscoding()
                }
                for key in Array(camera.feeds.keys) { camera.feeds[key]!.stale = true }
            }
            state.cameras[header.camera] = camera
        }
    }

    /// Takes one live frame (not backfill: the live view shows now).
    public func take(_ frame: MediaFrame) {
        let ended = state.withLock { state -> [AsyncStream<LivePacket>.Continuation] in
            // Taken out of the dictionary while it changes, so that its frame list is not copied
            // on every frame (copy-on-write).
            guard let name = state.byStream[frame.stream], var camera = state.cameras.removeValue(forKey: name) else { return [] }
            defer { state.cameras[name] = camera }
            let encoded = frame.frame
            let isVideo = encoded.codec == .h264
            guard isVideo ? camera.video?.stream == frame.stream : camera.audio?.stream == frame.stream else { return [] }
            camera.keep(encoded, limit: gopByteLimit)
            // What viewers get of this frame: itself, or its re-encoding (while anyone watches).
            let outputs = isVideo && camera.transcodes ? (camera.feeds.isEmpty ? [] : camera.transcode(encoded, limit: gopByteLimit)) : [encoded]
            var ended: [AsyncStream<LivePacket>.Continuation] = []
            for withAudio in [false, true] where !camera.feeds.isEmpty {
                if !withAudio && !isVideo { continue }
                guard var feed = camera.feeds.removeValue(forKey: withAudio) else { continue }
                if feed.stale {
                    // The new shape starts at a keyframe: until then the feed waits.
                    guard isVideo, let keyframe = outputs.first(where: \.isKeyframe),
                          let fresh = try? Self.renew(feed, camera: camera, keyframe: keyframe, withAudio: withAudio) else {
                        camera.feeds[withAudio] = feed
                        continue
                    }
                    feed = fresh
                    for viewer in feed.viewers.values {
                        viewer.yield(.info(feed.info))
                        viewer.yield(.header(feed.header))
                    }
                }
                for output in outputs {
                    let sent = Self.mux(output, into: &feed, audioTrack: withAudio ? 1 : nil, limit: gopByteLimit)
                    state.fragments += sent.fragments
                    state.dropped += sent.dropped.count
                    ended += sent.dropped
                }
                camera.feeds[withAudio] = feed.viewers.isEmpty ? nil : feed
                if feed.viewers.isEmpty { try? feed.writer.finish() }
            }
            if camera.feeds.isEmpty { camera.stopTranscoding() }
            return ended
        }
        for viewer in ended { viewer.finish() }
    }

    /// Starts watching `camera` (with sound when `audio` and the camera has it). The stream ends
    /// when the camera's stream changes, the viewer falls too far behind, or the hub stops.
    public func watch(_ cameraName: String, audio wantsAudio: Bool) throws(LiveError) -> (id: UInt64, packets: AsyncStream<LivePacket>) {
        let (packets, continuation) = AsyncStream.makeStream(of: LivePacket.self, bufferingPolicy: .bufferingOldest(Self.viewerBacklog + 3))
        var wantKeyframe = false
        // After the lock is let go, joined or not: the handler sends a keyframe request to the agent.
        defer { if wantKeyframe, let handler = keyframeWanted.withLock({ $0 }) { handler(cameraName) } }
        let id = try state.withLock { (state) throws(LiveError) -> UInt64 in
            try Self.join(&state, cameraName, wantsAudio: wantsAudio, continuation: continuation, limit: gopByteLimit, wantKeyframe: &wantKeyframe)
        }
        continuation.onTermination = { [weak self] _ in self?.leave(cameraName, viewer: id) }
        return (id, packets)
    }

    /// Who is told that a viewer wants a fresh keyframe of a camera (the ingest, which asks the
    /// camera's agent, at most once a second).
    private let keyframeWanted = Mutex<(@Sendable (String) -> Void)?>(nil)

    /// Sets who is told when a viewer joins a camera whose kept keyframe is old (a long GOP) or
    /// missing: the recorder asks the camera's agent for a keyframe.
    public func onKeyframeWanted(_ handler: @escaping @Sendable (String) -> Void) {
        keyframeWanted.withLock { $0 = handler }
    }

    /// Adds a viewer to a camera's feed (made from the kept GOP when none runs); returns its id.
    private static func join(_ state: inout State, _ cameraName: String, wantsAudio: Bool,
                             continuation: AsyncStream<LivePacket>.Continuation, limit: Int, wantKeyframe: inout Bool) throws(LiveError) -> UInt64 {
        guard var camera = state.cameras[cameraName], let video = camera.video else { throw .noSuchCamera(cameraName) }
        let withAudio = wantsAudio && camera.audio != nil
        // A kept keyframe more than a second old (a long GOP), or none: ask for a new one.
        if let first = camera.gop.items.first, let last = camera.gop.items.last {
            wantKeyframe = last.captureTime.nanoseconds(since: first.captureTime) > freshKeyframe
        } else {
            wantKeyframe = true
        }
        if camera.feeds[withAudio] == nil {
            guard let first = camera.gop.items.first, first.isKeyframe else { throw .noVideoYet(cameraName) }
            var pictures = camera.gop.items.filter { $0.codec == .h264 }
            if camera.transcodes {
                // The first viewer starts the re-encoder on the kept GOP; later ones share it.
                if camera.transcoder == nil {
                    camera.transcoder = try transcoder(for: video.description)
                    for picture in pictures { _ = camera.transcode(picture, limit: limit) }
                }
                pictures = camera.transcodedGOP.items
            }
            guard let keyframe = pictures.first, keyframe.isKeyframe, let description = camera.viewDescription else { throw .noVideoYet(cameraName) }
            var feed = try makeFeed(camera: cameraName, video: description, audio: withAudio ? camera.audio!.description : nil,
                                    keyframe: keyframe, origin: keyframe.captureTime)
            let sounds = withAudio ? camera.gop.items.filter { $0.codec == .opus } : []
            // The kept GOP goes out as one fragment, however long: a viewer's backlog limit counts
            // live fragments, not the catch-up.
            for frame in (pictures + sounds).sorted(by: { $0.captureTime < $1.captureTime }) {
                _ = mux(frame, into: &feed, audioTrack: withAudio ? 1 : nil, flush: false, limit: limit)
            }
            _ = flush(&feed, startsAtKeyframe: true, time: keyframe.captureTime, limit: limit)
            camera.feeds[withAudio] = feed
        }
        let feed = camera.feeds[withAudio]!
        // A feed past the GOP limit serves new viewers again from the next keyframe.
        guard !feed.sinceKeyframe.overflowed else { throw .noVideoYet(cameraName) }
        let caughtUp = feed.sinceKeyframe.items
        // A feed waiting for the new shape's keyframe sends its header then.
        if !feed.stale {
            continuation.yield(.info(feed.info))
            continuation.yield(.header(feed.header))
            if let first = caughtUp.first {
                continuation.yield(.fragment(LiveFragment(bytes: Array(caughtUp.map(\.bytes).joined()), time: first.time, keyframe: first.keyframe,
                                                          catchUp: true)))
            }
        }
        state.nextViewer += 1
        camera.feeds[withAudio]!.viewers[state.nextViewer] = continuation
        state.cameras[cameraName] = camera
        return state.nextViewer
    }

    /// A re-encoder for a camera browsers cannot play.
    /// - Throws: ``LiveError/muxer(_:)`` when it cannot be opened.
    private static func transcoder(for description: StreamDescription) throws(LiveError) -> VideoTranscoder {
        do { return try VideoTranscoder(input: description) } catch {
            throw .muxer("re-encoding \(description.h264Profile.map(H264StreamShape.profileName) ?? "the camera's H.264") failed: \(error.reason)")
        }
    }

    /// A feed's muxer and header for a video description (and sound), from `keyframe` on.
    /// - Throws: ``LiveError/muxer(_:)`` when the MP4 header cannot be made.
    private static func makeFeed(camera: String, video: StreamDescription, audio: StreamDescription?, keyframe: EncodedFrame,
                                 origin: CaptureTime) throws(LiveError) -> Feed {
        // The header goes out before any frame: it needs the SPS and PPS, from the keyframe when
        // the stream's description has none.
        var description = video
        if description.configuration.isEmpty { description.configuration = H264Bitstream.parameterSets(keyframe.data) }
        let writer: MediaFileWriter
        do {
            writer = try MediaFileWriter(path: "live:\(camera)", format: "mp4", streams: [description] + (audio.map { [$0] } ?? []),
                                         origin: origin, inMemory: true)
        } catch {
            throw .muxer("\(error)")
        }
        let info = Info(camera: camera, mime: Self.mime(video: description, audio: audio != nil), width: video.width, height: video.height,
                        audio: audio != nil, origin: origin.nanoseconds / 1_000_000)
        return Feed(writer: writer, info: info, header: writer.takeOutput(), origin: origin)
    }

    /// A stale feed made again for the camera's new shape, on the same media timeline and with
    /// the same viewers.
    private static func renew(_ feed: Feed, camera: Camera, keyframe: EncodedFrame, withAudio: Bool) throws(LiveError) -> Feed {
        guard let video = camera.viewDescription else { throw .noSuchCamera(feed.info.camera) }
        try? feed.writer.finish()
        var fresh = try makeFeed(camera: feed.info.camera, video: video, audio: withAudio ? camera.audio?.description : nil,
                                 keyframe: keyframe, origin: feed.origin)
        fresh.viewers = feed.viewers
        fresh.lastVideo = feed.lastVideo
        fresh.lastAudio = feed.lastAudio
        return fresh
    }

    /// Ends every viewer's stream (the recorder is stopping).
    public func stop() {
        let ended = state.withLock { state in
            Array(state.cameras.keys).flatMap { Self.endFeeds(&state.cameras[$0]!) }
        }
        for viewer in ended { viewer.finish() }
    }

    private func leave(_ cameraName: String, viewer: UInt64) {
        state.withLock { state in
            guard var camera = state.cameras[cameraName] else { return }
            for withAudio in Array(camera.feeds.keys) {
                camera.feeds[withAudio]!.viewers[viewer] = nil
                if camera.feeds[withAudio]!.viewers.isEmpty {
                    try? camera.feeds[withAudio]!.writer.finish()
                    camera.feeds[withAudio] = nil
                }
            }
            if camera.feeds.isEmpty { camera.stopTranscoding() }
            state.cameras[cameraName] = camera
        }
    }

    /// Closes a camera's feeds; returns their viewers, to be finished outside the lock.
    private static func endFeeds(_ camera: inout Camera) -> [AsyncStream<LivePacket>.Continuation] {
        let viewers = camera.feeds.values.flatMap { $0.viewers.values }
        for feed in camera.feeds.values { try? feed.writer.finish() }
        camera.feeds.removeAll()
        return viewers
    }

    /// Writes one frame into a feed; after each video frame (unless `flush` is false) the
    /// fragment goes to the viewers. Viewers that fell behind are removed and returned, to be
    /// finished outside the lock.
    private static func mux(_ frame: EncodedFrame, into feed: inout Feed, audioTrack: Int?, flush: Bool = true, limit: Int)
        -> (fragments: Int, dropped: [AsyncStream<LivePacket>.Continuation]) {
        let isVideo = frame.codec == .h264
        let time = frame.captureTime.nanoseconds
        // Late or repeated frames would go backwards in the stream: the live view skips them.
        if isVideo {
            guard time > feed.lastVideo else { return (0, []) }
            feed.lastVideo = time
        } else {
            guard let _ = audioTrack, time > feed.lastAudio else { return (0, []) }
            feed.lastAudio = time
        }
        do {
            try feed.writer.write(frame, stream: isVideo ? 0 : audioTrack!)
        } catch {
            return (0, [])
        }
        guard isVideo, flush else { return (0, []) }
        return Self.flush(&feed, startsAtKeyframe: frame.isKeyframe, time: frame.captureTime, limit: limit)
    }

    /// Ends the feed's fragment and sends it; it is kept for viewers who join before the next
    /// keyframe, within the GOP limit.
    /// `time`: the capture time of the fragment's first video frame.
    private static func flush(_ feed: inout Feed, startsAtKeyframe: Bool, time: CaptureTime, limit: Int)
        -> (fragments: Int, dropped: [AsyncStream<LivePacket>.Continuation]) {
        _ = try? feed.writer.flushFragment()
        let bytes = feed.writer.takeOutput()
        guard !bytes.isEmpty else { return (0, []) }
        let fragment = LiveFragment(bytes: bytes, time: time.nanoseconds(since: feed.origin), keyframe: startsAtKeyframe)
        feed.sinceKeyframe.add(fragment, size: bytes.count, isKeyframe: startsAtKeyframe, limit: limit)
        var dropped: [AsyncStream<LivePacket>.Continuation] = []
        for (id, viewer) in feed.viewers {
            if case .dropped = viewer.yield(.fragment(fragment)) {
                feed.viewers[id] = nil
                dropped.append(viewer)
            }
        }
        return (1, dropped)
    }

    /// The MIME type a browser's Media Source needs: the H.264 profile and level come from the
    /// stream's SPS.
    static func mime(video: StreamDescription, audio: Bool) -> String {
        let sps = H264Bitstream.profileBytes(of: video.configuration) ?? [0x42, 0xC0, 0x1F]
        let codec = "avc1." + sps.map { String(format: "%02x", $0) }.joined()
        return "video/mp4; codecs=\"\(codec)\(audio ? ",opus" : "")\""
    }
}

/// Items since the last keyframe (frames, or muxed fragments), kept whole up to a byte limit:
/// past it they are dropped whole — never cut, which would break the decode — until the next
/// keyframe starts a run again. Nothing before the first keyframe is kept.
struct KeyframeRun<Item> {
    private(set) var items: [Item] = []
    private(set) var bytes = 0
    /// The run outgrew the limit: empty until the next keyframe.
    private(set) var overflowed = false

    /// Adds `item` of `size` bytes; a keyframe starts the run again.
    mutating func add(_ item: Item, size: Int, isKeyframe: Bool, limit: Int) {
        if isKeyframe {
            items.removeAll(keepingCapacity: true)
            bytes = 0
            overflowed = false
        }
        guard !overflowed, isKeyframe || !items.isEmpty else { return }
        guard bytes + size <= limit else {
            items.removeAll()
            bytes = 0
            overflowed = true
            return
        }
        items.append(item)
        bytes += size
    }

    mutating func clear() {
        items.removeAll()
        bytes = 0
        overflowed = false
    }
}
