// A node's camera in a call: one thread reads pictures (blocking until each is captured),
// encodes them (``CallVideoSender``) and hands the packets out. Keyframe requests and the
// link's figures come in from the call agent and are taken up before the next picture.
import Foundation
import Synchronization
public import XTMedia
public import XTransport

/// The sending half of a call's video. Thread-safe.
public final class CallVideoEngine: Sendable {
    /// Video packets to send, one per picture.
    public let packets: AsyncStream<CallMediaPacket>
    private let continuation: AsyncStream<CallMediaPacket>.Continuation
    private let stopping = Atomic<Bool>(false)
    private let keyframeWanted = Atomic<Bool>(false)
    private let finished = DispatchGroup()
    private let state = Mutex<State>(State())
    /// A camera agent's feed, ended at stop so that its reader wakes.
    private let feed: CallVideoFeed?

    private struct State: ~Copyable {
        var link: (VideoBitrateController.LinkFigures, Duration)?
        var failure: String?
        var description: StreamDescription?
        var bitrate = 0
        var sent = 0
        var keyframes = 0
        var requestedKeyframes = 0
    }

    /// What the sender did so far.
    public struct Figures: Sendable, Equatable {
        public var sent: Int
        public var keyframes: Int
        /// Keyframes sent because a party asked.
        public var requestedKeyframes: Int
        /// The encoder's bitrate now, bits per second.
        public var bitrate: Int
    }

    /// Opens the camera and starts its thread.
    /// - Throws: ``MediaError`` when the camera cannot be opened or the settings are bad.
    public init(call: CallID, camera: CallCamera, settings: CallVideoSettings) throws(MediaError) {
        (packets, continuation) = AsyncStream.makeStream(bufferingPolicy: .bufferingNewest(8))
        if case .feed(let feed) = camera { self.feed = feed } else { feed = nil }
        let source = try camera.open(width: settings.width, height: settings.height, frameRate: settings.frameRate)
        let sender = try CallVideoSender(call: call, settings: settings)
        let owned = Handoff((source, sender))
        finished.enter()
        let thread = Thread { [finished] in
            self.captureLoop(owned.value.0, owned.value.1)
            finished.leave()
        }
        thread.name = "xt-call-video"
        thread.start()
    }

    /// A party lost a picture: the next one is a keyframe.
    public func requestKeyframe() { keyframeWanted.store(true, ordering: .releasing) }

    /// The link's figures over the last `interval`, for the bitrate to follow.
    public func linkChanged(_ link: VideoBitrateController.LinkFigures, interval: Duration) {
        state.withLock { $0.link = (link, interval) }
    }

    /// The stream's description once the first keyframe is out (for a recording).
    public var description: StreamDescription? { state.withLock { $0.description } }

    public var figures: Figures {
        state.withLock { Figures(sent: $0.sent, keyframes: $0.keyframes, requestedKeyframes: $0.requestedKeyframes, bitrate: $0.bitrate) }
    }

    /// Why the camera stopped, if it did (the call goes on without video).
    public var failure: String? { state.withLock { $0.failure } }

    /// Stops the thread and closes the camera (waits at most 2 s for a camera stuck in the kernel).
    public func stop() {
        guard !stopping.exchange(true, ordering: .acquiringAndReleasing) else { return }
        feed?.end()
        _ = finished.wait(timeout: .now() + 2)
        continuation.finish()
    }

    private func captureLoop(_ source: any VideoSource, _ sender: CallVideoSender) {
        while !stopping.load(ordering: .acquiring) {
            let picture: VideoSourceOutput
            do {
                picture = try source.next()
            } catch {
                state.withLock { $0.failure = "the camera stopped: \(error)" }
                return
            }
            if keyframeWanted.exchange(false, ordering: .acquiringAndReleasing) {
                sender.requestKeyframe()
                source.requestKeyframe()  // a camera that encodes by itself
            }
            if let (link, interval) = state.withLock({ state in defer { state.link = nil }; return state.link }) {
                sender.linkChanged(link, interval: interval)
            }
            do {
                for packet in try sender.process(picture) { continuation.yield(packet) }
            } catch {
                state.withLock { $0.failure = "the call's video encoder failed: \(error)" }
                return
            }
            state.withLock { state in
                state.description = sender.description
                state.bitrate = sender.bitrate
                state.sent = sender.sent
                state.keyframes = sender.keyframes
                state.requestedKeyframes = sender.requestedKeyframes
            }
        }
    }
}
