// The alarm protocol and a subscriber's memory: every message round-trips and every truncation
// is refused; alarms handled are remembered across a restart (and the file stays small);
// subscriptions match cameras and zones; the outbox keeps deliveries until acknowledged.
import Foundation
import Testing
import XTMedia
@testable import XTRecorder

@Suite struct AlarmTests {
    static let alarm = Alarm(id: 42, event: 7, kind: .started, camera: "porch", zone: "door", start: 1_800_000_000_000_000_000,
                             end: nil, peakTime: 1_800_000_000_500_000_000, peakScore: 0.25, snapshot: "porch/events/2027-01-15/7.jpg")

    @Test func messagesRoundTripAndTruncationsAreRefused() throws {
        var ended = Self.alarm
        ended.kind = .ended
        ended.end = ended.start + 3_000_000_000
        ended.snapshot = nil
        let messages: [AlarmMessage] = [
            .subscribe(AlarmSubscription(node: "phone", cameras: ["porch", "yard"], zones: ["door"])),
            .subscribe(AlarmSubscription(node: "all")),
            .unsubscribe(node: "phone"),
            .alarm(Self.alarm),
            .alarm(ended),
            .ack([1, 2, 42]),
        ]
        for message in messages {
            let bytes = message.encoded()
            #expect(try AlarmMessage.decode(bytes) == message)
            for length in 0..<bytes.count {
                #expect(throws: MediaError.self) { try AlarmMessage.decode(Array(bytes.prefix(length))) }
            }
        }
        #expect(throws: MediaError.self) { try AlarmMessage.decode([2, 1]) }
        #expect(throws: MediaError.self) { try AlarmMessage.decode(AlarmMessage.ack([1]).encoded() + [0]) }
    }

    @Test func subscriptionsMatchCamerasAndZones() {
        #expect(AlarmSubscription(node: "a").matches(camera: "x", zone: "y"))
        #expect(AlarmSubscription(node: "a", cameras: ["x"]).matches(camera: "x", zone: "y"))
        #expect(!AlarmSubscription(node: "a", cameras: ["x"]).matches(camera: "z", zone: "y"))
        #expect(!AlarmSubscription(node: "a", zones: ["door"]).matches(camera: "x", zone: "all"))
    }

    @Test func aSubscriberRemembersWhatItHandled() throws {
        let directory = Fixtures.temporaryDirectory("alarm-state")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let path = "\(directory)/state"
        do {
            let state = try AlarmSubscriberState(path: path)
            for id in 1...3 as ClosedRange<Int64> {
                try state.received(id)
                try state.finished(id)
            }
            try state.received(4)  // stopped while handling 4
        }
        let again = try AlarmSubscriberState(path: path, remembered: 100)
        #expect((1...3).allSatisfy { again.hasHandled($0) } && !again.hasHandled(4))
        #expect(again.unfinished == [4])
        // Many alarms later the file is compacted, keeping the newest.
        for id in 5...Int64(1_000) {
            try again.received(id)
            try again.finished(id)
        }
        let lines = try String(contentsOfFile: path, encoding: .utf8).split(separator: "\n").count
        #expect(lines < 3 * 100 + 10)
        let reopened = try AlarmSubscriberState(path: path)
        #expect(reopened.hasHandled(1_000) && !reopened.hasHandled(5))
    }

    @Test func theOutboxKeepsDeliveriesUntilAcknowledged() async throws {
        let root = Fixtures.temporaryDirectory("outbox")
        defer { try? FileManager.default.removeItem(atPath: root) }
        let index = try SQLiteIndex(path: "\(root)/index.sqlite")
        try await index.saveSubscription(AlarmSubscription(node: "phone", cameras: ["porch"]))
        try await index.saveSubscription(AlarmSubscription(node: "tablet"))
        #expect(try await index.subscriptions().map(\.node) == ["phone", "tablet"])
        let first = try await index.enqueue(Self.alarm, targets: ["node:phone", "node:tablet"])
        let second = try await index.enqueue(Self.alarm, targets: ["node:tablet"])
        #expect(second.id > first.id)
        #expect(try await index.pendingDeliveries(target: "node:tablet", limit: 10).map(\.alarm.id) == [first.id, second.id])
        #expect(try await index.markDelivered([first.id], target: "node:tablet") == 1)
        #expect(try await index.markDelivered([first.id], target: "node:tablet") == 0)
        // After a restart (another connection) the rest is still pending.
        let reopened = try SQLiteIndex(path: "\(root)/index.sqlite")
        #expect(try await reopened.pendingDeliveries(target: nil, limit: 10).map { "\($0.target) \($0.alarm.id)" }
            == ["node:phone \(first.id)", "node:tablet \(second.id)"])
        let counts = try await reopened.deliveryCounts()
        #expect(counts.pending == 2 && counts.delivered == 1)
        try await reopened.removeSubscription(node: "phone")
        #expect(try await reopened.pendingDeliveries(target: "node:phone", limit: 10).isEmpty)
    }
}
