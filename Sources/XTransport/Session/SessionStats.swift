// Per-session counters and gauges: what `xt status` and the benchmarks print.

/// A snapshot of one session's link and counters.
public struct SessionStats: Sendable, Hashable {
    public var smoothedRTT: Duration = .zero
    public var minimumRTT: Duration = .zero
    public var latestRTT: Duration = .zero
    /// Congestion window, bytes.
    public var congestionWindow = 0
    /// Pacing rate, bytes per second.
    public var pacingRate: Double = 0
    /// What the congestion controller believes the path delivers, bytes per second: the
    /// rate controller's bottleneck bandwidth, or the window over the smoothed RTT.
    public var rateEstimate: Double = 0
    public var bytesInFlight = 0
    /// Bytes written by the application and not yet acknowledged (bounded by the send buffer).
    public var sendBufferBytes = 0
    /// The packet cipher agreed in the handshake.
    public var packetCipher = ""
    /// The congestion controller in use.
    public var congestionControl = ""
    /// The controller's state in a few words.
    public var congestionState = ""
    /// The datagram size in use (after path-MTU probing).
    public var datagramSize = 0

    public var packetsSent: UInt64 = 0
    public var packetsReceived: UInt64 = 0
    public var bytesSent: UInt64 = 0
    public var bytesReceived: UInt64 = 0
    /// Application bytes acknowledged by the peer.
    public var payloadBytesAcknowledged: UInt64 = 0
    /// Application bytes delivered to us, in order.
    public var payloadBytesDelivered: UInt64 = 0
    /// Stream bytes received that this side already had: what the peer's spurious
    /// retransmissions (and the network's duplicates) cost.
    public var payloadBytesDuplicate: UInt64 = 0
    public var packetsLost: UInt64 = 0
    /// Packets declared lost that were acknowledged after all (reordering, not loss): their
    /// retransmission was spurious.
    public var spuriousLosses: UInt64 = 0
    /// The loss detector's reordering window in quarters of the minimum RTT (0: none seen yet).
    public var reorderWindowQuarters = 0
    /// Stream bytes sent more than once.
    public var bytesRetransmitted: UInt64 = 0
    /// Packets that failed authentication (tampered, or not ours).
    public var packetsRejectedAuthentication: UInt64 = 0
    /// Packets whose number was already seen (replays and duplicates).
    public var packetsRejectedReplay: UInt64 = 0
    /// Packets older than the replay window.
    public var packetsRejectedTooOld: UInt64 = 0
    /// Live messages this side skipped because their deadline passed.
    public var liveMessagesSkipped: UInt64 = 0
    /// Live messages the peer skipped (gaps reported to the application).
    public var liveMessagesMissed: UInt64 = 0
    public var datagramsDropped: UInt64 = 0
    public var keyUpdates: UInt64 = 0
    public var peerKeyUpdates: UInt64 = 0
    public var probeTimeouts: UInt64 = 0

    public init() {}

    /// Packets the path lost: those declared lost, less those acknowledged after all (reordered
    /// past the loss detector's window: ``spuriousLosses``).
    public var pathLosses: UInt64 { packetsLost - min(packetsLost, spuriousLosses) }

    /// The path's loss: ``pathLosses`` over packets sent. (Through 0–20 ms of jitter most packets
    /// declared lost were only reordered: counted as lost, 5% random drop read as more than 7%.)
    public var lossRate: Double { packetsSent == 0 ? 0 : Double(pathLosses) / Double(packetsSent) }
}
