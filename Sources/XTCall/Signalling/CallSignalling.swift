// One call as this node sees it, as a sans-IO state machine (in the manner of postgres-nio's
// ConnectionStateMachine): it takes user actions, received messages and the time, and returns
// actions — messages to send, start or stop ringing, the parties to exchange media with, the
// end. No sockets, clocks or tasks: the call driver runs it, tests script it.
public import XTransport

/// How a call ended, from this node's side.
public enum CallEnd: Equatable, Sendable, CustomStringConvertible {
    /// The last other party hung up.
    case hungUp(by: String)
    /// This node hung up (or declined, or withdrew its invitation).
    case local
    /// Everyone invited said no; the reason is the last one's.
    case declined(by: String, DeclineReason)
    /// Rang for the ring timeout and nobody answered.
    case noAnswer
    /// Nobody invited could be reached (unknown name, offline, no reply).
    case unreachable(String)
    /// The caller withdrew before this node answered.
    case cancelled(by: String)
    /// This node rang for the ring timeout and its user did not answer.
    case missed

    public var description: String {
        switch self {
        case .hungUp(let name): "\(name) hung up"
        case .local: "hung up"
        case .declined(let name, let reason): "\(name) \(reason == .busy ? "is busy" : reason == .unavailable ? "cannot take calls" : "declined")"
        case .noAnswer: "no answer"
        case .unreachable(let why): why
        case .cancelled(let name): "\(name) hung up before you answered"
        case .missed: "missed call"
        }
    }
}

/// Timeouts of the signalling. Defaults: a reply to an invitation within 5 s (else the party is
/// unreachable), an answer within 30 s of ringing (a phone rings about that long).
public struct CallTimeouts: Sendable, Equatable {
    public var reply: Duration = .seconds(5)
    public var ring: Duration = .seconds(30)
    public init() {}
}

/// A call that cannot be placed as asked.
public enum CallError: Error, Equatable, Sendable, CustomStringConvertible {
    case invalidName(String)
    case tooManyParties(Int)
    case callingYourself
    case noParties
    case alreadyInCall(CallID)

    public var description: String {
        switch self {
        case .invalidName(let name): "'\(name)' is not a node or user name: use 1…\(CallMessage.maximumNameLength) printable characters, no commas"
        case .tooManyParties(let count): "\(count) parties is too many: a group call has at most \(CallMessage.maximumParties), you included"
        case .callingYourself: "you cannot call yourself"
        case .noParties: "name at least one node or user to call"
        case .alreadyInCall(let id): "already in call \(id): hang up first"
        }
    }
}

/// One call from this node's side.
public struct CallSignalling: Sendable {
    public enum State: Equatable, Sendable {
        /// Invitations sent, nobody alerting yet.
        case calling
        /// At least one party is alerting its user.
        case ringing
        /// Someone is calling this node; its user has not answered.
        case incoming
        /// At least one other party is in the call.
        case active
        case ended(CallEnd)
    }

    public enum Action: Equatable, Sendable {
        case send(CallMessage, to: [String])
        /// Ring: `from` calls, with `media`; `parties` are everyone invited besides this node.
        case alert(from: String, media: CallMedia, parties: [String])
        case stopAlert
        /// The parties in the call besides this node changed: exchange media with these.
        case media(parties: [String])
        /// A party in the call offered a direct path: try it (see ``CallMessage/direct(call:from:key:addresses:)``).
        case direct(party: String, key: PublicKey, addresses: [NetworkAddress])
        case ended(CallEnd)
    }

    private enum Party: Equatable {
        case invited(since: Timestamp)
        case alerting(since: Timestamp)
        case joined(CallMedia)
        case gone
    }

    public let id: CallID
    public let me: String
    public let media: CallMedia
    /// Seals the call's relayed media (drawn by the caller, learnt from its invitation).
    public let key: CallKey
    public let isCaller: Bool
    public let timeouts: CallTimeouts
    public private(set) var state: State
    /// Messages from names that are not parties of this call, or out of turn.
    public private(set) var ignored = 0
    private var order: [String]
    private var parties: [String: Party]
    private var incomingSince: Timestamp?
    private var lastDecline: (String, DeclineReason)?
    private var lastUnreachable: String?

    /// Places a call to `names` (one, or up to 7 for a group call).
    /// - Returns: the call and its first actions (the invitations).
    /// - Throws: ``CallError`` for a bad or repeated name, too many parties, or calling oneself.
    public static func place(to names: [String], from me: String, media: CallMedia, id: CallID = .random(), key: CallKey = .random(), now: Timestamp,
                             timeouts: CallTimeouts = CallTimeouts()) throws(CallError) -> (CallSignalling, [Action]) {
        guard !names.isEmpty else { throw .noParties }
        for name in [me] + names where !CallMessage.isValidName(name) { throw .invalidName(name) }
        var unique: [String] = []
        for name in names where !unique.contains(name) { unique.append(name) }
        guard !unique.contains(me) else { throw .callingYourself }
        guard unique.count < CallMessage.maximumParties else { throw .tooManyParties(unique.count + 1) }
        let call = CallSignalling(id: id, me: me, media: media, key: key, isCaller: true, timeouts: timeouts, state: .calling, order: unique,
                                  parties: Dictionary(uniqueKeysWithValues: unique.map { ($0, .invited(since: now)) }))
        return (call, [.send(.invite(call: id, from: me, parties: [me] + unique, media: media, key: key), to: unique)])
    }

    /// Takes an invitation addressed to `me`.
    /// - Returns: nil if `me` is not among its parties; else the call, ringing, and its first actions.
    public static func receive(_ invite: CallMessage, me: String, now: Timestamp, timeouts: CallTimeouts = CallTimeouts()) -> (CallSignalling, [Action])? {
        guard case .invite(let id, let caller, let roster, let media, let key) = invite, roster.contains(me), caller != me else { return nil }
        let others = roster.filter { $0 != me }
        var parties = Dictionary(uniqueKeysWithValues: others.map { ($0, Party.invited(since: now)) })
        parties[caller] = .joined(media)
        var call = CallSignalling(id: id, me: me, media: media, key: key, isCaller: false, timeouts: timeouts, state: .incoming, order: others, parties: parties)
        call.incomingSince = now
        return (call, [.send(.ringing(call: id, from: me), to: [caller]), .alert(from: caller, media: media, parties: others)])
    }

    private init(id: CallID, me: String, media: CallMedia, key: CallKey, isCaller: Bool, timeouts: CallTimeouts, state: State, order: [String], parties: [String: Party]) {
        self.id = id
        self.me = me
        self.media = media
        self.key = key
        self.isCaller = isCaller
        self.timeouts = timeouts
        self.state = state
        self.order = order
        self.parties = parties
    }

    /// Everyone in the call besides this node, in invitation order (joined, invited or gone).
    public var others: [String] { order }

    /// The other parties in the call now, in invitation order.
    public var joined: [String] {
        order.filter { if case .joined = parties[$0] { true } else { false } }
    }

    /// Parties still being invited or rung.
    private var pending: [String] {
        order.filter {
            switch parties[$0] {
            case .invited, .alerting: true
            default: false
            }
        }
    }

    /// A callee rings this much longer than the caller waits, so the caller's hang-up normally
    /// ends the ringing; the callee stops by itself only when that message is lost.
    static let calleeGrace: Duration = .seconds(2)

    public var isEnded: Bool { if case .ended = state { true } else { false } }

    // MARK: - User actions

    /// The user answers an incoming call, sending `media` (nil: what the caller offered).
    public mutating func answer(media answered: CallMedia? = nil, now: Timestamp) -> [Action] {
        guard state == .incoming else { return [] }
        state = .active
        incomingSince = nil
        let others = order.filter { parties[$0] != .gone }
        return [.stopAlert, .send(.accept(call: id, from: me, media: answered ?? media), to: others), .media(parties: joined)]
    }

    /// The user declines an incoming call.
    public mutating func decline(now: Timestamp) -> [Action] {
        guard state == .incoming, let caller = order.first(where: { parties[$0] != .gone }) else { return [] }
        state = .ended(.local)
        return [.stopAlert, .send(.decline(call: id, from: me, reason: .declined), to: [caller]), .ended(.local)]
    }

    /// The user hangs up (or, while calling, withdraws the invitations).
    public mutating func hangUp(now: Timestamp) -> [Action] {
        switch state {
        case .ended:
            return []
        case .incoming:
            return decline(now: now)
        case .calling, .ringing, .active:
            let others = order.filter { parties[$0] != .gone }
            for name in others { parties[name] = .gone }
            state = .ended(.local)
            return (others.isEmpty ? [] : [.send(.hangup(call: id, from: me), to: others)]) + [.media(parties: []), .ended(.local)]
        }
    }

    // MARK: - Messages

    /// Handles a message of this call from an authenticated sender (`message.from` must be it).
    public mutating func handle(_ message: CallMessage, now: Timestamp) -> [Action] {
        let sender = message.from
        guard message.call == id, !isEnded, let party = parties[sender] else {
            ignored += 1
            return []
        }
        switch message {
        case .invite:
            // The caller repeating its invitation (ours was lost): ring back again.
            guard !isCaller, state == .incoming, case .joined = party else { ignored += 1; return [] }
            return [.send(.ringing(call: id, from: me), to: [sender])]
        case .ringing:
            guard isCaller, case .invited = party else { ignored += 1; return [] }
            parties[sender] = .alerting(since: now)
            if state == .calling { state = .ringing }
            return []
        case .accept(_, _, let theirs):
            if case .joined = party { return [] }  // a repeat
            let before = joined
            parties[sender] = .joined(theirs)
            if isCaller && state != .active { state = .active }
            guard state == .active, joined != before else { return [] }
            return [.media(parties: joined)]
        case .decline(_, _, let reason):
            if case .joined = party, !isCaller { ignored += 1; return [] }
            parties[sender] = .gone
            lastDecline = (sender, reason)
            return settle(now: now)
        case .direct(_, _, let key, let addresses):
            guard case .joined = party else { ignored += 1; return [] }
            return [.direct(party: sender, key: key, addresses: addresses)]
        case .hangup:
            let wasJoined = if case .joined = party { true } else { false }
            parties[sender] = .gone
            if state == .incoming && joined.isEmpty {
                state = .ended(.cancelled(by: sender))
                return [.stopAlert, .ended(.cancelled(by: sender))]
            }
            var actions: [Action] = wasJoined && state == .active ? [.media(parties: joined)] : []
            actions += settle(now: now, hungUpBy: sender)
            return actions
        }
    }

    /// A message to `name` could not be delivered (unknown name, offline): `reason` says which.
    public mutating func undeliverable(to name: String, reason: String, now: Timestamp) -> [Action] {
        guard !isEnded, let party = parties[name], party != .gone else { return [] }
        parties[name] = .gone
        lastUnreachable = reason
        var actions: [Action] = []
        if case .joined = party, state == .active { actions.append(.media(parties: joined)) }
        return actions + settle(now: now)
    }

    // MARK: - Time

    /// When ``handleTimeout(now:)`` is next due (nil: nothing pending).
    public var nextDeadline: Timestamp? {
        guard !isEnded else { return nil }
        if let incomingSince { return incomingSince.adding(timeouts.ring).adding(Self.calleeGrace) }
        return order.compactMap { name -> Timestamp? in
            switch parties[name] {
            case .invited(let since): since.adding(timeouts.reply)
            case .alerting(let since): since.adding(timeouts.ring)
            default: nil
            }
        }.min()
    }

    /// Ends what has timed out by `now`.
    public mutating func handleTimeout(now: Timestamp) -> [Action] {
        guard !isEnded else { return [] }
        if let since = incomingSince, since.adding(timeouts.ring).adding(Self.calleeGrace) <= now {
            state = .ended(.missed)
            return [.stopAlert, .ended(.missed)]
        }
        var actions: [Action] = []
        var unanswered: [String] = []
        for name in order {
            switch parties[name] {
            case .invited(let since) where since.adding(timeouts.reply) <= now:
                parties[name] = .gone
                lastUnreachable = "no reply from \(name): is it running and connected to the host?"
            case .alerting(let since) where since.adding(timeouts.ring) <= now:
                parties[name] = .gone
                unanswered.append(name)
            default:
                break
            }
        }
        if !unanswered.isEmpty { actions.append(.send(.hangup(call: id, from: me), to: unanswered)) }
        return actions + settle(now: now, noAnswer: !unanswered.isEmpty)
    }

    /// Ends the call once nobody is left in it or still being invited.
    private mutating func settle(now: Timestamp, hungUpBy: String? = nil, noAnswer: Bool = false) -> [Action] {
        guard joined.isEmpty, pending.isEmpty || !isCaller else { return [] }
        if !isCaller && state == .incoming { return [] }  // still ringing here; the caller decides
        let end: CallEnd
        if let hungUpBy, state == .active {
            end = .hungUp(by: hungUpBy)
        } else if state == .active {
            end = .hungUp(by: order.last ?? "")
        } else if noAnswer {
            end = .noAnswer
        } else if let (name, reason) = lastDecline {
            end = .declined(by: name, reason)
        } else if let lastUnreachable {
            end = .unreachable(lastUnreachable)
        } else {
            end = .noAnswer
        }
        state = .ended(end)
        return [.ended(end)]
    }
}
