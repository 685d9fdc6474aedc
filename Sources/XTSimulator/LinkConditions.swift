// What a simulated link does to datagrams: loss (random and bursty), delay and jitter,
// reordering, duplication, a bandwidth cap with a bounded queue, corruption, and an MTU.

/// Impairments of one direction of a simulated link.
public struct LinkConditions: Sendable, Hashable {
    /// Probability that a datagram is dropped at random.
    public var lossRate: Double = 0
    /// Gilbert–Elliott burst loss: chance per datagram to enter the bad state, and to leave it.
    /// Every datagram in the bad state is lost.
    public var burstEnterProbability: Double = 0
    public var burstExitProbability: Double = 1
    /// One-way propagation delay.
    public var delay: Duration = .milliseconds(1)
    /// Extra delay, uniform in 0…jitter, per datagram (reorders datagrams closer than this).
    public var jitter: Duration = .zero
    /// Probability that a datagram is held back by up to `reorderDelay` (explicit reordering).
    public var reorderRate: Double = 0
    public var reorderDelay: Duration = .milliseconds(10)
    /// Probability that a datagram arrives twice.
    public var duplicateRate: Double = 0
    /// Bottleneck rate in bits per second (nil: unlimited).
    public var bandwidth: Double?
    /// Most queueing delay the bottleneck buffers before dropping (tail drop).
    public var queueLimit: Duration = .milliseconds(50)
    /// Probability that one bit of a datagram is flipped.
    public var corruptionRate: Double = 0
    /// Datagrams larger than this are dropped (nil: no limit). The default is Ethernet's:
    /// 1500 bytes less the IPv4 and UDP headers.
    public var mtu: Int? = 1472

    public init() {}

    /// A clean link with the given one-way delay.
    public static func clean(delay: Duration = .milliseconds(1)) -> LinkConditions {
        var conditions = LinkConditions()
        conditions.delay = delay
        return conditions
    }
}

/// What happened to datagrams on a link, for assertions.
public struct LinkCounters: Sendable, Hashable {
    public var offered = 0
    public var bytesOffered = 0
    public var delivered = 0
    public var droppedRandom = 0
    public var droppedBurst = 0
    public var droppedQueue = 0
    public var droppedMTU = 0
    public var duplicated = 0
    public var corrupted = 0
    public var bytesDelivered = 0
    /// Bytes of every datagram dropped, whatever the cause.
    public var bytesDropped = 0
    public init() {}
}
