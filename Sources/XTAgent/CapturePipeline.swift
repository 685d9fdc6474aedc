// Capture → encode, one thread per source. A source blocks until its next picture or block
// of samples; the thread encodes it at once and hands the coded frame on. A camera that goes
// away is reopened after a backoff that doubles to 30 s (with one log line when it goes and one
// when it is back), and
// the first picture after that is a keyframe.
import Foundation
public import Logging
import Synchronization
public import XTMedia

/// A coded frame and the description of its stream at that moment.
public struct PipelineOutput: Sendable {
    public var frame: EncodedFrame
    public var description: StreamDescription
}

/// Counters of one pipeline.
public struct PipelineStats: Sendable, Equatable {
    public var captured = 0
    public var encoded = 0
    public var deviceLosses = 0
    public var errors = 0
    /// Times the source was opened (or tried).
    public var openAttempts = 0
}

/// How often a source that fails is tried again: after `initial`, doubling to `maximum`, each
/// wait ± `jitter` (so that cameras behind one broken link do not retry in step). Opening
/// successfully starts it over.
public struct RetryBackoff: Sendable, Equatable {
    public var initial: Duration
    public var maximum: Duration
    public var jitter: Double
    private var failures = 0

    /// 1 s, doubling to 30 s, ± 20%.
    public init(initial: Duration = .seconds(1), maximum: Duration = .seconds(30), jitter: Double = 0.2) {
        self.initial = initial
        self.maximum = maximum
        self.jitter = jitter
    }

    /// The wait before the next try; counts a failure.
    public mutating func next() -> Duration {
        let base = min(initial * Double(1 << min(failures, 20)), maximum)
        failures += 1
        return base * Double.random(in: (1 - jitter)...(1 + jitter))
    }

    /// The source opened: the next failure waits `initial` again.
    public mutating func reset() { failures = 0 }
}

/// A capture thread: a source (reopened when it fails), its encoder, and where output goes.
public final class CapturePipeline: Sendable {
    public let name: String
    private let state: Mutex<PipelineStats> = Mutex(PipelineStats())
    private let stopped = Atomic<Bool>(false)
    private let keyframeWanted = Atomic<Bool>(false)
    private let body: @Sendable (CapturePipeline) -> Void
    private let finished = Mutex<[CheckedContinuation<Void, Never>]?>([])

    /// How a source that fails is tried again.
    let backoff: RetryBackoff

    private init(name: String, backoff: RetryBackoff = RetryBackoff(), body: @escaping @Sendable (CapturePipeline) -> Void) {
        self.name = name
        self.backoff = backoff
        self.body = body
    }

    /// A video pipeline: pictures from `open()`'s source, encoded with `settings` (or passed
    /// through when the source already gives H.264). With `motionInterval`, raw pictures that
    /// far apart also go through a motion detector and its grids to `motion` (a camera that
    /// gives H.264 has no raw pictures: the recorder decodes and detects for it).
    /// - Parameters:
    ///   - followSourceSize, followSourceRate: encode raw pictures at the source's own size and
    ///     frame rate (a decoded file or network camera: no scaling unless the settings ask for it).
    public static func video(name: String, settings: H264Settings, followSourceSize: Bool = false, followSourceRate: Bool = false,
                             backoff: RetryBackoff = RetryBackoff(), logger: Logger,
                             open: @escaping @Sendable () throws(MediaError) -> any VideoSource,
                             motionInterval: Duration? = nil, motion: @escaping @Sendable (MotionGrid) -> Void = { _ in },
                             output: @escaping @Sendable (PipelineOutput) -> Void) -> CapturePipeline {
        CapturePipeline(name: name, backoff: backoff) { pipeline in
            var encoder: H264Encoder?
            var unplayableNoted: Int?
            let detector = MotionDetector()
            var lastAnalysis = Int64.min / 2
            pipeline.run(logger: logger, open: open) { (source: any VideoSource) throws(MediaError) in
                let captured = try source.next()
                pipeline.state.withLock { $0.captured += 1 }
                let wantKeyframe = pipeline.keyframeWanted.exchange(false, ordering: .relaxed)
                switch captured {
                case .raw(let frame):
                    // The source's own shape unless the settings name one (and again when it changes).
                    var wanted = settings
                    if followSourceSize { (wanted.width, wanted.height) = (max(frame.width & ~1, 16), max(frame.height & ~1, 16)) }
                    if followSourceRate, (1...120).contains(source.frameRate) { wanted.frameRate = source.frameRate }
                    if let open = encoder, open.settings.width != wanted.width || open.settings.height != wanted.height
                        || open.settings.frameRate != wanted.frameRate {
                        logger.notice("the source's pictures changed shape; the encoder starts again", metadata: [
                            "camera": "\(name)", "from": "\(open.settings.width)x\(open.settings.height)@\(open.settings.frameRate)",
                            "to": "\(wanted.width)x\(wanted.height)@\(wanted.frameRate)"])
                        encoder = nil
                        frame.forceKeyframe = true
                    }
                    if encoder == nil {
                        encoder = try H264Encoder(settings: wanted)
                        let scaled = frame.width != wanted.width || frame.height != wanted.height
                        logger.info("video encoder open", metadata: ["encoder": "\(encoder!.name)", "camera": "\(name)",
                                                                     "size": "\(wanted.width)x\(wanted.height)", "fps": "\(wanted.frameRate)",
                                                                     "bitrate": "\(wanted.bitrate)",
                                                                     "source": "\(frame.width)x\(frame.height)\(scaled ? ", scaled as configured" : "")"])
                    }
                    if source is SyntheticVideoSource {
                        detector.ignoredTop = SyntheticVideoSource.overlayTop
                        detector.ignoredBottom = SyntheticVideoSource.overlayBottom
                    }
                    if let motionInterval, frame.captureTime.nanoseconds - lastAnalysis >= motionInterval.nanoseconds - 5_000_000 {
                        lastAnalysis = frame.captureTime.nanoseconds
                        motion(detector.analyze(frame))
                    }
                    frame.forceKeyframe = frame.forceKeyframe || wantKeyframe
                    for coded in try encoder!.encode(frame) {
                        pipeline.state.withLock { $0.encoded += 1 }
                        output(PipelineOutput(frame: coded, description: encoder!.description))
                    }
                case .encoded(let coded):
                    if wantKeyframe { source.requestKeyframe() }
                    pipeline.state.withLock { $0.encoded += 1 }
                    let description = source.encodedDescription
                        ?? StreamDescription(codec: .h264, width: source.width, height: source.height, frameRate: source.frameRate)
                    // H.264 browsers cannot play is still recorded as it is: said once per profile.
                    if let profile = description.h264Profile, !description.isBrowserPlayable, profile != unplayableNoted {
                        unplayableNoted = profile
                        logger.notice("the camera sends H.264 \(H264StreamShape.profileName(profile)), which browsers cannot play: it is recorded as it is; set transcode = auto on the recorder to re-encode it for the live view and clips",
                                      metadata: ["camera": "\(name)"])
                    }
                    output(PipelineOutput(frame: coded, description: description))
                }
            } onReopen: {
                pipeline.keyframeWanted.store(true, ordering: .relaxed)
            }
        }
    }

    /// An audio pipeline: blocks from `open()`'s source, encoded to Opus in 20 ms frames.
    public static func audio(name: String, settings: OpusSettings, backoff: RetryBackoff = RetryBackoff(), logger: Logger,
                             open: @escaping @Sendable () throws(MediaError) -> any AudioSource,
                             output: @escaping @Sendable (PipelineOutput) -> Void) -> CapturePipeline {
        CapturePipeline(name: name, backoff: backoff) { pipeline in
            var encoder: OpusEncoder?
            pipeline.run(logger: logger, open: open) { (source: any AudioSource) throws(MediaError) in
                let block = try source.next()
                pipeline.state.withLock { $0.captured += 1 }
                if encoder == nil { encoder = try OpusEncoder(settings: settings) }
                for coded in try encoder!.encode(block) {
                    pipeline.state.withLock { $0.encoded += 1 }
                    output(PipelineOutput(frame: coded, description: encoder!.description))
                }
            } onReopen: {}
        }
    }

    /// Starts the capture thread.
    public func start() {
        let thread = Thread { [self] in
            body(self)
            let waiters = finished.withLock { waiters in
                defer { waiters = nil }
                return waiters ?? []
            }
            for waiter in waiters { waiter.resume() }
        }
        thread.name = "capture \(name)"
        thread.start()
    }

    /// Stops after the current frame; returns when the thread has ended.
    public func stop() async {
        stopped.store(true, ordering: .relaxed)
        await withCheckedContinuation { continuation in
            let done = finished.withLock { waiters -> Bool in
                guard waiters != nil else { return true }
                waiters!.append(continuation)
                return false
            }
            if done { continuation.resume() }
        }
    }

    /// Makes the next picture a keyframe.
    public func requestKeyframe() { keyframeWanted.store(true, ordering: .relaxed) }

    public var stats: PipelineStats { state.withLock { $0 } }
    public var isStopped: Bool { stopped.load(ordering: .relaxed) }

    /// The loop: open the source (again after a failure, waiting longer each time up to 30 s),
    /// read and encode.
    private func run<Source>(logger: Logger, open: () throws(MediaError) -> Source,
                             step: (Source) throws(MediaError) -> Void, onReopen: () -> Void) {
        var source: Source?
        var lastFailure: String?
        var everOpened = false
        var backoff = self.backoff
        while !isStopped {
            if source == nil {
                state.withLock { $0.openAttempts += 1 }
                do throws(MediaError) {
                    source = try open()
                    if everOpened {
                        logger.notice("source is back", metadata: ["source": "\(name)", "as": "\((source as? any CaptureSource)?.summary ?? "")"])
                    } else {
                        logger.info("source open", metadata: ["source": "\(name)", "as": "\((source as? any CaptureSource)?.summary ?? "")"])
                    }
                    everOpened = true
                    lastFailure = nil
                    backoff.reset()
                    onReopen()
                } catch {
                    let wait = backoff.next()
                    if lastFailure != error.reason {
                        logger.error("cannot open the source; trying again, less often each time (up to every \(backoff.maximum.components.seconds) s)",
                                     metadata: ["source": "\(name)", "reason": "\(error.reason)"])
                        lastFailure = error.reason
                    }
                    pause(wait)
                    continue
                }
            }
            do throws(MediaError) {
                try step(source!)
                if let notices = (source as? any CaptureSource)?.takeNotices() {
                    for notice in notices { logger.notice("\(notice)", metadata: ["source": "\(name)"]) }
                }
            } catch where error.code == .deviceLost || error.code == .endOfStream || error.code == .io {
                if error.code == .deviceLost { state.withLock { $0.deviceLosses += 1 } }
                if lastFailure != error.reason {
                    logger.warning(error.code == .endOfStream ? "source ended; opening it again" : "source lost; reopening it",
                                   metadata: ["source": "\(name)", "reason": "\(error.reason)"])
                }
                lastFailure = error.reason
                source = nil
                // A file's end is reopened at once; a lost camera after the backoff.
                if error.code != .endOfStream { pause(backoff.next()) }
            } catch {
                state.withLock { $0.errors += 1 }
                logger.error("capture failed", metadata: ["source": "\(name)", "reason": "\(error.reason)"])
                source = nil
                pause(backoff.next())
            }
        }
    }

    /// Waits `duration`, or less if the pipeline is stopped meanwhile.
    private func pause(_ duration: Duration) {
        let end = ContinuousClock.now + duration
        while !isStopped, ContinuousClock.now < end {
            Thread.sleep(forTimeInterval: min(0.1, Double((end - ContinuousClock.now).components.attoseconds) / 1e18 + Double((end - ContinuousClock.now).components.seconds)))
        }
    }
}
