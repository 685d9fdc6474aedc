// What makes routed messages exactly-once across reconnects: the sender's outbox keeps each
// message until the host accepts it and sends the rest again after a reconnect; the receiver's
// duplicate filter drops what it already delivered. Message ids carry the sending process's
// epoch (random at start) above a sequence, so a restarted sender is told apart.
public import XTransport

/// A node's claim in the handshake's hello bytes: its id and name.
public struct NodeHello: Hashable, Sendable {
    public var id: NodeID
    public var name: String

    public init(id: NodeID, name: String) {
        self.id = id
        self.name = name
    }

    static let magic: [UInt8] = Array("XTN1".utf8)

    public func encoded() -> [UInt8] {
        var writer = ByteWriter(capacity: 16 + name.utf8.count)
        writer.writeBytes(Self.magic)
        writer.writeUInt16(id.area)
        writer.writeUInt16(id.local)
        let name = Array(self.name.utf8.prefix(64))
        writer.writeUInt8(UInt8(name.count))
        writer.writeBytes(name)
        return writer.bytes
    }

    /// Reads a hello; nil if the bytes are not a node's hello.
    public init?(_ bytes: [UInt8]) {
        guard bytes.count >= 9, Array(bytes.prefix(4)) == Self.magic else { return nil }
        let area = UInt16(bytes[4]) << 8 | UInt16(bytes[5])
        let local = UInt16(bytes[6]) << 8 | UInt16(bytes[7])
        let length = Int(bytes[8])
        guard bytes.count == 9 + length, length > 0,
              let name = String(validating: bytes[9...], as: UTF8.self) else { return nil }
        id = NodeID(area: area, local: local)
        self.name = name
    }
}

/// Message ids for one sending process: a random epoch above a 32-bit sequence. The epoch has
/// 30 bits, so an id fits the wire's varint (62 bits).
public struct MessageIDs: Sendable {
    public let epoch: UInt32
    private var sequence: UInt32 = 0

    public init(epoch: UInt32 = UInt32.random(in: 1...(1 << 30 - 1))) {
        precondition(epoch < 1 << 30, "epochs have 30 bits")
        self.epoch = epoch
    }

    public mutating func next() -> UInt64 {
        sequence &+= 1
        return UInt64(epoch) << 32 | UInt64(sequence)
    }
}

/// A sender's messages not yet accepted by the host, oldest first.
public struct Outbox: Sendable {
    public private(set) var pending: [NetEnvelope] = []

    public init() {}

    public var isEmpty: Bool { pending.isEmpty }

    public mutating func add(_ envelope: NetEnvelope) { pending.append(envelope) }

    /// The host accepted `id` (or refused it): it leaves the outbox. Returns it if it was there.
    @discardableResult
    public mutating func remove(_ id: UInt64) -> NetEnvelope? {
        guard let index = pending.firstIndex(where: { $0.id == id }) else { return nil }
        return pending.remove(at: index)
    }
}

/// Drops messages already delivered from each sender (resent after a reconnect, or relayed
/// twice by a host that restarted before it could confirm them): one replay window — the
/// transport's, as for packet numbers — per sender and epoch.
public struct DuplicateFilter: Sendable {
    /// Sequences remembered behind the newest one per sender epoch.
    public static let window = UInt32(ReplayWindow.size)

    private var seen: [NodeID: [UInt32: ReplayWindow]] = [:]

    public init() {}

    /// Whether `id` from `sender` is new; records it if so. Ids too far behind the newest
    /// count as already delivered.
    public mutating func accept(_ id: UInt64, from sender: NodeID) -> Bool {
        let epoch = UInt32(truncatingIfNeeded: id >> 32)
        let sequence = UInt64(UInt32(truncatingIfNeeded: id))
        var epochs = seen[sender] ?? [:]
        defer { seen[sender] = epochs }
        if epochs[epoch] == nil, epochs.count >= 4 {
            // Keep the few most recent epochs of a sender that restarts often.
            if let oldest = epochs.min(by: { $0.value.highest < $1.value.highest })?.key { epochs[oldest] = nil }
        }
        var window = epochs[epoch] ?? ReplayWindow()
        guard window.check(sequence) == .fresh else { return false }
        window.mark(sequence)
        epochs[epoch] = window
        return true
    }
}

#if canImport(Glibc)
import Glibc
#endif

extension Timestamp {
    /// Now on the monotonic clock (CLOCK_MONOTONIC), for the sans-IO parts' timers.
    public static var monotonicNow: Timestamp {
        var spec = timespec()
        clock_gettime(CLOCK_MONOTONIC, &spec)
        return Timestamp(nanoseconds: UInt64(spec.tv_sec) * 1_000_000_000 + UInt64(spec.tv_nsec))
    }
}
