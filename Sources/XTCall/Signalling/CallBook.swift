// This node's calls: at most one at a time. A second invitation is answered "busy", messages
// whose claimed sender is not the authenticated one are dropped, and the rest go to the call.
public import XTransport

/// The calls of one node, sans-IO: the call driver feeds it and carries out its actions.
public struct CallBook: Sendable {
    public let me: String
    public var timeouts: CallTimeouts
    public private(set) var current: CallSignalling?
    /// Messages dropped: a sender claiming another's name, or a call this node does not have.
    public private(set) var dropped = 0

    public init(me: String, timeouts: CallTimeouts = CallTimeouts()) {
        self.me = me
        self.timeouts = timeouts
    }

    /// The call in progress, if any (ended calls do not count).
    public var active: CallSignalling? { current.flatMap { $0.isEnded ? nil : $0 } }

    /// Places a call.
    /// - Throws: ``CallError``: a bad name, too many parties, or a call already in progress.
    public mutating func place(to names: [String], media: CallMedia, id: CallID = .random(), now: Timestamp) throws(CallError) -> [CallSignalling.Action] {
        if let active { throw .alreadyInCall(active.id) }
        let (call, actions) = try CallSignalling.place(to: names, from: me, media: media, id: id, now: now, timeouts: timeouts)
        current = call
        return actions
    }

    /// Handles a message from the authenticated node `sender`.
    public mutating func receive(_ message: CallMessage, from sender: String, now: Timestamp) -> [CallSignalling.Action] {
        guard message.from == sender else {
            dropped += 1
            return []
        }
        if case .invite = message, message.call != active?.id {
            if active != nil {
                return [.send(.decline(call: message.call, from: me, reason: .busy), to: [sender])]
            }
            guard let (call, actions) = CallSignalling.receive(message, me: me, now: now, timeouts: timeouts) else {
                dropped += 1
                return []
            }
            current = call
            return actions
        }
        guard current?.id == message.call else {
            dropped += 1
            return []
        }
        return current!.handle(message, now: now)
    }

    public mutating func answer(media: CallMedia? = nil, now: Timestamp) -> [CallSignalling.Action] { current?.answer(media: media, now: now) ?? [] }
    public mutating func decline(now: Timestamp) -> [CallSignalling.Action] { current?.decline(now: now) ?? [] }
    public mutating func hangUp(now: Timestamp) -> [CallSignalling.Action] { current?.hangUp(now: now) ?? [] }
    public mutating func undeliverable(to name: String, reason: String, now: Timestamp) -> [CallSignalling.Action] {
        current?.undeliverable(to: name, reason: reason, now: now) ?? []
    }
    public var nextDeadline: Timestamp? { current?.nextDeadline }
    public mutating func handleTimeout(now: Timestamp) -> [CallSignalling.Action] { current?.handleTimeout(now: now) ?? [] }
}
