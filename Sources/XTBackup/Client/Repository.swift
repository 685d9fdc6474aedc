// What a backup, restore, list or check share: the key, the bond to the Pis, where chunks go,
// and reading snapshots and manifests back from whichever Pi answers.
import Foundation
public import Logging
public import XTransport

/// A snapshot as listed: its record and its name (the SHA-256 of the sealed record).
public struct Snapshot: Sendable, Hashable {
    public var id: ChunkID
    public var record: SnapshotRecord
    /// The Pis that hold its record.
    public var holders: Set<String>
}

/// The owner's backups on a set of Pis.
public final class Repository: Sendable {
    public let key: RepositoryKey
    public let bond: Bond
    public let placement: Placement
    let logger: Logger

    public init(key: RepositoryKey, bond: Bond, logger: Logger = Logger(label: "xt.backup")) {
        self.key = key
        self.bond = bond
        placement = Placement(targets: bond.targets.map(\.name))
        self.logger = logger
    }

    /// Runs `body` (on the caller's actor), then closes every connection of the bond, however
    /// `body` ends.
    public func closing<T>(isolation: isolated (any Actor)? = #isolation, _ body: (Repository) async throws -> T) async throws -> T {
        do {
            let result = try await body(self)
            await bond.stop()
            return result
        } catch {
            await bond.stop()
            throw error
        }
    }

    /// One open connection to each reachable Pi (the first found).
    public func connectionPerTarget() -> [String: BackupConnection] {
        var out: [String: BackupConnection] = [:]
        for connection in bond.connections where out[connection.target] == nil { out[connection.target] = connection }
        return out
    }

    /// Starts the bond and waits for the Pis.
    /// - Parameter needed: how many Pis must answer.
    /// - Returns: the names of those that answered.
    /// - Throws: ``BackupError/unreachable(_:)`` naming those that did not and why, if fewer than `needed` answered.
    public func connect(needed: Int, wait: Duration = .seconds(5)) async throws(BackupError) -> Set<String> {
        bond.start()
        let missing = await bond.waitForTargets(timeout: wait)
        let reached = Set(bond.targets.map(\.name)).subtracting(missing)
        if reached.count < needed {
            let reasons = missing.sorted().map { "\($0): \(bond.failures[$0] ?? "no answer")" }.joined(separator: "; ")
            throw .unreachable("\(reached.count) of \(bond.targets.count) Pis answered and \(needed) are needed (\(reasons))")
        }
        if !missing.isEmpty {
            logger.warning("backup: \(missing.sorted().joined(separator: ", ")) did not answer; carrying on without")
        }
        return reached
    }

    /// Every snapshot on the reachable Pis, oldest first. Records that do not open with this
    /// key are skipped and counted.
    public func snapshots() async throws(BackupError) -> (snapshots: [Snapshot], unreadable: Int) {
        var found: [ChunkID: Snapshot] = [:]
        var unreadable: Set<ChunkID> = []
        for (target, connection) in connectionPerTarget() {
            let records: [[UInt8]]
            do { records = try await connection.snapshots() } catch { continue }
            for sealed in records {
                let id = ChunkID(of: sealed)
                if found[id] != nil { found[id]!.holders.insert(target); continue }
                guard let plaintext = try? key.open(sealed, id: id, kind: .snapshot),
                      let record = try? JSONDecoder().decode(SnapshotRecord.self, from: Data(plaintext)) else {
                    unreadable.insert(id)
                    continue
                }
                found[id] = Snapshot(id: id, record: record, holders: [target])
            }
        }
        return (found.values.sorted { ($0.record.time, $0.id) < ($1.record.time, $1.id) }, unreadable.count)
    }

    /// Finds a snapshot by (a prefix of) its id, or "latest".
    /// - Throws: ``BackupError/missing(_:)`` if none or several match.
    public func snapshot(named name: String) async throws(BackupError) -> Snapshot {
        let all = try await snapshots().snapshots
        if name == "latest", let last = all.last { return last }
        let matches = all.filter { $0.id.hex.hasPrefix(name.lowercased()) }
        guard matches.count == 1, name.count >= 4 || name == "latest" else {
            throw .missing(matches.isEmpty
                ? "no snapshot \(name) on the Pis that answered: `xt backup list` shows them"
                : "\(name) matches \(matches.count) snapshots: give more of its id")
        }
        return matches[0]
    }

    /// Reads a chunk from the first Pi that holds a good copy, in placement order.
    /// - Throws: ``BackupError/missing(_:)`` if no reachable Pi has an intact copy.
    public func fetch(_ id: ChunkID, kind: ObjectKind) async throws(BackupError) -> [UInt8] {
        let connections = connectionPerTarget()
        for target in placement.ranking(id) {
            guard let connection = connections[target], let sealed = try? await connection.get(id) else { continue }
            do {
                return try key.open(sealed, id: id, kind: kind)
            } catch {
                logger.warning("backup: \(target)'s copy of \(id.short): \(error)")
            }
        }
        throw .missing("chunk \(id.short) is on none of the Pis that answered: bring the others online, or restore another snapshot")
    }

    /// A snapshot's manifest, read back and checked.
    public func manifest(of snapshot: Snapshot) async throws(BackupError) -> Manifest {
        var bytes: [UInt8] = []
        for ref in snapshot.record.manifest { bytes += try await fetch(ref.id, kind: .tree) }
        guard let manifest = try? Manifest(stored: bytes) else {
            throw .badInput("snapshot \(snapshot.id.short)'s manifest does not parse: restore another snapshot")
        }
        try manifest.validate()
        return manifest
    }
}
