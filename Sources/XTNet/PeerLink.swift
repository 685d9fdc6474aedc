// Direct sessions between nodes (LRP2P: every endpoint can connect and accept, any number of
// peers on one socket). Two nodes learn each other's key and addresses through the host, which
// vouches for who said them; one opens a session straight to the other, and what they send on
// it skips the host. The node's socket admits a peer's key only while the application wants
// the link (see ``NetNode/admitPeer(_:name:)``).
import Synchronization
public import XTransport
public import XTransportNIO

/// A direct session to another node, with the node network's lanes.
public final class PeerLink: Sendable {
    /// The peer's name and id, as its hello said (checked against the name it was admitted as).
    public let name: String
    public let id: NodeID
    public let key: PublicKey
    /// Whether this node opened the link (else the peer did).
    public let opened: Bool
    let session: TransportSession

    init(session: TransportSession, hello: NodeHello, opened: Bool) {
        self.session = session
        name = hello.name
        id = hello.id
        key = session.peerKey
        self.opened = opened
    }

    /// Sends `bytes` on `lane` (live lanes retransmit until their deadline, then skip).
    /// - Throws: ``TransportError`` once the link has closed.
    public func send(_ bytes: [UInt8], lane: NetLane) async throws {
        try await session.send(bytes, on: lane.rawValue)
    }

    /// Calls `body` with each message the peer sends, and its lane, until the link closes.
    public func receive(_ body: @Sendable (NetLane, [UInt8]) async -> Void) async {
        do {
            for try await item in session.inbound {
                guard let message = item.laneMessage, let lane = NetLane(rawValue: message.channel) else { continue }
                await body(lane, message.payload)
            }
        } catch {
            return
        }
    }

    /// Whether the session has ended (closed by either side, or the peer went silent).
    public var isClosed: Bool { session.closedReason != nil }

    /// The session's figures (RTT, loss), while it is open.
    public func stats() async -> SessionStats? { try? await session.stats() }

    public func close() async { await session.close() }
}

/// Why a direct session could not be opened.
public struct PeerLinkError: Error, Sendable, Equatable, CustomStringConvertible {
    public let reason: String
    public var description: String { reason }
}

extension NetNode {
    /// Opens a direct session to the node `name` holding `key`, trying every address at once;
    /// the first handshake to finish wins and the others are dropped.
    /// - Throws: ``PeerLinkError`` when none answers (within the session's handshake timeout),
    ///   or when the node answering is not `name`.
    public func connectPeer(_ key: PublicKey, name: String, at addresses: [NetworkAddress]) async throws -> PeerLink {
        guard let endpoint = currentEndpoint, !addresses.isEmpty else { throw PeerLinkError(reason: "no address to try for \(name)") }
        admitPeerKey(key, name: name)
        try? await endpoint.updateAdmission(admission)
        let session = await FirstSession.race(addresses.prefix(8).map { address in { try await endpoint.connect(to: address, peerKey: key) } })
        guard let session else { throw PeerLinkError(reason: "\(name) did not answer at \(addresses.map(\.description).joined(separator: ", "))") }
        guard let hello = NodeHello(session.hello), hello.name == name else {
            session.abort(reason: "not the node expected")
            throw PeerLinkError(reason: "the node at that address is not \(name)")
        }
        try await NetChannel.configure(session, liveDeadline: liveDeadline)
        return PeerLink(session: session, hello: hello, opened: true)
    }
}

/// The first of several attempts to succeed; the losers' sessions are aborted when they finish.
final class FirstSession: Sendable {
    private struct State {
        var winner = false
        var failures = 0
        var continuation: CheckedContinuation<TransportSession?, Never>?
    }
    private let state = Mutex(State())
    private let attempts: Int

    private init(attempts: Int) { self.attempts = attempts }

    static func race(_ attempts: [@Sendable () async throws -> TransportSession]) async -> TransportSession? {
        let race = FirstSession(attempts: attempts.count)
        return await withCheckedContinuation { continuation in
            race.state.withLock { $0.continuation = continuation }
            for attempt in attempts {
                Task { race.finished(try? await attempt()) }
            }
        }
    }

    private func finished(_ session: TransportSession?) {
        let resume = state.withLock { current -> CheckedContinuation<TransportSession?, Never>? in
            if session != nil { if current.winner { return nil } else { current.winner = true } } else { current.failures += 1 }
            guard current.winner || current.failures == attempts else { return nil }
            defer { current.continuation = nil }
            return current.continuation
        }
        if let resume {
            resume.resume(returning: session)
        } else {
            session?.abort(reason: "another address answered first")
        }
    }
}
