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
    /// Opens a direct session to the node `name` holding `key`. The addresses are tried in
    /// order, each ``FirstSession/attemptDelay`` after the one before or at once when it fails
    /// (Happy Eyeballs, RFC 8305 §5), and the first handshake to finish wins: on a LAN the first
    /// address answers before the second is tried, so the peer accepts one session, the one
    /// kept here. A loser that finishes later is aborted, and the peer sees it close.
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

/// The first of several connection attempts to succeed, started one after another (Happy
/// Eyeballs, RFC 8305): the next starts ``attemptDelay`` after the last, or at once when every
/// running attempt has failed. Started all at once, two addresses of one peer on a LAN both
/// finished their handshakes, and the peer could not tell which session the opener kept.
/// Losers that finish after the winner are aborted.
final class FirstSession: Sendable {
    /// RFC 8305 §5's recommended Connection Attempt Delay.
    static let attemptDelay: Duration = .milliseconds(250)

    private struct State {
        var winner = false
        var next = 0
        var running = 0
        var continuation: CheckedContinuation<TransportSession?, Never>?
    }
    private let state = Mutex(State())
    private let attempts: [@Sendable () async throws -> TransportSession]

    private init(attempts: [@Sendable () async throws -> TransportSession]) { self.attempts = attempts }

    /// - Returns: the first session opened, or nil when every attempt failed.
    static func race(_ attempts: [@Sendable () async throws -> TransportSession], delay: Duration = attemptDelay) async -> TransportSession? {
        guard !attempts.isEmpty else { return nil }
        let race = FirstSession(attempts: attempts)
        return await withCheckedContinuation { continuation in
            race.state.withLock { $0.continuation = continuation }
            race.startNext()
            Task {
                while race.hasMore {
                    try? await Task.sleep(for: delay)
                    race.startNext()
                }
            }
        }
    }

    private var hasMore: Bool { state.withLock { !$0.winner && $0.next < attempts.count } }

    private func startNext() {
        let attempt = state.withLock { current -> (@Sendable () async throws -> TransportSession)? in
            guard !current.winner, current.next < attempts.count else { return nil }
            defer { current.next += 1 }
            current.running += 1
            return attempts[current.next]
        }
        guard let attempt else { return }
        Task { self.finished(try? await attempt()) }
    }

    private func finished(_ session: TransportSession?) {
        enum Then { case resume(CheckedContinuation<TransportSession?, Never>?), abort, startNext, nothing }
        let then = state.withLock { current -> Then in
            current.running -= 1
            if session != nil {
                if current.winner { return .abort }
                current.winner = true
                defer { current.continuation = nil }
                return .resume(current.continuation)
            }
            if current.winner || current.running > 0 { return .nothing }
            if current.next < attempts.count { return .startNext }
            defer { current.continuation = nil }
            return .resume(current.continuation)
        }
        switch then {
        case .resume(let continuation): continuation?.resume(returning: session)
        case .abort: session?.abort(reason: "another address answered first")
        case .startNext: startNext()
        case .nothing: break
        }
    }
}
