// Backup and restore over real xtransport sessions on loopback: three Pis' stores, copies 2.
// A tree round-trips byte for byte; again with one Pi gone; an incremental run reads only the
// changed file; a damaged copy is found and repaired from another; a key a Pi does not list is
// refused, and snapshots do not open with another owner's key.
import Foundation
import Testing
@testable import XTBackup
import XTransport
import XTransportNIO

/// Three `xt backup serve` stores in this process.
final class PiFleet: @unchecked Sendable {
    struct Pi {
        var name: String
        var identity: NodeIdentity
        var folder: String
        var store: ChunkStore
        var server: BackupServer
        var endpoint: TransportEndpoint
        var task: Task<Void, Never>
    }

    var pis: [Pi] = []
    let client = NodeIdentity()
    let work = temporaryFolder("fleet")

    init(count: Int, quota: UInt64 = 1 << 34) async throws {
        for index in 1...count { try await start("pi\(index)", quota: quota) }
    }

    func start(_ name: String, quota: UInt64 = 1 << 34, identity: NodeIdentity = NodeIdentity(), port: Int = 0) async throws {
        let folder = work + "/" + name
        let store = try ChunkStore(root: folder, quota: quota)
        let server = BackupServer(store: store)
        var keys = AuthorizedKeys()
        keys.insert(client.publicKey, name: "client")
        let endpoint = try await TransportEndpoint.bind(host: "127.0.0.1", port: port,
                                                        configuration: EndpointConfiguration(identity: identity, admission: .authorized(keys)))
        let task = Task { await server.serve(endpoint) }
        pis.append(Pi(name: name, identity: identity, folder: folder, store: store, server: server, endpoint: endpoint, task: task))
    }

    func stop(_ name: String) async {
        guard let index = pis.firstIndex(where: { $0.name == name }) else { return }
        let pi = pis.remove(at: index)
        await pi.endpoint.close()
        pi.task.cancel()
        await pi.server.shutdown()
    }

    var targets: [BackupTarget] { pis.map { BackupTarget(name: $0.name, key: $0.identity.publicKey, addresses: [$0.endpoint.localAddress]) } }

    func repository(key: RepositoryKey, identity: NodeIdentity? = nil, targets: [BackupTarget]? = nil) -> Repository {
        var settings = BondSettings()
        settings.connectionsPerLink = 3
        settings.handshakeTimeout = .seconds(1)
        return Repository(key: key, bond: Bond(identity: identity ?? client, targets: targets ?? self.targets, settings: settings))
    }

    func shutdown() async {
        for pi in pis { await stop(pi.name) }
        try? FileManager.default.removeItem(atPath: work)
    }
}

/// A tree of mixed files: nested folders, a large file, small ones, an empty one, a link.
func makeTree(at root: String, seed: UInt64) throws {
    let manager = FileManager.default
    try manager.createDirectory(atPath: root + "/photos/2026", withIntermediateDirectories: true)
    try manager.createDirectory(atPath: root + "/empty-folder", withIntermediateDirectories: true)
    try Data(randomBytes(3_000_000, seed: seed)).write(to: URL(fileURLWithPath: root + "/video.mp4"))
    for n in 0..<20 { try Data(randomBytes(Int(seed % 7 + 1) * 1000 + n * 997, seed: seed + UInt64(n))).write(to: URL(fileURLWithPath: root + "/photos/2026/img\(n).jpg")) }
    try Data().write(to: URL(fileURLWithPath: root + "/empty.txt"))
    try Data("hello\n".utf8).write(to: URL(fileURLWithPath: root + "/notes.txt"))
    chmod(root + "/notes.txt", 0o640)
    try manager.createSymbolicLink(atPath: root + "/latest", withDestinationPath: "photos/2026/img3.jpg")
}

/// Every path below `root` with its kind, mode, mtime (to the second for folders) and content.
func describeTree(_ root: String) throws -> [String: String] {
    var out: [String: String] = [:]
    let manager = FileManager.default
    for path in manager.enumerator(atPath: root)?.compactMap({ $0 as? String }) ?? [] {
        let full = root + "/" + path
        var info = stat()
        lstat(full, &info)
        let mode = info.st_mode & 0o7777
        if (info.st_mode & S_IFMT) == S_IFLNK {
            out[path] = "link " + ((try? manager.destinationOfSymbolicLink(atPath: full)) ?? "?")
        } else if (info.st_mode & S_IFMT) == S_IFDIR {
            out[path] = "dir \(String(mode, radix: 8)) \(info.st_mtim.tv_sec)"
        } else {
            let data = manager.contents(atPath: full) ?? Data()
            out[path] = "file \(String(mode, radix: 8)) \(info.st_mtim.tv_sec).\(info.st_mtim.tv_nsec) \(ChunkID(of: Array(data)).short) \(data.count)"
        }
    }
    return out
}

@Suite("Backup over loopback", .serialized)
struct BackupLoopbackTests {
    let chunker = FastCDC(minimumSize: 16 << 10, averageSize: 64 << 10, maximumSize: 256 << 10)!

    func backup(_ repository: Repository, paths: [String], copies: Int = 2, host: String = "test") async throws -> BackupSummary {
        var options = BackupOptions(paths: paths, copies: copies, host: host)
        options.chunker = chunker
        let summary = try await BackupRun(repository: repository, options: options).run()
        await repository.bond.stop()
        return summary
    }

    func restore(_ repository: Repository, _ snapshot: String, to folder: String) async throws -> RestoreProgress {
        let run = RestoreRun(repository: repository)
        _ = try await run.run(snapshot: snapshot, to: folder)
        await repository.bond.stop()
        return run.progress
    }

    @Test func backupRestoresByteForByteAndSurvivesALostPi() async throws {
        let fleet = try await PiFleet(count: 3)
        let key = RepositoryKey.generate()
        let source = fleet.work + "/source/data"
        try makeTree(at: source, seed: 11)
        let summary = try await backup(fleet.repository(key: key), paths: [source])
        #expect(summary.problems.isEmpty)
        #expect(summary.record.files == 23)
        #expect(summary.progress.bytesRead == summary.record.bytes)
        // Each data chunk on exactly 2 Pis, spread over all 3; the manifest on all.
        let counts = fleet.pis.map(\.store.figures.chunks)
        #expect(counts.allSatisfy { $0 > 10 }, "\(counts)")
        let restored = fleet.work + "/restored"
        let progress = try await restore(fleet.repository(key: key), String(summary.snapshot.hex.prefix(8)), to: restored)
        #expect(progress.badCopies == 0)
        #expect(try describeTree(restored + "/data") == describeTree(source))
        #expect(Set(progress.bytesByTarget.keys).count == 3)  // read from every Pi (bonded)

        // One Pi gone, its store deleted: everything is still there.
        let lost = fleet.pis[1]
        await fleet.stop(lost.name)
        try FileManager.default.removeItem(atPath: lost.folder)
        let again = fleet.work + "/restored-again"
        let targetsWithLost = fleet.targets + [BackupTarget(name: lost.name, key: lost.identity.publicKey, addresses: [lost.endpoint.localAddress])]
        _ = try await restore(fleet.repository(key: key, targets: targetsWithLost), "latest", to: again)
        #expect(try describeTree(again + "/data") == describeTree(source))

        // A backup with that Pi down places its share on the next in rank; copies 2 still hold.
        let second = try await backup(fleet.repository(key: key, targets: targetsWithLost), paths: [source])
        #expect(second.unavailable == [lost.name])
        let check = try await Maintenance(repository: fleet.repository(key: key)).check(readData: true)
        #expect(check.isHealthy)
        #expect(check.missing == 0, "\(check)")
        await fleet.shutdown()
    }

    @Test func anIncrementalRunReadsOnlyWhatChanged() async throws {
        let fleet = try await PiFleet(count: 3)
        let key = RepositoryKey.generate()
        let source = fleet.work + "/source/data"
        try makeTree(at: source, seed: 5)
        let first = try await backup(fleet.repository(key: key), paths: [source])
        // Change 1 small file and append to the large one.
        try Data(randomBytes(5000, seed: 99)).write(to: URL(fileURLWithPath: source + "/photos/2026/img7.jpg"))
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: source + "/video.mp4"))
        try handle.seekToEnd()
        try handle.write(contentsOf: Data(randomBytes(10_000, seed: 100)))
        try handle.close()
        let second = try await backup(fleet.repository(key: key), paths: [source])
        #expect(second.progress.bytesRead == 5000 + 3_010_000, "read \(second.progress.bytesRead)")
        // New: the changed photo, the video's last chunk or two, and the manifest.
        #expect(second.progress.bytesNew < 600_000, "new \(second.progress.bytesNew) of \(first.progress.bytesNew)")
        let third = try await backup(fleet.repository(key: key), paths: [source])
        #expect(third.progress.bytesRead == 0)
        let restored = fleet.work + "/restored"
        _ = try await restore(fleet.repository(key: key), second.snapshot.hex, to: restored)
        #expect(try describeTree(restored + "/data") == describeTree(source))
        await fleet.shutdown()
    }

    @Test func aDamagedCopyIsReadElsewhereAndRepaired() async throws {
        let fleet = try await PiFleet(count: 3)
        let key = RepositoryKey.generate()
        let source = fleet.work + "/source/data"
        try makeTree(at: source, seed: 3)
        let summary = try await backup(fleet.repository(key: key), paths: [source])
        // Damage the first-ranked copy of one of the video's chunks.
        let repository = fleet.repository(key: key)
        _ = try await repository.connect(needed: 3)
        let manifest = try await repository.manifest(of: try await repository.snapshot(named: "latest"))
        await repository.bond.stop()
        let victim = try #require(manifest.entries.first { $0.path == "data/video.mp4" }?.chunks[1].id)
        let holder = repository.placement.holders(victim, copies: 2)[0]
        let pi = try #require(fleet.pis.first { $0.name == holder })
        let owner = ChunkStore.ownerFolder(for: fleet.client.publicKey.bytes)
        let path = pi.store.chunkPath(owner, victim)
        var bytes = try Data(contentsOf: URL(fileURLWithPath: path))
        bytes[1000] ^= 0x40
        try bytes.write(to: URL(fileURLWithPath: path))

        // The restore reads that chunk from the other copy.
        let restored = fleet.work + "/restored"
        let progress = try await restore(fleet.repository(key: key), summary.snapshot.hex, to: restored)
        #expect(progress.badCopies == 1)
        #expect(try describeTree(restored + "/data") == describeTree(source))
        // A check finds it, sets it aside and puts a good copy back.
        let report = try await Maintenance(repository: fleet.repository(key: key)).check(readData: true)
        #expect(report.damaged == 1 && report.repaired == 1 && report.isHealthy, "\(report)")
        #expect(ChunkID(of: Array(try Data(contentsOf: URL(fileURLWithPath: path)))) == victim)
        let clean = try await Maintenance(repository: fleet.repository(key: key)).check(readData: true)
        #expect(clean.damaged == 0 && clean.missing == 0)
        await fleet.shutdown()
    }

    @Test func wrongKeysAreRefused() async throws {
        let fleet = try await PiFleet(count: 2)
        let key = RepositoryKey.generate()
        let source = fleet.work + "/source/data"
        try makeTree(at: source, seed: 8)
        _ = try await backup(fleet.repository(key: key), paths: [source], copies: 1)
        // A node key the Pis do not list: no session.
        let stranger = fleet.repository(key: key, identity: NodeIdentity())
        await #expect(throws: BackupError.self) { _ = try await stranger.connect(needed: 1, wait: .seconds(2)) }
        await stranger.bond.stop()
        // Another owner's backup key: the snapshots are there but do not open.
        let other = fleet.repository(key: RepositoryKey.generate())
        _ = try await other.connect(needed: 2)
        let (snapshots, unreadable) = try await other.snapshots()
        #expect(snapshots.isEmpty && unreadable == 1)
        await #expect(throws: BackupError.self) { _ = try await other.snapshot(named: "latest") }
        await other.bond.stop()
        await fleet.shutdown()
    }

    @Test func forgetAndPruneFreeTheSpace() async throws {
        let fleet = try await PiFleet(count: 2)
        let key = RepositoryKey.generate()
        let source = fleet.work + "/source/data"
        try makeTree(at: source, seed: 21)
        let first = try await backup(fleet.repository(key: key), paths: [source], copies: 2)
        try Data(randomBytes(2_000_000, seed: 77)).write(to: URL(fileURLWithPath: source + "/video.mp4"))
        let second = try await backup(fleet.repository(key: key), paths: [source], copies: 2)
        // Another folder's one snapshot: the policy counts each folder's snapshots on their own.
        let elsewhere = fleet.work + "/source/notes"
        try FileManager.default.createDirectory(atPath: elsewhere, withIntermediateDirectories: true)
        try Data("kept\n".utf8).write(to: URL(fileURLWithPath: elsewhere + "/a.txt"))
        let other = try await backup(fleet.repository(key: key), paths: [elsewhere], copies: 2)
        let used = fleet.pis.map(\.store.figures.usedBytes)
        let maintenance = Maintenance(repository: fleet.repository(key: key))
        let forgotten = try await maintenance.forget(ids: [], policy: RetentionPolicy(last: 1))
        #expect(forgotten.map(\.id) == [first.snapshot])
        #expect(try await maintenance.repository.snapshots().snapshots.contains { $0.id == other.snapshot }, "the other folder's snapshot is kept")
        let (chunks, bytes) = try await maintenance.prune(grace: 0)
        await maintenance.repository.bond.stop()
        #expect(chunks > 0 && bytes > 3_000_000)  // the old video, on both Pis
        for (pi, before) in zip(fleet.pis, used) { #expect(pi.store.figures.usedBytes < before - 1_400_000) }
        let restored = fleet.work + "/restored"
        _ = try await restore(fleet.repository(key: key), second.snapshot.hex, to: restored)
        #expect(try describeTree(restored + "/data") == describeTree(source))
        await fleet.shutdown()
    }
}
