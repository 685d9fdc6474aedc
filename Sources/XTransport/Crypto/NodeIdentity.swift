// A node's identity: an X25519 key pair. Keys are stored as one line of base64 so they can
// be pasted into authorized-keys files and command lines.
public import Crypto
import Foundation

/// A node's public key: 32 bytes of X25519.
public struct PublicKey: Hashable, Sendable, CustomStringConvertible {
    /// The raw key.
    public let bytes: [UInt8]

    /// Creates a key from 32 raw bytes.
    /// - Throws: ``TransportError`` with code `invalidKey` if the length is wrong.
    public init(bytes: [UInt8]) throws(TransportError) {
        guard bytes.count == 32 else { throw .invalidKey("a public key is 32 bytes, got \(bytes.count)") }
        self.bytes = bytes
    }

    /// Parses a base64 key as printed by `xt keygen`.
    /// - Throws: ``TransportError`` with code `invalidKey` if it is not base64 of 32 bytes.
    public init(base64: String) throws(TransportError) {
        let trimmed = base64.trimmingCharacters(in: .whitespacesAndNewlines)
        guard let data = Data(base64Encoded: trimmed) else {
            throw .invalidKey("public key '\(trimmed.prefix(60))' is not base64: copy it from `xt keygen` output")
        }
        try self.init(bytes: [UInt8](data))
    }

    public var base64: String { Data(bytes).base64EncodedString() }
    public var description: String { base64 }

    var agreementKey: Curve25519.KeyAgreement.PublicKey {
        // 32 bytes always form a valid X25519 public key (low-order points are caught by the
        // all-zero shared-secret check in the handshake).
        try! Curve25519.KeyAgreement.PublicKey(rawRepresentation: bytes)
    }
}

/// A node's long-term X25519 key pair.
public struct NodeIdentity: Sendable {
    let privateKey: Curve25519.KeyAgreement.PrivateKey
    /// The public half, which peers put in their authorized keys.
    public let publicKey: PublicKey

    /// Generates a fresh identity.
    public init() {
        self.init(privateKey: Curve25519.KeyAgreement.PrivateKey())
    }

    init(privateKey: Curve25519.KeyAgreement.PrivateKey) {
        self.privateKey = privateKey
        self.publicKey = try! PublicKey(bytes: [UInt8](privateKey.publicKey.rawRepresentation))
    }

    /// Rebuilds an identity from its 32 private bytes.
    /// - Throws: ``TransportError`` with code `invalidKey` if the bytes are not a key.
    public init(privateBytes: [UInt8]) throws(TransportError) {
        guard privateBytes.count == 32 else { throw .invalidKey("a private key is 32 bytes, got \(privateBytes.count)") }
        do {
            self.init(privateKey: try Curve25519.KeyAgreement.PrivateKey(rawRepresentation: privateBytes))
        } catch {
            throw .invalidKey("private key rejected: \(error)")
        }
    }

    /// The private key as base64, the key file's content.
    public var privateBase64: String { privateKey.rawRepresentation.base64EncodedString() }

    /// Loads a key file written by `xt keygen` (one line of base64).
    /// - Throws: ``TransportError`` with code `invalidKey` saying how to fix the file.
    public static func load(path: String) throws(TransportError) -> NodeIdentity {
        let text: String
        do {
            text = try String(contentsOfFile: path, encoding: .utf8)
        } catch {
            throw .invalidKey("cannot read key file \(path): run `xt keygen --out \(path)` to create one")
        }
        let line = text.split(whereSeparator: \.isNewline).first.map(String.init) ?? ""
        guard let data = Data(base64Encoded: line.trimmingCharacters(in: .whitespaces)), data.count == 32 else {
            throw .invalidKey("key file \(path) is not base64 of 32 bytes: run `xt keygen --out \(path)` to make a new one")
        }
        return try NodeIdentity(privateBytes: [UInt8](data))
    }

    /// Writes the private key to `path` with mode 0600, and the public key to `path.pub`.
    /// - Throws: ``TransportError`` with code `io` if a file cannot be written.
    public func save(path: String) throws(TransportError) {
        let manager = FileManager.default
        let directory = (path as NSString).deletingLastPathComponent
        do {
            if !directory.isEmpty { try manager.createDirectory(atPath: directory, withIntermediateDirectories: true) }
            guard manager.createFile(atPath: path, contents: Data((privateBase64 + "\n").utf8), attributes: [.posixPermissions: 0o600]) else {
                throw TransportError(.io, "cannot write key file \(path): check the directory exists and is writable")
            }
            try Data((publicKey.base64 + "\n").utf8).write(to: URL(fileURLWithPath: path + ".pub"))
        } catch let error as TransportError {
            throw error
        } catch {
            throw TransportError(.io, "cannot write key file \(path): \(error.localizedDescription)")
        }
    }
}
