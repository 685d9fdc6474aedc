// A Pi's store: names checked on arrival, quota, damaged copies set aside, partial writes
// cleared at open; and every protocol message round-trips while garbage is refused.
import Foundation
import PropertyBased
import Testing
@testable import XTBackup
import XTransport

func temporaryFolder(_ name: String) -> String {
    let path = NSTemporaryDirectory() + "xtbackup-\(name)-\(UUID().uuidString.prefix(8))"
    try? FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    return path
}

@Suite struct ChunkStoreTests {
    @Test func storesChecksAndAccounts() throws {
        let root = temporaryFolder("store")
        defer { try? FileManager.default.removeItem(atPath: root) }
        let store = try ChunkStore(root: root, quota: 100_000)
        let owner = ChunkStore.ownerFolder(for: [UInt8](repeating: 7, count: 32))
        let bytes = randomBytes(30_000, seed: 1)
        let id = ChunkID(of: bytes)
        #expect(store.has([id], owner: owner) == [false])
        #expect(store.put(id, bytes, owner: owner) == .stored)
        #expect(store.put(id, bytes, owner: owner) == .present)
        #expect(store.has([id], owner: owner) == [true])
        #expect(store.get(id, owner: owner) == bytes)
        #expect(store.figures.usedBytes == 30_000 && store.figures.chunks == 1)
        // Another owner's folder is separate.
        #expect(store.has([id], owner: ChunkStore.ownerFolder(for: [UInt8](repeating: 8, count: 32))) == [false])
        // Damaged on the way: refused and counted.
        var damaged = bytes
        damaged[10] ^= 0xff
        #expect(store.put(id, damaged, owner: owner) == .mismatch)  // checked before anything else
        let other = randomBytes(30_000, seed: 2)
        #expect(store.put(ChunkID(of: other), damaged, owner: owner) == .mismatch)
        #expect(store.figures.mismatches == 2)
        #expect(store.get(id, owner: owner) == bytes)
        // Quota: 30 000 + 30 000 + 30 000 fit in 100 000; a fourth does not.
        #expect(store.put(ChunkID(of: other), other, owner: owner) == .stored)
        let third = randomBytes(30_000, seed: 3)
        #expect(store.put(ChunkID(of: third), third, owner: owner) == .stored)
        let fourth = randomBytes(30_000, seed: 4)
        #expect(store.put(ChunkID(of: fourth), fourth, owner: owner) == .quotaFull)
        #expect(store.figures.refusedForQuota == 1)
        // Reopened, it counts what is on disk and clears partial writes.
        FileManager.default.createFile(atPath: root + "/tmp/123-4", contents: Data([1, 2, 3]))
        let reopened = try ChunkStore(root: root, quota: 100_000)
        #expect(reopened.figures.usedBytes == 90_000 && reopened.figures.chunks == 3)
        #expect((try? FileManager.default.contentsOfDirectory(atPath: root + "/tmp"))?.isEmpty ?? false)
        // Deleting frees the space.
        #expect(reopened.delete([id], owner: owner).count == 1)
        #expect(reopened.figures.usedBytes == 60_000)
    }

    @Test func aDamagedCopyIsFoundAndSetAside() throws {
        let root = temporaryFolder("verify")
        defer { try? FileManager.default.removeItem(atPath: root) }
        let store = try ChunkStore(root: root, quota: 1 << 30)
        let owner = "0123456789abcdef"
        let chunks = (0..<5).map { randomBytes(5000, seed: UInt64($0)) }
        for bytes in chunks { #expect(store.put(ChunkID(of: bytes), bytes, owner: owner) == .stored) }
        let victim = ChunkID(of: chunks[2])
        let path = store.chunkPath(owner, victim)
        var data = try Data(contentsOf: URL(fileURLWithPath: path))
        data[100] ^= 1
        try data.write(to: URL(fileURLWithPath: path))
        // Sizes only: a flipped bit is not seen.
        #expect(store.verify(owner: owner, readAll: false).damaged.isEmpty)
        let result = store.verify(owner: owner, readAll: true)
        #expect(result.checked == 5 && result.bytesRead == 25_000)
        #expect(result.damaged == [victim])
        #expect(store.has([victim], owner: owner) == [false])
        #expect(FileManager.default.fileExists(atPath: "\(root)/\(owner)/damaged/\(victim.hex)"))
        #expect(store.figures.chunks == 4)
        // Sent again, it is stored again.
        #expect(store.put(victim, chunks[2], owner: owner) == .stored)
    }

    @Test func snapshotsAreStoredListedAndDeleted() throws {
        let root = temporaryFolder("snapshots")
        defer { try? FileManager.default.removeItem(atPath: root) }
        let store = try ChunkStore(root: root, quota: 1 << 30)
        let (id, result) = store.putSnapshot([1, 2, 3], owner: "aaaaaaaaaaaaaaaa")
        #expect(result == .stored)
        #expect(store.snapshots(owner: "aaaaaaaaaaaaaaaa").map(\.0) == [id])
        #expect(store.deleteSnapshot(id, owner: "aaaaaaaaaaaaaaaa"))
        #expect(store.snapshots(owner: "aaaaaaaaaaaaaaaa").isEmpty)
    }

    @Test func everyMessageRoundTrips() throws {
        let a = ChunkID(of: [1])
        let b = ChunkID(of: [2])
        let messages: [BackupMessage] = [
            .hello(version: 1), .welcome(request: 3, StoreFigures(usedBytes: 1, quotaBytes: 2, chunks: 3)), .figures(request: 9),
            .has(request: 1, [a, b]), .have(request: 1, [true, false, true, true, false, false, true, false, true]), .put(a, [1, 2, 3]),
            .putDone(a, .quotaFull), .get(b), .chunk(b, Array(repeating: 9, count: 100_000)), .notFound(a),
            .putSnapshot(request: 4, [5, 6]), .listSnapshots(request: 5), .snapshots(request: 5, [[1], [2, 3]], last: true),
            .deleteSnapshot(request: 6, a), .listChunks(request: 7, olderThan: 3600), .chunkList(request: 7, [a], last: false),
            .deleteChunks(request: 8, [a, b]), .done(request: 8, count: 2, bytes: 10), .verify(request: 9, readAll: true),
            .verified(request: 9, checked: 5, bytesRead: 100, damaged: [b]), .failure(request: 10, "the disk is full"),
        ]
        for message in messages { #expect(try BackupMessage(message.encoded) == message) }
    }

    @Test func garbageIsRefusedNeverTraps() async {
        await propertyCheck(count: 3000, input: Gen.uint8(in: 0...255).array(of: 0...80)) { bytes in
            _ = try? BackupMessage(bytes)
        }
        // Truncated and padded versions of real messages.
        let real = BackupMessage.has(request: 1, [ChunkID(of: [1]), ChunkID(of: [2])]).encoded
        for cut in 0..<real.count { #expect(throws: BackupError.self) { try BackupMessage(Array(real.prefix(cut))) } }
        #expect(throws: BackupError.self) { try BackupMessage(real + [0]) }
        // A count over the limit is refused before anything is allocated for it.
        var huge = ByteWriter()
        huge.writeUInt8(4)
        huge.writeUInt32(1)
        huge.writeVarInt(UInt64(BackupChannel.maximumIDs + 1))
        #expect(throws: BackupError.self) { try BackupMessage(huge.bytes) }
    }

    @Test func targetsFilesAreChecked() throws {
        let key = NodeIdentity().publicKey.base64
        let targets = try BackupTarget.parse("# Pis\npi1 \(key) 127.0.0.1:7400,127.0.0.2:7400\n\npi2 \(key) 127.0.0.1:7401 # garage\n", source: "t")
        #expect(targets.map(\.name) == ["pi1", "pi2"])
        #expect(targets[0].addresses.count == 2)
        for bad in ["pi1 \(key)", "pi 1 \(key) 1.2.3.4:5", "pi1 notakey 1.2.3.4:5", "pi1 \(key) 1.2.3.4", "pi/1 \(key) 1.2.3.4:5",
                    "pi1 \(key) 1.2.3.4:5\npi1 \(key) 1.2.3.4:6"] {
            #expect(throws: BackupError.self) { try BackupTarget.parse(bad, source: "t") }
        }
        #expect(throws: BackupError.self) { try LocalSource(parsing: "10.0.0") }
        #expect(throws: BackupError.self) { try LocalSource(parsing: "1.2.3.400") }
        #expect(try LocalSource(parsing: "eth1") == .interface("eth1"))
        #expect(try LocalSource(parsing: "10.1.0.1") == .address(0x0a01_0001))
    }
}
