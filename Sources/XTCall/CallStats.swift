// A call's figures, per party heard: the mouth-to-ear estimate and what the jitter buffer did.
public import XTransport

/// How the media reaches this node from a party.
public enum CallPath: String, Sendable, Equatable, Codable {
    /// Peer to peer (LRP2P): a session straight to the party.
    case direct
    /// Through the host (xTransporter's relay on the node network).
    case relayed
}

/// What this node hears of one party, for `xt call`'s display, `xt status` and the web UI.
public struct CallStats: Sendable, Equatable, Codable {
    public var party: String
    public var path: CallPath
    /// Mouth-to-ear estimate in milliseconds: the sender's capture and encoding, half the round
    /// trip, the jitter buffer's level and this node's playback device (see ``estimate``).
    public var mouthToEarMilliseconds: Double
    public var jitterTargetMilliseconds: Double
    public var concealedPercent: Double
    public var recoveredPercent: Double
    /// Lost frames filled whole from the next packet's redundant copy, in percent.
    public var repairedPercent: Double
    public var latePercent: Double
    /// Frames that arrived from the party.
    public var framesReceived: Int
    /// Concealment played while waiting for a late frame, and frames time-stretched, in percent.
    public var waitedPercent: Double
    public var stretchedPercent: Double
    /// The party's video as this node received it (nil: it sent none).
    public var video: VideoFigures?

    /// What came of a party's video: pictures received and usable, pictures lost, the times
    /// the picture froze waiting for a keyframe, and the keyframes asked for.
    public struct VideoFigures: Sendable, Equatable, Codable {
        public var picturesReceived: Int
        public var picturesUsed: Int
        public var picturesLost: Int
        public var freezes: Int
        public var keyframeRequests: Int

        public init(_ gate: VideoReceiveGate.Stats) {
            picturesReceived = gate.received
            picturesUsed = gate.used
            picturesLost = gate.lost
            freezes = gate.freezes
            keyframeRequests = gate.keyframeRequests
        }
    }

    /// Fixed costs on the sending side, in milliseconds: one 20 ms frame gathered before it is
    /// encoded, Opus's 6.5 ms look-ahead (RFC 6716: 2.5 ms + the 4 ms of the SILK resampler
    /// delay at 16 kHz), the voice processor's 20 ms frame (speexdsp's preprocessor gives out a
    /// frame later than it takes in: its overlap-add), and half a 5 ms capture period (a block
    /// leaves 0–5 ms after its last sample came).
    public static let senderMilliseconds = 20 + 6.5 + 20 + 2.5

    /// The stats from the receiver's counters and the link.
    /// - Parameters:
    ///   - roundTrip: the session's smoothed RTT on this path.
    ///   - playbackDelay: what the playback device still holds (``ALSAPlayback``'s delay).
    public static func estimate(party: String, path: CallPath, buffer: JitterBufferStats, roundTrip: Duration,
                                playbackDelay: Duration) -> CallStats {
        func milliseconds(_ duration: Duration) -> Double { Double(duration.nanoseconds) / 1e6 }
        let mouthToEar = senderMilliseconds + milliseconds(roundTrip) / 2 + milliseconds(buffer.level) + milliseconds(playbackDelay)
        return CallStats(party: party, path: path, mouthToEarMilliseconds: mouthToEar,
                         jitterTargetMilliseconds: milliseconds(buffer.target), concealedPercent: buffer.concealedPercent,
                         recoveredPercent: buffer.recoveredPercent, repairedPercent: buffer.repairedPercent, latePercent: buffer.latePercent, framesReceived: buffer.received,
                         waitedPercent: buffer.waitedPercent, stretchedPercent: buffer.stretchedPercent)
    }

    /// One line for a terminal: "door (relayed): mouth-to-ear ~92 ms, buffer 40 ms, concealed 1.2%, FEC 3.0%, repaired 0.0%, late 0.4%".
    public var summary: String {
        func format(_ value: Double, _ digits: Int = 1) -> String {
            var text = String(Int(value.rounded()))
            if digits > 0 {
                let scaled = Int((value * 10).rounded())
                text = "\(scaled / 10).\(abs(scaled % 10))"
            }
            return text
        }
        return "\(party) (\(path.rawValue)): mouth-to-ear ~\(format(mouthToEarMilliseconds, 0)) ms, buffer \(format(jitterTargetMilliseconds, 0)) ms, "
            + "concealed \(format(concealedPercent))%, FEC \(format(recoveredPercent))%, repaired \(format(repairedPercent))%, late \(format(latePercent))%"
            + (video.map { "; video \($0.picturesUsed) pictures, \($0.picturesLost) lost, \($0.freezes) freezes, \($0.keyframeRequests) keyframes asked for" } ?? "")
    }
}
