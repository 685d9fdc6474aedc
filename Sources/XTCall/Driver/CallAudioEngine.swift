// A node's sound in a call: a capture thread (ALSA microphone → echo cancellation, noise
// suppression and gain control → Opus in 20 ms frames → packets out) and a playout thread
// (each party's jitter buffer → mix → ALSA speaker, 5 ms at a time). What the speaker played
// is the echo canceller's reference for the microphone.
import Foundation
import Synchronization
public import XTMedia
public import XTransport
import XTNet

/// A call's microphone, chosen as `xt agent` chooses its audio input.
public enum CallMicrophone: Sendable, Equatable, CustomStringConvertible {
    /// An ALSA capture PCM ("default", "plughw:1,0", a PCM from the ALSA configuration).
    case alsa(String)
    /// A synthetic talker that never pauses (``SyntheticAudioSource/Signal/voice``): load tests, no sound card.
    case synthetic
    /// A sound file or URL read through libavformat at its own pace (a message at the door).
    case file(String)

    /// Parses `alsa:NAME`, `synthetic` or `file:PATH`; nil for anything else.
    public init?(_ text: String) {
        if text == "synthetic" {
            self = .synthetic
        } else if text.hasPrefix("alsa:"), text.count > 5 {
            self = .alsa(String(text.dropFirst(5)))
        } else if text.hasPrefix("file:"), text.count > 5 {
            self = .file(String(text.dropFirst(5)))
        } else {
            return nil
        }
    }

    public var description: String {
        switch self {
        case .alsa(let name): "alsa:\(name)"
        case .synthetic: "synthetic"
        case .file(let location): "file:\(location)"
        }
    }

    /// Opens it for 16-bit mono at `sampleRate`, in 20 ms blocks.
    func open(sampleRate: Int, latency: Duration) throws(MediaError) -> any AudioSource {
        switch self {
        case .alsa(let name): try ALSACapture(device: name, sampleRate: sampleRate, channels: 1, latency: latency)
        case .synthetic: SyntheticAudioSource(sampleRate: sampleRate, channels: 1, signal: .voice)
        case .file(let location): try FileAudioSource(location: location, sampleRate: sampleRate, channels: 1)
        }
    }
}

/// Where a call's sound comes from and goes to.
public struct CallAudioDevices: Sendable, Equatable {
    /// The microphone; nil: none (listen only).
    public var microphone: CallMicrophone?
    /// An ALSA playback PCM; nil: none (the call is heard by no one here, or recorded only).
    public var speaker: String?
    /// The speaker's buffer: small, for a low mouth-to-ear delay (its periods are a quarter of
    /// it). (15 ms, read 5 ms at a time, leaves as much to spare at its emptiest as 20 ms read
    /// 10 ms at a time did, but a loaded machine's speaker then underran every few seconds,
    /// against once a minute at 20 ms.)
    public var playbackLatency: Duration = .milliseconds(20)
    /// The microphone's buffer: its periods (a quarter of it) are how unevenly frames leave.
    public var captureLatency: Duration = .milliseconds(20)
    /// The capture and playout threads ask for real-time scheduling (``CallPriority``). Off
    /// for load tests, where a hundred such threads in one process would starve its own
    /// network threads (and the host they load) rather than model a node.
    public var realTimeThreads = true

    public init(microphone: CallMicrophone? = .alsa("default"), speaker: String? = "default") {
        self.microphone = microphone
        self.speaker = speaker
    }
}

/// The sound of one call. Thread-safe: the call agent feeds it packets and parties from its
/// tasks; its own two threads capture and play.
public final class CallAudioEngine: Sendable {
    public let call: CallID
    public let sampleRate: Int
    /// Packets to send, one per 20 ms of speech (fewer in silence).
    public let packets: AsyncStream<CallMediaPacket>
    private let continuation: AsyncStream<CallMediaPacket>.Continuation
    private let state: Mutex<State>
    private let stopping = Atomic<Bool>(false)
    private let finished = DispatchGroup()

    private struct State: ~Copyable {
        var receivers: [String: CallAudioReceiver] = [:]
        var played: [Int16] = []
        var playbackDelay: Duration = .zero
        /// The link's loss and rate, for the capture thread's sender to take up.
        var link: (lossPercent: Double, rate: Double?)?
        var failure: String?
    }

    /// Opens the devices and starts the two threads.
    /// - Parameters:
    ///   - voice: echo cancellation, noise suppression and gain control.
    ///   - jitter: the jitter buffer's settings (the defaults adapt; a fixed target is PLC-only mode's).
    /// - Throws: ``MediaError`` when a device cannot be opened (the message names it and what to try),
    ///   ``VoiceProcessorError`` when speexdsp cannot be set up.
    public init(call: CallID, devices: CallAudioDevices, settings: OpusSettings = .call(), voice: VoiceProcessor.Settings = .init(),
                jitter: JitterBuffer.Configuration = .init()) throws {
        self.call = call
        sampleRate = settings.sampleRate
        (packets, continuation) = AsyncStream.makeStream(bufferingPolicy: .bufferingNewest(50))
        let capture = try devices.microphone.map { try $0.open(sampleRate: settings.sampleRate, latency: devices.captureLatency) }
        let playback = try devices.speaker.map {
            try ALSAPlayback(device: $0, sampleRate: settings.sampleRate, channels: 1, latency: devices.playbackLatency)
        }
        let sender = capture == nil ? nil : try CallAudioSender(call: call, settings: settings, voice: voice)
        state = Mutex(State())
        self.jitter = jitter
        // Each device (and the sender) moves to the one thread that uses it from here on.
        if let capture, let sender {
            let owned = Handoff((capture, sender))
            start("xt-call-capture", realTime: devices.realTimeThreads) { self.captureLoop(owned.value.0, owned.value.1) }
        }
        let speaker = Handoff(playback)
        let latency = devices.playbackLatency
        start("xt-call-playout", realTime: devices.realTimeThreads) { self.playoutLoop(speaker.value, buffer: latency) }
    }

    private let jitter: JitterBuffer.Configuration

    private func start(_ name: String, realTime: Bool, _ body: @escaping @Sendable () -> Void) {
        finished.enter()
        let thread = Thread { [finished] in
            if realTime { CallPriority.raiseAudioThread() }
            body()
            finished.leave()
        }
        thread.name = name
        thread.start()
    }

    /// Stops both threads and closes the devices (returns once they are closed).
    public func stop() {
        guard !stopping.exchange(true, ordering: .acquiringAndReleasing) else { return }
        // Each thread notices within a period; a device stuck in the kernel is left behind.
        _ = finished.wait(timeout: .now() + 2)
        continuation.finish()
    }

    // MARK: - Parties

    /// The parties heard now: a jitter buffer for each new one, gone ones dropped.
    public func setParties(_ parties: [String]) {
        state.withLock { state in
            for name in state.receivers.keys where !parties.contains(name) { state.receivers[name] = nil }
            for name in parties where state.receivers[name] == nil {
                state.receivers[name] = try? CallAudioReceiver(sampleRate: sampleRate, configuration: jitter)
            }
        }
    }

    /// Takes an audio packet from `party`, arrived at `arrival`.
    public func receive(_ packet: CallMediaPacket, from party: String, arrival: Timestamp) {
        state.withLock { $0.receivers[party]?.receive(packet, arrival: arrival) }
    }

    /// Sizes the sender's FEC and bitrate to the link (see ``CallAudioSender/linkChanged(lossPercent:rateBitsPerSecond:)``).
    public func linkChanged(lossPercent: Double, rateBitsPerSecond: Double?) {
        state.withLock { $0.link = (lossPercent, rateBitsPerSecond) }
    }

    /// The jitter buffer's figures for `party`, and the speaker's delay.
    public func figures(for party: String) -> (buffer: JitterBufferStats, playbackDelay: Duration)? {
        state.withLock { state in state.receivers[party].map { ($0.stats, state.playbackDelay) } }
    }

    /// Why a device stopped, if one did (the call goes on without it).
    public var failure: String? { state.withLock { $0.failure } }

    // MARK: - Threads

    private func captureLoop(_ capture: any AudioSource, _ sender: CallAudioSender) {
        let frame = sender.frameSamples
        while !stopping.load(ordering: .acquiring) {
            let audio: AudioFrame
            do {
                audio = try capture.next()
            } catch {
                state.withLock { $0.failure = "\(error)" }
                return
            }
            // What the speaker played meanwhile, oldest first: the echo canceller's reference.
            let (reference, link) = state.withLock { state -> ([Int16], (lossPercent: Double, rate: Double?)?) in
                defer { state.link = nil }
                guard state.played.count >= frame else { return ([Int16](repeating: 0, count: frame), state.link) }
                let out = Array(state.played.prefix(frame))
                state.played.removeFirst(frame)
                return (out, state.link)
            }
            if let link { sender.linkChanged(lossPercent: link.lossPercent, rateBitsPerSecond: link.rate) }
            let microseconds = UInt64(clamping: audio.captureTime.nanoseconds / 1000)
            if let packet = try? sender.process(microphone: audio.samples, speaker: reference, captureMicroseconds: microseconds) {
                continuation.yield(packet)
                if sender.duplicating { continuation.yield(packet.secondCopy) }
            }
        }
    }

    private func playoutLoop(_ playback: ALSAPlayback?, buffer: Duration) {
        // A speaker takes 5 ms at a time (a period of its 20 ms buffer): words start at the
        // first read after they are ready, and a read is the most that costs them (at 10 ms a
        // read, loopback calls came 61-71 ms mouth to ear by where the reads fell). With none,
        // a frame at a time (a quarter of the wakes).
        let period = playback == nil ? sampleRate / 50 : sampleRate / 200
        var next = ContinuousClock.now
        var watermark = SpeakerWatermark(buffer: buffer)
        var lastWrite = ContinuousClock.now
        var underruns = 0
        while !stopping.load(ordering: .acquiring) {
            // Decide what to play only once the speaker can take it: each sample is then
            // heard one buffer (less the watermark's spare) after it was decided, not a buffer and a wait.
            if let playback {
                do {
                    try playback.waitForRoom(period + watermark.spareFrames(sampleRate: sampleRate))
                } catch {
                    state.withLock { $0.failure = "\(error)" }
                    return
                }
            }
            let now = Timestamp.monotonicNow
            let mixed = state.withLock { state -> [Int16] in
                let frames = state.receivers.keys.sorted().map { state.receivers[$0]!.read(count: period, now: now) }
                return frames.isEmpty ? [Int16](repeating: 0, count: period) : AudioMixer.mix(frames)
            }
            if let playback {
                do {
                    try playback.write(mixed)
                } catch {
                    state.withLock { $0.failure = "\(error)" }
                    return
                }
                if playback.underruns > underruns {
                    underruns = playback.underruns
                    watermark.underran(after: ContinuousClock.now - lastWrite)
                }
                lastWrite = ContinuousClock.now
                let delay = playback.delay
                state.withLock { state in
                    state.playbackDelay = delay
                    state.played += mixed
                    // The canceller's tail is 200 ms: more than that behind is of no use.
                    if state.played.count > sampleRate / 2 { state.played.removeFirst(state.played.count - sampleRate / 2) }
                }
            } else {
                // No speaker: the buffers are still drained in real time (a recording reads them).
                next = next.advanced(by: .milliseconds(20))
                let wait = next - ContinuousClock.now
                if wait > .zero { Thread.sleep(forTimeInterval: Double(wait.components.seconds) + Double(wait.components.attoseconds) / 1e18) }
            }
        }
    }
}

/// How much of the speaker's buffer the playout keeps empty, as PulseAudio's timer-based
/// scheduling keeps a watermark: a quarter of it (5 ms of 20) at first, so each sample is heard
/// that much sooner, and none from the first underrun that came while the playout kept time
/// (on a machine whose threads wake that late, the whole buffer is needed). An underrun after a
/// longer gap than the buffer is a stall that no spare would have covered, and changes nothing.
/// (Reading 5 ms at a time with 5 ms spare leaves 10 ms to the next read at the emptiest, as
/// reading 10 ms into a full buffer did; a 15 ms buffer instead underran every few seconds on a
/// loaded machine, once a minute at 20.)
public struct SpeakerWatermark: Equatable, Sendable {
    /// The speaker's whole buffer.
    public let buffer: Duration
    /// What the playout keeps empty of it.
    public private(set) var spare: Duration

    public init(buffer: Duration) {
        self.buffer = buffer
        spare = buffer / 4
    }

    /// The spare in frames at `sampleRate`.
    public func spareFrames(sampleRate: Int) -> Int {
        Int(spare.components.seconds) * sampleRate + Int(spare.components.attoseconds / 1_000_000_000 * Int64(sampleRate) / 1_000_000_000)
    }

    /// The speaker underran, `gap` after the last write before it.
    public mutating func underran(after gap: Duration) {
        if gap < buffer { spare = .zero }
    }
}

/// A value handed to exactly one thread, which alone uses it from then on.
struct Handoff<Value>: @unchecked Sendable {
    let value: Value
    init(_ value: Value) { self.value = value }
}
