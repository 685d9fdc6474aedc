// The one-host recorder index: SQLite through GRDB, in WAL mode (readers never wait for the
// writer), `synchronous = NORMAL` (a power cut may lose the last transactions, never corrupt
// the file; a crash of the process loses nothing). Schema changes are GRDB migrations.
import Foundation
import GRDB

/// ``RecorderIndex`` in a SQLite file.
public final class SQLiteIndex: RecorderIndex {
    private let pool: DatabasePool
    public let path: String
    /// Holes between consecutive segments longer than this are gaps.
    public let gapThreshold: Int64

    /// Opens (creating and migrating) the index at `path`.
    /// - Throws: ``StorageError`` when the file cannot be opened or is not a recorder index.
    public init(path: String, gapThreshold threshold: Duration = .milliseconds(250)) throws(StorageError) {
        self.path = path
        gapThreshold = Int64(threshold.components.seconds) * 1_000_000_000 + threshold.components.attoseconds / 1_000_000_000
        var configuration = Configuration()
        configuration.prepareDatabase { db in
            try db.execute(sql: "PRAGMA synchronous = NORMAL")
            // The write-ahead log shares the disk with the recordings: keep it small (checkpoint
            // every ~400 KiB, and give the space back afterwards).
            try db.execute(sql: "PRAGMA wal_autocheckpoint = 100")
            try db.execute(sql: "PRAGMA journal_size_limit = 1048576")
        }
        do {
            pool = try DatabasePool(path: path, configuration: configuration)
            try Self.migrator.migrate(pool)
        } catch {
            throw StorageError(.index, "cannot open the recording index \(path) (\(error)): move the file aside and run `xt recorder --reindex` to rebuild it from the segment files")
        }
    }

    static var migrator: DatabaseMigrator {
        var migrator = DatabaseMigrator()
        migrator.registerMigration("v1 recordings") { db in
            try db.create(table: "camera") { table in
                table.primaryKey("name", .text)
                table.column("firstSeen", .integer).notNull()
                table.column("lastSeen", .integer).notNull()
                table.column("video", .text)
                table.column("audio", .text)
            }
            try db.create(table: "stream") { table in
                table.primaryKey("stream", .integer)
                table.column("camera", .text).notNull().indexed()
                table.column("kind", .text).notNull()
                table.column("header", .blob).notNull()
                table.column("received", .text).notNull()
            }
            try db.create(table: "segment") { table in
                table.primaryKey("path", .text)
                table.column("camera", .text).notNull()
                table.column("start", .integer).notNull()
                table.column("end", .integer).notNull()
                table.column("bytes", .integer).notNull()
                table.column("videoFrames", .integer).notNull()
                table.column("audioFrames", .integer).notNull()
                table.column("isOpen", .boolean).notNull()
            }
            try db.create(index: "segment_by_time", on: "segment", columns: ["camera", "start"])
            try db.create(index: "segment_by_age", on: "segment", columns: ["start"])
            try db.create(table: "gap") { table in
                table.column("camera", .text).notNull()
                table.column("start", .integer).notNull()
                table.column("end", .integer).notNull()
                table.primaryKey(["camera", "start"])
            }
            try db.create(table: "fileMove") { table in
                table.primaryKey("target", .text)
                table.column("source", .text).notNull()
            }
        }
        migrator.registerMigration("v2 events") { db in
            try db.create(table: "event") { table in
                table.autoIncrementedPrimaryKey("id")
                table.column("camera", .text).notNull()
                table.column("zone", .text).notNull()
                table.column("start", .integer).notNull()
                table.column("end", .integer)
                table.column("clipStart", .integer).notNull()
                table.column("clipEnd", .integer)
                table.column("peakTime", .integer).notNull()
                table.column("peakScore", .double).notNull()
                table.column("snapshot", .text)
            }
            try db.create(index: "event_by_time", on: "event", columns: ["camera", "start"])
        }
        migrator.registerMigration("v3 alarms") { db in
            try db.create(table: "subscription") { table in
                table.primaryKey("node", .text)
                table.column("cameras", .text).notNull()
                table.column("zones", .text).notNull()
            }
            try db.create(table: "alarm") { table in
                table.autoIncrementedPrimaryKey("id")
                table.column("event", .integer).notNull()
                table.column("body", .blob).notNull()
            }
            try db.create(table: "delivery") { table in
                table.column("alarm", .integer).notNull()
                table.column("target", .text).notNull()
                table.column("delivered", .integer)
                table.column("attempts", .integer).notNull().defaults(to: 0)
                table.column("nextAttempt", .integer).notNull().defaults(to: 0)
                table.primaryKey(["alarm", "target"])
            }
            try db.create(index: "delivery_pending", on: "delivery", columns: ["target", "delivered", "alarm"])
        }
        migrator.registerMigration("v4 nodes") { db in
            try db.create(table: "node") { table in
                table.primaryKey("name", .text)
                table.column("id", .text).notNull()
                table.column("key", .text).notNull()
                table.column("firstSeen", .integer).notNull()
                table.column("lastSeen", .integer).notNull()
                table.column("channels", .text).notNull()
                table.column("rttMilliseconds", .double).notNull()
                table.column("lossPercent", .double).notNull()
                table.column("retransmittedBytes", .integer).notNull()
            }
        }
        return migrator
    }

    private func write<T: Sendable>(_ what: String, _ body: @Sendable @escaping (Database) throws -> T) async throws(StorageError) -> T {
        do { return try await pool.write(body) } catch { throw .index(what, error) }
    }

    private func read<T: Sendable>(_ what: String, _ body: @Sendable @escaping (Database) throws -> T) async throws(StorageError) -> T {
        do { return try await pool.read(body) } catch { throw .index(what, error) }
    }

    // MARK: cameras and streams

    public func saveCamera(_ camera: CameraRecord) async throws(StorageError) {
        try await write("saving camera \(camera.name)") { db in try Self.upsert(camera, db) }
    }

    private static func upsert(_ camera: CameraRecord, _ db: Database) throws {
            try db.execute(sql: """
                INSERT INTO camera (name, firstSeen, lastSeen, video, audio) VALUES (?, ?, ?, ?, ?)
                ON CONFLICT(name) DO UPDATE SET firstSeen = min(firstSeen, excluded.firstSeen),
                  lastSeen = max(lastSeen, excluded.lastSeen), video = coalesce(excluded.video, video),
                  audio = coalesce(excluded.audio, audio)
                """, arguments: [camera.name, camera.firstSeen, camera.lastSeen, camera.video, camera.audio])
    }

    public func cameras() async throws(StorageError) -> [CameraRecord] {
        try await read("listing cameras") { db in
            try Row.fetchAll(db, sql: "SELECT * FROM camera ORDER BY name").map {
                CameraRecord(name: $0["name"], firstSeen: $0["firstSeen"], lastSeen: $0["lastSeen"], video: $0["video"], audio: $0["audio"])
            }
        }
    }

    public func saveStreams(_ streams: [StreamRecord]) async throws(StorageError) {
        guard !streams.isEmpty else { return }
        try await write("saving streams") { db in
            for stream in streams { try Self.upsert(stream, db) }
        }
    }

    private static func upsert(_ stream: StreamRecord, _ db: Database) throws {
        try db.execute(sql: """
            INSERT INTO stream (stream, camera, kind, header, received) VALUES (?, ?, ?, ?, ?)
            ON CONFLICT(stream) DO UPDATE SET received = excluded.received
            """, arguments: [Int64(bitPattern: stream.stream), stream.camera, stream.kind, Data(stream.header), Self.encode(stream.received)])
    }

    public func streams() async throws(StorageError) -> [StreamRecord] {
        try await read("listing streams") { db in
            try Row.fetchAll(db, sql: "SELECT * FROM stream").map { row in
                let header: Data = row["header"]
                return StreamRecord(stream: UInt64(bitPattern: row["stream"]), camera: row["camera"], kind: row["kind"],
                                    header: [UInt8](header), received: Self.decode(row["received"]))
            }
        }
    }

    /// Ranges as text: "0-99,120-130".
    static func encode(_ ranges: [ClosedRange<UInt64>]) -> String {
        ranges.map { "\($0.lowerBound)-\($0.upperBound)" }.joined(separator: ",")
    }

    static func decode(_ text: String) -> [ClosedRange<UInt64>] {
        text.split(separator: ",").compactMap { part in
            let bounds = part.split(separator: "-").compactMap { UInt64($0) }
            return bounds.count == 2 && bounds[0] <= bounds[1] ? bounds[0]...bounds[1] : nil
        }
    }

    // MARK: segments

    private static func segment(_ row: Row) -> SegmentRecord {
        SegmentRecord(path: row["path"], camera: row["camera"], start: row["start"], end: row["end"], bytes: row["bytes"],
                      videoFrames: row["videoFrames"], audioFrames: row["audioFrames"], isOpen: row["isOpen"])
    }

    private static func insert(_ segment: SegmentRecord, _ db: Database) throws {
        try db.execute(sql: """
            INSERT INTO segment (path, camera, start, end, bytes, videoFrames, audioFrames, isOpen) VALUES (?, ?, ?, ?, ?, ?, ?, ?)
            ON CONFLICT(path) DO UPDATE SET start = excluded.start, end = excluded.end, bytes = excluded.bytes,
              videoFrames = excluded.videoFrames, audioFrames = excluded.audioFrames, isOpen = excluded.isOpen
            """, arguments: [segment.path, segment.camera, segment.start, segment.end, segment.bytes, segment.videoFrames,
                             segment.audioFrames, segment.isOpen])
    }

    /// Recomputes a camera's gaps between the segments around `start...end`.
    private static func refreshGaps(camera: String, around start: Int64, _ end: Int64, threshold: Int64, _ db: Database) throws {
        // The neighbours just outside the range bound the gaps that can have changed.
        let before = try Int64.fetchOne(db, sql: "SELECT max(start) FROM segment WHERE camera = ? AND start < ?", arguments: [camera, start])
        let after = try Int64.fetchOne(db, sql: "SELECT min(start) FROM segment WHERE camera = ? AND start > ?", arguments: [camera, end])
        let low = before ?? start, high = after ?? end
        let rows = try Row.fetchAll(db, sql: "SELECT start, end FROM segment WHERE camera = ? AND start BETWEEN ? AND ? ORDER BY start",
                                    arguments: [camera, low, high])
        try db.execute(sql: "DELETE FROM gap WHERE camera = ? AND \"end\" > ? AND start < ?", arguments: [camera, low, high])
        var reach: Int64?
        for row in rows {
            let segmentStart: Int64 = row["start"], segmentEnd: Int64 = row["end"]
            if let reach, segmentStart - reach > threshold {
                try db.execute(sql: "INSERT OR REPLACE INTO gap (camera, start, end) VALUES (?, ?, ?)", arguments: [camera, reach, segmentStart])
            }
            reach = max(reach ?? segmentEnd, segmentEnd)
        }
        // Nothing before the first segment is a gap (retention removed it, or it never was).
        if let first = try Int64.fetchOne(db, sql: "SELECT min(start) FROM segment WHERE camera = ?", arguments: [camera]) {
            try db.execute(sql: "DELETE FROM gap WHERE camera = ? AND start < ?", arguments: [camera, first])
        } else {
            try db.execute(sql: "DELETE FROM gap WHERE camera = ?", arguments: [camera])
        }
    }

    public func saveSegment(_ segment: SegmentRecord) async throws(StorageError) {
        let threshold = gapThreshold
        try await write("saving segment \(segment.path)") { db in try Self.save(segment, threshold: threshold, db) }
    }

    private static func save(_ segment: SegmentRecord, threshold: Int64, _ db: Database) throws {
        let previous = try Row.fetchOne(db, sql: "SELECT start, end FROM segment WHERE path = ?", arguments: [segment.path])
        try insert(segment, db)
        // An open segment that only grew changes no gap but the one after it, if any.
        if previous == nil || (previous!["start"] as Int64) != segment.start || !segment.isOpen {
            try refreshGaps(camera: segment.camera, around: segment.start, segment.end, threshold: threshold, db)
        }
    }

    public func save(cameras: [CameraRecord], segments: [SegmentRecord], streams: [StreamRecord]) async throws(StorageError) {
        guard !cameras.isEmpty || !segments.isEmpty || !streams.isEmpty else { return }
        let threshold = gapThreshold
        try await write("saving what reached the disk") { db in
            for camera in cameras { try Self.upsert(camera, db) }
            for segment in segments { try Self.save(segment, threshold: threshold, db) }
            for stream in streams { try Self.upsert(stream, db) }
        }
    }

    public func replaceSegments(_ old: [String], with new: [SegmentRecord], moves: [FileMove]) async throws(StorageError) {
        let threshold = gapThreshold
        try await write("replacing segments") { db in
            var touched: [String: (Int64, Int64)] = [:]
            for path in old {
                if let row = try Row.fetchOne(db, sql: "SELECT camera, start, end FROM segment WHERE path = ?", arguments: [path]) {
                    let camera: String = row["camera"]
                    let span = touched[camera] ?? (row["start"], row["end"])
                    touched[camera] = (min(span.0, row["start"]), max(span.1, row["end"]))
                }
                try db.execute(sql: "DELETE FROM segment WHERE path = ?", arguments: [path])
            }
            for segment in new {
                try Self.insert(segment, db)
                let span = touched[segment.camera] ?? (segment.start, segment.end)
                touched[segment.camera] = (min(span.0, segment.start), max(span.1, segment.end))
            }
            for move in moves {
                try db.execute(sql: "INSERT OR REPLACE INTO fileMove (target, source) VALUES (?, ?)", arguments: [move.to, move.from])
            }
            for (camera, span) in touched { try Self.refreshGaps(camera: camera, around: span.0, span.1, threshold: threshold, db) }
        }
    }

    public func deleteSegments(_ paths: [String]) async throws(StorageError) {
        guard !paths.isEmpty else { return }
        let threshold = gapThreshold
        try await write("deleting segments") { db in
            var touched: [String: (Int64, Int64)] = [:]
            for path in paths {
                guard let row = try Row.fetchOne(db, sql: "SELECT camera, start, end FROM segment WHERE path = ?", arguments: [path]) else { continue }
                let camera: String = row["camera"]
                let span = touched[camera] ?? (row["start"], row["end"])
                touched[camera] = (min(span.0, row["start"]), max(span.1, row["end"]))
                try db.execute(sql: "DELETE FROM segment WHERE path = ?", arguments: [path])
            }
            for (camera, span) in touched { try Self.refreshGaps(camera: camera, around: span.0, span.1, threshold: threshold, db) }
        }
    }

    public func segments(camera: String?, from: Int64?, to: Int64?) async throws(StorageError) -> [SegmentRecord] {
        try await read("listing segments") { db in
            // A segment overlaps [from, to] when it ends after `from` and starts before `to`.
            try Row.fetchAll(db, sql: """
                SELECT * FROM segment WHERE (?1 IS NULL OR camera = ?1) AND (?2 IS NULL OR "end" >= ?2) AND (?3 IS NULL OR start <= ?3)
                ORDER BY start, path
                """, arguments: [camera, from, to]).map(Self.segment)
        }
    }

    public func openSegments() async throws(StorageError) -> [SegmentRecord] {
        try await read("listing open segments") { db in
            try Row.fetchAll(db, sql: "SELECT * FROM segment WHERE isOpen ORDER BY start, path").map(Self.segment)
        }
    }

    public func oldestSegments(camera: String?, limit: Int) async throws(StorageError) -> [SegmentRecord] {
        try await read("listing the oldest segments") { db in
            try Row.fetchAll(db, sql: "SELECT * FROM segment WHERE (?1 IS NULL OR camera = ?1) AND NOT isOpen ORDER BY start LIMIT ?2",
                             arguments: [camera, limit]).map(Self.segment)
        }
    }

    public func storageUse() async throws(StorageError) -> [StorageUse] {
        try await read("summing disk use") { db in
            try Row.fetchAll(db, sql: "SELECT camera, count(*) AS segments, sum(bytes) AS bytes, min(start) AS oldest FROM segment GROUP BY camera ORDER BY camera")
                .map { StorageUse(camera: $0["camera"], segments: $0["segments"], bytes: $0["bytes"] ?? 0, oldest: $0["oldest"]) }
        }
    }

    public func gaps(camera: String, from: Int64?, to: Int64?) async throws(StorageError) -> [GapRecord] {
        try await read("listing gaps") { db in
            try Row.fetchAll(db, sql: """
                SELECT * FROM gap WHERE camera = ?1 AND (?2 IS NULL OR "end" >= ?2) AND (?3 IS NULL OR start <= ?3) ORDER BY start
                """, arguments: [camera, from, to]).map { GapRecord(camera: $0["camera"], start: $0["start"], end: $0["end"]) }
        }
    }

    public func pendingMoves() async throws(StorageError) -> [FileMove] {
        try await read("listing file moves") { db in
            try Row.fetchAll(db, sql: "SELECT * FROM fileMove").map { FileMove(from: $0["source"], to: $0["target"]) }
        }
    }

    public func completeMoves(_ moves: [FileMove]) async throws(StorageError) {
        guard !moves.isEmpty else { return }
        try await write("confirming file moves") { db in
            for move in moves { try db.execute(sql: "DELETE FROM fileMove WHERE target = ?", arguments: [move.to]) }
        }
    }

    // MARK: events

    private static func event(_ row: Row) -> EventRecord {
        EventRecord(id: row["id"], camera: row["camera"], zone: row["zone"], start: row["start"], end: row["end"], clipStart: row["clipStart"],
                    clipEnd: row["clipEnd"], peakTime: row["peakTime"], peakScore: row["peakScore"], snapshot: row["snapshot"])
    }

    public func saveEvent(_ event: EventRecord) async throws(StorageError) -> EventRecord {
        try await write("saving an event of \(event.camera)") { db in
            var saved = event
            if let id = event.id {
                try db.execute(sql: """
                    UPDATE event SET zone = ?, start = ?, "end" = ?, clipStart = ?, clipEnd = ?, peakTime = ?, peakScore = ?, snapshot = ?
                    WHERE id = ?
                    """, arguments: [event.zone, event.start, event.end, event.clipStart, event.clipEnd, event.peakTime, event.peakScore,
                                     event.snapshot, id])
            } else {
                try db.execute(sql: """
                    INSERT INTO event (camera, zone, start, "end", clipStart, clipEnd, peakTime, peakScore, snapshot)
                    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
                    """, arguments: [event.camera, event.zone, event.start, event.end, event.clipStart, event.clipEnd, event.peakTime,
                                     event.peakScore, event.snapshot])
                saved.id = db.lastInsertedRowID
            }
            return saved
        }
    }

    public func events(camera: String?, from: Int64?, to: Int64?) async throws(StorageError) -> [EventRecord] {
        try await read("listing events") { db in
            try Row.fetchAll(db, sql: """
                SELECT * FROM event WHERE (?1 IS NULL OR camera = ?1) AND (?2 IS NULL OR coalesce("end", start) >= ?2)
                  AND (?3 IS NULL OR start <= ?3) ORDER BY start, id
                """, arguments: [camera, from, to]).map(Self.event)
        }
    }

    public func event(id: Int64) async throws(StorageError) -> EventRecord? {
        try await read("reading an event") { db in
            try Row.fetchOne(db, sql: "SELECT * FROM event WHERE id = ?", arguments: [id]).map(Self.event)
        }
    }

    public func openEvents() async throws(StorageError) -> [EventRecord] {
        try await read("listing open events") { db in
            try Row.fetchAll(db, sql: "SELECT * FROM event WHERE \"end\" IS NULL ORDER BY start").map(Self.event)
        }
    }

    public func deleteEvents(endingBefore time: Int64, camera: String?) async throws(StorageError) -> [EventRecord] {
        try await write("deleting old events") { db in
            let old = try Row.fetchAll(db, sql: """
                SELECT * FROM event WHERE (?1 IS NULL OR camera = ?1) AND clipEnd IS NOT NULL AND clipEnd < ?2
                """, arguments: [camera, time]).map(Self.event)
            for event in old { try db.execute(sql: "DELETE FROM event WHERE id = ?", arguments: [event.id]) }
            return old
        }
    }

    // MARK: nodes

    public func saveNodes(_ nodes: [NodeRecord]) async throws(StorageError) {
        guard !nodes.isEmpty else { return }
        try await write("saving nodes") { db in
            for node in nodes {
                try db.execute(sql: """
                    INSERT INTO node (name, id, key, firstSeen, lastSeen, channels, rttMilliseconds, lossPercent, retransmittedBytes)
                    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
                    ON CONFLICT(name) DO UPDATE SET id = excluded.id, key = excluded.key, lastSeen = excluded.lastSeen,
                      channels = excluded.channels, rttMilliseconds = excluded.rttMilliseconds, lossPercent = excluded.lossPercent,
                      retransmittedBytes = excluded.retransmittedBytes
                    """, arguments: [node.name, node.id, node.key, node.firstSeen, node.lastSeen,
                                     node.channels.map(String.init).joined(separator: ","), node.rttMilliseconds, node.lossPercent,
                                     node.retransmittedBytes])
            }
        }
    }

    public func nodes() async throws(StorageError) -> [NodeRecord] {
        try await read("listing nodes") { db in
            try Row.fetchAll(db, sql: "SELECT * FROM node ORDER BY name").map { row in
                let channels: String = row["channels"]
                return NodeRecord(name: row["name"], id: row["id"], key: row["key"], firstSeen: row["firstSeen"], lastSeen: row["lastSeen"],
                                  channels: channels.split(separator: ",").compactMap { UInt16($0) }, rttMilliseconds: row["rttMilliseconds"],
                                  lossPercent: row["lossPercent"], retransmittedBytes: row["retransmittedBytes"])
            }
        }
    }

    // MARK: alarms

    private static let listSeparator = "\u{1F}"

    public func saveSubscription(_ subscription: AlarmSubscription) async throws(StorageError) {
        try await write("saving the alarm subscription of \(subscription.node)") { db in
            try db.execute(sql: "INSERT OR REPLACE INTO subscription (node, cameras, zones) VALUES (?, ?, ?)",
                           arguments: [subscription.node, subscription.cameras.joined(separator: Self.listSeparator),
                                       subscription.zones.joined(separator: Self.listSeparator)])
        }
    }

    public func removeSubscription(node: String) async throws(StorageError) {
        try await write("removing the alarm subscription of \(node)") { db in
            try db.execute(sql: "DELETE FROM subscription WHERE node = ?", arguments: [node])
            try db.execute(sql: "DELETE FROM delivery WHERE target = ? AND delivered IS NULL", arguments: ["node:\(node)"])
        }
    }

    public func subscriptions() async throws(StorageError) -> [AlarmSubscription] {
        try await read("listing alarm subscriptions") { db in
            try Row.fetchAll(db, sql: "SELECT * FROM subscription ORDER BY node").map { row in
                let split = { (text: String) in text.isEmpty ? [] : text.components(separatedBy: Self.listSeparator) }
                return AlarmSubscription(node: row["node"], cameras: split(row["cameras"]), zones: split(row["zones"]))
            }
        }
    }

    public func enqueue(_ alarm: Alarm, targets: [String]) async throws(StorageError) -> Alarm {
        try await write("queueing an alarm") { db in
            try db.execute(sql: "INSERT INTO alarm (event, body) VALUES (?, ?)", arguments: [alarm.event, Data()])
            var saved = alarm
            saved.id = db.lastInsertedRowID
            try db.execute(sql: "UPDATE alarm SET body = ? WHERE id = ?", arguments: [try JSONEncoder().encode(saved), saved.id])
            for target in targets {
                try db.execute(sql: "INSERT INTO delivery (alarm, target) VALUES (?, ?)", arguments: [saved.id, target])
            }
            return saved
        }
    }

    public func pendingDeliveries(target: String?, limit: Int) async throws(StorageError) -> [PendingDelivery] {
        try await read("listing pending alarms") { db in
            try Row.fetchAll(db, sql: """
                SELECT alarm.body, delivery.target, delivery.attempts, delivery.nextAttempt FROM delivery JOIN alarm ON alarm.id = delivery.alarm
                WHERE delivery.delivered IS NULL AND (?1 IS NULL OR delivery.target = ?1) ORDER BY delivery.alarm LIMIT ?2
                """, arguments: [target, limit]).map { row in
                let body: Data = row["body"]
                return PendingDelivery(alarm: try JSONDecoder().decode(Alarm.self, from: body), target: row["target"],
                                       attempts: row["attempts"], nextAttempt: row["nextAttempt"])
            }
        }
    }

    public func markDelivered(_ ids: [Int64], target: String) async throws(StorageError) -> Int {
        try await write("marking alarms delivered") { db in
            var count = 0
            let now = Int64(Date().timeIntervalSince1970 * 1e9)
            for id in ids {
                try db.execute(sql: "UPDATE delivery SET delivered = ? WHERE alarm = ? AND target = ? AND delivered IS NULL",
                               arguments: [now, id, target])
                count += db.changesCount
            }
            return count
        }
    }

    public func noteAttempt(_ id: Int64, target: String, next: Int64) async throws(StorageError) {
        try await write("noting an alarm delivery attempt") { db in
            try db.execute(sql: "UPDATE delivery SET attempts = attempts + 1, nextAttempt = ? WHERE alarm = ? AND target = ?",
                           arguments: [next, id, target])
        }
    }

    public func deliveryCounts() async throws(StorageError) -> (pending: Int, delivered: Int) {
        try await read("counting alarm deliveries") { db in
            let pending = try Int.fetchOne(db, sql: "SELECT count(*) FROM delivery WHERE delivered IS NULL") ?? 0
            let delivered = try Int.fetchOne(db, sql: "SELECT count(*) FROM delivery WHERE delivered IS NOT NULL") ?? 0
            return (pending, delivered)
        }
    }

    /// Writes a consistent copy of the whole index to `path` (SQLite's `VACUUM INTO`; writes
    /// wait meanwhile, well under a second for a year of one camera), replacing any file there:
    /// what a backup takes.
    /// - Throws: ``StorageError`` if the copy cannot be written.
    public func copy(to path: String) async throws(StorageError) {
        try? FileManager.default.removeItem(atPath: path)
        do {
            try await pool.writeWithoutTransaction { db in try db.execute(sql: "VACUUM INTO ?", arguments: [path]) }
        } catch {
            throw .index("copying the index to \(path)", error)
        }
    }

    public func clearRecordings() async throws(StorageError) {
        try await write("clearing the index") { db in
            for table in ["segment", "gap", "stream", "fileMove"] { try db.execute(sql: "DELETE FROM \(table)") }
        }
    }
}
