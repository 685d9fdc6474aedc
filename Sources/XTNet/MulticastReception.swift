// A node's side of the multicast streams, sans-IO: one receiver per subscribed channel,
// fed by the group and by the host's relays alike. It says what to tell the host (NACKs, and
// whether the group reaches this node) and hands out the messages in order.
public import XTransport

public struct MulticastReception: Sendable {
    private var receivers: [UInt16: MulticastReceiver] = [:]
    /// What the host was last told about each channel: the group reaches us, or not.
    private var reported: [UInt16: Bool] = [:]
    private let deadline: Duration
    /// A node that heard nothing on a group for this long tells the host to relay instead
    /// (heartbeats come every 250 ms).
    public static let silenceBeforeRelay: Int64 = 1_500_000_000

    /// - Parameter deadline: how long a gap is waited for before its messages are skipped.
    public init(deadline: Duration = .milliseconds(500)) { self.deadline = deadline }

    /// What to do after an input.
    public struct Output: Sendable {
        /// Messages in order (encoded ``NetMessage/data(_:)``).
        public var messages: [[UInt8]] = []
        /// To the host on the control channel.
        public var control: [NetMessage] = []
    }

    /// The host sent `channel`'s stream. A stream already followed keeps its state (a node
    /// that reconnected to the same host asks for what it missed meanwhile); a new stream (a
    /// restarted host) starts afresh. - Throws: ``TransportError`` for a bad key.
    public mutating func join(_ descriptor: MulticastStreamDescriptor) throws(TransportError) {
        if receivers[descriptor.channel]?.descriptor.stream == descriptor.stream { return }
        receivers[descriptor.channel] = try MulticastReceiver(descriptor, deadline: deadline)
        reported[descriptor.channel] = nil
    }

    /// Stops following `channel`.
    public mutating func leave(_ channel: UInt16) {
        receivers[channel] = nil
        reported[channel] = nil
    }

    /// The descriptor `channel` is followed with.
    public func descriptor(_ channel: UInt16) -> MulticastStreamDescriptor? { receivers[channel]?.descriptor }

    /// One datagram, from the group or relayed by the host.
    public mutating func receive(_ datagram: [UInt8], via path: MulticastReceiver.Path, now: Timestamp) -> Output {
        guard let header = try? MulticastHeader.decode(datagram), receivers[header.channel] != nil else { return Output() }
        _ = receivers[header.channel]!.receive(datagram, header: header, via: path, now: now)
        return collect(header.channel, now: now)
    }

    /// Deadlines, NACKs and reception reports due now.
    public mutating func tick(now: Timestamp) -> Output {
        var output = Output()
        for channel in receivers.keys.sorted() {
            let more = collect(channel, now: now)
            output.messages += more.messages
            output.control += more.control
        }
        return output
    }

    private mutating func collect(_ channel: UInt16, now: Timestamp) -> Output {
        var output = Output()
        output.messages = receivers[channel]!.takeMessages(now: now)
        let receiver = receivers[channel]!
        let stream = receiver.descriptor.stream
        let ranges = receivers[channel]!.takeNack(now: now)
        if !ranges.isEmpty {
            for start in stride(from: 0, to: ranges.count, by: NetMessage.maximumRanges) {
                let batch = Array(ranges[start..<min(start + NetMessage.maximumRanges, ranges.count)])
                output.control.append(.nack(channel: channel, stream: stream, ranges: batch))
            }
        }
        if receiver.descriptor.group != nil {
            let receiving = receiver.lastGroupDatagram.map { now.nanoseconds(since: $0) < Self.silenceBeforeRelay } ?? false
            // Tell the host when the group starts reaching us, and when it stops.
            if receiving != (reported[channel] ?? false) {
                reported[channel] = receiving
                output.control.append(.multicastReception(channel: channel, stream: stream, receiving: receiving))
            }
        }
        return output
    }

    /// Each followed channel's counters.
    public var stats: [UInt16: MulticastReceiverStats] { receivers.mapValues(\.stats) }
}
