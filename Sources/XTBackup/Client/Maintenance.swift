// `xt backup check`, `forget` and `prune`: keeping the copies whole, and the Pis from filling.
import Foundation

/// What `xt backup check` found and did.
public struct CheckReport: Sendable, Equatable, Codable {
    public var snapshots = 0
    /// Distinct chunks the snapshots use (data and manifests).
    public var chunksReferenced = 0
    /// Chunks each Pi holds and checked (re-hashed with `--read-data`).
    public var chunksCheckedOnPis = 0
    public var bytesReadOnPis: UInt64 = 0
    /// Copies a Pi found damaged (set aside) and copies missing where placement puts them.
    public var damaged = 0
    public var missing = 0
    /// Copies put back from a good copy elsewhere.
    public var repaired = 0
    /// Chunks with no good copy on any Pi that answered.
    public var unrecoverable: [String] = []
    /// With `--read-data`: chunks read back and opened with the key.
    public var chunksReadBack = 0
    /// Pis that did not answer (not checked).
    public var unreachable: [String] = []

    public var isHealthy: Bool { unrecoverable.isEmpty }
}

public struct Maintenance: Sendable {
    public let repository: Repository

    public init(repository: Repository) { self.repository = repository }

    /// Checks every snapshot's chunks on every Pi that answers, and repairs what it can.
    /// - Parameter readData: have each Pi re-hash every chunk it holds, and read each chunk back
    ///   here and open it with the key (else sizes and presence only).
    public func check(readData: Bool) async throws(BackupError) -> CheckReport {
        var report = CheckReport()
        let reached = try await repository.connect(needed: 1)
        report.unreachable = Set(repository.bond.targets.map(\.name)).subtracting(reached).sorted()
        let snapshots = try await repository.snapshots().snapshots
        report.snapshots = snapshots.count
        // Where each chunk belongs: data on its K holders among the Pis that answer (the next in
        // rank standing in for one that does not, as the backup placed it), manifests on all.
        var expected: [String: Set<ChunkID>] = [:]
        var referenced: Set<ChunkID> = []
        let unavailable = Set(report.unreachable)
        for snapshot in snapshots {
            for ref in snapshot.record.manifest {
                referenced.insert(ref.id)
                for target in reached { expected[target, default: []].insert(ref.id) }
            }
            let manifest = try await repository.manifest(of: snapshot)
            for entry in manifest.entries {
                for ref in entry.chunks {
                    referenced.insert(ref.id)
                    for target in repository.placement.holders(ref.id, copies: snapshot.record.copies, unavailable: unavailable) {
                        expected[target, default: []].insert(ref.id)
                    }
                }
            }
        }
        report.chunksReferenced = referenced.count
        let connections = repository.connectionPerTarget()
        // Each Pi checks its own copies; damaged ones are set aside and show up as missing below.
        for (target, connection) in connections.sorted(by: { $0.key < $1.key }) {
            do {
                let result = try await connection.verify(readAll: readData)
                report.chunksCheckedOnPis += Int(result.checked)
                report.bytesReadOnPis += result.bytesRead
                report.damaged += result.damaged.count
            } catch {
                report.unreachable.append(target)
            }
        }
        // Copies missing where they belong, put back from a good copy on another Pi.
        var missing: [(ChunkID, String)] = []
        for (target, ids) in expected.sorted(by: { $0.key < $1.key }) {
            guard let connection = connections[target] else { continue }
            let list = ids.sorted()
            let flags = (try? await connection.has(list)) ?? []
            for (id, present) in zip(list, flags) where !present { missing.append((id, target)) }
        }
        report.missing = missing.count
        var unrecoverable: Set<ChunkID> = []
        for (id, target) in missing {
            guard let connection = connections[target] else { continue }
            var repaired = false
            for source in repository.placement.ranking(id) where source != target {
                guard let from = connections[source], let sealed = try? await from.get(id), ChunkID(of: sealed) == id else { continue }
                if let result = try? await connection.put(id, sealed), result == .stored || result == .present {
                    repaired = true
                    break
                }
            }
            if repaired { report.repaired += 1 } else { unrecoverable.insert(id) }
        }
        if readData {
            let trees = Set(snapshots.flatMap { $0.record.manifest.map(\.id) })
            for id in referenced.sorted() where !unrecoverable.contains(id) {
                let isTree = trees.contains(id)
                do {
                    _ = try await repository.fetch(id, kind: isTree ? .tree : .data)
                    report.chunksReadBack += 1
                } catch {
                    unrecoverable.insert(id)
                }
            }
        }
        report.unrecoverable = unrecoverable.map(\.hex).sorted()
        return report
    }

    /// Forgets snapshots on every Pi that answers: those named, or those the policy does not keep
    /// (applied to each machine's snapshots of the same paths on their own, as restic does).
    /// - Returns: the snapshots forgotten.
    public func forget(ids: [String], policy: RetentionPolicy) async throws(BackupError) -> [Snapshot] {
        try policy.validate()
        _ = try await repository.connect(needed: 1)
        let snapshots = try await repository.snapshots().snapshots
        var chosen: [Snapshot] = []
        for name in ids {
            let matches = snapshots.filter { $0.id.hex.hasPrefix(name.lowercased()) }
            guard name.count >= 4, matches.count == 1 else {
                throw .missing(matches.isEmpty ? "no snapshot \(name): `xt backup list` shows them" : "\(name) matches \(matches.count) snapshots: give more of its id")
            }
            chosen.append(matches[0])
        }
        if !policy.isEmpty {
            // Per machine and paths backed up, as restic groups by default: the newest N of one
            // folder's snapshots, not of everything the key holds (a recorder's hourly runs would
            // otherwise push out every other backup).
            for group in Dictionary(grouping: snapshots, by: { SnapshotGroup(host: $0.record.host, paths: $0.record.paths) }).values {
                let (_, forget) = policy.apply(group.map { (id: $0.id, time: $0.record.time) })
                chosen += group.filter { forget.contains($0.id) && !chosen.contains($0) }
            }
        }
        let connections = repository.connectionPerTarget()
        for snapshot in chosen {
            for connection in connections.values { _ = try? await connection.deleteSnapshot(snapshot.id) }
        }
        return chosen
    }

    /// Deletes chunks no snapshot uses from every Pi that answers.
    /// - Parameter grace: chunks written or confirmed this recently are kept (a backup running
    ///   now may be about to name them), in seconds.
    /// - Returns: chunks and bytes deleted.
    /// - Throws: ``BackupError`` if a snapshot's manifest cannot be read (nothing is deleted then).
    public func prune(grace: UInt32 = 3600) async throws(BackupError) -> (chunks: UInt64, bytes: UInt64) {
        _ = try await repository.connect(needed: 1)
        let (snapshots, unreadable) = try await repository.snapshots()
        guard unreadable == 0 else {
            throw .badInput("\(unreadable) snapshot records do not open with this key: prune only with the key that wrote them all")
        }
        var referenced: Set<ChunkID> = []
        for snapshot in snapshots {
            referenced.formUnion(snapshot.record.manifest.map(\.id))
            for entry in try await repository.manifest(of: snapshot).entries { referenced.formUnion(entry.chunks.map(\.id)) }
        }
        var total: (chunks: UInt64, bytes: UInt64) = (0, 0)
        for connection in repository.connectionPerTarget().values {
            guard let held = try? await connection.chunkList(olderThan: grace) else { continue }
            let unused = held.filter { !referenced.contains($0) }
            guard !unused.isEmpty, let deleted = try? await connection.deleteChunks(unused) else { continue }
            total.chunks += deleted.count
            total.bytes += deleted.bytes
        }
        return total
    }
}

/// Snapshots of one machine's same paths: what a retention policy counts within.
private struct SnapshotGroup: Hashable {
    var host: String
    var paths: [String]
}
