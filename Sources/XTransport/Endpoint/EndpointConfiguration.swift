// What an endpoint needs to run: its identity, who it admits, session settings, and the
// handshake's anti-flood policy.

/// Which peers an endpoint accepts sessions from.
public enum Admission: Sendable, Hashable {
    /// Only keys on the list (the default, and what `xt listen` uses with Config/authorized_keys).
    case authorized(AuthorizedKeys)
    /// Any key. Every handshake must then prove its source address first (cookie round trip).
    case open
}

/// An endpoint's settings.
public struct EndpointConfiguration: Sendable {
    public var identity: NodeIdentity
    public var admission: Admission
    public var session: SessionConfiguration
    /// Application bytes sent to peers in the handshake (the node network's hello).
    public var hello: [UInt8]
    /// Handshake initiations per second above which the endpoint demands cookies.
    public var cookieThreshold: Int
    /// Most sessions the endpoint holds; further handshakes are refused.
    public var maximumSessions: Int
    /// Wall-clock nanoseconds (Unix epoch) at monotonic time zero, for handshake timestamps.
    public var wallClockOrigin: UInt64
    /// Seed for connection ids and path challenges (nil: from the system generator).
    public var seed: UInt64?

    public init(identity: NodeIdentity, admission: Admission, session: SessionConfiguration = .default,
                hello: [UInt8] = [], cookieThreshold: Int = 500, maximumSessions: Int = 200_000,
                wallClockOrigin: UInt64 = 0, seed: UInt64? = nil) {
        self.identity = identity
        self.admission = admission
        self.session = session
        self.hello = hello
        self.cookieThreshold = cookieThreshold
        self.maximumSessions = maximumSessions
        self.wallClockOrigin = wallClockOrigin
        self.seed = seed
    }
}

/// Counters for the endpoint as a whole (per-session ones are in ``SessionStats``).
public struct EndpointStats: Sendable, Hashable {
    public var datagramsReceived: UInt64 = 0
    /// Datagrams that could not be parsed at all.
    public var datagramsMalformed: UInt64 = 0
    /// Data packets for a connection id we do not have.
    public var datagramsUnknownSession: UInt64 = 0
    /// Data packets that came for a session whose handshake response had not come yet (held,
    /// then handled once it did, rather than answered with a reset).
    public var datagramsBeforeHandshake: UInt64 = 0
    /// Handshake packets whose mac1 was wrong (sender does not know our key, or tampering).
    public var handshakeMACFailures: UInt64 = 0
    /// Handshakes that failed decryption or key checks.
    public var handshakeDecryptFailures: UInt64 = 0
    /// Handshakes with no packet cipher both sides accept.
    public var handshakesRefusedCipher: UInt64 = 0
    /// Stateless resets sent (packets for sessions this endpoint does not have).
    public var statelessResetsSent: UInt64 = 0
    /// Stateless resets that ended one of our sessions.
    public var statelessResetsReceived: UInt64 = 0
    /// Stateless resets whose token matched no session (forged, or for a session already gone).
    public var statelessResetsIgnored: UInt64 = 0
    /// Handshakes from keys not on the authorized list.
    public var handshakesRefusedUnauthorized: UInt64 = 0
    /// Handshakes this end started that the peer refused (our key is not authorized there).
    public var handshakesRefusedByPeer: UInt64 = 0
    /// Replayed handshake initiations.
    public var handshakesRefusedReplay: UInt64 = 0
    public var cookieRepliesSent: UInt64 = 0
    public var handshakesInitiated: UInt64 = 0
    public var handshakesCompleted: UInt64 = 0
    public var handshakesAccepted: UInt64 = 0
    /// Packets the sessions refused for authentication, replay or age (summed when sessions end).
    public var sessionsOpen = 0

    public init() {}
}
