// Alarms POSTed to a webhook: a hook that fails twice gets the alarm on the third try, once,
// as JSON; until then it stays pending in the outbox.
import Foundation
import Hummingbird
import Synchronization
import Testing
@testable import XTRecorder

@Suite struct WebhookTests {
    final class Hook: Sendable {
        let bodies = Mutex<[String]>([])
        let refusals = Mutex(2)
    }

    @Test func aFailingWebhookGetsTheAlarmOnceItAnswers() async throws {
        let root = Fixtures.temporaryDirectory("webhook")
        defer { try? FileManager.default.removeItem(atPath: root) }
        let hook = Hook()
        let router = Router()
        router.post("/hook") { request, _ -> Response in
            let body = try await request.body.collect(upTo: 1 << 20)
            let refuse = hook.refusals.withLock { value -> Bool in
                defer { value -= 1 }
                return value > 0
            }
            if refuse { return Response(status: .internalServerError) }
            hook.bodies.withLock { $0.append(String(buffer: body)) }
            return Response(status: .noContent)
        }
        let port = Int.random(in: 40_001...50_000)
        let (running, signal) = AsyncStream<Void>.makeStream()
        let application = Application(router: router, configuration: ApplicationConfiguration(address: .hostname("127.0.0.1", port: port)),
                                      onServerRunning: { _ in signal.yield() }, logger: Fixtures.logger)
        let server = Task { try await application.run() }
        defer { server.cancel() }
        for await _ in running { break }

        let index = try SQLiteIndex(path: "\(root)/index.sqlite")
        let dispatcher = AlarmDispatcher(index: index, host: nil, webhooks: ["home": "http://127.0.0.1:\(port)/hook"],
                                         webhookRetry: .milliseconds(100), logger: Fixtures.logger)
        let event = try await index.saveEvent(EventRecord(camera: "porch", zone: "door", start: 1_800_000_000_000_000_000,
                                                          clipStart: 1_799_999_995_000_000_000, peakTime: 1_800_000_000_200_000_000,
                                                          peakScore: 0.3, snapshot: "porch/events/2027-01-15/1.jpg"))
        await dispatcher.raise(event, started: true)
        var delivered = false
        for _ in 0..<100 where !delivered {
            try await Task.sleep(for: .milliseconds(50))
            await dispatcher.tick()
            delivered = (try await index.deliveryCounts()).delivered == 1
        }
        #expect(delivered)
        try await Task.sleep(for: .milliseconds(300))
        await dispatcher.tick()
        let bodies = hook.bodies.withLock { $0 }
        #expect(bodies.count == 1, "\(bodies)")
        let notice = try JSONDecoder().decode(AlarmNotice.self, from: Data(bodies[0].utf8))
        #expect(notice.camera == "porch" && notice.zone == "door" && notice.kind == "started" && notice.event == event.id)
        #expect(notice.snapshot == "porch/events/2027-01-15/1.jpg" && notice.start.hasPrefix("2027-01-15T08:00:00"))
        #expect(hook.refusals.withLock { $0 } < 0)
        let counts = try await index.deliveryCounts()
        #expect(counts.pending == 0)
    }
}
