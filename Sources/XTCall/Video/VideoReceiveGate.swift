// The receiving side of one party's call video: which pictures a decoder can use, and when to
// ask the sender for a keyframe. H.264 pictures between keyframes depend on the ones before,
// so after a lost picture everything up to the next keyframe would decode wrong: those are
// dropped (the picture freezes) and the sender is asked for a keyframe at once, as RTCP's
// Picture Loss Indication does (RFC 4585 §6.3.1), again every `requestInterval` until one
// comes. Sans-IO: pictures and the time in, decisions out.
public import XTransport

/// Decides, picture by picture, what one party's video gives the decoder.
public struct VideoReceiveGate: Sendable {
    public struct Configuration: Sendable, Equatable {
        /// How often a keyframe may be asked for while waiting for one (WebRTC waits about an RTT;
        /// 300 ms covers the relayed paths here).
        public var requestInterval: Duration = .milliseconds(300)

        public init() {}
    }

    /// What to do with a picture.
    public enum Decision: Equatable, Sendable {
        /// Decode (or record) it.
        case use
        /// Drop it: it depends on a picture that was lost, or it is older than one already used.
        case drop
    }

    public struct Stats: Equatable, Sendable {
        public var received = 0
        public var used = 0
        public var dropped = 0
        /// Pictures that never came (gaps in the sequence).
        public var lost = 0
        public var keyframeRequests = 0
        /// Times the picture froze: a loss that had to wait for a keyframe.
        public var freezes = 0
    }

    public let configuration: Configuration
    public private(set) var stats = Stats()
    /// The next picture expected (nil before the first).
    private var expected: UInt32?
    /// Waiting for a keyframe: at the start, and after a loss.
    public private(set) var waitingForKeyframe = true
    private var waitingSince: Timestamp?
    private var lastRequest: Timestamp?

    public init(configuration: Configuration = Configuration()) {
        self.configuration = configuration
    }

    /// Takes picture `sequence` (a keyframe or not) arriving at `now`.
    public mutating func receive(sequence: UInt32, isKeyframe: Bool, now: Timestamp) -> Decision {
        stats.received += 1
        if let expected {
            let ahead = Int32(bitPattern: sequence &- expected)
            if ahead < 0 {
                stats.dropped += 1
                return .drop
            }
            if ahead > 0 {
                stats.lost += Int(ahead)
                if !waitingForKeyframe {
                    waitingForKeyframe = true
                    waitingSince = now
                    stats.freezes += 1
                }
            }
        } else if waitingSince == nil {
            waitingSince = now
        }
        expected = sequence &+ 1
        if isKeyframe {
            waitingForKeyframe = false
            waitingSince = nil
        }
        guard !waitingForKeyframe else {
            stats.dropped += 1
            return .drop
        }
        stats.used += 1
        return .use
    }

    /// Whether to ask the sender for a keyframe now: waiting for one, and the last request (if
    /// any) is `requestInterval` old. Counts the request when it says yes.
    public mutating func keyframeRequestDue(now: Timestamp) -> Bool {
        guard waitingForKeyframe, waitingSince != nil else { return false }
        if let lastRequest, now.nanoseconds(since: lastRequest) < configuration.requestInterval.nanoseconds { return false }
        lastRequest = now
        stats.keyframeRequests += 1
        return true
    }
}
