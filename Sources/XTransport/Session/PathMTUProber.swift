// Path-MTU discovery by probing (DPLPMTUD, RFC 8899 in spirit): after the handshake, send a
// PING padded to a candidate size; an ACK raises the datagram size, two losses lower the
// ceiling. First the configured maximum is tried outright, then the common Ethernet sizes
// (1472, 1452), then a binary search. Persistent loss (a black hole) drops back to the safe
// minimum and searches again.

struct PathMTUProber {
    private(set) var current: Int
    private var ceiling: Int
    let minimum: Int
    let maximum: Int
    let enabled: Bool
    private(set) var inFlight: Int?
    private var failures = 0
    private var lastFailedSize = 0
    private var triedMaximum = false
    /// Common path sizes already probed (each is tried once, before the binary search).
    private var triedCommon: Set<Int> = []
    /// Ethernet's 1500-byte MTU less the IPv4 + UDP (28) and IPv6 + UDP (48) headers: most
    /// paths carry exactly one of these, and a binary search alone would stop short of them.
    static let commonSizes = [1472, 1452]
    private var nextProbeTime: Timestamp?
    /// How long a finished search waits before trying again.
    static let researchInterval: Int64 = 600 * Nanos.second

    init(minimum: Int, maximum: Int, enabled: Bool) {
        self.minimum = minimum
        self.maximum = maximum
        self.current = minimum
        self.ceiling = maximum
        self.enabled = enabled && maximum > minimum
    }

    /// Start probing (called once the session is established).
    mutating func start(now: Timestamp) {
        guard enabled else { return }
        nextProbeTime = now
    }

    /// The size to probe next, if a probe is due.
    func probeDue(now: Timestamp) -> Int? {
        guard enabled, inFlight == nil, let nextProbeTime, now >= nextProbeTime else { return nil }
        return candidate
    }

    var nextTimeout: Timestamp? { inFlight == nil && candidate != nil ? nextProbeTime : nil }

    private var candidate: Int? {
        if let common = Self.commonSizes.first(where: { $0 > current && $0 <= ceiling && !triedCommon.contains($0) }), triedMaximum {
            return common
        }
        guard ceiling - current >= 16 else { return nil }
        if !triedMaximum { return ceiling }
        return (current + ceiling + 1) / 2
    }

    mutating func onProbeSent(size: Int) {
        inFlight = size
        if size == maximum { triedMaximum = true }
        if Self.commonSizes.contains(size) { triedCommon.insert(size) }
    }

    mutating func onProbeAcknowledged(size: Int, now: Timestamp) {
        inFlight = nil
        failures = 0
        current = max(current, size)
        nextProbeTime = candidate == nil ? now.adding(nanoseconds: Self.researchInterval) : now
        if candidate == nil { ceiling = maximum }
    }

    mutating func onProbeLost(size: Int, now: Timestamp) {
        inFlight = nil
        // Two losses of the same size lower the ceiling; one could be random loss.
        failures = size == lastFailedSize ? failures + 1 : 1
        lastFailedSize = size
        triedMaximum = true
        if failures >= 2 {
            ceiling = size - 1
            failures = 0
        }
        nextProbeTime = now
        if candidate == nil {
            nextProbeTime = now.adding(nanoseconds: Self.researchInterval)
        }
    }

    /// The path lost everything for a while: assume the MTU shrank.
    mutating func onBlackHole(now: Timestamp) {
        guard enabled, current > minimum else { return }
        current = minimum
        ceiling = maximum
        triedMaximum = false
        triedCommon = []
        failures = 0
        inFlight = nil
        nextProbeTime = now
    }
}
