// Call signalling, sans-IO: nodes' call books exchange messages through a scripted in-memory
// network with a virtual clock. Ring, answer, decline, busy, hang-up, cancel, timeouts, an
// unreachable name, a group call, spoofed senders, and every malformed message refused.
import Testing
import XTCall
import XTransport

/// Books by name, and the messages between them delivered at once (or dropped for a name).
private struct Network {
    var books: [String: CallBook]
    var now = Timestamp(nanoseconds: 1_000_000_000)
    var offline: Set<String> = []
    /// What each book's user saw (alerts, media changes, ends), in order.
    var seen: [String: [CallSignalling.Action]] = [:]

    init(_ names: [String]) { books = Dictionary(uniqueKeysWithValues: names.map { ($0, CallBook(me: $0)) }) }

    mutating func run(_ actions: [CallSignalling.Action], at name: String) {
        var queue = actions.map { (name, $0) }
        while !queue.isEmpty {
            let (owner, action) = queue.removeFirst()
            guard case .send(let message, let targets) = action else {
                seen[owner, default: []].append(action)
                continue
            }
            for target in targets {
                if offline.contains(target) || books[target] == nil {
                    queue += books[owner]!.undeliverable(to: target, reason: "no node or user named \(target) is connected", now: now).map { (owner, $0) }
                } else {
                    queue += books[target]!.receive(message, from: owner, now: now).map { (target, $0) }
                }
            }
        }
    }

    mutating func place(_ from: String, to names: [String], media: CallMedia = .audio) throws {
        let actions = try books[from]!.place(to: names, media: media, now: now)
        run(actions, at: from)
    }

    mutating func act(_ name: String, _ body: (inout CallBook, Timestamp) -> [CallSignalling.Action]) {
        let actions = body(&books[name]!, now)
        run(actions, at: name)
    }

    mutating func advance(_ duration: Duration) {
        now = now.adding(duration)
        for name in books.keys.sorted() { act(name) { book, now in book.handleTimeout(now: now) } }
    }

    func state(_ name: String) -> CallSignalling.State? { books[name]?.current?.state }
}

@Suite("Call signalling")
struct CallSignallingTests {
    @Test("Ring, answer, talk, hang up: both sides agree at every step")
    func answerAndHangUp() throws {
        var net = Network(["door", "alice"])
        try net.place("door", to: ["alice"], media: [.audio, .video])
        #expect(net.state("door") == .ringing)
        #expect(net.state("alice") == .incoming)
        #expect(net.seen["alice"] == [.alert(from: "door", media: [.audio, .video], parties: ["door"])])
        net.act("alice") { book, now in book.answer(now: now) }
        #expect(net.state("alice") == .active && net.state("door") == .active)
        #expect(net.seen["door"] == [.media(parties: ["alice"])])
        #expect(net.seen["alice"]?.suffix(2) == [.stopAlert, .media(parties: ["door"])])
        net.act("door") { book, now in book.hangUp(now: now) }
        #expect(net.state("door") == .ended(.local))
        #expect(net.state("alice") == .ended(.hungUp(by: "door")))
        #expect(net.seen["alice"]?.suffix(2) == [.media(parties: []), .ended(.hungUp(by: "door"))])
        #expect(net.books["door"]?.nextDeadline == nil && net.books["alice"]?.nextDeadline == nil)
    }

    @Test("Decline and busy reach the caller with the reason")
    func declineAndBusy() throws {
        var net = Network(["door", "alice", "bob"])
        try net.place("door", to: ["alice"])
        net.act("alice") { book, now in book.decline(now: now) }
        #expect(net.state("door") == .ended(.declined(by: "alice", .declined)))
        #expect("\(CallEnd.declined(by: "alice", .declined))" == "alice declined")

        try net.place("bob", to: ["alice"])
        net.act("alice") { book, now in book.answer(now: now) }
        try net.place("door", to: ["alice"])  // alice is in a call with bob
        #expect(net.state("door") == .ended(.declined(by: "alice", .busy)))
        #expect("\(CallEnd.declined(by: "alice", .busy))" == "alice is busy")
        #expect(net.state("alice") == .active, "the call in progress goes on")
        #expect(throws: CallError.alreadyInCall(net.books["bob"]!.current!.id)) { try net.books["bob"]!.place(to: ["door"], media: .audio, now: net.now) }
    }

    @Test("Nobody answers: the caller gives up after the ring timeout, the callee shows a missed call")
    func ringTimeout() throws {
        var net = Network(["door", "alice"])
        try net.place("door", to: ["alice"])
        net.advance(.seconds(29))
        #expect(net.state("door") == .ringing)
        net.advance(.seconds(1))
        #expect(net.state("door") == .ended(.noAnswer))
        #expect(net.state("alice") == .ended(.cancelled(by: "door")), "the caller's hang-up stops the ringing")
        // Had the hang-up been lost, the callee stops by itself.
        var lost = Network(["door", "alice"])
        try lost.place("door", to: ["alice"])
        lost.offline = ["alice"]
        lost.advance(.seconds(30))
        lost.offline = []
        #expect(lost.state("alice") == .incoming)
        lost.advance(.seconds(2))
        #expect(lost.state("alice") == .ended(.missed))
    }

    @Test("An unknown or offline name, or no reply within 5 s, is a clear answer")
    func unreachable() throws {
        var net = Network(["door"])
        try net.place("door", to: ["nobody"])
        #expect(net.state("door") == .ended(.unreachable("no node or user named nobody is connected")))

        var silent = Network(["door", "alice"])
        silent.books["alice"] = nil
        // alice's node is registered but silent: the invitation goes out and nothing comes back.
        let actions = try silent.books["door"]!.place(to: ["alice"], media: .audio, now: silent.now)
        #expect(actions.count == 1)
        #expect(silent.books["door"]!.nextDeadline == silent.now.adding(.seconds(5)))
        silent.now = silent.now.adding(.seconds(5))
        let ended = silent.books["door"]!.handleTimeout(now: silent.now)
        #expect(ended == [.ended(.unreachable("no reply from alice: is it running and connected to the host?"))])
    }

    @Test("The caller hangs up while it rings: the callee stops ringing")
    func cancel() throws {
        var net = Network(["door", "alice"])
        try net.place("door", to: ["alice"])
        net.act("door") { book, now in book.hangUp(now: now) }
        #expect(net.state("alice") == .ended(.cancelled(by: "door")))
        #expect(net.seen["alice"]?.suffix(2) == [.stopAlert, .ended(.cancelled(by: "door"))])
    }

    @Test("A group call of three: everyone hears everyone; it lasts while anyone else is in it")
    func groupCall() throws {
        var net = Network(["alice", "bob", "carol"])
        try net.place("alice", to: ["bob", "carol"])
        #expect(net.seen["bob"] == [.alert(from: "alice", media: .audio, parties: ["alice", "carol"])])
        net.act("bob") { book, now in book.answer(now: now) }
        net.act("carol") { book, now in book.answer(now: now) }
        #expect(net.books["alice"]?.current?.joined == ["bob", "carol"])
        #expect(net.books["bob"]?.current?.joined == ["alice", "carol"])
        #expect(net.books["carol"]?.current?.joined == ["alice", "bob"])
        let key = net.books["alice"]?.current?.key
        #expect(key != nil && net.books["bob"]?.current?.key == key && net.books["carol"]?.current?.key == key, "every party holds the caller's media key")
        net.act("bob") { book, now in book.hangUp(now: now) }
        #expect(net.books["alice"]?.current?.joined == ["carol"] && net.books["carol"]?.current?.joined == ["alice"])
        #expect(net.state("alice") == .active && net.state("carol") == .active)
        net.act("carol") { book, now in book.hangUp(now: now) }
        #expect(net.state("alice") == .ended(.hungUp(by: "carol")))
    }

    @Test("A group call where one declines and one is offline still connects the rest")
    func groupPartlyAnswered() throws {
        var net = Network(["alice", "bob", "carol"])
        try net.place("alice", to: ["bob", "carol", "dave"])  // dave is unknown
        net.act("carol") { book, now in book.decline(now: now) }
        #expect(net.state("alice") == .ringing)
        net.act("bob") { book, now in book.answer(now: now) }
        #expect(net.state("alice") == .active && net.books["alice"]?.current?.joined == ["bob"])
    }

    @Test("Placing a call checks its names and size")
    func placingErrors() {
        var book = CallBook(me: "alice")
        let now = Timestamp(nanoseconds: 1)
        #expect(throws: CallError.noParties) { try book.place(to: [], media: .audio, now: now) }
        #expect(throws: CallError.callingYourself) { try book.place(to: ["alice"], media: .audio, now: now) }
        #expect(throws: CallError.invalidName("a,b")) { try book.place(to: ["a,b"], media: .audio, now: now) }
        #expect(throws: CallError.invalidName(String(repeating: "x", count: 65))) { try book.place(to: [String(repeating: "x", count: 65)], media: .audio, now: now) }
        #expect(throws: CallError.tooManyParties(9)) { try book.place(to: (1...8).map { "n\($0)" }, media: .audio, now: now) }
        #expect(throws: Never.self) { try book.place(to: (1...7).map { "n\($0)" }, media: .audio, now: now) }
    }

    @Test("A node claiming another's name, or a call nobody has, is dropped and counted")
    func spoofed() throws {
        var book = CallBook(me: "alice")
        let now = Timestamp(nanoseconds: 1)
        let invite = CallMessage.invite(call: CallID(7), from: "door", parties: ["door", "alice"], media: .audio, key: .random())
        #expect(book.receive(invite, from: "mallory", now: now).isEmpty)
        #expect(book.receive(.hangup(call: CallID(9), from: "door"), from: "door", now: now).isEmpty)
        #expect(book.dropped == 2 && book.current == nil)
        #expect(book.receive(invite, from: "door", now: now).count == 2)
        #expect(book.receive(invite, from: "door", now: now) == [.send(.ringing(call: CallID(7), from: "alice"), to: ["door"])], "a repeated invitation rings back again")
    }

    @Test("Messages round-trip; every truncation and corruption is an error, never a trap")
    func wire() throws {
        let id = CallID(0x1234_5678_9abc_def0)
        let messages: [CallMessage] = [
            .invite(call: id, from: "door", parties: ["door", "alice", "bob"], media: [.audio, .video], key: .random()),
            .ringing(call: id, from: "alice"), .accept(call: id, from: "alice", media: .audio),
            .decline(call: id, from: "bob", reason: .busy), .hangup(call: id, from: "ünïcode-näme"),
        ]
        var generator = SplitMix64(seed: 42)
        for message in messages {
            let bytes = message.encoded
            #expect(try CallMessage(decoding: bytes) == message)
            for length in 0..<bytes.count {
                #expect(throws: CallMessageError.self) { try CallMessage(decoding: Array(bytes[..<length])) }
            }
            #expect(throws: CallMessageError.self) { try CallMessage(decoding: bytes + [0]) }
            for _ in 0..<200 {
                var corrupt = bytes
                corrupt[Int(generator.next() % UInt64(bytes.count))] = UInt8(truncatingIfNeeded: generator.next())
                _ = try? CallMessage(decoding: corrupt)  // either a message or an error
            }
        }
        #expect(throws: CallMessageError.notSignalling) { try CallMessage(decoding: Array("hello".utf8)) }
        #expect(throws: CallMessageError.unsupportedVersion(1)) { try CallMessage(decoding: [0x58, 0x43, 1, 1]) }
        // An invitation whose first party is not its sender, or with a party named twice.
        var writer = ByteWriter()
        writer.writeBytes([0x58, 0x43, 2, 1])
        writer.writeUInt64(5)
        for name in ["door"] { writer.writeUInt8(UInt8(name.utf8.count)); writer.writeBytes(Array(name.utf8)) }
        writer.writeUInt8(1)
        writer.writeBytes(CallKey.random().bytes)
        writer.writeUInt8(2)
        for name in ["alice", "alice"] { writer.writeUInt8(UInt8(name.utf8.count)); writer.writeBytes(Array(name.utf8)) }
        #expect(throws: CallMessageError.malformed("the caller door is not the first party")) { try CallMessage(decoding: writer.bytes) }
    }
}
