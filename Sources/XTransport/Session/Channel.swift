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
    /// For ``DeliveryMode/live``: a message sent whole in one packet is delivered on arrival,
    /// ahead of earlier ones still being retransmitted (no head-of-line blocking). Each
    /// message then stands alone: a call's audio frames, which its jitter buffer reorders.
    public var unordered: Bool

    public init(mode: DeliveryMode, priority: ChannelPriority = .bulk, deadline: Duration = .milliseconds(500), unordered: Bool = false) {
        self.mode = mode
        self.priority = priority
        self.deadline = deadline
        self.unordered = unordered && mode == .live
    }

    /// A reliable byte stream at bulk priority.
    public static let stream = ChannelConfiguration(mode: .stream, priority: .bulk)
    /// Reliable messages at control priority (alarms, control).
    public static let messages = ChannelConfiguration(mode: .messages, priority: .control)
    /// Live media with the given deadline, in order or (`unordered`) each message on arrival.
    public static func live(priority: ChannelPriority = .video, deadline: Duration = .milliseconds(500), unordered: Bool = false) -> ChannelConfiguration {
        ChannelConfiguration(mode: .live, priority: priority, deadline: deadline, unordered: unordered)
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
    /// Zero-based sequence number within the channel (counting skipped messages);
    /// ``Message/unknownSequence`` for a message delivered ahead of an earlier one that was
    /// still missing (an unordered live channel).
    public var sequence: UInt64

    /// The sequence of a message delivered out of order: not known until the gap before it closes.
    public static let unknownSequence = UInt64.max
    public var payload: [UInt8]

    public init(channel: UInt16, route: RoutingHeader, sequence: UInt64, payload: [UInt8]) {
        self.channel = channel
        self.route = route
        self.sequence = sequence
        self.payload = payload
    }
}
