// Noise_IK_25519_ChaChaPoly_SHA256 (noiseprotocol.org, rev 34) on swift-crypto: the
// symmetric state, and the initiator and responder halves of the IK pattern.
//   <- s
//   ...
//   -> e, es, s, ss
//   <- e, ee, se
// Every Diffie-Hellman result is checked against all-zero (a low-order peer key), which
// swift-crypto itself does not do.
import Crypto
import Foundation

/// Why a handshake message was refused.
enum HandshakeFailure: Error, Equatable {
    case decryptFailed
    case lowOrderKey
    case malformed
}

/// Noise's SymmetricState: chaining key, handshake hash and the current cipher key.
struct NoiseSymmetricState {
    static let protocolName = Array("Noise_IK_25519_ChaChaPoly_SHA256".utf8)
    static let prologue = Array("xtransport/1".utf8)

    private(set) var chainingKey: [UInt8]
    private(set) var hash: [UInt8]
    private var key: SymmetricKey?
    private var nonce: UInt64 = 0

    init() {
        // The protocol name is exactly 32 bytes (HASHLEN), so it is used as-is.
        precondition(Self.protocolName.count == 32)
        hash = Self.protocolName
        chainingKey = hash
        mixHash(Self.prologue)
    }

    mutating func mixHash(_ data: [UInt8]) {
        var hasher = SHA256()
        hasher.update(data: hash)
        hasher.update(data: data)
        hash = Array(hasher.finalize())
    }

    mutating func mixKey(_ inputKeyMaterial: [UInt8]) {
        let (newChainingKey, temporaryKey) = Self.hkdf(chainingKey: chainingKey, input: inputKeyMaterial)
        chainingKey = newChainingKey
        key = SymmetricKey(data: temporaryKey)
        nonce = 0
    }

    mutating func encryptAndHash(_ plaintext: [UInt8]) -> [UInt8] {
        guard let key else {
            mixHash(plaintext)
            return plaintext
        }
        let box = try! ChaChaPoly.seal(plaintext, using: key, nonce: Self.nonce(nonce), authenticating: hash)
        nonce += 1
        let ciphertext = Array(box.ciphertext) + Array(box.tag)
        mixHash(ciphertext)
        return ciphertext
    }

    mutating func decryptAndHash(_ ciphertext: [UInt8]) throws(HandshakeFailure) -> [UInt8] {
        guard let key else {
            mixHash(ciphertext)
            return ciphertext
        }
        guard ciphertext.count >= 16 else { throw .malformed }
        let plaintext: [UInt8]
        do {
            let box = try ChaChaPoly.SealedBox(nonce: Self.nonce(nonce), ciphertext: ciphertext.dropLast(16), tag: ciphertext.suffix(16))
            plaintext = Array(try ChaChaPoly.open(box, using: key, authenticating: hash))
        } catch {
            throw .decryptFailed
        }
        nonce += 1
        mixHash(ciphertext)
        return plaintext
    }

    /// The two transport keys: initiator→responder, responder→initiator.
    func split() -> (initiatorToResponder: [UInt8], responderToInitiator: [UInt8]) {
        Self.hkdf(chainingKey: chainingKey, input: [])
    }

    /// Noise's HKDF with two outputs, on HMAC-SHA256.
    static func hkdf(chainingKey: [UInt8], input: [UInt8]) -> ([UInt8], [UInt8]) {
        let temporary = SymmetricKey(data: Array(HMAC<SHA256>.authenticationCode(for: input, using: SymmetricKey(data: chainingKey))))
        let first = Array(HMAC<SHA256>.authenticationCode(for: [0x01], using: temporary))
        let second = Array(HMAC<SHA256>.authenticationCode(for: first + [0x02], using: temporary))
        return (first, second)
    }

    /// Noise's ChaChaPoly nonce: 32 zero bits, then the counter little-endian.
    static func nonce(_ counter: UInt64) -> ChaChaPoly.Nonce {
        var bytes = [UInt8](repeating: 0, count: 12)
        for i in 0..<8 { bytes[4 + i] = UInt8(truncatingIfNeeded: counter >> (8 * UInt64(i))) }
        return try! ChaChaPoly.Nonce(data: bytes)
    }

    /// X25519 with the all-zero check.
    static func dh(_ privateKey: Curve25519.KeyAgreement.PrivateKey, _ publicKey: [UInt8]) throws(HandshakeFailure) -> [UInt8] {
        guard let peer = try? Curve25519.KeyAgreement.PublicKey(rawRepresentation: publicKey),
              let secret = try? privateKey.sharedSecretFromKeyAgreement(with: peer)
        else { throw .lowOrderKey }
        let bytes = secret.withUnsafeBytes { Array($0) }
        guard bytes.contains(where: { $0 != 0 }) else { throw .lowOrderKey }
        return bytes
    }
}

/// The initiator's side of Noise IK: it knows the responder's static key in advance.
struct NoiseInitiator {
    private var state = NoiseSymmetricState()
    private let localStatic: Curve25519.KeyAgreement.PrivateKey
    private let remoteStatic: [UInt8]
    private let ephemeral: Curve25519.KeyAgreement.PrivateKey

    init(localStatic: Curve25519.KeyAgreement.PrivateKey, remoteStatic: PublicKey,
         ephemeral: Curve25519.KeyAgreement.PrivateKey = .init()) {
        self.localStatic = localStatic
        self.remoteStatic = remoteStatic.bytes
        self.ephemeral = ephemeral
        state.mixHash(remoteStatic.bytes)
    }

    /// Message 1: returns (ephemeral public, encrypted static, encrypted payload).
    mutating func writeMessage1(payload: [UInt8]) throws(HandshakeFailure) -> (ephemeral: [UInt8], encryptedStatic: [UInt8], encryptedPayload: [UInt8]) {
        let ephemeralPublic = Array(ephemeral.publicKey.rawRepresentation)
        state.mixHash(ephemeralPublic)
        state.mixKey(try NoiseSymmetricState.dh(ephemeral, remoteStatic))
        let encryptedStatic = state.encryptAndHash(Array(localStatic.publicKey.rawRepresentation))
        state.mixKey(try NoiseSymmetricState.dh(localStatic, remoteStatic))
        let encryptedPayload = state.encryptAndHash(payload)
        return (ephemeralPublic, encryptedStatic, encryptedPayload)
    }

    /// Reads message 2; returns the responder's payload and the transport keys (send, receive).
    mutating func readMessage2(ephemeral responderEphemeral: [UInt8], encryptedPayload: [UInt8]) throws(HandshakeFailure) -> (payload: [UInt8], sendKey: [UInt8], receiveKey: [UInt8]) {
        state.mixHash(responderEphemeral)
        state.mixKey(try NoiseSymmetricState.dh(ephemeral, responderEphemeral))
        state.mixKey(try NoiseSymmetricState.dh(localStatic, responderEphemeral))
        let payload = try state.decryptAndHash(encryptedPayload)
        let keys = state.split()
        return (payload, keys.initiatorToResponder, keys.responderToInitiator)
    }
}

/// The responder's side of Noise IK.
struct NoiseResponder {
    private var state = NoiseSymmetricState()
    private let localStatic: Curve25519.KeyAgreement.PrivateKey
    private var initiatorEphemeral: [UInt8] = []
    /// The initiator's static key, known after message 1.
    private(set) var initiatorStatic: [UInt8] = []

    init(localStatic: Curve25519.KeyAgreement.PrivateKey) {
        self.localStatic = localStatic
        state.mixHash(Array(localStatic.publicKey.rawRepresentation))
    }

    /// Reads message 1; returns the initiator's payload. The caller checks the static key.
    mutating func readMessage1(ephemeral: [UInt8], encryptedStatic: [UInt8], encryptedPayload: [UInt8]) throws(HandshakeFailure) -> [UInt8] {
        initiatorEphemeral = ephemeral
        state.mixHash(ephemeral)
        state.mixKey(try NoiseSymmetricState.dh(localStatic, ephemeral))
        initiatorStatic = try state.decryptAndHash(encryptedStatic)
        guard initiatorStatic.count == 32 else { throw .malformed }
        state.mixKey(try NoiseSymmetricState.dh(localStatic, initiatorStatic))
        return try state.decryptAndHash(encryptedPayload)
    }

    /// Message 2: returns (ephemeral public, encrypted payload, send key, receive key).
    mutating func writeMessage2(payload: [UInt8], ephemeral: Curve25519.KeyAgreement.PrivateKey = .init()) throws(HandshakeFailure) -> (ephemeral: [UInt8], encryptedPayload: [UInt8], sendKey: [UInt8], receiveKey: [UInt8]) {
        let ephemeralPublic = Array(ephemeral.publicKey.rawRepresentation)
        state.mixHash(ephemeralPublic)
        state.mixKey(try NoiseSymmetricState.dh(ephemeral, initiatorEphemeral))
        state.mixKey(try NoiseSymmetricState.dh(ephemeral, initiatorStatic))
        let encryptedPayload = state.encryptAndHash(payload)
        let keys = state.split()
        return (ephemeralPublic, encryptedPayload, keys.responderToInitiator, keys.initiatorToResponder)
    }
}
