// Channels: independent lanes inside one session, each with a delivery mode and a priority.
// Camera video rides a live channel, alarms a reliable-message channel, backups a stream.

/// How a channel delivers what is written to it.
public enum DeliveryMode: UInt8, Hashable, Sendable, CaseIterable, CustomStringConvertible {
    /// A reliable, ordered byte stream (no message boundaries).
    case stream = 0
    /// Reliable, ordered messages, each delivered whole.
    case messages = 1
    /// Messages retransmitted until their deadline, then skipped; the receiver is told the gap.
    case live = 2
    /// Best-effort datagrams, one per packet, never retransmitted.
    case unreliable = 3

    public var description: String {
        switch self {
        case .stream: "stream"
        case .messages: "messages"
        case .live: "live"
        case .unreliable: "unreliable"
        }
    }
}

/// Which channel's data goes first when several have something to send.
public enum ChannelPriority: UInt8, Hashable, Sendable, Comparable, CaseIterable {
    /// Control and alarm traffic: always first.
    case control = 0
    case audio = 1
    case video = 2
    /// Bulk transfers: whatever bandwidth is left.
    case bulk = 3

    public static func < (lhs: ChannelPriority, rhs: ChannelPriority) -> Bool { lhs.rawValue < rhs.rawValue }
}

/// A channel's settings on the sending side. The receiver learns the mode from the frames.
public struct ChannelConfiguration: Hashable, Sendable {
    public var mode: DeliveryMode
    public var priority: ChannelPriority
    /// For ``DeliveryMode/live``: how long after the write a message may still be delivered.
    public var deadline: Duration

    public init(mode: DeliveryMode, priority: ChannelPriority = .bulk, deadline: Duration = .milliseconds(500)) {
        self.mode = mode
        self.priority = priority
        self.deadline = deadline
    }

    /// A reliable byte stream at bulk priority.
    public static let stream = ChannelConfiguration(mode: .stream, priority: .bulk)
    /// Reliable messages at control priority (alarms, control).
    public static let messages = ChannelConfiguration(mode: .messages, priority: .control)
    /// Live media with the given deadline.
    public static func live(priority: ChannelPriority = .video, deadline: Duration = .milliseconds(500)) -> ChannelConfiguration {
        ChannelConfiguration(mode: .live, priority: priority, deadline: deadline)
    }
    /// Unreliable datagrams.
    public static let unreliable = ChannelConfiguration(mode: .unreliable, priority: .audio)
}

/// A message received on a channel.
public struct Message: Hashable, Sendable {
    /// The channel it arrived on.
    public var channel: UInt16
    /// xTransporter's routing header, as the sender set it.
    public var route: RoutingHeader
    /// Zero-based sequence number within the channel (counting skipped messages).
    public var sequence: UInt64
    public var payload: [UInt8]

    public init(channel: UInt16, route: RoutingHeader, sequence: UInt64, payload: [UInt8]) {
        self.channel = channel
        self.route = route
        self.sequence = sequence
        self.payload = payload
    }
}
