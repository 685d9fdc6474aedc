// One session as the application sees it: async sends that wait when the send buffer is
// full, an async sequence of what arrives (with backpressure to the peer), stats and close.
import NIOCore
public import XTransport
import Synchronization

/// What a session delivers to the application.
public enum Inbound: Sendable, Equatable {
    /// A message on a messages or live channel.
    case message(Message)
    /// In-order bytes on a stream channel.
    case bytes(channel: UInt16, [UInt8])
    /// An unreliable datagram.
    case datagram(Message)
    /// The sender skipped live messages whose deadline passed.
    case gap(channel: UInt16, firstSequence: UInt64, count: UInt64)

    var byteCount: Int {
        switch self {
        case .message(let message), .datagram(let message): message.payload.count
        case .bytes(_, let bytes): bytes.count
        case .gap: 0
        }
    }
}

/// An established xtransport session.
public final class TransportSession: Sendable {
    public let id: SessionID
    /// The peer's authenticated public key.
    public let peerKey: PublicKey
    /// The application bytes the peer sent in its handshake.
    public let hello: [UInt8]
    let endpoint: TransportEndpoint
    private let stream: AsyncThrowingStream<Inbound, any Error>
    private let closeReason = Mutex<CloseReason?>(nil)
    /// Set by the driver while it holds the peer back because the application is behind.
    private let inboundPaused = Mutex<Bool>(false)

    func setInboundPaused(_ paused: Bool) { inboundPaused.withLock { $0 = paused } }
    var isInboundPaused: Bool { inboundPaused.withLock { $0 } }

    init(id: SessionID, peerKey: PublicKey, hello: [UInt8], endpoint: TransportEndpoint, stream: AsyncThrowingStream<Inbound, any Error>) {
        self.id = id
        self.peerKey = peerKey
        self.hello = hello
        self.endpoint = endpoint
        self.stream = stream
    }

    func markClosed(_ reason: CloseReason) { closeReason.withLock { $0 = reason } }

    /// Why the session ended, once it has.
    public var closedReason: CloseReason? { closeReason.withLock { $0 } }

    /// Sets a channel's delivery mode, priority and live deadline (before writing to it).
    public func configure(channel: UInt16, _ configuration: ChannelConfiguration) async throws {
        let id = self.id
        try await endpoint.onLoop { driver in
            try driver.endpoint.configureChannel(channel, configuration, session: id, now: driver.now)
        }
    }

    /// Sends a message (or stream bytes) on a channel. Suspends while the send buffer is full.
    /// - Throws: ``TransportError`` if the session is closed or the message is too large.
    public func send(_ bytes: [UInt8], on channel: UInt16, route: RoutingHeader = RoutingHeader()) async throws {
        let id = self.id
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
            endpoint.execute { driver in
                driver.write(bytes, channel: channel, route: route, id: id, continuation: continuation)
            }
        }
    }

    /// Everything that arrives, in order per channel. Ends when the session closes
    /// (throwing if it ended abnormally). Iterate it from one task only.
    public var inbound: InboundSequence { InboundSequence(base: stream, session: self) }

    /// Reads stream bytes from `channel`, skipping anything else.
    /// - Returns: nil at the end of the session.
    public func read(from iterator: inout InboundSequence.AsyncIterator, channel: UInt16) async throws -> [UInt8]? {
        while let item = try await iterator.next() {
            if case .bytes(let from, let bytes) = item, from == channel { return bytes }
        }
        return nil
    }

    /// A snapshot of the link: RTT, congestion window, pacing rate, loss, retransmits, bytes.
    public func stats() async throws -> SessionStats? {
        let id = self.id
        return try await endpoint.onLoop { $0.endpoint.stats(for: id) }
    }

    /// Closes gracefully: what was sent is delivered first. Returns when the session is over.
    public func close() async {
        let id = self.id
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            endpoint.execute { driver in driver.close(id, continuation: continuation) }
        }
    }

    /// Aborts at once (the peer sees a reset).
    public func abort(reason: String = "aborted") {
        let id = self.id
        endpoint.execute { driver in
            driver.endpoint.abort(id, reason: reason, now: driver.now)
            driver.service()
        }
    }
}

/// The inbound items of a session. Consuming an item returns credit to the peer.
public struct InboundSequence: AsyncSequence, Sendable {
    public typealias Element = Inbound
    let base: AsyncThrowingStream<Inbound, any Error>
    let session: TransportSession

    public struct AsyncIterator: AsyncIteratorProtocol {
        var base: AsyncThrowingStream<Inbound, any Error>.AsyncIterator
        let session: TransportSession
        /// Consumed bytes not yet reported to the event loop (reported in batches).
        var unreported = 0
        static let reportThreshold = 256 << 10

        public mutating func next() async throws -> Inbound? {
            // What was taken before this call is consumed now; report it in batches so a
            // fast reader does not cost one event-loop hop per item.
            // While the driver holds the peer back, every consumed byte counts at once.
            if unreported >= Self.reportThreshold || (unreported > 0 && session.isInboundPaused) { report() }
            guard let item = try await base.next() else { return nil }
            unreported += item.byteCount
            return item
        }

        private mutating func report() {
            let count = unreported
            let id = session.id
            unreported = 0
            session.endpoint.execute { $0.consumed(count, id: id) }
        }
    }

    public func makeAsyncIterator() -> AsyncIterator {
        AsyncIterator(base: base.makeAsyncIterator(), session: session)
    }
}
