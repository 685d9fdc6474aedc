// Content-defined chunking and sealing: any input round-trips byte for byte, cuts depend on
// content (an insertion moves only nearby cuts), and sealed chunks are named, deterministic and
// refused when damaged or opened with another key.
import Crypto
import Foundation
import PropertyBased
import Testing
@testable import XTBackup
import XTransport

/// Deterministic pseudo-random bytes.
func randomBytes(_ count: Int, seed: UInt64) -> [UInt8] {
    var generator = SplitMix64(seed: seed)
    var out = [UInt8]()
    out.reserveCapacity(count + 8)
    while out.count < count {
        let value = generator.next()
        for shift in stride(from: 0, to: 64, by: 8) { out.append(UInt8(truncatingIfNeeded: value >> UInt64(shift))) }
    }
    return Array(out.prefix(count))
}

@Suite struct ChunkingTests {
    /// Small sizes, so a few hundred KiB make many chunks.
    let small = FastCDC(minimumSize: 1024, averageSize: 4096, maximumSize: 16_384)!

    @Test func chunkingRoundTripsAnyInput() async {
        await propertyCheck(count: 200, input: Gen.uint64(in: 0...UInt64.max), Gen.int(in: 0...200_000)) { seed, size in
            let data = randomBytes(size, seed: seed)
            let lengths = small.lengths(of: data)
            #expect(lengths.reduce(0, +) == data.count)
            #expect(lengths.dropLast().allSatisfy { $0 >= small.minimumSize && $0 <= small.maximumSize })
            #expect(lengths.allSatisfy { $0 > 0 && $0 <= small.maximumSize })
            // The streaming reader cuts the same way, in any read size.
            var offset = 0
            var reader = ChunkReader(chunker: small) { count in
                let piece = Array(data[offset..<min(data.count, offset + min(count, 7000))])
                offset += piece.count
                return piece
            }
            var joined: [UInt8] = []
            var streamed: [Int] = []
            while let chunk = try! reader.next() {
                streamed.append(chunk.count)
                joined += chunk
            }
            #expect(joined == data)
            #expect(streamed == lengths)
        }
    }

    @Test func sizesClusterRoundTheAverage() {
        let data = randomBytes(16 << 20, seed: 42)
        let lengths = FastCDC.standard.lengths(of: data)
        let mean = Double(data.count) / Double(lengths.count)
        // Normalized chunking: min 256 KiB, average 1 MiB, max 4 MiB; the mean lands near 1 MiB.
        #expect(mean > 0.75 * 1_048_576 && mean < 1.5 * 1_048_576, "mean chunk \(mean)")
        #expect(lengths.dropLast().allSatisfy { $0 >= 256 << 10 && $0 <= 4 << 20 })
    }

    @Test func anInsertionMovesOnlyNearbyCuts() {
        let data = randomBytes(400_000, seed: 7)
        var edited = data
        edited.insert(contentsOf: [1, 2, 3, 4, 5], at: 200_000)
        func chunks(_ bytes: [UInt8]) -> Set<[UInt8]> {
            var offset = 0
            var out: Set<[UInt8]> = []
            for length in small.lengths(of: bytes) {
                out.insert(Array(bytes[offset..<(offset + length)]))
                offset += length
            }
            return out
        }
        let before = chunks(data)
        let after = chunks(edited)
        // All but one or two chunks round the edit are the same chunks.
        #expect(before.subtracting(after).count <= 2, "changed \(before.subtracting(after).count) of \(before.count)")
    }

    @Test func sealingIsDeterministicNamedAndChecked() throws {
        let key = RepositoryKey(bytes: randomBytes(32, seed: 1))!
        let other = RepositoryKey(bytes: randomBytes(32, seed: 2))!
        let plain = randomBytes(10_000, seed: 3)
        let (id, sealed) = key.seal(plain, kind: .data)
        #expect(key.seal(plain, kind: .data).id == id)
        #expect(key.seal(plain, kind: .tree).id != id)
        #expect(other.seal(plain, kind: .data).id != id)
        #expect(ChunkID(of: sealed) == id)
        #expect(sealed.count == plain.count + RepositoryKey.overhead)
        // The plaintext does not appear in what the Pi stores.
        #expect(!sealed.windows(ofCount: 64).contains { $0.elementsEqual(plain.prefix(64)) })
        #expect(try key.open(sealed, id: id, kind: .data) == plain)
        var damaged = sealed
        damaged[500] ^= 1
        #expect(throws: SealError.nameMismatch(id)) { try key.open(damaged, id: id, kind: .data) }
        #expect(throws: SealError.wrongKey(id)) { try other.open(sealed, id: id, kind: .data) }
        #expect(throws: SealError.wrongKey(id)) { try key.open(sealed, id: id, kind: .tree) }
    }

    @Test("The seal is the documented one (RFC 8439 ChaCha20-Poly1305 under the HKDF cipher key, the HMAC nonce): swift-crypto opens it, and every earlier store's chunks keep their names")
    func theSealIsTheDocumentedOne() throws {
        let secret = randomBytes(32, seed: 9)
        let key = RepositoryKey(bytes: secret)!
        for size in [0, 1, 4096, 1 << 20] {
            let plain = randomBytes(size, seed: UInt64(size) + 3)
            let (_, sealed) = key.seal(plain, kind: .data)
            let master = SymmetricKey(data: secret)
            let cipherKey = HKDF<SHA256>.deriveKey(inputKeyMaterial: master, info: Array("xt backup cipher".utf8), outputByteCount: 32)
            let nonceKey = HKDF<SHA256>.deriveKey(inputKeyMaterial: master, info: Array("xt backup nonce".utf8), outputByteCount: 32)
            var mac = HMAC<SHA256>(key: nonceKey)
            mac.update(data: [ObjectKind.data.rawValue])
            mac.update(data: plain)
            let nonce = Array(mac.finalize().prefix(12))
            #expect(sealed[0] == 1 && Array(sealed[1..<13]) == nonce)
            let box = try ChaChaPoly.SealedBox(nonce: ChaChaPoly.Nonce(data: nonce), ciphertext: sealed[13..<(sealed.count - 16)], tag: sealed[(sealed.count - 16)...])
            #expect(Array(try ChaChaPoly.open(box, using: cipherKey, authenticating: [1, ObjectKind.data.rawValue])) == plain, "size \(size)")
        }
    }

    @Test("A manifest round-trips through its stored form; an earlier snapshot's JSON still reads; cut or garbled bytes are refused")
    func manifestsRoundTrip() throws {
        let id = ChunkID(bytes: randomBytes(32, seed: 4))!
        let manifest = Manifest(entries: [
            ManifestEntry(path: "data", kind: .directory, mode: 0o755, mtime: 1_800_000_000_000_000_000, size: 0, inode: 7),
            ManifestEntry(path: "data/ü ñ.mp4", kind: .file, mode: 0o640, mtime: -5, size: 3_000_000, inode: UInt64.max,
                          chunks: [ChunkRef(id: id, length: 1_000_000), ChunkRef(id: id, length: 2_000_000)]),
            ManifestEntry(path: "data/latest", kind: .symlink, mode: 0o777, mtime: 0, size: 0, inode: 9, target: "ü ñ.mp4"),
        ])
        let stored = manifest.encoded()
        #expect(try Manifest(stored: stored) == manifest)
        #expect(try Manifest(stored: Array(try JSONEncoder().encode(manifest))) == manifest, "JSON manifests of earlier snapshots")
        #expect(try Manifest(stored: Manifest(entries: []).encoded()).entries.isEmpty)
        for cut in [4, 5, stored.count / 2, stored.count - 1] {
            #expect(throws: BackupError.self) { _ = try Manifest(stored: Array(stored.prefix(cut))) }
        }
        #expect(throws: BackupError.self) { _ = try Manifest(stored: stored + [0]) }
        #expect(throws: BackupError.self) { _ = try Manifest(stored: Array(stored.prefix(4)) + [0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x7F]) }
        #expect(throws: BackupError.self) { _ = try Manifest(stored: randomBytes(1000, seed: 5)) }
    }

    @Test func theGearTableNeverChanges() {
        // Changing it would make every chunk of every backup new.
        #expect(FastCDC.gear.count == 256)
        #expect(FastCDC.gear[0] == 0x4162_38ec_cc14_23e2 && FastCDC.gear[1] == 0xaa1e_8878_0f82_23f5)
    }

    @Test func chunkIDsParseOnlyHex() {
        let id = ChunkID(of: [1, 2, 3])
        #expect(ChunkID(hex: id.hex) == id)
        #expect(ChunkID(hex: id.hex.uppercased()) == id)
        #expect(ChunkID(hex: String(id.hex.dropLast())) == nil)
        #expect(ChunkID(hex: String(id.hex.dropLast()) + "g") == nil)
        #expect(ChunkID(bytes: [1, 2]) == nil)
    }

    @Test func badChunkerSizesAreRefused() {
        #expect(FastCDC(minimumSize: 10, averageSize: 1000, maximumSize: 4000) == nil)  // not a power of two
        #expect(FastCDC(minimumSize: 5000, averageSize: 4096, maximumSize: 16_384) == nil)
        #expect(FastCDC(minimumSize: 0, averageSize: 4096, maximumSize: 16_384) == nil)
        #expect(FastCDC(minimumSize: 1024, averageSize: 4096, maximumSize: 2048) == nil)
    }
}

extension Array {
    func windows(ofCount count: Int) -> [ArraySlice<Element>] {
        guard self.count >= count else { return [] }
        return stride(from: 0, through: self.count - count, by: 1).map { self[$0..<($0 + count)] }
    }
}
