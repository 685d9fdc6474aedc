// The recorder backs itself up (recorder.conf `backup.*`) to three Pis' chunk stores in this
// process, over real xtransport sessions on loopback: event clips (and their snapshots, and a
// copy of the index) reach the Pis and restore byte for byte, the rest of the recording does
// not; how far behind it is shows before a run and goes to zero after; new events are caught up;
// `all` takes every finished segment but not the one being written; with the Pis down a run
// fails and says why, and the next one after they are back catches up.
import Foundation
import Logging
import Testing
import XTBackup
@testable import XTRecorder
import XTransport
import XTransportNIO

/// `xt backup serve` stores in this process, admitting one client key.
final class Pis: @unchecked Sendable {
    let client = NodeIdentity()
    let folder: String
    private(set) var targets: [BackupTarget] = []
    private var running: [(endpoint: TransportEndpoint, server: BackupServer, task: Task<Void, Never>)] = []

    init(_ folder: String) { self.folder = folder }

    func start(count: Int) async throws {
        var keys = AuthorizedKeys()
        keys.insert(client.publicKey, name: "recorder")
        targets = []
        for n in 1...count {
            let identity = NodeIdentity()
            let server = BackupServer(store: try ChunkStore(root: "\(folder)/pi\(n)", quota: 1 << 32))
            let endpoint = try await TransportEndpoint.bind(host: "127.0.0.1", port: 0,
                                                            configuration: EndpointConfiguration(identity: identity, admission: .authorized(keys)))
            running.append((endpoint, server, Task { await server.serve(endpoint) }))
            targets.append(BackupTarget(name: "pi\(n)", key: identity.publicKey, addresses: [endpoint.localAddress]))
        }
    }

    func stop() async {
        for pi in running {
            await pi.endpoint.close()
            pi.task.cancel()
            await pi.server.shutdown()
        }
        running = []
    }

    func repository(_ key: RepositoryKey, targets: [BackupTarget]? = nil) -> Repository {
        var settings = BondSettings()
        settings.connectionsPerLink = 2
        settings.handshakeTimeout = .seconds(1)
        return Repository(key: key, bond: Bond(identity: client, targets: targets ?? self.targets, settings: settings))
    }
}

@Suite("Recorder backup") struct RecorderBackupTests {
    static let hourAgo = Int64(Date().timeIntervalSince1970 * 1e9) - 3_600_000_000_000

    /// A recording: porch 0–40 s in four segments and one still being written, yard 0–10 s; one
    /// motion event on the porch (clip 12–25 s: two segments) with its snapshot.
    static func recording(_ root: String) async throws -> SQLiteIndex {
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
        let index = try SQLiteIndex(path: "\(root)/index.sqlite")
        func segment(_ camera: String, _ start: Int, open: Bool = false) async throws {
            let path = "\(camera)/\(start).mp4"
            try FileManager.default.createDirectory(atPath: "\(root)/\(camera)", withIntermediateDirectories: true)
            var generator = SplitMix64(seed: UInt64(start) &+ UInt64(camera.count))
            let bytes = (0..<150_000).map { _ in UInt8(truncatingIfNeeded: generator.next()) }
            try Data(bytes).write(to: URL(fileURLWithPath: "\(root)/\(path)"))
            try await index.saveSegment(SegmentRecord(path: path, camera: camera, start: hourAgo + Int64(start) * 1_000_000_000,
                                                      end: hourAgo + Int64(start + 10) * 1_000_000_000, bytes: 150_000, videoFrames: 300,
                                                      audioFrames: 500, isOpen: open))
        }
        for start in [0, 10, 20, 30] { try await segment("porch", start) }
        try await segment("porch", 40, open: true)
        try await segment("yard", 0)
        try Data("jpeg".utf8).write(to: URL(fileURLWithPath: "\(root)/porch/event-1.jpg"))
        _ = try await index.saveEvent(EventRecord(camera: "porch", zone: "door", start: hourAgo + 14_000_000_000, end: hourAgo + 20_000_000_000,
                                                  clipStart: hourAgo + 12_000_000_000, clipEnd: hourAgo + 25_000_000_000,
                                                  peakTime: hourAgo + 15_000_000_000, peakScore: 0.5, snapshot: "porch/event-1.jpg"))
        return index
    }

    static func backup(_ what: RecorderBackupSettings.What, root: String, index: SQLiteIndex, pis: Pis, key: RepositoryKey) -> RecorderBackup {
        var settings = RecorderBackupSettings()
        settings.to = []
        settings.what = what
        settings.copies = 2
        return RecorderBackup(settings: settings, pis: pis.targets.map(\.name), root: root, index: index,
                              copyIndex: { try await index.copy(to: $0) }, host: "recorder-\(what)", logger: Logger(label: "test")) {
            pis.repository(key)
        }
    }

    static func restore(_ pis: Pis, _ key: RepositoryKey, to folder: String) async throws {
        _ = try await pis.repository(key).closing { try await RestoreRun(repository: $0).run(snapshot: "latest", to: folder) }
    }

    /// A work folder with the recording, `count` Pis running, and a new backup key.
    static func setUp(pis count: Int) async throws -> (work: String, root: String, index: SQLiteIndex, pis: Pis, key: RepositoryKey) {
        let work = Fixtures.temporaryDirectory("recorder-backup")
        let root = work + "/recordings"
        let index = try await recording(root)
        let pis = Pis(work + "/pis")
        try await pis.start(count: count)
        return (work, root, index, pis, RepositoryKey.generate())
    }

    @Test("Event clips, their snapshots and the index reach the Pis and restore byte for byte; the status shows what waits, then nothing")
    func eventClips() async throws {
        let (work, root, index, pis, key) = try await Self.setUp(pis: 3)
        defer { try? FileManager.default.removeItem(atPath: work) }
        let backup = Self.backup(.events, root: root, index: index, pis: pis, key: key)
        await backup.refresh()
        var status = await backup.currentStatus
        #expect(status.behindFiles == 3 && status.behindBytes == 300_000, "two clip segments and a snapshot wait: \(status)")
        #expect(status.behindSeconds > 3_500 && status.lastSuccess == nil)

        #expect(await backup.runOnce())
        status = await backup.currentStatus
        #expect(status.lastError == nil && status.lastSuccess != nil && status.lastFiles == 4, "\(status)")
        #expect(status.behindFiles == 0 && status.behindBytes == 0 && status.behindSeconds == 0)
        #expect(status.lastBytesSent >= 2 * 300_000, "each chunk on two Pis: \(status.lastBytesSent)")

        let restored = work + "/restored"
        try await Self.restore(pis, key, to: restored)
        for path in ["porch/10.mp4", "porch/20.mp4", "porch/event-1.jpg"] {
            #expect(FileManager.default.contents(atPath: "\(restored)/recordings/\(path)") == FileManager.default.contents(atPath: "\(root)/\(path)"), "\(path)")
        }
        for path in ["porch/0.mp4", "porch/30.mp4", "porch/40.mp4", "yard/0.mp4", "index.sqlite"] {
            #expect(!FileManager.default.fileExists(atPath: "\(restored)/recordings/\(path)"), "\(path) is not an event's")
        }
        let copy = try SQLiteIndex(path: "\(restored)/recorder-index/index.sqlite")
        let (events, segments) = (try await copy.events(camera: nil, from: nil, to: nil), try await copy.segments(camera: nil, from: nil, to: nil))
        #expect(events.count == 1 && segments.count == 6, "the index copy holds the event and every segment")

        // A new event on the porch (30–40 s): one segment waits, and the next run takes it.
        _ = try await index.saveEvent(EventRecord(camera: "porch", zone: "door", start: Self.hourAgo + 32_000_000_000, end: Self.hourAgo + 33_000_000_000,
                                                  clipStart: Self.hourAgo + 31_000_000_000, clipEnd: Self.hourAgo + 34_000_000_000,
                                                  peakTime: Self.hourAgo + 32_000_000_000, peakScore: 0.4))
        await backup.refresh()
        #expect(await backup.currentStatus.behindFiles == 1)
        #expect(await backup.runOnce())
        status = await backup.currentStatus
        #expect(status.behindFiles == 0 && status.lastFiles == 5)
        let (succeeded, failed) = (await backup.succeeded, await backup.failed)
        #expect(succeeded == 2 && failed == 0)
        await pis.stop()
    }

    @Test("`all` takes every finished segment, not the one being written; with the Pis down a run fails, says why, and the next catches up")
    func everythingAndAnOutage() async throws {
        let (work, root, index, pis, key) = try await Self.setUp(pis: 2)
        defer { try? FileManager.default.removeItem(atPath: work) }
        await pis.stop()
        let backup = Self.backup(.all, root: root, index: index, pis: pis, key: key)
        #expect(await backup.runOnce() == false)
        var status = await backup.currentStatus
        #expect(status.lastSuccess == nil && status.lastError != nil && status.behindFiles == 6, "\(status)")
        #expect(status.lastError?.contains("0 of 2 Pis answered") == true && status.lastError?.contains("pi1") == true,
                "says which Pis and why: \(status.lastError ?? "")")
        #expect(await backup.failed == 1)

        try await pis.start(count: 2)
        let again = Self.backup(.all, root: root, index: index, pis: pis, key: key)
        #expect(await again.runOnce())
        status = await again.currentStatus
        #expect(status.lastFiles == 7 && status.behindFiles == 0, "five finished segments, the snapshot and the index: \(status)")
        let restored = work + "/restored"
        try await Self.restore(pis, key, to: restored)
        #expect(!FileManager.default.fileExists(atPath: "\(restored)/recordings/porch/40.mp4"), "the segment being written waits for the next run")
        #expect(FileManager.default.contents(atPath: "\(restored)/recordings/yard/0.mp4") == FileManager.default.contents(atPath: "\(root)/yard/0.mp4"))
        await pis.stop()
    }
}
