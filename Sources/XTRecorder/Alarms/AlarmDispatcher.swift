// Durable alarm delivery. A motion event that starts or ends becomes an alarm in the index's
// outbox, with one delivery per subscriber it concerns, in one transaction; then it is sent at
// once to the subscribers that are connected. A delivery stays pending until the subscriber
// acknowledges it: it is sent again every few seconds while the subscriber is connected, and
// when it subscribes again (after either side restarted). Subscribers drop numbers they have
// seen, so each gets each alarm once. Webhooks get every alarm as a JSON POST, retried with
// growing pauses (up to an hour) until they answer 2xx.
import AsyncHTTPClient
import Foundation
public import Logging
public import XTNet
import XTMedia
import XTransport

/// Alarm counts, for reports and metrics.
public struct AlarmReport: Sendable, Codable, Equatable {
    public var raised = 0
    public var sent = 0
    public var acknowledged = 0
    public var pending = 0
    public var delivered = 0
    public var subscribers = 0
    public var malformed = 0
}

/// Sends alarms to subscribed nodes until they acknowledge them.
public actor AlarmDispatcher {
    private let index: any RecorderIndex
    private let host: NetHost?
    private let logger: Logger
    /// A delivery not acknowledged is sent again after this long.
    private let resendAfter: Int64
    private var subscriptions: [String: AlarmSubscription] = [:]
    private var report = AlarmReport()
    private var loaded = false
    /// Webhooks by name: every alarm is POSTed to each.
    private let webhooks: [String: String]
    /// Webhook deliveries under way (one at a time per alarm and hook).
    private var posting: Set<String> = []

    /// The first pause before a webhook is tried again (it doubles, up to an hour).
    private let webhookRetry: Int64

    public init(index: any RecorderIndex, host: NetHost?, webhooks: [String: String] = [:], resendAfter: Duration = .seconds(3),
                webhookRetry: Duration = .seconds(2), logger: Logger) {
        self.index = index
        self.host = host
        self.webhooks = webhooks
        self.webhookRetry = webhookRetry.nanoseconds
        self.resendAfter = resendAfter.nanoseconds
        self.logger = logger
    }

    private func load() async {
        guard !loaded else { return }
        do {
            for subscription in try await index.subscriptions() { subscriptions[subscription.node] = subscription }
            loaded = true
        } catch {
            logger.error("cannot read the alarm subscriptions", metadata: ["reason": "\(error.reason)"])
        }
    }

    /// Raises the alarm for an event that started or ended.
    public func raise(_ event: EventRecord, started: Bool) async {
        await load()
        guard let id = event.id else { return }
        let targets = subscriptions.values.filter { $0.matches(camera: event.camera, zone: event.zone) }.map { "node:\($0.node)" }.sorted()
            + webhooks.keys.sorted().map { "webhook:\($0)" }
        guard !targets.isEmpty else { return }
        let alarm = Alarm(id: 0, event: id, kind: started ? .started : .ended, camera: event.camera, zone: event.zone, start: event.start,
                          end: event.end, peakTime: event.peakTime, peakScore: event.peakScore, snapshot: event.snapshot)
        do {
            let queued = try await index.enqueue(alarm, targets: targets)
            report.raised += 1
            let members = await connectedNodes()
            for target in targets where target.hasPrefix("node:") {
                if let member = members[String(target.dropFirst(5))] { await send(queued, to: member, target: target) }
            }
            for target in targets where target.hasPrefix("webhook:") { post(queued, target: target, attempts: 0) }
        } catch {
            logger.error("cannot queue an alarm; the event is in the index", metadata: ["reason": "\(error.reason)"])
        }
    }

    private func connectedNodes() async -> [String: NodeID] {
        guard let host else { return [:] }
        return Dictionary(await host.members.map { ($0.name, $0.id) }, uniquingKeysWith: { first, _ in first })
    }

    private func send(_ alarm: Alarm, to node: NodeID, target: String) async {
        do {
            try await host?.send(AlarmMessage.alarm(alarm).encoded(), to: node, channel: AlarmMessage.channel, lane: .control)
            report.sent += 1
            try await index.noteAttempt(alarm.id, target: target, next: Self.wallClock + resendAfter)
        } catch {
            logger.debug("an alarm could not be sent now; it stays queued", metadata: ["node": "\(target)", "reason": "\(error)"])
        }
    }

    private static var wallClock: Int64 { CaptureTime.now.nanoseconds }

    /// Handles a message that came on the alarm channel.
    public func handle(_ envelope: NetEnvelope) async {
        await load()
        guard let message = try? AlarmMessage.decode(envelope.payload) else {
            report.malformed += 1
            return
        }
        do throws(StorageError) {
            switch message {
            case .subscribe(var subscription):
                // A node subscribes under its own name, whatever the message says.
                if let name = await connectedNodes().first(where: { $0.value == envelope.route.from })?.key { subscription.node = name }
                if subscriptions[subscription.node] != subscription {
                    try await index.saveSubscription(subscription)
                    subscriptions[subscription.node] = subscription
                    logger.info("alarm subscription", metadata: ["node": "\(subscription.node)",
                                                                 "cameras": "\(subscription.cameras.isEmpty ? "all" : subscription.cameras.joined(separator: ","))",
                                                                 "zones": "\(subscription.zones.isEmpty ? "all" : subscription.zones.joined(separator: ","))"])
                }
                // It may have just come back: what it has not acknowledged goes again now.
                await resend(to: subscription.node, force: true)
            case .unsubscribe(let node):
                let name = await connectedNodes().first(where: { $0.value == envelope.route.from })?.key ?? node
                try await index.removeSubscription(node: name)
                subscriptions.removeValue(forKey: name)
            case .ack(let ids):
                guard let name = await connectedNodes().first(where: { $0.value == envelope.route.from })?.key else { return }
                report.acknowledged += try await index.markDelivered(ids, target: "node:\(name)")
            case .alarm:
                report.malformed += 1
            }
        } catch {
            logger.error("cannot record an alarm subscriber's message", metadata: ["reason": "\(error.reason)"])
        }
    }

    /// Sends a node what it has not acknowledged (due ones, or all when `force`).
    private func resend(to node: String, force: Bool) async {
        guard let member = await connectedNodes()[node] else { return }
        let target = "node:\(node)"
        do {
            let now = Self.wallClock
            for delivery in try await index.pendingDeliveries(target: target, limit: 200) where force || delivery.nextAttempt <= now {
                await send(delivery.alarm, to: member, target: target)
            }
        } catch {
            logger.error("cannot read the alarm outbox", metadata: ["reason": "\(error.reason)"])
        }
    }

    /// Sends again what is due, to every connected subscriber and webhook (call about once a second).
    public func tick() async {
        await load()
        let connected = await connectedNodes()
        for node in subscriptions.keys where connected[node] != nil { await resend(to: node, force: false) }
        let now = Self.wallClock
        for name in webhooks.keys {
            let target = "webhook:\(name)"
            guard let due = try? await index.pendingDeliveries(target: target, limit: 50) else { continue }
            for delivery in due where delivery.nextAttempt <= now { post(delivery.alarm, target: target, attempts: delivery.attempts) }
        }
    }

    // MARK: webhooks

    /// POSTs an alarm to a webhook in the background; success marks it delivered, failure
    /// schedules the next try (2 s, 4 s, … up to an hour).
    private func post(_ alarm: Alarm, target: String, attempts: Int) {
        let key = "\(target) \(alarm.id)"
        guard let url = webhooks[String(target.dropFirst(8))], posting.insert(key).inserted else { return }
        let body = Array(AlarmNotice(alarm).json.utf8)
        Task {
            var request = HTTPClientRequest(url: url)
            request.method = .POST
            request.headers.add(name: "Content-Type", value: "application/json")
            request.headers.add(name: "User-Agent", value: "xt-recorder")
            request.body = .bytes(body)
            var outcome: String?
            do {
                let response = try await HTTPClient.shared.execute(request, timeout: .seconds(10))
                if !(200..<300).contains(Int(response.status.code)) { outcome = "HTTP \(response.status.code)" }
            } catch {
                outcome = "\(error)"
            }
            await self.posted(alarm, target: target, attempts: attempts, failure: outcome, key: key)
        }
    }

    private func posted(_ alarm: Alarm, target: String, attempts: Int, failure: String?, key: String) async {
        posting.remove(key)
        do {
            if let failure {
                let pause = min(webhookRetry << min(attempts, 12), 3_600_000_000_000)
                try await index.noteAttempt(alarm.id, target: target, next: Self.wallClock + pause)
                if attempts == 0 || attempts % 10 == 9 {
                    logger.warning("a webhook refused an alarm; retrying", metadata: ["webhook": "\(target.dropFirst(8))", "alarm": "\(alarm.id)",
                                                                                       "reason": "\(failure)", "next in seconds": "\(Double(pause) / 1e9)"])
                }
            } else {
                report.sent += 1
                report.acknowledged += try await index.markDelivered([alarm.id], target: target)
            }
        } catch {
            logger.error("cannot record a webhook delivery", metadata: ["reason": "\(error.reason)"])
        }
    }

    /// Counts so far.
    public func currentReport() async -> AlarmReport {
        var result = report
        if let counts = try? await index.deliveryCounts() {
            result.pending = counts.pending
            result.delivered = counts.delivered
        }
        result.subscribers = subscriptions.count
        return result
    }
}
