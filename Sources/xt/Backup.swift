// `xt backup`: files to several Pis over bonded xtransport connections (Multiplexity's inverse
// multiplexing, xTransporter's "5 Pis with 10 connections"): serve, init, run, restore, list,
// forget, prune, check.
import ArgumentParser
import Foundation
import Logging
import XTBackup
import XTransport
import XTransportNIO
#if canImport(Glibc)
import Glibc
#endif

struct BackupCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "backup",
        abstract: "Deduplicated, encrypted backups to several Pis over bonded connections.",
        subcommands: [BackupServe.self, BackupInit.self, BackupRunCommand.self, BackupRestore.self, BackupList.self,
                      BackupForget.self, BackupPrune.self, BackupCheck.self])
}

/// What every client subcommand shares: who we are, the key, the Pis and how to reach them.
struct BackupClientOptions: ParsableArguments {
    @Option(name: .long, help: "This node's private key file (from `xt keygen`); each Pi must list its public key.")
    var key = "Config/node.key"

    @Option(name: .long, help: "The owner's backup key (from `xt backup init`): chunks are sealed with it, and only it opens them.")
    var backupKey = "Config/backup.key"

    @Option(name: .long, help: "The Pis: one per line, NAME KEY ADDRESS[,ADDRESS…].")
    var targets = "Config/backup-targets"

    @Option(name: .long, help: "Local interfaces or IPv4 addresses to send from, comma-separated (each is a link of the bond); default: the system's choice.")
    var via: String?

    @Option(name: .long, help: "Connections per link (local address to Pi address).")
    var connections = 4

    @Option(name: .long, help: "Congestion control: ledbat (default: yields to live camera traffic) or rate.")
    var cc = "ledbat"

    @Flag(name: .long, help: "Log at debug level.")
    var verbose = false

    func logger() -> Logger {
        var logger = Logger(label: "xt")
        logger.logLevel = verbose ? .debug : .notice
        return logger
    }

    /// Runs `body` with the Pis named, and closes every connection after, however it ends.
    func withRepository<T>(names: String?, _ body: (Repository) async throws -> T) async throws -> T {
        try await repository(names: names).closing(body)
    }

    /// The Pis named (all in the targets file when `names` is nil).
    func repository(names: String?) throws -> Repository {
        try Checked.integer(connections, "--connections", in: 1...64)
        guard let algorithm = CongestionControlAlgorithm(rawValue: cc) else { throw CLIError("unknown congestion control '\(cc)': use ledbat or rate") }
        let chosen = try BackupTarget.load(file: targets, names: names.map { $0.split(separator: ",").map { String($0).trimmingCharacters(in: .whitespaces) } })
        var settings = BondSettings()
        settings.connectionsPerLink = connections
        settings.congestionControl = algorithm
        settings.via = try (via ?? "").split(separator: ",").map { try LocalSource(parsing: String($0)) }
        let identity = try NodeIdentity.load(path: key)
        let backupKey = try RepositoryKeyFile.load(self.backupKey)
        let bond = Bond(identity: identity, targets: chosen, settings: settings, logger: logger())
        return Repository(key: backupKey, bond: bond, logger: logger())
    }
}

struct BackupServe: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "serve", abstract: "Run a Pi's chunk store for the node keys it lists.")

    @Option(name: .long, help: "The store's folder.")
    var store = "/var/lib/xt/backup"

    @Option(name: .long, help: "Address to listen on, host:port.")
    var listen = "0.0.0.0:7400"

    @Option(name: .long, help: "This Pi's private key file (from `xt keygen`).")
    var key = "Config/node.key"

    @Option(name: .long, help: "Node keys allowed to store here, one per line (KEY name).")
    var authorizedKeys = "Config/authorized_keys"

    @Option(name: .long, help: "Most bytes the store may hold: a number with K, M, G or T (powers of 1024).")
    var quota = "100G"

    @Option(name: .long, help: "Stop after this many seconds (tests).")
    var seconds: Double?

    @Flag(name: .long, help: "Log at debug level.")
    var verbose = false

    func run() async throws {
        try await XT.run {
            let quotaBytes = try Checked.bytes(quota, "--quota")
            let address = try NetworkAddress.resolve(listen)
            let stopAfter = try seconds.map { try Checked.seconds($0, "--seconds") }
            let identity = try NodeIdentity.load(path: key)
            let keys = try AuthorizedKeys.load(path: authorizedKeys)
            let chunkStore = try ChunkStore(root: store, quota: quotaBytes)
            var logger = Logger(label: "xt")
            logger.logLevel = verbose ? .debug : .notice
            var session = SessionConfiguration()
            session.deadPeerTimeout = .seconds(6)
            let host = listen.hasPrefix("[") ? String(listen.dropFirst().prefix { $0 != "]" }) : String(listen[..<(listen.lastIndex(of: ":") ?? listen.endIndex)])
            let endpoint = try await TransportEndpoint.bind(host: host.isEmpty ? "0.0.0.0" : host, port: Int(address.port),
                                                            configuration: EndpointConfiguration(identity: identity, admission: .authorized(keys), session: session),
                                                            logger: logger)
            let server = BackupServer(store: chunkStore, logger: logger)
            let figures = chunkStore.figures
            print("backup store \(store): \(figures.chunks) chunks, \(figures.usedBytes) of \(figures.quotaBytes) bytes; listening on \(endpoint.localAddress) for \(keys.names.count) keys")
            let serving = Task { await server.serve(endpoint) }
            await Termination.wait(seconds: stopAfter.map { Double($0.components.seconds) + Double($0.components.attoseconds) / 1e18 })
            await endpoint.close()
            serving.cancel()
            await server.shutdown()
        }
    }
}

struct BackupInit: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "init", abstract: "Create the owner's backup key (keep a copy somewhere safe: without it nothing can be restored).")

    @Option(name: .long, help: "Where to write the key.")
    var backupKey = "Config/backup.key"

    func run() async throws {
        try await XT.run {
            let key = try RepositoryKeyFile.create(backupKey)
            print("wrote \(backupKey) (fingerprint \(key.fingerprint)): keep a copy off this machine; without it no backup can be restored")
        }
    }
}

/// Prints progress: a line rewritten in place on a terminal, one JSON object per line with --json.
final class ProgressPrinter: @unchecked Sendable {
    let json: Bool
    let terminal = isatty(STDERR_FILENO) == 1
    private var lastBytes: [String: UInt64] = [:]
    private var lastTime: Double = 0
    private var lastPrinted: Double = -100

    init(json: Bool) { self.json = json }

    static func size(_ bytes: UInt64) -> String {
        let value = Double(bytes)
        if value >= 1_073_741_824 { return String(format: "%.2f GiB", value / 1_073_741_824) }
        if value >= 1_048_576 { return String(format: "%.1f MiB", value / 1_048_576) }
        return String(format: "%.0f KiB", value / 1024)
    }

    /// Rates in bytes per second since the last call, per key.
    func rates(_ bytes: [String: UInt64], now: Double) -> [String: Double] {
        let interval = max(now - lastTime, 0.001)
        var rates: [String: Double] = [:]
        for (key, value) in bytes { rates[key] = Double(value - min(value, lastBytes[key] ?? 0)) / interval }
        lastBytes = bytes
        lastTime = now
        return rates
    }

    func backup(_ progress: BackupProgress, final: Bool = false) {
        var keyed = progress.transfer.bytesByLink.mapKeys { "link " + $0 }
        for (target, bytes) in progress.transfer.bytesByTarget { keyed["pi " + target] = bytes }
        keyed["sent"] = progress.transfer.bytesByTarget.values.reduce(0, +)
        keyed["scanned"] = progress.bytesScanned
        let rates = self.rates(keyed, now: progress.seconds)
        let remaining = Double(progress.bytesTotal - min(progress.bytesTotal, progress.bytesScanned))
        let scanRate = progress.seconds > 0 ? Double(progress.bytesScanned) / progress.seconds : 0
        let eta = scanRate > 0 && !final ? remaining / scanRate : 0
        if json {
            struct Line: Encodable {
                var phase: String
                var seconds: Double
                var files_done: Int
                var files_total: Int
                var bytes_total: UInt64
                var bytes_scanned: UInt64
                var bytes_read: UInt64
                var bytes_new: UInt64
                var bytes_sent: UInt64
                var eta_seconds: Double
                var rate_bytes_per_second: Double
                var links: [String: [String: Double]]
                var pis: [String: [String: Double]]
                var endgame_copies: Int
                var requeued: Int
                var connections: Int
                var stalled_connections: Int
            }
            let line = Line(phase: progress.phase, seconds: progress.seconds, files_done: progress.filesDone, files_total: progress.filesTotal,
                            bytes_total: progress.bytesTotal, bytes_scanned: progress.bytesScanned, bytes_read: progress.bytesRead,
                            bytes_new: progress.bytesNew, bytes_sent: keyed["sent"] ?? 0, eta_seconds: eta, rate_bytes_per_second: rates["sent"] ?? 0,
                            links: progress.transfer.bytesByLink.mapValuesWithKey { key, bytes in ["bytes": Double(bytes), "rate": rates["link " + key] ?? 0] },
                            pis: progress.transfer.bytesByTarget.mapValuesWithKey { key, bytes in ["bytes": Double(bytes), "rate": rates["pi " + key] ?? 0] },
                            endgame_copies: progress.transfer.endgameCopies, requeued: progress.transfer.requeued,
                            connections: progress.transfer.connections, stalled_connections: progress.transfer.stalledConnections)
            if let data = try? JSONEncoder().encode(line) { print(String(decoding: data, as: UTF8.self)) }
            return
        }
        guard terminal || final || progress.seconds - lastPrinted >= 5 else { return }
        lastPrinted = progress.seconds
        let pis = progress.transfer.bytesByTarget.keys.sorted().map { "\($0) \(Self.size(progress.transfer.bytesByTarget[$0]!)) \(Self.size(UInt64(rates["pi " + $0] ?? 0)))/s" }
        let links = progress.transfer.bytesByLink.keys.sorted().map { "\($0) \(Self.size(UInt64(rates["link " + $0] ?? 0)))/s" }
        let line = "\(progress.phase): \(Self.size(progress.bytesScanned)) of \(Self.size(progress.bytesTotal)), "
            + "\(Self.size(keyed["sent"] ?? 0)) sent at \(Self.size(UInt64(rates["sent"] ?? 0)))/s, ETA \(Int(eta)) s"
            + (pis.isEmpty ? "" : " | " + pis.joined(separator: ", "))
            + (links.isEmpty || !terminal ? "" : " | " + links.joined(separator: ", "))
        FileHandle.standardError.write(terminal && !final ? "\r\u{1B}[K" + line : line + "\n")
    }
}

extension Dictionary where Key == String {
    func mapKeys(_ transform: (String) -> String) -> [String: Value] {
        Dictionary(uniqueKeysWithValues: map { (transform($0.key), $0.value) })
    }

    func mapValuesWithKey<T>(_ transform: (String, Value) -> T) -> [String: T] {
        Dictionary<String, T>(uniqueKeysWithValues: map { ($0.key, transform($0.key, $0.value)) })
    }
}

struct BackupRunCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "run", abstract: "Back up files and folders to the Pis: only chunks a Pi lacks are sent.")

    @Argument(help: "Files and folders to back up.")
    var paths: [String]

    @Option(name: .long, help: "The Pis, comma-separated names from the targets file (default: all of them).")
    var to: String?

    @Option(name: .long, help: "How many Pis hold each chunk: losing any copies-1 of them loses nothing.")
    var copies = 2

    @Option(name: .long, help: "This machine's name in the snapshot (default: the host name).")
    var host: String?

    @Option(name: .long, help: "A label for the snapshot (repeatable).")
    var tag: [String] = []

    @Flag(name: .long, help: "Print progress and the summary as JSON lines on stdout.")
    var json = false

    @Option(name: .long, help: "Seconds between progress lines.")
    var progressInterval = 1.0

    @OptionGroup var client: BackupClientOptions

    func run() async throws {
        try await XT.run {
            guard !paths.isEmpty else { throw CLIError("name at least one file or folder to back up") }
            let interval = try Checked.seconds(progressInterval, "--progress-interval", in: 0.05...3600)
            try Checked.integer(copies, "--copies", in: 1...16)
            let hostName = host ?? ProcessInfo.processInfo.hostName
            var options = BackupOptions(paths: paths, copies: copies, host: hostName)
            options.tags = tag
            let printer = ProgressPrinter(json: json)
            let summary = try await client.withRepository(names: to) { repository in
                let run = BackupRun(repository: repository, options: options)
                let ticker = Task {
                    while !Task.isCancelled {
                        try? await Task.sleep(for: interval)
                        if !Task.isCancelled { printer.backup(run.progress) }
                    }
                }
                defer { ticker.cancel() }
                return try await run.run()
            }
            printer.backup(summary.progress, final: true)
            for problem in summary.problems { FileHandle.standardError.write("xt: skipped \(problem)\n") }
            let p = summary.progress
            if json {
                struct Summary: Encodable {
                    var snapshot: String
                    var files: Int
                    var bytes: UInt64
                    var bytes_read: UInt64
                    var bytes_new: UInt64
                    var bytes_sent: UInt64
                    var bytes_duplicate: UInt64
                    var seconds: Double
                    var skipped: [String]
                    var unavailable: [String]
                    var bytes_by_pi: [String: UInt64]
                    var bytes_by_link: [String: UInt64]
                }
                let out = Summary(snapshot: summary.snapshot.hex, files: summary.record.files, bytes: summary.record.bytes, bytes_read: p.bytesRead,
                                  bytes_new: p.bytesNew, bytes_sent: p.transfer.bytesByTarget.values.reduce(0, +),
                                  bytes_duplicate: p.transfer.bytesDuplicate, seconds: p.seconds,
                                  skipped: summary.problems.map(\.description), unavailable: summary.unavailable,
                                  bytes_by_pi: p.transfer.bytesByTarget, bytes_by_link: p.transfer.bytesByLink)
                if let data = try? JSONEncoder().encode(out) { print(String(decoding: data, as: UTF8.self)) }
            } else {
                print("snapshot \(summary.snapshot.short): \(summary.record.files) files, \(ProgressPrinter.size(summary.record.bytes)); read \(ProgressPrinter.size(p.bytesRead)), new \(ProgressPrinter.size(p.bytesNew)), sent \(ProgressPrinter.size(p.transfer.bytesByTarget.values.reduce(0, +))) in \(String(format: "%.1f", p.seconds)) s")
            }
            if !summary.problems.isEmpty { throw ExitCode(3) }
        }
    }
}

struct BackupRestore: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "restore", abstract: "Restore a snapshot into a folder, reading from whichever Pis hold its chunks.")

    @Argument(help: "The snapshot: its id (or the first 8 digits) or latest.")
    var snapshot: String

    @Option(name: .long, help: "The folder to restore into.")
    var to: String

    @Option(name: .long, help: "The Pis to read from, comma-separated (default: all in the targets file).")
    var from: String?

    @Flag(name: .long, help: "Print the summary as JSON.")
    var json = false

    @OptionGroup var client: BackupClientOptions

    func run() async throws {
        try await XT.run {
            let (restored, p) = try await client.withRepository(names: from) { repository in
                let restore = RestoreRun(repository: repository)
                return (try await restore.run(snapshot: snapshot, to: to), restore.progress)
            }
            if json {
                struct Summary: Encodable {
                    var snapshot: String, files: Int, bytes: UInt64, chunks: Int, bad_copies: Int, seconds: Double
                    var bytes_by_pi: [String: UInt64]
                    var bytes_by_link: [String: UInt64]
                }
                let out = Summary(snapshot: restored.id.hex, files: restored.record.files, bytes: p.bytesWritten, chunks: p.chunksDone,
                                  bad_copies: p.badCopies, seconds: p.seconds, bytes_by_pi: p.bytesByTarget, bytes_by_link: p.bytesByLink)
                if let data = try? JSONEncoder().encode(out) { print(String(decoding: data, as: UTF8.self)) }
            } else {
                let from = p.bytesByTarget.keys.sorted().map { "\($0) \(ProgressPrinter.size(p.bytesByTarget[$0]!))" }.joined(separator: ", ")
                print("restored \(restored.id.short) into \(to): \(restored.record.files) files, \(ProgressPrinter.size(p.bytesWritten)) in \(String(format: "%.1f", p.seconds)) s (from \(from)); \(p.badCopies) bad copies read again elsewhere")
            }
        }
    }
}

struct BackupList: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "list", abstract: "List the snapshots on the Pis.")

    @Option(name: .long, help: "The Pis to ask (default: all).")
    var from: String?

    @Flag(name: .long, help: "Print JSON.")
    var json = false

    @OptionGroup var client: BackupClientOptions

    func run() async throws {
        try await XT.run {
            let (snapshots, unreadable) = try await client.withRepository(names: from) { repository in
                _ = try await repository.connect(needed: 1)
                return try await repository.snapshots()
            }
            if json {
                struct Row: Encodable {
                    var id: String, time: Int64, host: String, paths: [String], files: Int, bytes: UInt64, copies: Int, tags: [String], pis: [String]
                }
                let rows = snapshots.map { Row(id: $0.id.hex, time: $0.record.time, host: $0.record.host, paths: $0.record.paths, files: $0.record.files,
                                               bytes: $0.record.bytes, copies: $0.record.copies, tags: $0.record.tags, pis: $0.holders.sorted()) }
                if let data = try? JSONEncoder().encode(rows) { print(String(decoding: data, as: UTF8.self)) }
            } else {
                let formatter = ISO8601DateFormatter()
                for snapshot in snapshots {
                    print("\(snapshot.id.short)  \(formatter.string(from: snapshot.record.date))  \(snapshot.record.host)  \(snapshot.record.files) files  \(ProgressPrinter.size(snapshot.record.bytes))  copies \(snapshot.record.copies)  \(snapshot.record.paths.joined(separator: " "))")
                }
                if snapshots.isEmpty { print("no snapshots") }
            }
            if unreadable > 0 { FileHandle.standardError.write("xt: \(unreadable) snapshot records do not open with \(client.backupKey) (another owner's key?)\n") }
        }
    }
}

struct BackupForget: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "forget", abstract: "Forget snapshots, by id or by a retention policy (as restic's forget).")

    @Argument(help: "Snapshot ids to forget.")
    var ids: [String] = []

    @Option(name: .long, help: "Keep the newest N snapshots.")
    var keepLast = 0
    @Option(name: .long, help: "Keep the newest snapshot of each of the last N days.")
    var keepDaily = 0
    @Option(name: .long, help: "Keep the newest snapshot of each of the last N weeks.")
    var keepWeekly = 0
    @Option(name: .long, help: "Keep the newest snapshot of each of the last N months.")
    var keepMonthly = 0

    @Flag(name: .long, help: "Then delete chunks no snapshot uses.")
    var prune = false

    @Option(name: .long, help: "With --prune: keep chunks written in the last this many seconds (a running backup may need them).")
    var grace = 3600

    @Option(name: .long, help: "The Pis (default: all).")
    var from: String?

    @OptionGroup var client: BackupClientOptions

    func run() async throws {
        try await XT.run {
            for (value, name) in [(keepLast, "--keep-last"), (keepDaily, "--keep-daily"), (keepWeekly, "--keep-weekly"), (keepMonthly, "--keep-monthly")] {
                try Checked.integer(value, name, in: 0...1_000_000)
            }
            try Checked.integer(grace, "--grace", in: 0...31_536_000)
            let policy = RetentionPolicy(last: keepLast, daily: keepDaily, weekly: keepWeekly, monthly: keepMonthly)
            guard !ids.isEmpty || !policy.isEmpty else { throw CLIError("name snapshots to forget, or give a policy (--keep-last, --keep-daily, --keep-weekly, --keep-monthly)") }
            try await client.withRepository(names: from) { repository in
                let maintenance = Maintenance(repository: repository)
                let forgotten = try await maintenance.forget(ids: ids, policy: policy)
                for snapshot in forgotten { print("forgot \(snapshot.id.short) (\(ISO8601DateFormatter().string(from: snapshot.record.date)))") }
                if prune {
                    let (chunks, bytes) = try await maintenance.prune(grace: UInt32(grace))
                    print("pruned \(chunks) chunks, \(ProgressPrinter.size(bytes))")
                }
            }
        }
    }
}

struct BackupPrune: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "prune", abstract: "Delete chunks no snapshot uses from the Pis.")

    @Option(name: .long, help: "Keep chunks written in the last this many seconds (a running backup may need them).")
    var grace = 3600

    @Option(name: .long, help: "The Pis (default: all).")
    var from: String?

    @OptionGroup var client: BackupClientOptions

    func run() async throws {
        try await XT.run {
            try Checked.integer(grace, "--grace", in: 0...31_536_000)
            let (chunks, bytes) = try await client.withRepository(names: from) { repository in
                try await Maintenance(repository: repository).prune(grace: UInt32(grace))
            }
            print("pruned \(chunks) chunks, \(ProgressPrinter.size(bytes))")
        }
    }
}

struct BackupCheck: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "check", abstract: "Check every snapshot's chunks on the Pis and repair damaged or missing copies from good ones.")

    @Flag(name: .long, help: "Have each Pi re-hash every chunk, and read each chunk back here and open it with the key.")
    var readData = false

    @Option(name: .long, help: "The Pis (default: all).")
    var from: String?

    @Flag(name: .long, help: "Print the report as JSON.")
    var json = false

    @OptionGroup var client: BackupClientOptions

    func run() async throws {
        try await XT.run {
            let report = try await client.withRepository(names: from) { repository in
                try await Maintenance(repository: repository).check(readData: readData)
            }
            if json {
                if let data = try? JSONEncoder().encode(report) { print(String(decoding: data, as: UTF8.self)) }
            } else {
                print("checked \(report.snapshots) snapshots, \(report.chunksReferenced) chunks; the Pis checked \(report.chunksCheckedOnPis) copies (\(ProgressPrinter.size(report.bytesReadOnPis)) read); damaged \(report.damaged), missing \(report.missing), repaired \(report.repaired)"
                      + (readData ? ", read back \(report.chunksReadBack)" : "")
                      + (report.unreachable.isEmpty ? "" : "; not checked (no answer): \(report.unreachable.joined(separator: ", "))"))
            }
            guard report.isHealthy else {
                throw CLIError("\(report.unrecoverable.count) chunks have no good copy on the Pis that answered (first: \(report.unrecoverable[0].prefix(16))): bring the other Pis online and check again; snapshots using them cannot be restored whole")
            }
        }
    }
}
