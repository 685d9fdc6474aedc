// The recorder on MQTT: publishes availability (with a last will), every motion event (QoS 1,
// Frigate's new/end messages), each camera's motion ON/OFF with an off-delay, the event's
// snapshot, and stats; takes the motion and recording switches' commands; and keeps Home
// Assistant's discovery configs published (again whenever HA's birth message arrives). The
// client only queues (MQTTClient), so a broker that is down or refuses the login never slows
// recording; the durable alarm outbox still owns exactly-once delivery to nodes.
import Foundation
public import Logging
public import XTMQTT
import XTNet

/// What the bridge asks the recorder for, and how it flips the switches.
public struct RecorderMQTTHooks: Sendable {
    /// The cameras to announce (names).
    public var cameras: @Sendable () async -> [String]
    /// The `stats` payload (JSON object).
    public var stats: @Sendable () async -> [String: any Sendable]
    /// Turns motion detection or recording of a camera on or off; returns the state now.
    public var setSwitch: @Sendable (_ camera: String, _ which: MQTTTopics.Switch, _ on: Bool) async -> Bool
    /// The state of a switch.
    public var switchState: @Sendable (_ camera: String, _ which: MQTTTopics.Switch) async -> Bool

    public init(cameras: @escaping @Sendable () async -> [String], stats: @escaping @Sendable () async -> [String: any Sendable],
                setSwitch: @escaping @Sendable (String, MQTTTopics.Switch, Bool) async -> Bool,
                switchState: @escaping @Sendable (String, MQTTTopics.Switch) async -> Bool) {
        self.cameras = cameras
        self.stats = stats
        self.setSwitch = setSwitch
        self.switchState = switchState
    }
}

public actor RecorderMQTT {
    public nonisolated let settings: RecorderMQTTSettings
    public nonisolated let topics: MQTTTopics
    public nonisolated let client: MQTTClient
    private let hooks: RecorderMQTTHooks
    private let storageRoot: String
    private let recorderName: String
    private let logger: Logger
    /// Per camera: its events open now, and when motion last ended (for the off-delay).
    private var openEvents: [String: [Int64: EventRecord]] = [:]
    private var motionOn: Set<String> = []
    private var offTasks: [String: Task<Void, Never>] = [:]
    private var announced: Set<String> = []
    private var tasks: [Task<Void, Never>] = []

    /// - Throws: ``MQTTError`` for settings libmosquitto refuses (a CA file it cannot read).
    public init(settings: RecorderMQTTSettings, storageRoot: String, recorderName: String, hooks: RecorderMQTTHooks,
                logger: Logger) throws {
        guard let host = settings.host else { throw MQTTError.invalidSettings("mqtt.host is not set") }
        let topics = MQTTTopics(prefix: settings.prefix, discoveryPrefix: settings.discoveryPrefix)
        var client = MQTTSettings(host: host, port: settings.resolvedPort, clientID: settings.clientID ?? "xt-recorder-\(recorderName)")
        client.username = settings.user
        client.password = try settings.password ?? settings.passwordFile.map { path in
            guard let text = try? String(contentsOfFile: path, encoding: .utf8) else {
                throw MQTTError.invalidSettings("mqtt.password-file \(path) cannot be read")
            }
            return String(text.split(separator: "\n", omittingEmptySubsequences: false).first ?? "")
        }
        client.tls = settings.tls
        client.caFile = settings.caFile
        client.will = MQTTMessage(topic: topics.availability, text: "offline", qos: 1, retain: true)
        self.settings = settings
        self.topics = topics
        self.client = try MQTTClient(settings: client, logger: logger)
        self.hooks = hooks
        self.storageRoot = storageRoot
        self.recorderName = recorderName
        self.logger = logger
    }

    /// Connects and starts serving (returns at once).
    public func start() {
        client.subscribe(topics.commands, qos: 1)
        if settings.discovery { client.subscribe(topics.homeAssistantStatus, qos: 1) }
        let changes = client.connectionChanges
        let messages = client.messages
        tasks.append(Task { [weak self] in
            for await connected in changes where connected { await self?.connected() }
        })
        tasks.append(Task { [weak self] in
            for await message in messages { await self?.received(message) }
        })
        tasks.append(Task { [weak self, interval = settings.statsInterval] in
            while !Task.isCancelled {
                try? await Task.sleep(for: interval)
                await self?.publishStats()
            }
        })
        // A camera that appears is announced (discovery, switch states) within two seconds.
        tasks.append(Task { [weak self] in
            while !Task.isCancelled {
                try? await Task.sleep(for: .seconds(2))
                guard let self, self.client.status.connected else { continue }
                await self.announce(all: false)
            }
        })
        client.start()
    }

    /// Says `offline` (retained), waits briefly for the broker to take it, and disconnects.
    public func stop() async {
        for task in tasks + Array(offTasks.values) { task.cancel() }
        await client.stop(final: [MQTTMessage(topic: topics.availability, text: "offline", qos: 1, retain: true)])
    }

    // MARK: events

    /// A motion event started (`true`) or ended.
    public func event(_ event: EventRecord, started: Bool) {
        guard let id = event.id else { return }
        let camera = event.camera
        let before = openEvents[camera]?[id]
        if started {
            openEvents[camera, default: [:]][id] = event
            client.publish(topics.event(type: "new", before: nil, after: event))
            client.publish(topics.alarm(event, started: true))
            offTasks.removeValue(forKey: camera)?.cancel()
            if motionOn.insert(camera).inserted { client.publish(MQTTMessage(topic: topics.motion(camera), text: "ON")) }
            if let snapshot = event.snapshot { publishSnapshot(camera: camera, relativePath: snapshot) }
        } else {
            openEvents[camera]?[id] = nil
            client.publish(topics.event(type: "end", before: before ?? event, after: event))
            client.publish(topics.alarm(event, started: false))
            if openEvents[camera]?.isEmpty ?? true { scheduleOff(camera) }
        }
    }

    private func scheduleOff(_ camera: String) {
        offTasks.removeValue(forKey: camera)?.cancel()
        let delay = settings.motionOffDelay
        offTasks[camera] = Task { [weak self] in
            try? await Task.sleep(for: delay)
            guard !Task.isCancelled else { return }
            await self?.motionEnded(camera)
        }
    }

    private func motionEnded(_ camera: String) {
        offTasks[camera] = nil
        guard openEvents[camera]?.isEmpty ?? true, motionOn.remove(camera) != nil else { return }
        client.publish(MQTTMessage(topic: topics.motion(camera), text: "OFF"))
    }

    private func publishSnapshot(camera: String, relativePath: String) {
        let path = (storageRoot as NSString).appendingPathComponent(relativePath)
        guard let jpeg = FileManager.default.contents(atPath: path) else { return }
        client.publish(MQTTMessage(topic: topics.snapshot(camera), payload: Array(jpeg), retain: true))
    }

    // MARK: connection, commands, discovery, stats

    private func connected() async {
        client.publish(MQTTMessage(topic: topics.availability, text: "online", qos: 1, retain: true))
        await announce(all: true)
        await publishStats()
    }

    /// Discovery configs and switch states of the cameras (all again, or those not yet announced).
    private func announce(all: Bool) async {
        let cameras = await hooks.cameras()
        for camera in cameras where all || !announced.contains(camera) {
            announced.insert(camera)
            if settings.discovery {
                for message in topics.discovery(camera: camera, recorder: recorderName, version: XTVersion.current, url: nil) {
                    client.publish(message)
                }
            }
            for which in MQTTTopics.Switch.allCases {
                let on = await hooks.switchState(camera, which)
                client.publish(MQTTMessage(topic: topics.state(camera, which), text: on ? "ON" : "OFF", qos: 1, retain: true))
            }
            if !motionOn.contains(camera) { client.publish(MQTTMessage(topic: topics.motion(camera), text: "OFF")) }
        }
    }

    private func received(_ message: MQTTMessage) async {
        if message.topic == topics.homeAssistantStatus {
            if message.text == "online" { await announce(all: true) }
            return
        }
        guard let (level, which) = topics.parseCommand(message.topic) else { return }
        let cameras = await hooks.cameras()
        guard let camera = cameras.first(where: { MQTTTopics.level($0) == level }) else {
            logger.warning("MQTT: a command for an unknown camera", metadata: ["topic": "\(message.topic)"])
            return
        }
        let text = message.text.trimmingCharacters(in: .whitespacesAndNewlines).uppercased()
        guard text == "ON" || text == "OFF" else {
            logger.warning("MQTT: a command that is not ON or OFF", metadata: ["topic": "\(message.topic)", "payload": "\(message.text.prefix(40))"])
            return
        }
        let now = await hooks.setSwitch(camera, which, text == "ON")
        client.publish(MQTTMessage(topic: topics.state(camera, which), text: now ? "ON" : "OFF", qos: 1, retain: true))
        logger.info("MQTT: \(which.rawValue) of \(camera) turned \(now ? "on" : "off")")
    }

    private func publishStats() async {
        await announce(all: false)
        let stats = await hooks.stats()
        guard JSONSerialization.isValidJSONObject(stats), let data = try? JSONSerialization.data(withJSONObject: stats, options: [.sortedKeys]) else { return }
        client.publish(MQTTMessage(topic: topics.stats, payload: Array(data)))
    }
}
