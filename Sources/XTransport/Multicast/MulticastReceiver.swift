// The receiving side of one multicast stream, sans-IO. Datagrams come from the group or
// relayed over the session (repairs, and everything while the group does not reach this
// receiver); either way each sequence counts once. Messages come out whole and in order. A
// gap is NACKed to the sender once when first seen (again only if no repair came within the
// NACK interval), and skipped, counted as lost, if still missing at the deadline.

/// Counters of one receiving stream.
public struct MulticastReceiverStats: Hashable, Sendable, Codable {
    /// Datagrams taken, by how they came.
    public var viaGroup: UInt64 = 0
    public var viaRelay: UInt64 = 0
    /// Datagrams that came again (group and relay both, or a repeated repair).
    public var duplicates: UInt64 = 0
    /// Datagrams asked for again, and NACKs sent.
    public var nackedDatagrams: UInt64 = 0
    public var nacks: UInt64 = 0
    /// Asked-for datagrams that then came.
    public var repaired: UInt64 = 0
    /// Datagrams given up at the deadline (their messages are not delivered).
    public var lostDatagrams: UInt64 = 0
    public var delivered: UInt64 = 0
    /// Datagrams that failed to authenticate, belonged to another stream, or came before this
    /// receiver's first sequence.
    public var rejected: UInt64 = 0
    public init() {}
}

public struct MulticastReceiver: Sendable {
    /// How a datagram came.
    public enum Path: Sendable { case group, relay }

    /// What became of one datagram.
    public enum Verdict: Hashable, Sendable {
        case accepted
        case duplicate
        /// Before this receiver's window, or a heartbeat that says nothing new.
        case stale
        /// Another stream or channel (a sender restarted, or not ours).
        case foreignStream
        /// Does not authenticate under the group key, or is malformed.
        case forged
    }

    public let descriptor: MulticastStreamDescriptor
    public private(set) var stats = MulticastReceiverStats()
    /// When the group (not a relay) last brought a valid datagram of this stream.
    public private(set) var lastGroupDatagram: Timestamp?
    private let key: MulticastKey
    private let deadline: Int64
    private let nackInterval: Int64
    /// The next sequence to deliver.
    private var next: UInt64
    /// One past the highest sequence known to exist (from data or heartbeats).
    private var known: UInt64
    private var buffered: [UInt64: (flags: MulticastHeader.Flags, body: [UInt8])] = [:]
    /// Missing sequences: when first noticed, and when last asked for (nil: not yet).
    private var missing: [UInt64: (noticed: Timestamp, asked: Timestamp?)] = [:]
    /// No NACK is due before this (a cheap answer to the frequent question).
    private var nackDue: Timestamp?
    /// Most datagrams held ahead of a gap; a sequence further ahead moves the window on.
    public static let window: UInt64 = 16_384
    /// Sequences at or above this are refused (a sender would need 2^63 datagrams to reach it).
    static let largestSequence: UInt64 = 1 << 63

    /// - Parameters:
    ///   - deadline: how long a gap is waited for before it is skipped.
    ///   - nackInterval: how long before a still-missing datagram is asked for again.
    /// - Throws: ``TransportError`` if the descriptor's key is not 32 bytes.
    public init(_ descriptor: MulticastStreamDescriptor, deadline: Duration = .milliseconds(500),
                nackInterval: Duration = .milliseconds(250)) throws(TransportError) {
        self.descriptor = descriptor
        key = try MulticastKey(bytes: descriptor.key)
        self.deadline = deadline.nanoseconds
        self.nackInterval = nackInterval.nanoseconds
        next = max(descriptor.firstSequence, 1)
        known = next
    }

    /// Takes one datagram.
    public mutating func receive(_ datagram: [UInt8], via path: Path, now: Timestamp) -> Verdict {
        guard let header = try? MulticastHeader.decode(datagram) else {
            stats.rejected += 1
            return .forged
        }
        return receive(datagram, header: header, via: path, now: now)
    }

    /// Takes one datagram whose header the caller has already read.
    public mutating func receive(_ datagram: [UInt8], header: MulticastHeader, via path: Path, now: Timestamp) -> Verdict {
        guard header.stream == descriptor.stream, header.channel == descriptor.channel else {
            return .foreignStream
        }
        if header.kind == .data, header.sequence < next || buffered[header.sequence] != nil {
            stats.duplicates += 1  // checked before opening: cheap, and a replay opens anyway
            return header.sequence < descriptor.firstSequence ? .stale : .duplicate
        }
        guard let body = key.open(datagram, header: header) else {
            stats.rejected += 1
            return .forged
        }
        if path == .group { lastGroupDatagram = now }
        // Sequences count up from 1: one in the top half of UInt64 is forged or corrupt, and
        // would overflow the window arithmetic below.
        guard header.sequence < Self.largestSequence else {
            stats.rejected += 1
            return .forged
        }
        switch header.kind {
        case .heartbeat:
            guard body.count == 8 else {
                stats.rejected += 1
                return .forged
            }
            let announced = body.withUnsafeBytes { UInt64(bigEndian: $0.loadUnaligned(as: UInt64.self)) }
            guard announced < Self.largestSequence else {
                stats.rejected += 1
                return .forged
            }
            guard announced > known else { return .stale }
            learn(upTo: announced, now: now)
            return .accepted
        case .data:
            let sequence = header.sequence
            if sequence >= next + Self.window {
                // Far ahead: what cannot be held any more is lost.
                skip(to: sequence - Self.window + 1)
            }
            if path == .group { stats.viaGroup += 1 } else { stats.viaRelay += 1 }
            if missing.removeValue(forKey: sequence)?.asked != nil { stats.repaired += 1 }
            buffered[sequence] = (header.flags, body)
            learn(upTo: sequence + 1, now: now)
            return .accepted
        }
    }

    /// Sequences now known to exist: those not held are missing from now.
    private mutating func learn(upTo end: UInt64, now: Timestamp) {
        guard end > known else { return }
        if end > next + Self.window { skip(to: end - Self.window) }
        for sequence in known..<end where buffered[sequence] == nil && sequence >= next {
            missing[sequence] = (now, nil)
            nackDue = now
        }
        known = end
    }

    /// Whole messages ready in order. Gaps past their deadline are skipped (counted lost).
    public mutating func takeMessages(now: Timestamp) -> [[UInt8]] {
        var messages: [[UInt8]] = []
        while true {
            if let message = takeMessage() {
                messages.append(message)
                continue
            }
            // Blocked on a gap at `next` or inside the message starting there: skip it once overdue.
            var gap = next
            while buffered[gap] != nil { gap += 1 }
            guard let entry = missing[gap], now.nanoseconds(since: entry.noticed) >= deadline else { break }
            skip(to: gap + 1)
        }
        stats.delivered += UInt64(messages.count)
        return messages
    }

    /// The message starting at `next`, if all its fragments are here.
    private mutating func takeMessage() -> [UInt8]? {
        guard let head = buffered[next] else { return nil }
        guard head.flags.contains(.first) else {
            // A fragment whose start was lost: drop it and what follows of its message.
            buffered[next] = nil
            next += 1
            return takeMessage()
        }
        var end = next
        while let fragment = buffered[end], !fragment.flags.contains(.last) { end += 1 }
        guard buffered[end] != nil else { return nil }  // the rest has not come
        var message: [UInt8] = []
        for sequence in next...end { message += buffered.removeValue(forKey: sequence)!.body }
        next = end + 1
        return message
    }

    /// Gives up on everything before `sequence`: what is missing there is lost, and held
    /// fragments of messages that cannot complete are dropped.
    private mutating func skip(to sequence: UInt64) {
        guard sequence > next else { return }
        if sequence - next <= UInt64(missing.count + buffered.count) {
            // A short skip (the usual one gap): visit just those sequences.
            for dropped in next..<min(sequence, known) {
                if missing.removeValue(forKey: dropped) != nil { stats.lostDatagrams += 1 }
                buffered[dropped] = nil
            }
        } else {
            for lost in missing.keys where lost < sequence {
                missing[lost] = nil
                stats.lostDatagrams += 1
            }
            for dropped in buffered.keys where dropped < sequence { buffered[dropped] = nil }
        }
        if sequence > known {
            stats.lostDatagrams += sequence - known  // never seen nor announced
            known = sequence
        }
        next = sequence
        // A message broken at its start: its remaining fragments are dropped by takeMessage.
    }

    /// Missing sequences to ask the sender for now, as ranges; each asked again only after
    /// the NACK interval.
    public mutating func takeNack(now: Timestamp) -> [Range<UInt64>] {
        guard let nackDue, now >= nackDue, !missing.isEmpty else { return [] }
        var due: [UInt64] = []
        var nextDue = now.adding(nanoseconds: nackInterval)
        for (sequence, entry) in missing {
            if let asked = entry.asked, now.nanoseconds(since: asked) < nackInterval {
                nextDue = min(nextDue, asked.adding(nanoseconds: nackInterval))
                continue
            }
            due.append(sequence)
        }
        self.nackDue = nextDue
        guard !due.isEmpty else { return [] }
        due.sort()
        var ranges: [Range<UInt64>] = []
        for sequence in due {
            missing[sequence]!.asked = now
            if let last = ranges.last, last.upperBound == sequence {
                ranges[ranges.count - 1] = last.lowerBound..<sequence + 1
            } else {
                ranges.append(sequence..<sequence + 1)
            }
        }
        stats.nackedDatagrams += UInt64(due.count)
        stats.nacks += 1
        return ranges
    }

    /// Datagrams missing now.
    public var missingCount: Int { missing.count }
}
