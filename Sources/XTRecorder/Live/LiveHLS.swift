// Low-latency HLS of every camera's live stream, for players without Media Source Extensions
// (iPhone Safari before ManagedMediaSource), VLC, ffmpeg and Home Assistant. It is made from the
// live view's own fMP4 fragments (CMAF chunks, one per video frame): no second encode and no
// second mux. Fragments are grouped into parts of at most `partTarget` and segments that start at
// a keyframe; the playlist follows RFC 8216bis (HLS 2nd edition, draft 16) with Apple's
// low-latency extensions: EXT-X-PART, blocking playlist reload (_HLS_msn/_HLS_part),
// EXT-X-PRELOAD-HINT, and PART-HOLD-BACK of three part targets. A camera is packaged only while
// someone asks for it (a viewer of ``LiveHub``), and stops after `idle` without a request.
import Foundation
import Synchronization
public import XTMedia

/// How live HLS is cut.
public struct HLSSettings: Sendable, Equatable {
    /// A part's longest duration (EXT-X-PART-INF:PART-TARGET). Apple suggests 0.2 to 1 s.
    public var partTarget: Duration = .milliseconds(200)
    /// A segment ends at the first keyframe after this long (segments follow the camera's GOP).
    public var segmentMinimum: Duration = .seconds(1)
    /// Whole segments the playlist keeps (older ones are dropped, with their bytes).
    public var windowSegments = 8
    /// Segments at the end whose parts are listed (the spec asks for the last three target durations' worth).
    public var segmentsWithParts = 3
    /// A camera's packaging stops when nobody has asked for it this long.
    public var idle: Duration = .seconds(30)
    /// How long a blocking request (a playlist or part not made yet, or the first segment of a
    /// camera just joined: up to a GOP) waits before 503.
    public var blockingTimeout: Duration = .seconds(12)

    public init() {}
}

/// Why an HLS request cannot be answered.
public enum HLSError: Error, Equatable, CustomStringConvertible {
    /// Not in the window (dropped already, or never made): 404.
    case notFound(String)
    /// A blocking request that asks too far ahead (more than two segments): 400.
    case tooFarAhead(String)
    /// Nothing came in time (the camera stalled): 503.
    case notYet(String)
    case live(LiveHub.LiveError)

    public var description: String {
        switch self {
        case .notFound(let what): "\(what) is not in the live playlist (it is older than its window, or does not exist): reload the playlist"
        case .tooFarAhead(let what): "\(what) is more than two segments ahead of the live edge"
        case .notYet(let what): "\(what) did not arrive in time: the camera may have stalled; try again"
        case .live(let error): error.description
        }
    }
}

/// The live HLS streams of every camera.
public final class LiveHLS: Sendable {
    public let live: LiveHub
    public let settings: HLSSettings
    private let streams = Mutex<[String: HLSPackager]>([:])

    public init(live: LiveHub, settings: HLSSettings = HLSSettings()) {
        self.live = live
        self.settings = settings
    }

    /// The packager of `camera` (with sound when `audio`), started when none runs.
    /// - Throws: ``HLSError/live(_:)`` when the camera is not live.
    public func stream(camera: String, audio: Bool) throws(HLSError) -> HLSPackager {
        let key = "\(audio ? "a" : "v")/\(camera)"
        if let running = streams.withLock({ $0[key] }), running.isRunning {
            running.touch()
            return running
        }
        let watched: (id: UInt64, packets: AsyncStream<LivePacket>)
        do { watched = try live.watch(camera, audio: audio) } catch { throw .live(error) }
        let packager = HLSPackager(camera: camera, settings: settings)
        packager.consume(watched.packets)
        return streams.withLock { streams in
            // Two first requests at once: the first packager stays, the other's feed ends.
            if let running = streams[key], running.isRunning {
                packager.stop()
                return running
            }
            streams[key] = packager
            return packager
        }
    }

    /// Stops every packager (the recorder is stopping).
    public func stop() {
        for packager in streams.withLock({ $0.values }) { packager.stop() }
    }
}

/// One camera's live HLS: parts and segments of its feed in a sliding window.
public final class HLSPackager: Sendable {
    struct Part {
        var bytes: [UInt8]
        /// Seconds.
        var duration: Double
        var independent: Bool
    }

    struct Segment {
        var msn: Int
        /// The EXT-X-MAP (init segment) it uses.
        var map: Int
        /// It starts after a change of the stream's shape (new init segment).
        var discontinuity: Bool
        /// Media time of its first frame, ns after the feed's origin.
        var start: Int64
        var parts: [Part] = []
        /// Seconds; set when it is complete.
        var duration = 0.0
        var complete = false
    }

    struct State {
        var maps: [Int: [UInt8]] = [:]
        var map = -1
        var mapChanged = false
        /// Capture time (ms since 1970) at media time zero.
        var origin: Int64 = 0
        /// The stream's description, as the live view gets it.
        var info: LiveHub.Info?
        var segments: [Segment] = []
        var open: Segment?
        var pending: [LiveFragment] = []
        var lastTime: Int64 = 0
        var lastGap: Int64 = 0
        var nextMSN: Int
        /// Segments made that start with a discontinuity.
        var discontinuities = 0
        var running = true
        var lastRequest = ContinuousClock.now
        var waiters: [UInt64: Waiter] = [:]
        var nextWaiter: UInt64 = 0
        var longestSegment = 1.0
    }

    struct Waiter {
        let ready: @Sendable (State) -> Bool
        let continuation: CheckedContinuation<Bool, Never>
    }

    public let camera: String
    let settings: HLSSettings
    let state: Mutex<State>
    private let task = Mutex<Task<Void, Never>?>(nil)

    init(camera: String, settings: HLSSettings) {
        self.camera = camera
        self.settings = settings
        // Media sequence numbers go on rising when a packager is made again (segments last at
        // least a second): players that kept an old playlist are not sent backwards.
        state = Mutex(State(nextMSN: Int(Date().timeIntervalSince1970) - 1_700_000_000))
    }

    var isRunning: Bool { state.withLock { $0.running } }

    func touch() { state.withLock { $0.lastRequest = .now } }

    /// Takes the feed's packets until it ends, or nobody asked for `idle`.
    func consume(_ packets: AsyncStream<LivePacket>) {
        let idle = settings.idle
        let task = Task { [weak self] in
            for await packet in packets {
                guard let self else { return }
                if self.state.withLock({ ContinuousClock.now - $0.lastRequest > idle }) { break }
                self.take(packet)
            }
            self?.finish()
        }
        self.task.withLock { $0 = task }
    }

    func stop() {
        task.withLock { $0 }?.cancel()
        finish()
    }

    private func finish() {
        let waiters = state.withLock { state in
            state.running = false
            defer { state.waiters.removeAll() }
            return Array(state.waiters.values)
        }
        for waiter in waiters { waiter.continuation.resume(returning: false) }
    }

    // MARK: cutting

    /// Takes one packet of the feed (the tests drive it directly).
    func take(_ packet: LivePacket) {
        let partTarget = settings.partTarget.nanoseconds
        let segmentMinimum = settings.segmentMinimum.nanoseconds
        let ready = state.withLock { state -> [Waiter] in
            switch packet {
            case .info(let info):
                state.origin = info.origin
                state.info = info
            case .header(let bytes):
                state.map += 1
                state.maps[state.map] = bytes
                // The stream changed shape: what is open ends where its last frame ends.
                if state.open != nil {
                    Self.closePart(&state, at: state.lastTime + state.lastGap)
                    Self.closeSegment(&state, at: state.lastTime + state.lastGap, window: settings.windowSegments)
                    state.mapChanged = true
                }
                // Old maps no segment uses are dropped.
                let used = Set(state.segments.map(\.map)).union([state.map])
                state.maps = state.maps.filter { used.contains($0.key) }
            case .fragment(let fragment):
                // The kept GOP a joining viewer gets first has no part times: the playlist
                // starts at the next keyframe.
                if fragment.catchUp { return [] }
                let time = fragment.time
                guard time > state.lastTime || state.open == nil else { return [] }
                if !state.pending.isEmpty {
                    let length = time - (state.pending.first?.time ?? time)
                    if fragment.keyframe || length + (time - state.lastTime) > partTarget + 1_000_000 {
                        Self.closePart(&state, at: time)
                    }
                }
                // (Half a frame of slack: a 1 s GOP at 30 fps is 999.99999 ms.)
                let slack = state.lastGap / 2
                if fragment.keyframe, state.open.map({ time - $0.start + slack >= segmentMinimum }) ?? true || state.mapChanged {
                    if state.open != nil { Self.closeSegment(&state, at: time, window: settings.windowSegments) }
                    state.open = Segment(msn: state.nextMSN, map: state.map, discontinuity: state.mapChanged && !state.segments.isEmpty, start: time)
                    if state.open!.discontinuity { state.discontinuities += 1 }
                    state.nextMSN += 1
                    state.mapChanged = false
                }
                guard state.open != nil else { return [] }  // before the first keyframe
                if state.lastTime > 0 || !state.pending.isEmpty { state.lastGap = time - state.lastTime }
                state.lastTime = time
                state.pending.append(fragment)
            }
            var ready: [Waiter] = []
            for (id, waiter) in state.waiters where waiter.ready(state) {
                ready.append(waiter)
                state.waiters[id] = nil
            }
            return ready
        }
        for waiter in ready { waiter.continuation.resume(returning: true) }
    }

    private static func closePart(_ state: inout State, at end: Int64) {
        guard let first = state.pending.first, state.open != nil else { return }
        let bytes = Array(state.pending.map(\.bytes).joined())
        state.open!.parts.append(Part(bytes: bytes, duration: Double(max(end - first.time, 1)) / 1e9, independent: first.keyframe))
        state.pending.removeAll(keepingCapacity: true)
    }

    private static func closeSegment(_ state: inout State, at end: Int64, window: Int) {
        guard var segment = state.open else { return }
        state.open = nil
        guard !segment.parts.isEmpty else { return }
        segment.duration = Double(max(end - segment.start, 1)) / 1e9
        segment.complete = true
        state.longestSegment = max(state.longestSegment, segment.duration)
        state.segments.append(segment)
        if state.segments.count > window { state.segments.removeFirst(state.segments.count - window) }
    }

    // MARK: serving

    /// Waits (up to the blocking timeout) until `ready` holds.
    private func wait(until ready: @escaping @Sendable (State) -> Bool) async -> Bool {
        let id = state.withLock { state -> UInt64? in
            state.lastRequest = .now
            guard !ready(state) else { return nil }
            state.nextWaiter += 1
            return state.nextWaiter
        }
        guard let id else { return true }
        let timeout = settings.blockingTimeout
        return await withCheckedContinuation { continuation in
            let waiting = state.withLock { state -> Bool in
                guard state.running else { return false }
                if ready(state) { return false }
                state.waiters[id] = Waiter(ready: ready, continuation: continuation)
                return true
            }
            guard waiting else {
                continuation.resume(returning: isRunning && state.withLock { ready($0) })
                return
            }
            Task { [weak self] in
                try? await Task.sleep(for: timeout)
                guard let waiter = self?.state.withLock({ $0.waiters.removeValue(forKey: id) }) else { return }
                waiter.continuation.resume(returning: false)
            }
        }
    }

    /// The media playlist. With `msn` (and `part`), waits until that segment (part) is there:
    /// blocking playlist reload.
    /// - Throws: ``HLSError``: too far ahead (400) or nothing in time (503).
    public func playlist(msn: Int? = nil, part: Int? = nil) async throws(HLSError) -> String {
        if let msn {
            let edge = state.withLock { $0.open?.msn ?? $0.nextMSN }
            guard msn <= edge + 2 else { throw .tooFarAhead("segment \(msn)") }
            let ready = await wait { state in
                if let open = state.open, open.msn == msn { return part.map { open.parts.count > $0 } ?? false }
                return (state.segments.last?.msn ?? Int.min) >= msn || (state.open?.msn ?? Int.min) > msn
            }
            guard ready else { throw .notYet("segment \(msn)\(part.map { " part \($0)" } ?? "")") }
        } else {
            // The first playlist waits for a whole segment, so that its target duration (the
            // camera's GOP) is known and holds from then on.
            guard await wait(until: { !$0.segments.isEmpty }) else { throw .notYet("the first segment of \(camera)") }
        }
        return state.withLock { render($0) }
    }

    /// The playlist text of `state`.
    func render(_ state: State) -> String {
        let partTarget = Double(settings.partTarget.nanoseconds) / 1e9
        var all = state.segments
        if let open = state.open { all.append(open) }
        // EXTINF durations rounded to the nearest second may not exceed it (RFC 8216 4.3.3.1).
        let target = Int(state.longestSegment.rounded())
        var lines = [
            "#EXTM3U",
            "#EXT-X-VERSION:9",
            "#EXT-X-TARGETDURATION:\(max(target, 1))",
            "#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,PART-HOLD-BACK=\(Self.decimal(3 * partTarget))",
            "#EXT-X-PART-INF:PART-TARGET=\(Self.decimal(partTarget))",
            "#EXT-X-MEDIA-SEQUENCE:\(all.first?.msn ?? state.nextMSN)",
            // The first segment's number: every discontinuity so far but those tagged below it.
            "#EXT-X-DISCONTINUITY-SEQUENCE:\(state.discontinuities - all.dropFirst().filter(\.discontinuity).count)",
        ]
        var map = -1
        let withParts = Set(all.suffix(settings.segmentsWithParts + 1).map(\.msn))
        for segment in all {
            if segment.discontinuity, segment.msn != all.first?.msn { lines.append("#EXT-X-DISCONTINUITY") }
            if segment.map != map {
                map = segment.map
                lines.append("#EXT-X-MAP:URI=\"init-\(map).mp4\"")
            }
            lines.append("#EXT-X-PROGRAM-DATE-TIME:\(Self.dateTime(milliseconds: state.origin + segment.start / 1_000_000))")
            if withParts.contains(segment.msn) {
                for (index, part) in segment.parts.enumerated() {
                    lines.append("#EXT-X-PART:DURATION=\(Self.decimal(part.duration)),URI=\"part-\(segment.msn).\(index).m4s\"\(part.independent ? ",INDEPENDENT=YES" : "")")
                }
            }
            if segment.complete {
                lines.append("#EXTINF:\(Self.decimal(segment.duration)),")
                lines.append("seg-\(segment.msn).m4s")
            }
        }
        if let open = state.open {
            lines.append("#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"part-\(open.msn).\(open.parts.count).m4s\"")
        }
        return lines.joined(separator: "\n") + "\n"
    }

    /// The stream's description (its MIME type with codecs, for a Media Source; its size).
    public func info() async throws(HLSError) -> LiveHub.Info {
        guard await wait(until: { $0.info != nil }), let info = state.withLock({ $0.info }) else { throw .notYet("the description of \(camera)") }
        return info
    }

    /// An init segment (`ftyp moov`).
    public func initSegment(_ map: Int) throws(HLSError) -> [UInt8] {
        touch()
        guard let bytes = state.withLock({ $0.maps[map] }) else { throw .notFound("init segment \(map)") }
        return bytes
    }

    /// A whole segment.
    public func segment(_ msn: Int) async throws(HLSError) -> [UInt8] {
        let known = await wait { state in state.segments.contains { $0.msn == msn } || (state.open?.msn ?? .max) > msn }
        let bytes = state.withLock { state in state.segments.first { $0.msn == msn }.map { Array($0.parts.map(\.bytes).joined()) } }
        guard let bytes else { throw known ? .notFound("segment \(msn)") : .notYet("segment \(msn)") }
        return bytes
    }

    /// A part; the one the preload hint names is answered as soon as it is complete.
    public func part(_ msn: Int, _ index: Int) async throws(HLSError) -> [UInt8] {
        let edge = state.withLock { $0.open?.msn ?? $0.nextMSN }
        guard msn <= edge + 1 else { throw .tooFarAhead("part \(msn).\(index)") }
        let ready = await wait { state in
            if let open = state.open, open.msn == msn { return open.parts.count > index }
            return (state.open?.msn ?? .max) > msn || state.segments.contains { $0.msn == msn }
        }
        let bytes = state.withLock { state -> [UInt8]? in
            let segment = state.open?.msn == msn ? state.open : state.segments.first { $0.msn == msn }
            guard let segment, index < segment.parts.count else { return nil }
            return segment.parts[index].bytes
        }
        guard let bytes else { throw ready ? .notFound("part \(msn).\(index)") : .notYet("part \(msn).\(index)") }
        return bytes
    }

    /// Seconds with up to three decimals, as playlists write them.
    static func decimal(_ seconds: Double) -> String {
        String(format: "%.3f", seconds)
    }

    /// ISO 8601 with milliseconds, UTC.
    static func dateTime(milliseconds: Int64) -> String {
        let date = Date(timeIntervalSince1970: Double(milliseconds) / 1000)
        return date.formatted(Date.ISO8601FormatStyle(includingFractionalSeconds: true))
    }
}
