// `xt recorder`: the host that camera agents publish to, recording their live and backfilled
// media as fMP4 segments under --storage with a SQLite index; `xt recorder check` shows each
// camera's timeline, its gaps and any disagreement between index and files; `xt recorder
// export` writes one playable file.
import ArgumentParser
import Foundation
import Logging
import ServiceLifecycle
import Synchronization
import XTBackup
import XTCall
import XTMedia
import XTMQTT
import XTNet
import XTRecorder
import XTransport

struct RecorderCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "recorder",
        abstract: "Run the recorder (the host agents publish to), or check and export what it recorded.",
        subcommands: [RecorderRun.self, RecorderCheck.self, RecorderExport.self, RecorderEvents.self, RecorderAlarms.self, RecorderNodes.self,
                      RecorderPasswd.self],
        defaultSubcommand: RecorderRun.self)
}

struct RecorderRun: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "run", abstract: "Run the recorder: host the node network and record the camera channels.")

    @Option(name: .long, help: "Recorder settings file (key = value; see Config/recorder.conf.example).")
    var config = "Config/recorder.conf"

    @Option(name: .long, help: "Set any setting of the file, e.g. --set camera.porch.zone.door=\"0.5,0.5 1,0.5 1,1 0.5,1\" (repeatable).")
    var set: [String] = []

    @Option(name: .long, help: "Where recordings go (storage).")
    var storage: String?

    @Option(name: .long, help: "The index database (default: <storage>/index.sqlite).")
    var index: String?

    @Flag(name: .long, help: "Rebuild the index from the segment files before recording.")
    var reindex = false

    @Option(name: .long, help: "Segment length in seconds (cut at the first keyframe after it).")
    var segmentSeconds: Double?

    @Option(name: .long, help: "Delete recordings older than this many days (0: only when space runs short).")
    var retentionDays: Double?

    @Option(name: .long, help: "Keep all recordings under this size (e.g. 500G, 800M; none: no limit).")
    var maxSize: String?

    @Option(name: .long, help: "Keep at least this much of the disk free (e.g. 2G).")
    var minFree: String?

    @Option(name: .long, help: "Camera channels to record, first-last (video on each agent's channel, audio on the next).")
    var channels: String?

    @Option(name: .long, help: "Live deadline in milliseconds (frames later than this count as late).")
    var deadline: Int?

    @Option(name: .long, help: "Where the web UI, REST API and Prometheus metrics (/metrics) listen, host:port, or none (default 127.0.0.1:8480).")
    var http: String?

    @Option(name: .long, help: "The web UI's files (default: XT_WEB_ROOT, or web/ beside or above the executable, or /usr/share/xt/web).")
    var webRoot: String?

    @Option(name: .long, help: "Write the ingest counters and latency as JSON to this file (every second and at the end).")
    var report: String?

    @Option(name: .long, help: "Run this many seconds, then stop.")
    var seconds: Double?

    @OptionGroup var host: HostOptions
    @OptionGroup var node: NodeOptions

    func run() async throws {
        try await XT.run { try await record() }
    }

    /// Runs the recorder until a signal or `--seconds` stops it.
    func record() async throws {
        let settings = try settings()
        let storage = settings.storage
        let logger = node.logger(level: .info)
        XT.routeFFmpegLog(to: logger)
        try RecordingStore.prepareRoot(storage)
        let database = try SQLiteIndex(path: settings.index ?? RecordingStore.defaultIndexPath(root: storage))
        if reindex {
            let summary = try await RecordingStore.reindex(root: storage, index: database, logger: logger)
            print("reindexed \(storage): \(summary.segments) segments of \(summary.cameras) cameras, \(Int(summary.seconds)) s, \(summary.bytes) bytes\(summary.corrupt.isEmpty ? "" : "; \(summary.corrupt.count) unreadable: \(summary.corrupt.joined(separator: "; "))")")
        }
        let accounts = try webAccounts(settings)
        let deadline = settings.deadlineMilliseconds
        let store = try await RecordingStore.open(root: storage, index: database, settings: settings.segments, retention: settings.retention,
                                                  logger: logger)
        let (host, configuration) = try await self.host.start(node: node, liveDeadline: .milliseconds(deadline), logger: logger)
        let monitor = MotionMonitor(store: store, defaults: settings.motion, settings: settings.cameraMotion, logger: logger)
        let alarms = AlarmDispatcher(index: database, host: host, webhooks: settings.webhooks, logger: logger)
        await monitor.listen { event, started in await alarms.raise(event, started: started) }
        let live = LiveHub(transcode: settings.transcode)
        let ingest = MediaIngest(store: store, monitor: monitor, alarms: alarms, live: live, host: host, deadline: .milliseconds(deadline),
                                 logger: logger)
        let metrics = RecorderMetrics()
        let mqtt = try recorderMQTT(settings, store: store, monitor: monitor, ingest: ingest, metrics: metrics, host: host, logger: logger)
        if let mqtt { await monitor.listen { event, started in await mqtt.event(event, started: started) } }
        await monitor.recover()
        // A viewer joining a long GOP gets the kept one at once, and a fresh keyframe soon.
        live.onKeyframeWanted { camera in Task { await ingest.requestKeyframe(camera: camera) } }
        for channel in settings.channels.lowerBound...(settings.channels.upperBound + 1) { await host.subscribe(channel) }
        await host.subscribe(AlarmMessage.channel)
        print("recorder listening on \(host.endpoint.localAddress) as \(configuration.identity.publicKey)\(self.host.open ? " (open mode)" : ""), recording channels \(settings.channels.lowerBound)-\(settings.channels.upperBound) into \(storage) (\(await store.streamCount) streams already there)")
        let backup = try recorderBackup(settings, identity: configuration.identity, index: database, logger: logger)
        let core = RecorderCore(host: host, ingest: ingest, monitor: monitor, alarms: alarms, metrics: metrics, store: store, index: database,
                                backup: backup, mqtt: mqtt, report: report)
        // Started first, stopped last: the services stop in the reverse of this order. MQTT
        // outlives the core, so that the events it ends on the way out are still published.
        var services: [ServiceGroupConfiguration.ServiceConfiguration] = []
        if let mqtt {
            services.append(.init(service: RecorderMQTTService(mqtt: mqtt)))
            print(mqttSummary(settings.mqtt))
        }
        services.append(.init(service: core))
        if let backup {
            services.append(.init(service: RecorderBackupService(backup: backup)))
            print("backing up \(settings.backup.what == .all ? "every recording" : "event clips") to \(await backup.currentStatus.pis.joined(separator: ", ")) every \(settings.backup.interval)")
        }
        if let address = settings.http {
            let webRoot = self.webRoot ?? RecorderHTTPServer.defaultWebRoot()
            if webRoot == nil { logger.warning("the web UI's files (web/) were not found: only the API and /metrics are served; give --web-root") }
            var web = RecorderWeb(root: storage, index: database, accounts: accounts, live: live, transcode: settings.transcode)
            web.refusedNodes = { await host.status().filter { $0.refused != nil } }
            web.activities = {
                Dictionary(await host.status().compactMap { node in node.refused == nil ? node.activity.map { (node.name, $0) } : nil }) { first, _ in first }
            }
            web.backup = backup
            web.mqtt = mqtt
            web.links = try signedLinks(storage: storage)
            web.callPage = try await WebCalls.serve(host: host, key: configuration.identity.publicKey, session: node.sessionConfiguration(),
                                                    logger: logger)
            let application = RecorderHTTPServer.application(web: web, metrics: metrics, webRoot: webRoot, host: address.host,
                                                              port: address.port, logger: logger) {
                print("web UI on http://\(address.host):\(address.port)/ (metrics on /metrics)")
            }
            services.append(.init(service: application))
            // Live viewers hold their connections open: they are ended before the server stops.
            let hls = web.hls
            services.append(.init(service: OnShutdown {
                hls.stop()
                live.stop()
            }))
        }
        if let seconds { services.append(.init(service: StopAfter(duration: try Checked.seconds(seconds, "--seconds")), successTerminationBehavior: .gracefullyShutdownGroup)) }
        var group = ServiceGroupConfiguration(services: services, gracefulShutdownSignals: [.sigterm, .sigint], logger: logger)
        group.maximumGracefulShutdownDuration = .seconds(30)
        do {
            try await ServiceGroup(configuration: group).run()
        } catch {
            await host.stop()
            let text = "\(error)"
            if text.contains("Address already in use"), let address = settings.http {
                throw CLIError("the web server cannot listen on \(address.host):\(address.port) (in use): choose another --http, or --http none")
            }
            throw CLIError("the recorder stopped: \(text)")
        }
        let final = await ingest.currentReport()
        if let report { write(final, to: report) }
        print("recorder stopped: video \(final.video.live) live + \(final.video.backfilled) backfilled, audio \(final.audio.live) live + \(final.audio.backfilled) backfilled; video latency p50 \(final.video.latencyP50Milliseconds) ms, p99 \(final.video.latencyP99Milliseconds) ms")
    }

    /// The web UI's users: from the config and `<storage>/web-users.conf`. With none, a recorder
    /// started in a terminal asks for the first admin.
    func webAccounts(_ settings: RecorderConfiguration) throws -> WebAccounts {
        let file = (settings.storage as NSString).appendingPathComponent("web-users.conf")
        let accounts: WebAccounts
        do { accounts = try WebAccounts(configured: Array(settings.users.values), file: file) } catch { throw CLIError("\(error)") }
        guard accounts.isEmpty, settings.http != nil else { return accounts }
        guard isatty(STDIN_FILENO) == 1 else {
            print("no web users yet: the web UI refuses every login until one is added (`xt recorder passwd NAME --role admin` into Config/recorder.conf, or start the recorder in a terminal once)")
            return accounts
        }
        print("No web users yet. Create the first admin of the web UI.")
        FileHandle.standardOutput.write("name: ")
        let name = (readLine(strippingNewline: true) ?? "").trimmingCharacters(in: .whitespaces)
        let password = String(cString: getpass("password (8 or more characters): "))
        let finished = Mutex<(any Error)??>(nil)
        let done = DispatchSemaphore(value: 0)
        Task {
            do { try await accounts.save(name: name, role: .admin, password: password) } catch { finished.withLock { $0 = .some(error) } }
            done.signal()
        }
        done.wait()
        if let failure = finished.withLock({ $0 }), let failure { throw CLIError("\(failure)") }
        print("admin '\(name)' saved in \(file)")
        return accounts
    }
}

/// The recorder's own work as one service: the node network's endpoint, ingest into segments,
/// and the once-a-second upkeep (nodes, motion, alarms, metrics, report). On shutdown it leaves
/// the network, finishes the segments, and closes open motion events.
struct RecorderCore: Service {
    let host: NetHost
    let ingest: MediaIngest
    let monitor: MotionMonitor
    let alarms: AlarmDispatcher
    let metrics: RecorderMetrics
    let store: RecordingStore
    let index: SQLiteIndex
    let backup: RecorderBackup?
    let mqtt: RecorderMQTT?
    let report: String?

    func run() async throws {
        let consumer = Task { await ingest.run() }
        let events = Task { await HostOptions.printEvents(of: host) }
        let upkeep = Task {
            var ticks = 0
            while !Task.isCancelled {
                try? await Task.sleep(for: .seconds(1))
                ticks += 1
                if ticks % 2 == 1 { try? await NodeBook.update(from: host, into: index) }
                await monitor.tick()
                await alarms.tick()
                await metrics.update(store: store, host: host, alarms: alarms, monitor: monitor)
                if let backup { await metrics.update(backup: backup) }
                if let mqtt { metrics.update(mqtt: mqtt.client.status) }
                if let report { write(await ingest.currentReport(), to: report) }
            }
        }
        try? await gracefulShutdown()
        upkeep.cancel()
        await host.stop()
        _ = await consumer.value
        await monitor.finish()
        events.cancel()
    }
}

/// The recorder's backup loop (`backup.*`): runs until the group shuts down.
struct RecorderBackupService: Service {
    let backup: RecorderBackup
    func run() async throws {
        let loop = Task { await backup.run() }
        try? await gracefulShutdown()
        loop.cancel()
        await loop.value
    }
}

extension RecorderRun {
    /// The recorder's backup, when `backup.to` is set: the targets file, the backup key and the
    /// node key are read now, so that a mistake in them stops the start with its reason.
    func recorderBackup(_ settings: RecorderConfiguration, identity: NodeIdentity, index: SQLiteIndex, logger: Logger) throws -> RecorderBackup? {
        let backup = settings.backup
        guard let names = backup.to else { return nil }
        let targets = try BackupTarget.load(file: backup.targets, names: names.isEmpty ? nil : names)
        guard backup.copies <= targets.count else {
            throw CLIError("backup.copies = \(backup.copies) needs that many Pis; backup.to names \(targets.count): lower backup.copies or add Pis")
        }
        let key = try RepositoryKeyFile.load(backup.key)
        let nodeIdentity = try backup.nodeKey.map { try NodeIdentity.load(path: $0) } ?? identity
        var bondSettings = BondSettings()
        bondSettings.connectionsPerLink = backup.connections
        bondSettings.via = try backup.via.map { try LocalSource(parsing: $0) }
        let bond = bondSettings
        return RecorderBackup(settings: backup, pis: targets.map(\.name), root: settings.storage, index: index,
                              copyIndex: { try await index.copy(to: $0) }, logger: logger) {
            Repository(key: key, bond: Bond(identity: nodeIdentity, targets: targets, settings: bond, logger: logger), logger: logger)
        }
    }
}

/// The recorder on MQTT (`mqtt.*`): connects when the group starts (without waiting for the
/// broker), and says `offline` and disconnects when it stops.
struct RecorderMQTTService: Service {
    let mqtt: RecorderMQTT
    func run() async throws {
        await mqtt.start()
        try? await gracefulShutdown()
        await mqtt.stop()
    }
}

extension RecorderRun {
    /// The MQTT bridge, when `mqtt.host` is set; a password file or CA that cannot be read
    /// stops the start with its reason.
    func recorderMQTT(_ settings: RecorderConfiguration, store: RecordingStore, monitor: MotionMonitor, ingest: MediaIngest,
                      metrics: RecorderMetrics, host: NetHost, logger: Logger) throws -> RecorderMQTT? {
        guard settings.mqtt.enabled else { return nil }
        do {
            // Named after the machine (Home Assistant's device model says which recorder).
            let machine = ProcessInfo.processInfo.hostName.split(separator: ".").first.map(String.init) ?? "recorder"
            return try RecorderMQTT(settings: settings.mqtt, storageRoot: settings.storage, recorderName: machine,
                                    hooks: .recorder(store: store, monitor: monitor, ingest: ingest, metrics: metrics, host: host), logger: logger)
        } catch {
            throw CLIError("MQTT cannot start: \(error)")
        }
    }
}

extension RecorderRun {
    /// "MQTT to HOST:PORT under PREFIX/, Home Assistant discovery under homeassistant/".
    func mqttSummary(_ mqtt: RecorderMQTTSettings) -> String {
        let discovery = mqtt.discovery ? ", Home Assistant discovery under \(mqtt.discoveryPrefix)/" : ""
        return "MQTT to \(mqtt.host ?? ""):\(mqtt.resolvedPort)\(mqtt.tls ? " (TLS)" : "") under \(mqtt.prefix)/" + discovery
    }

    /// The key that signs stream links (`<storage>/link-signing.key`, made on first use).
    func signedLinks(storage: String) throws -> SignedLinks {
        do { return try SignedLinks.load(path: (storage as NSString).appendingPathComponent("link-signing.key")) } catch {
            throw CLIError("\(error)")
        }
    }
}

/// Runs `action` when the group shuts down.
struct OnShutdown: Service {
    let action: @Sendable () -> Void
    func run() async throws {
        try? await gracefulShutdown()
        action()
    }
}

/// Returns after `seconds` (then the group stops: `--seconds`).
struct StopAfter: Service {
    let duration: Duration
    func run() async throws {
        try? await Task.sleep(for: duration)
    }
}

extension RecorderRun {
    /// Defaults, then the file, then XT_RECORDER_* variables, then options.
    func settings() throws -> RecorderConfiguration {
        var settings = RecorderConfiguration()
        do {
            if FileManager.default.fileExists(atPath: config) {
                guard let text = try? String(contentsOfFile: config, encoding: .utf8) else { throw CLIError("\(config) cannot be read: check its permissions") }
                try settings.apply(file: text, source: config)
            } else if config != "Config/recorder.conf" {
                throw CLIError("no settings file at \(config): give an existing --config (see Config/recorder.conf.example)")
            }
            try settings.apply(environment: ProcessInfo.processInfo.environment, prefix: "XT_RECORDER_")
            var options: [(String, String)] = []
            if let storage { options.append(("storage", storage)) }
            if let index { options.append(("index", index)) }
            if let segmentSeconds { options.append(("segment-seconds", String(segmentSeconds))) }
            if let retentionDays { options.append(("retention-days", String(retentionDays))) }
            if let maxSize { options.append(("max-size", maxSize)) }
            if let minFree { options.append(("min-free", minFree)) }
            if let channels { options.append(("channels", channels)) }
            if let deadline { options.append(("deadline", String(deadline))) }
            if let http { options.append(("http", http)) }
            for (key, value) in options {
                do { try settings.set(key, value) } catch { throw NodeConfigurationError.atLine(source: "--\(key)", line: 0, error) }
            }
            for assignment in set {
                guard let equals = assignment.firstIndex(of: "=") else { throw CLIError("--set '\(assignment)' is not key=value") }
                let key = assignment[..<equals].trimmingCharacters(in: .whitespaces)
                do { try settings.set(key, String(assignment[assignment.index(after: equals)...])) } catch {
                    throw NodeConfigurationError.atLine(source: "--set", line: 0, error)
                }
            }
        } catch let error as NodeConfigurationError {
            throw CLIError("\(error)")
        }
        return settings
    }
}

struct RecorderCheck: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "check", abstract: "Print each camera's recorded timeline and its gaps, as JSON.")

    @OptionGroup var recordings: RecordingsOptions

    @Option(name: .long, help: "Only this camera.")
    var camera: String?

    func run() async throws {
        try await XT.run {
            let database = try recordings.open()
            let storage = recordings.storage
            try printJSON(await Recording.check(root: storage, index: database, camera: camera))
        }
    }
}

struct RecorderExport: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "export", abstract: "Write one camera's recording into a playable MP4 or MKV file.")

    @OptionGroup var recordings: RecordingsOptions

    @Option(name: .long, help: "The camera.")
    var camera: String

    @Option(name: .long, help: "The file to write (.mp4 or .mkv).")
    var out: String

    @Option(name: .long, help: "From this capture time (ISO 8601, e.g. 2026-11-21T10:00:00Z, or seconds since 1970).")
    var from: String?

    @Option(name: .long, help: "Up to this capture time (ISO 8601 or seconds since 1970).")
    var to: String?

    func run() async throws {
        try await XT.run {
            let database = try recordings.open()
            let storage = recordings.storage
            let summary = try await Recording.export(root: storage, index: database, camera: camera, to: out,
                                                     from: try from.map { try Checked.time($0, "--from") }, to: try to.map { try Checked.time($0, "--to") },
                                                     fromKeyframeBefore: true)
            print("exported \(summary.videoFrames) video and \(summary.audioFrames) audio frames of \(camera) from \(summary.segments) segments to \(summary.path)"
                  + (summary.videoSizes.count > 1 ? " (the camera changed size: \(summary.videoSizes.joined(separator: " → ")), each part at its own)" : ""))
            for note in summary.notes { print("note: \(note)") }
        }
    }

}

struct RecorderAlarms: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "alarms",
                                                    abstract: "Print the alarm subscriptions and the outbox (pending and delivered alarms), as JSON.")

    @OptionGroup var recordings: RecordingsOptions

    struct Summary: Encodable {
        var subscriptions: [AlarmSubscription]
        var pending: [String]
        var delivered: Int
        var events: Int
    }

    func run() async throws {
        try await XT.run {
            let database = try recordings.open()
            let pending = try await database.pendingDeliveries(target: nil, limit: 10_000).map { "\($0.target) \($0.alarm.id)" }
            let summary = Summary(subscriptions: try await database.subscriptions(), pending: pending,
                                  delivered: try await database.deliveryCounts().delivered,
                                  events: try await database.events(camera: nil, from: nil, to: nil).count)
            try printJSON(summary)
        }
    }
}

struct RecorderEvents: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "events", abstract: "Print the motion events (all, or one camera's), as JSON.")

    @OptionGroup var recordings: RecordingsOptions

    @Option(name: .long, help: "Only this camera.")
    var camera: String?

    func run() async throws {
        try await XT.run {
            let database = try recordings.open()
            try printJSON(try await database.events(camera: camera, from: nil, to: nil))
        }
    }
}

struct RecorderNodes: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "nodes",
                                                    abstract: "Print the nodes the recorder has seen (links when last seen, channels), as JSON.")

    @OptionGroup var recordings: RecordingsOptions

    func run() async throws {
        try await XT.run { try printJSON(try await recordings.open().nodes()) }
    }
}

struct RecorderPasswd: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "passwd",
        abstract: "Print a Config/recorder.conf line for a web UI user (the password is read from standard input, kept only as a hash).")

    @Argument(help: "The user's name.")
    var name: String

    @Option(name: .long, help: "viewer or admin.")
    var role = "viewer"

    func run() async throws {
        try await XT.run {
            guard let role = UserAccount.Role(rawValue: role) else { throw CLIError("--role '\(role)' is not a role: use viewer or admin") }
            guard UserAccount.isValidName(name) else {
                throw CLIError("'\(name)' is not a user name: use letters, digits, '-', '_' and '.'")
            }
            FileHandle.standardError.write("password for \(name): ")
            guard let password = readLine(strippingNewline: true), password.count >= 8 else {
                throw CLIError("a password needs at least 8 characters")
            }
            print(UserAccount(name: name, role: role, passwordHash: UserAccount.hash(password: password)).settingLine)
        }
    }
}

/// Where a recorder's recordings and index are, for the commands that read them.
struct RecordingsOptions: ParsableArguments {
    @Option(name: .long, help: "Where recordings are.")
    var storage = "/var/lib/xt/recordings"

    @Option(name: .long, help: "The index database (default: <storage>/index.sqlite).")
    var index: String?

    /// The index, after checking the storage root is there.
    func open() throws -> SQLiteIndex {
        guard FileManager.default.fileExists(atPath: storage) else { throw CLIError("no recordings at \(storage): give --storage") }
        return try SQLiteIndex(path: index ?? RecordingStore.defaultIndexPath(root: storage))
    }
}

/// Prints `value` as indented JSON with sorted keys.
func printJSON(_ value: some Encodable) throws {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
    print(String(decoding: try encoder.encode(value), as: UTF8.self))
}

/// The browser as a phone: the "web" doorbell node, and a node per open call page named after
/// its user (ids 65534.N, in this process, let in by its host).
enum WebCalls {
    static func serve(host: NetHost, key: PublicKey, session: SessionConfiguration, logger: Logger) async throws
        -> @Sendable (String, AsyncStream<CallPageMessage>, @escaping @Sendable (CallPageMessage) async throws -> Void) async -> Void {
        let bound = host.endpoint.localAddress
        let address: String
        if case .v4(let value) = bound.host, value != 0 { address = bound.description } else { address = "127.0.0.1:\(bound.port)" }
        let doorbell = try WebDoorbell(host: host, hostAddress: address, hostKey: key, id: NodeID(area: 65534, local: 1), session: session, logger: logger)
        try await doorbell.start()
        let next = Mutex<UInt16>(2)
        return { user, inbound, write in
            let local = next.withLock { value -> UInt16 in
                defer { value = value == .max ? 2 : value + 1 }
                return value
            }
            let bridge: WebCallBridge
            do {
                bridge = try WebCallBridge(user: user, id: NodeID(area: 65534, local: local), host: host, hostAddress: address, hostKey: key,
                                           session: session, doorbell: doorbell, logger: logger)
                try await bridge.start()
            } catch {
                let message = (try? JSONSerialization.data(withJSONObject: ["type": "error", "message": "cannot join the call network: \(error)"]))
                    .map { String(decoding: $0, as: UTF8.self) } ?? #"{"type":"error","message":"cannot join the call network"}"#
                try? await write(.text(message))
                return
            }
            let sender = Task {
                for await output in bridge.output {
                    switch output {
                    case .text(let text): try? await write(.text(text))
                    case .binary(let bytes): try? await write(.binary(bytes))
                    }
                }
            }
            for await message in inbound {
                switch message {
                case .text(let text): await bridge.handle(text: text)
                case .binary(let bytes): await bridge.handle(binary: bytes)
                }
            }
            await bridge.stop()
            sender.cancel()
        }
    }
}
