// The owner's key: every chunk, manifest and snapshot record is sealed with it before it leaves
// the machine, so a Pi at a friend's house stores ciphertext it cannot read, and still checks
// each chunk's name (the SHA-256 of the sealed bytes) without the key.
import Crypto
internal import CXTAEAD
import Foundation

/// A chunk's name: the SHA-256 of its sealed bytes (32 bytes).
public struct ChunkID: Hashable, Sendable, Comparable, CustomStringConvertible {
    public let bytes: [UInt8]

    /// - Returns: nil unless `bytes` is 32 bytes long.
    public init?(bytes: some Collection<UInt8>) {
        guard bytes.count == 32 else { return nil }
        self.bytes = Array(bytes)
    }

    /// The name of `sealed` bytes.
    public init(of sealed: [UInt8]) { bytes = Array(SHA256.hash(data: sealed)) }

    /// - Returns: nil unless `hex` is 64 hexadecimal digits.
    public init?(hex: some StringProtocol) {
        guard hex.utf8.count == 64 else { return nil }
        var bytes: [UInt8] = []
        bytes.reserveCapacity(32)
        var high: UInt8?
        for c in hex.utf8 {
            let value: UInt8
            switch c {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): value = c - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): value = c - UInt8(ascii: "a") + 10
            case UInt8(ascii: "A")...UInt8(ascii: "F"): value = c - UInt8(ascii: "A") + 10
            default: return nil
            }
            if let h = high { bytes.append(h << 4 | value); high = nil } else { high = value }
        }
        self.bytes = bytes
    }

    /// 64 lowercase hexadecimal digits.
    public var hex: String {
        let digits = Array("0123456789abcdef".utf8)
        var out: [UInt8] = []
        out.reserveCapacity(64)
        for b in bytes { out.append(digits[Int(b >> 4)]); out.append(digits[Int(b & 15)]) }
        return String(decoding: out, as: UTF8.self)
    }

    /// The first 8 digits, as snapshots are shown.
    public var short: String { String(hex.prefix(8)) }
    public var description: String { hex }

    public static func < (lhs: ChunkID, rhs: ChunkID) -> Bool { lhs.bytes.lexicographicallyPrecedes(rhs.bytes) }
}

/// What a sealed object holds; bound into its seal, so one kind cannot be passed off as another.
public enum ObjectKind: UInt8, Sendable {
    /// Part of a file.
    case data = 1
    /// Part of a snapshot's manifest (the file list).
    case tree = 2
    /// A snapshot record.
    case snapshot = 3
}

/// Why a sealed object could not be opened.
public enum SealError: Error, Sendable, Equatable, CustomStringConvertible {
    /// Its bytes do not hash to its name: damaged in storage or on the way.
    case nameMismatch(ChunkID)
    /// It hashes right but does not open with this key: another owner's, or a different key file.
    case wrongKey(ChunkID)

    public var description: String {
        switch self {
        case .nameMismatch(let id): "chunk \(id.short) is damaged (its bytes do not hash to its name): run `xt backup check` to repair it from another copy"
        case .wrongKey(let id): "chunk \(id.short) does not open with this key: use the key file the backup was made with (--key)"
        }
    }
}

/// The owner's 256-bit key, and the deterministic seal built on it.
///
/// Sealing is deterministic (a synthetic nonce, as in SIV, RFC 5297): nonce = the first 12 bytes
/// of HMAC-SHA256(nonce key, kind ‖ plaintext); sealed = version ‖ nonce ‖ ChaCha20-Poly1305
/// (cipher key, nonce, plaintext, aad: version ‖ kind) ‖ tag. Equal plaintexts seal to equal
/// bytes, so the same chunk gets the same name on every run and is sent once. Both keys come
/// from the one file by HKDF-SHA256. ChaCha20-Poly1305 because a Raspberry Pi 4 has no AES
/// instructions.
public struct RepositoryKey: Sendable {
    static let version: UInt8 = 1
    /// Bytes a seal adds: version, nonce and tag.
    public static let overhead = 1 + 12 + 16
    private let cipher: ChunkCipher
    private let nonceKey: SymmetricKey
    /// A short public tag of the key (SHA-256 of its derived id key), shown by `xt backup key`.
    public let fingerprint: String

    /// - Parameter bytes: 32 secret bytes.
    /// - Returns: nil unless there are 32 bytes.
    public init?(bytes: [UInt8]) {
        guard bytes.count == 32 else { return nil }
        let master = SymmetricKey(data: bytes)
        let cipherKey = HKDF<SHA256>.deriveKey(inputKeyMaterial: master, info: Array("xt backup cipher".utf8), outputByteCount: 32)
        guard let cipher = ChunkCipher(key: cipherKey.withUnsafeBytes { Array($0) }) else { return nil }
        self.cipher = cipher
        nonceKey = HKDF<SHA256>.deriveKey(inputKeyMaterial: master, info: Array("xt backup nonce".utf8), outputByteCount: 32)
        let id = HKDF<SHA256>.deriveKey(inputKeyMaterial: master, info: Array("xt backup fingerprint".utf8), outputByteCount: 32)
        fingerprint = String(ChunkID(of: id.withUnsafeBytes { Array($0) }).hex.prefix(16))
    }

    /// A new random key (the system's generator).
    public static func generate() -> RepositoryKey {
        RepositoryKey(bytes: SymmetricKey(size: .bits256).withUnsafeBytes { Array($0) })!
    }

    /// Seals `plaintext` as an object of `kind`.
    /// - Returns: the sealed bytes (plaintext + ``overhead``) and their name.
    public func seal(_ plaintext: [UInt8], kind: ObjectKind) -> (id: ChunkID, sealed: [UInt8]) {
        var mac = HMAC<SHA256>(key: nonceKey)
        mac.update(data: [kind.rawValue])
        mac.update(data: plaintext)
        let nonce = Array(mac.finalize().prefix(12))
        // One buffer, written once: version, nonce, the plaintext sealed in place, the tag.
        // (swift-crypto's seal copied the text out, into its box, and into this: three passes
        // of every chunk, and fresh pages each time.)
        let sealed = [UInt8](unsafeUninitializedCapacity: plaintext.count + Self.overhead) { buffer, count in
            buffer[0] = Self.version
            for i in 0..<12 { buffer[1 + i] = nonce[i] }
            plaintext.withUnsafeBufferPointer { text in
                if let base = text.baseAddress { (buffer.baseAddress! + 13).update(from: base, count: text.count) }
            }
            cipher.seal(nonce: nonce, text: buffer.baseAddress! + 13, length: plaintext.count, ad: [Self.version, kind.rawValue])
            count = plaintext.count + Self.overhead
        }
        return (ChunkID(of: sealed), sealed)
    }

    /// Checks `sealed` against its name and opens it.
    /// - Throws: ``SealError/nameMismatch(_:)`` if the bytes are damaged, ``SealError/wrongKey(_:)``
    ///   if they do not open with this key as `kind`.
    public func open(_ sealed: [UInt8], id: ChunkID, kind: ObjectKind) throws(SealError) -> [UInt8] {
        guard ChunkID(of: sealed) == id else { throw .nameMismatch(id) }
        guard sealed.count >= Self.overhead, sealed[0] == Self.version,
              let plaintext = cipher.open(nonce: Array(sealed[1..<13]), sealed: sealed, from: 13, ad: [Self.version, kind.rawValue]) else {
            throw .wrongKey(id)
        }
        return plaintext
    }
}

/// Reading and writing the key file: one line of base64 (44 characters), mode 0600.
public enum RepositoryKeyFile {
    /// - Throws: ``BackupError`` if the file is missing, unreadable or not a key.
    public static func load(_ path: String) throws(BackupError) -> RepositoryKey {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw .badInput("cannot read the backup key \(path): create one with `xt backup init --key \(path)`, or give the one the backup was made with (--key)")
        }
        let text = String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        guard let bytes = Data(base64Encoded: text), let key = RepositoryKey(bytes: Array(bytes)) else {
            throw .badInput("\(path) is not a backup key (one line of base64, 32 bytes): give the key file `xt backup init` wrote")
        }
        return key
    }

    /// Writes a new key to `path` (refusing to overwrite one).
    /// - Throws: ``BackupError`` if the file exists or cannot be written.
    public static func create(_ path: String) throws(BackupError) -> RepositoryKey {
        guard !FileManager.default.fileExists(atPath: path) else {
            throw .badInput("\(path) already exists: a backup key is never overwritten (its backups could not be read again); give another path")
        }
        let bytes = SymmetricKey(size: .bits256).withUnsafeBytes { Array($0) }
        let text = Data(bytes).base64EncodedString() + "\n"
        let directory = (path as NSString).deletingLastPathComponent
        if !directory.isEmpty { try? FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true) }
        guard FileManager.default.createFile(atPath: path, contents: Data(text.utf8), attributes: [.posixPermissions: 0o600]) else {
            throw .badInput("cannot write \(path): check the directory exists and is writable")
        }
        return RepositoryKey(bytes: bytes)!
    }
}

/// ChaCha20-Poly1305 with one key schedule, sealing in place and opening into one new buffer,
/// through BoringSSL's AEAD as the transport's packets use it (`CXTAEAD`). Owns the C context.
final class ChunkCipher: @unchecked Sendable {
    // Immutable after creation; BoringSSL's seal and open take it const, from any thread.
    private let context: OpaquePointer

    /// nil if the key is not 32 bytes or BoringSSL is out of memory.
    init?(key: [UInt8]) {
        guard key.count == 32, let context = key.withUnsafeBufferPointer({ xt_aead_new(Int32(XT_AEAD_CHACHA20_POLY1305), $0.baseAddress) }) else {
            return nil
        }
        self.context = context
    }

    deinit { xt_aead_free(context) }

    /// Encrypts `length` bytes at `text` in place and writes the 16-byte tag right after them.
    func seal(nonce: [UInt8], text: UnsafeMutablePointer<UInt8>, length: Int, ad: [UInt8]) {
        let sealed = nonce.withUnsafeBufferPointer { n in ad.withUnsafeBufferPointer { a in xt_aead_seal(context, n.baseAddress, text, length, a.baseAddress, a.count) } }
        precondition(sealed == 1, "ChaCha20-Poly1305 refused a 12-byte nonce and a 32-byte key")
    }

    /// Opens `sealed[from...]` (ciphertext, then the tag); nil if it is not authentic.
    func open(nonce: [UInt8], sealed: [UInt8], from start: Int, ad: [UInt8]) -> [UInt8]? {
        let length = sealed.count - start - 16
        guard length >= 0 else { return nil }
        var authentic = false
        let plaintext = [UInt8](unsafeUninitializedCapacity: max(length, 1)) { out, count in
            authentic = sealed.withUnsafeBufferPointer { s in nonce.withUnsafeBufferPointer { n in ad.withUnsafeBufferPointer { a in
                xt_aead_open(context, n.baseAddress, s.baseAddress! + start, length + 16, a.baseAddress, a.count, out.baseAddress) == 1
            } } }
            count = authentic ? length : 0
        }
        return authentic ? plaintext : nil
    }
}
