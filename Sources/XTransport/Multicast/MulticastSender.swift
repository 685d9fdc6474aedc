// The sending side of one multicast stream, sans-IO: cuts messages into sealed datagrams
// with consecutive sequences, keeps the recent ones for repairs, and makes heartbeats. The
// caller puts the datagrams on the group once and relays repairs to the one receiver that
// asked, so a lossy receiver costs only its own repairs and never slows the others.

/// Counters of one sending stream.
public struct MulticastSenderStats: Hashable, Sendable, Codable {
    public var messages: UInt64 = 0
    public var datagrams: UInt64 = 0
    public var bytes: UInt64 = 0
    public var heartbeats: UInt64 = 0
    /// Datagrams sent again because a receiver asked (NACK).
    public var repairs: UInt64 = 0
    public var repairBytes: UInt64 = 0
    /// Asked-for datagrams that were no longer kept.
    public var repairsUnavailable: UInt64 = 0
    public init() {}
}

public struct MulticastSender: Sendable {
    public let channel: UInt16
    public let stream: UInt32
    public let key: MulticastKey
    /// Largest datagram, header and tag included.
    public let maximumDatagram: Int
    /// The next data sequence.
    public private(set) var nextSequence: UInt64 = 1
    public private(set) var stats = MulticastSenderStats()
    private var heartbeatCounter: UInt64 = 0
    /// Recent datagrams for repair, oldest first: kept up to `retainBytes` and `retainTime`.
    private var retained = RingBuffer<(sequence: UInt64, sent: Timestamp, datagram: [UInt8])>()
    private var retainedBytes = 0
    private let retainBytes: Int
    private let retainTime: Int64

    /// - Parameters:
    ///   - maximumDatagram: the largest datagram to send (header and tag included); 1472 fits
    ///     an Ethernet frame without IP fragmentation.
    ///   - retainBytes, retainTime: how much recent traffic is kept for repairs.
    public init(channel: UInt16, stream: UInt32 = .random(in: 1...UInt32.max), key: MulticastKey = MulticastKey(),
                maximumDatagram: Int = 1472, retainBytes: Int = 8 << 20, retainTime: Duration = .seconds(5)) {
        precondition(maximumDatagram > MulticastHeader.length + MulticastHeader.tagLength + 64, "multicast datagrams too small")
        self.channel = channel
        self.stream = stream
        self.key = key
        self.maximumDatagram = maximumDatagram
        self.retainBytes = retainBytes
        self.retainTime = retainTime.nanoseconds
    }

    /// What a new receiver needs: it gets datagrams from the next sequence on.
    public func descriptor(group: NetworkAddress?) -> MulticastStreamDescriptor {
        MulticastStreamDescriptor(channel: channel, stream: stream, key: key.bytes, firstSequence: nextSequence, group: group)
    }

    /// Cuts `message` into sealed datagrams (at least one, even for an empty message).
    public mutating func send(_ message: [UInt8], now: Timestamp) -> [[UInt8]] {
        let room = maximumDatagram - MulticastHeader.length - MulticastHeader.tagLength
        var datagrams: [[UInt8]] = []
        datagrams.reserveCapacity(message.count / room + 1)
        var offset = 0
        repeat {
            let end = min(offset + room, message.count)
            var flags: MulticastHeader.Flags = []
            if offset == 0 { flags.insert(.first) }
            if end == message.count { flags.insert(.last) }
            let header = MulticastHeader(kind: .data, stream: stream, sequence: nextSequence, channel: channel, flags: flags)
            let datagram = key.seal(header, body: message[offset..<end])
            retain(nextSequence, datagram, now: now)
            nextSequence += 1
            stats.datagrams += 1
            stats.bytes += UInt64(datagram.count)
            datagrams.append(datagram)
            offset = end
        } while offset < message.count
        stats.messages += 1
        return datagrams
    }

    /// A heartbeat: tells receivers the next data sequence, so they notice lost tails.
    public mutating func heartbeat() -> [UInt8] {
        heartbeatCounter += 1
        stats.heartbeats += 1
        var body = ByteWriter(capacity: 8)
        body.writeUInt64(nextSequence)
        return key.seal(MulticastHeader(kind: .heartbeat, stream: stream, sequence: heartbeatCounter, channel: channel), body: body.bytes)
    }

    /// The kept datagrams among `ranges` (a receiver's NACK); the rest are counted as unavailable.
    public mutating func repair(_ ranges: [Range<UInt64>]) -> [[UInt8]] {
        var found: [[UInt8]] = []
        guard let oldest = retained.first?.sequence else {
            stats.repairsUnavailable += ranges.reduce(0) { $0 + UInt64($1.count) }
            return []
        }
        for range in ranges {
            let asked = range.clamped(to: 1..<nextSequence)
            stats.repairsUnavailable += UInt64(range.count - asked.count)
            for sequence in asked {
                guard sequence >= oldest else {
                    stats.repairsUnavailable += 1
                    continue
                }
                // Sequences are consecutive in the ring, so the index is the distance from the oldest.
                let datagram = retained[Int(sequence - oldest)].datagram
                found.append(datagram)
                stats.repairs += 1
                stats.repairBytes += UInt64(datagram.count)
            }
        }
        return found
    }

    private mutating func retain(_ sequence: UInt64, _ datagram: [UInt8], now: Timestamp) {
        retained.append((sequence, now, datagram))
        retainedBytes += datagram.count
        while let oldest = retained.first,
              retainedBytes > retainBytes || now.nanoseconds(since: oldest.sent) > retainTime {
            retainedBytes -= oldest.datagram.count
            _ = retained.popFirst()
        }
    }
}
