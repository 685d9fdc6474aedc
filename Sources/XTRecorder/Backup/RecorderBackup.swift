// The recorder backs itself up (recorder.conf `backup.*`): event clips, or every recording,
// sent to the backup Pis again and again through `XTBackup` (bonded, deduplicated, sealed with
// the owner's key), with a copy of the index, and how far behind it is for the web UI and
// /metrics. A run sends only what the Pis lack, so one every few minutes costs little; a Pi
// that is down makes the run fail and say why, and recording never waits for any of it.
import Foundation
public import Logging
public import XTBackup

/// What `backup.*` in recorder.conf sets.
public struct RecorderBackupSettings: Sendable, Equatable {
    /// What is backed up.
    public enum What: String, Sendable, CaseIterable {
        /// The recording around each motion event (its clip, pre- and post-roll included) and its snapshot.
        case events
        /// Every finished segment, and the event snapshots.
        case all
    }

    /// The Pis by their names in ``targets``, in order; empty: all of them. nil: the recorder
    /// does not back itself up.
    public var to: [String]?
    /// The targets file: one Pi per line, `NAME KEY ADDRESS[,ADDRESS…]`.
    public var targets = "Config/backup-targets"
    /// The owner's backup key (`xt backup init`): only it opens what the Pis hold.
    public var key = "Config/backup.key"
    /// The node key the Pis know the recorder by; nil: the recorder's own (`--key`).
    public var nodeKey: String?
    /// Pis that hold each chunk (at most as many as there are Pis).
    public var copies = 2
    public var what = What.events
    /// Time between runs (a run that finds nothing new is cheap).
    public var interval: Duration = .seconds(300)
    /// Local interfaces or IPv4 addresses to send from, each a link of the bond; empty: the system's choice.
    public var via: [String] = []
    /// Connections per link.
    public var connections = 4
    /// Snapshots of the recorder kept on the Pis (the newest; older ones are forgotten and
    /// their chunks pruned, as `xt backup forget --keep-last` and `prune` do).
    public var keepLast = 48

    public init() {}

    /// Sets one `backup.KEY` (`KEY` without the prefix).
    /// - Throws: a message saying what the key takes, for a bad value or an unknown key.
    public mutating func set(_ key: String, _ value: String) throws(BackupSettingError) {
        let bad = BackupSettingError.badValue(key: "backup." + key, value: value, expected: Self.keys.first { $0.key == "backup." + key }?.takes ?? "")
        switch key {
        case "to":
            if value == "none" || value == "off" {
                to = nil
            } else if value == "all" {
                to = []
            } else {
                let names = value.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
                guard !names.isEmpty, names.allSatisfy(BackupTarget.isValidName), Set(names).count == names.count else { throw bad }
                to = names
            }
        case "targets":
            guard !value.isEmpty else { throw bad }
            targets = value
        case "key":
            guard !value.isEmpty else { throw bad }
            self.key = value
        case "node-key": nodeKey = value.isEmpty ? nil : value
        case "copies":
            guard let number = Int(value), (1...16).contains(number) else { throw bad }
            copies = number
        case "what":
            guard let what = What(rawValue: value) else { throw bad }
            self.what = what
        case "interval":
            guard let seconds = Double(value), seconds.isFinite, (10...86_400).contains(seconds) else { throw bad }
            interval = .milliseconds(Int64(seconds * 1000))
        case "via":
            let sources = value.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
            for source in sources { guard (try? LocalSource(parsing: source)) != nil else { throw bad } }
            via = sources
        case "connections":
            guard let number = Int(value), (1...64).contains(number) else { throw bad }
            connections = number
        case "keep-last":
            guard let number = Int(value), (1...100_000).contains(number) else { throw bad }
            keepLast = number
        default:
            throw .unknownKey("backup." + key)
        }
    }

    /// The keys, for messages and the example file.
    public static let keys: [(key: String, takes: String)] = [
        ("backup.to", "all, or Pi names from the targets file, comma-separated (none: no backup)"),
        ("backup.targets", "the targets file (NAME KEY ADDRESS[,ADDRESS…] per line)"),
        ("backup.key", "the backup key file from `xt backup init`"),
        ("backup.node-key", "the node key the Pis list (default: the recorder's own)"),
        ("backup.copies", "Pis per chunk, 1…16"),
        ("backup.what", "events (clips around motion events) or all (every recording)"),
        ("backup.interval", "seconds between runs, 10…86400"),
        ("backup.via", "local interfaces or addresses to send from, comma-separated"),
        ("backup.connections", "connections per link, 1…64"),
        ("backup.keep-last", "recorder snapshots kept on the Pis, 1…100000"),
    ]
}

/// A `backup.*` setting that cannot be used.
public enum BackupSettingError: Error, Sendable, Equatable {
    case badValue(key: String, value: String, expected: String)
    case unknownKey(String)
}

/// Where the recorder's backup stands: `/api/backup`, the Nodes page, /metrics.
public struct RecorderBackupStatus: Codable, Sendable, Equatable {
    public var enabled: Bool
    /// events or all.
    public var what: String
    /// The Pis, by name.
    public var pis: [String]
    public var copies: Int
    /// A run is going on now.
    public var running: Bool
    /// When the last run that succeeded started, and the last run of any outcome ended (ms since 1970).
    public var lastSuccess: Int64?
    public var lastAttempt: Int64?
    /// Why the last run failed (nil after a success).
    public var lastError: String?
    /// The last snapshot made, its files and bytes, and the bytes the Pis lacked.
    public var lastSnapshot: String?
    public var lastFiles: Int
    public var lastBytes: UInt64
    public var lastBytesSent: UInt64
    /// Pis the last run could not reach (it went on with the others while enough answered).
    public var unavailable: [String]
    /// What should be on the Pis and is not yet: files, bytes, and how old the oldest of it is
    /// (seconds since its recording ended; 0 when nothing is waiting).
    public var behindFiles: Int
    public var behindBytes: Int64
    public var behindSeconds: Double

    static func off() -> RecorderBackupStatus {
        RecorderBackupStatus(enabled: false, what: "", pis: [], copies: 0, running: false, lastFiles: 0, lastBytes: 0, lastBytesSent: 0,
                             unavailable: [], behindFiles: 0, behindBytes: 0, behindSeconds: 0)
    }
}

/// The recorder's backup loop. Start ``run()`` in a task; cancel it to stop.
public actor RecorderBackup {
    public let settings: RecorderBackupSettings
    /// The storage root: segment and snapshot paths in the index are relative to it.
    public let root: String
    private let index: any RecorderIndex
    /// Writes a consistent copy of the index to a path (nil: the index is not backed up).
    private let copyIndex: (@Sendable (String) async throws -> Void)?
    /// Opens the Pis for one run (a fresh bond each time; the caller's, stopped after).
    private let open: @Sendable () throws -> Repository
    private let host: String
    private let logger: Logger
    private var status: RecorderBackupStatus
    /// Files (relative to the storage root) in the last snapshot that succeeded.
    private var backedUp: Set<String> = []
    private var lastPrune: ContinuousClock.Instant?
    /// Runs that ended, by outcome, and bytes sent, for /metrics.
    public private(set) var succeeded = 0
    public private(set) var failed = 0
    public private(set) var bytesSent: UInt64 = 0

    /// - Parameters:
    ///   - pis: the Pis' names, for the status.
    ///   - copyIndex: writes a consistent copy of the index to the path given.
    ///   - open: opens the Pis (a new ``Repository``) for a run; its errors are the run's.
    ///   - host: the machine's name in the snapshots (default: its host name).
    public init(settings: RecorderBackupSettings, pis: [String], root: String, index: any RecorderIndex,
                copyIndex: (@Sendable (String) async throws -> Void)?, host: String? = nil,
                logger: Logger, open: @escaping @Sendable () throws -> Repository) {
        self.settings = settings
        self.root = URL(fileURLWithPath: root).standardizedFileURL.path
        self.index = index
        self.copyIndex = copyIndex
        self.open = open
        self.host = host ?? ProcessInfo.processInfo.hostName
        self.logger = logger
        var status = RecorderBackupStatus.off()
        status.enabled = true
        status.what = settings.what.rawValue
        status.pis = pis
        status.copies = settings.copies
        self.status = status
    }

    public var currentStatus: RecorderBackupStatus { status }

    /// Runs at once, then every interval, until cancelled; between runs, how far behind it is
    /// is worked out every 10 s.
    public func run() async {
        var next = ContinuousClock.now
        while !Task.isCancelled {
            if ContinuousClock.now >= next {
                await runOnce()
                next = ContinuousClock.now + settings.interval
            } else {
                await refresh()
            }
            try? await Task.sleep(for: min(.seconds(10), max(.milliseconds(100), next - ContinuousClock.now)))
        }
    }

    /// The folder the index copy goes in (outside the storage root, whose folders are cameras).
    private var indexFolder: String {
        // FNV-1a of the root: the same folder every run and every restart, so that each run's
        // snapshot has the same paths as the last and reads only what changed.
        let name = String(root.utf8.reduce(UInt64(0xcbf2_9ce4_8422_2325)) { ($0 ^ UInt64($1)) &* 0x100_0000_01b3 }, radix: 16)
        return (NSTemporaryDirectory() as NSString).appendingPathComponent("xt-recorder-backup-\(getuid())-\(name)/recorder-index")
    }

    /// The name the storage root has in the snapshot.
    private var rootName: String { (root as NSString).lastPathComponent }

    /// What should be on the Pis now: path relative to the storage root → (bytes, when its
    /// recording ended, ns).
    func wanted() async throws -> [String: (bytes: Int64, end: Int64)] {
        var files: [String: (bytes: Int64, end: Int64)] = [:]
        let now = Int64(Date().timeIntervalSince1970 * 1e9)
        let events = try await index.events(camera: nil, from: nil, to: nil)
        for event in events {
            if let snapshot = event.snapshot { files[snapshot] = (0, event.end ?? event.start) }
        }
        var segments: [SegmentRecord] = []
        switch settings.what {
        case .all:
            segments = try await index.segments(camera: nil, from: nil, to: nil)
        case .events:
            // One query per camera over the span of its events, then the segments that overlap
            // a clip (as the index's query counts overlap: ending at or after its start, starting
            // at or before its end), not one query per event every refresh.
            for (camera, events) in Dictionary(grouping: events, by: \.camera) {
                let clips = Self.union(events.map { (start: $0.clipStart, end: $0.clipEnd ?? now) })
                let candidates = try await index.segments(camera: camera, from: clips.first?.start, to: clips.last?.end)
                segments += Self.overlapping(candidates, clips)
            }
        }
        for segment in segments where !segment.isOpen { files[segment.path] = (segment.bytes, segment.end) }
        return files
    }

    /// `spans` merged where they overlap, in order of start.
    static func union(_ spans: [(start: Int64, end: Int64)]) -> [(start: Int64, end: Int64)] {
        var merged: [(start: Int64, end: Int64)] = []
        for span in spans.sorted(by: { $0.start < $1.start }) {
            if let last = merged.last, span.start <= last.end {
                merged[merged.count - 1].end = max(last.end, span.end)
            } else {
                merged.append(span)
            }
        }
        return merged
    }

    /// The segments (in order of start, as the index lists them) that overlap one of `clips`
    /// (disjoint, in order): in one pass over both.
    static func overlapping(_ segments: [SegmentRecord], _ clips: [(start: Int64, end: Int64)]) -> [SegmentRecord] {
        var clip = 0
        return segments.filter { segment in
            while clip < clips.count, clips[clip].end < segment.start { clip += 1 }
            return clip < clips.count && clips[clip].start <= segment.end
        }
    }

    /// Works out what is waiting (``RecorderBackupStatus/behindFiles`` and the rest).
    public func refresh() async {
        do {
            note(behind: try await wanted())
        } catch {
            logger.warning("backup: cannot read the index to see what is waiting: \(error)")
        }
    }

    private func note(behind wanted: [String: (bytes: Int64, end: Int64)]) {
        let waiting = wanted.filter { !backedUp.contains($0.key) }
        status.behindFiles = waiting.count
        status.behindBytes = waiting.values.reduce(0) { $0 + $1.bytes }
        let oldest = waiting.values.map(\.end).min()
        status.behindSeconds = oldest.map { max(0, Date().timeIntervalSince1970 - Double($0) / 1e9) } ?? 0
    }

    /// One run: the files wanted and the index copy to the Pis, then old snapshots forgotten
    /// (and, once every 6 hours, their chunks pruned).
    /// - Returns: whether it succeeded (the status says why not).
    @discardableResult
    public func runOnce() async -> Bool {
        status.running = true
        defer {
            status.running = false
            status.lastAttempt = Int64(Date().timeIntervalSince1970 * 1000)
        }
        let started = Int64(Date().timeIntervalSince1970 * 1000)
        do {
            let wanted = try await wanted()
            let present = Set(wanted.keys.filter { FileManager.default.fileExists(atPath: root + "/" + $0) })
            var paths = [root]
            var only = Set(present.map { rootName + "/" + $0 })
            if let copyIndex {
                let folder = indexFolder
                try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
                try await copyIndex(folder + "/index.sqlite")
                paths.append(folder)
                only.insert("recorder-index/index.sqlite")
            }
            var options = BackupOptions(paths: paths, copies: settings.copies, host: host)
            options.tags = ["recorder", settings.what.rawValue]
            options.only = only
            let summary = try await open().closing { repository in
                let summary = try await BackupRun(repository: repository, options: options).run()
                let maintenance = Maintenance(repository: repository)
                let forgotten = try await maintenance.forget(ids: [], policy: XTBackup.RetentionPolicy(last: settings.keepLast))
                if !forgotten.isEmpty, lastPrune.map({ ContinuousClock.now - $0 > .seconds(6 * 3600) }) ?? true {
                    let (chunks, bytes) = try await maintenance.prune()
                    lastPrune = ContinuousClock.now
                    logger.info("backup: forgot \(forgotten.count) old snapshots, pruned \(chunks) chunks (\(bytes) bytes)")
                }
                return summary
            }
            let skipped = Set(summary.problems.map { $0.path })
            backedUp = present.filter { !skipped.contains(root + "/" + $0) }
            let sent = summary.progress.transfer.bytesByTarget.values.reduce(0, +)
            bytesSent += sent
            succeeded += 1
            status.lastSuccess = started
            status.lastError = summary.problems.isEmpty ? nil : "skipped \(summary.problems.count) unreadable: \(summary.problems.prefix(3).map(\.description).joined(separator: "; "))"
            status.lastSnapshot = summary.snapshot.hex
            status.lastFiles = summary.record.files
            status.lastBytes = summary.record.bytes
            status.lastBytesSent = sent
            status.unavailable = summary.unavailable
            note(behind: wanted)
            logger.info("backup: snapshot \(summary.snapshot.short) of \(summary.record.files) files (\(summary.record.bytes) bytes), \(sent) bytes sent")
            return true
        } catch {
            failed += 1
            status.lastError = "\(error)"
            logger.warning("backup: the run failed: \(error); it is tried again in \(settings.interval)")
            await refresh()
            return false
        }
    }
}
