// Per-packet AEAD for an established session: ChaCha20-Poly1305 or AES-256-GCM (agreed in the
// handshake) keyed per direction, the packet number as nonce and the cleartext header as associated data. Keys rotate: each direction
// derives its next key from the current secret (HKDF-style HMAC) and flips the key-phase bit;
// the receiver follows the first packet that opens under the next key.
internal import CXTAEAD
import Crypto
import Foundation

/// The AEAD that seals a session's data packets, agreed in the handshake.
public enum PacketCipher: UInt8, Sendable, Hashable, CaseIterable, CustomStringConvertible {
    /// ChaCha20-Poly1305: fast everywhere in software (a Raspberry Pi 4 has no AES hardware).
    case chacha20Poly1305 = 1
    /// AES-256-GCM: two to three times faster than ChaCha20 where the CPU has AES hardware.
    case aes256GCM = 2

    public var description: String {
        switch self {
        case .chacha20Poly1305: "chacha20-poly1305"
        case .aes256GCM: "aes-256-gcm"
        }
    }

    /// Whether this machine runs AES-GCM in hardware.
    public static let hasAESHardware = xt_aead_has_aes_hardware() == 1

    /// This machine's preference: AES-256-GCM first when it has AES hardware.
    public static var preferred: [PacketCipher] {
        hasAESHardware ? [.aes256GCM, .chacha20Poly1305] : [.chacha20Poly1305, .aes256GCM]
    }

    /// The responder's choice from the initiator's offer (its preference order): AES-256-GCM
    /// only when both ends put it first, since a side without AES hardware pays dearly for
    /// it; otherwise ChaCha20-Poly1305. Nil if nothing offered is known.
    public static func choose(offered: [PacketCipher], local: [PacketCipher]) -> PacketCipher? {
        if offered.first == .aes256GCM, local.first == .aes256GCM { return .aes256GCM }
        if offered.contains(.chacha20Poly1305), local.contains(.chacha20Poly1305) { return .chacha20Poly1305 }
        return offered.first { local.contains($0) }
    }
}

/// One direction's key schedule, set up once per key (the C context is owned here and freed
/// with it). Seals in place; opens into a caller's buffer.
final class PacketKey {
    private let context: OpaquePointer

    init(cipher: PacketCipher, secret: [UInt8]) {
        precondition(secret.count == Int(XT_AEAD_KEY_BYTES), "packet keys are 32 bytes")
        guard let context = secret.withUnsafeBufferPointer({ xt_aead_new(Int32(cipher.rawValue), $0.baseAddress) }) else {
            fatalError("out of memory creating a packet key")
        }
        self.context = context
    }

    deinit { xt_aead_free(context) }

    /// The 12-byte nonce: 32 zero bits, then the packet number big-endian.
    @inline(__always)
    private static func withNonce<R>(_ packetNumber: UInt64, _ body: (UnsafePointer<UInt8>) -> R) -> R {
        var raw: (UInt32, UInt32, UInt32) = (0, UInt32(truncatingIfNeeded: packetNumber >> 32).bigEndian,
                                             UInt32(truncatingIfNeeded: packetNumber).bigEndian)
        return withUnsafeBytes(of: &raw) { body($0.baseAddress!.assumingMemoryBound(to: UInt8.self)) }
    }

    /// Encrypts `text` in place and writes the tag into the 16 bytes after it.
    func seal(_ text: UnsafeMutableRawPointer, length: Int, header: UnsafeRawBufferPointer, packetNumber: UInt64) {
        let sealed = Self.withNonce(packetNumber) { nonce in
            xt_aead_seal(context, nonce, text.assumingMemoryBound(to: UInt8.self), length,
                         header.baseAddress!.assumingMemoryBound(to: UInt8.self), header.count)
        }
        precondition(sealed == 1, "packet seal failed")
    }

    /// Authenticates `sealed` (ciphertext, tag) and writes the plaintext to `out`.
    func open(_ sealed: UnsafeRawBufferPointer, header: UnsafeRawBufferPointer, packetNumber: UInt64,
              into out: UnsafeMutableRawPointer) -> Bool {
        Self.withNonce(packetNumber) { nonce in
            xt_aead_open(context, nonce, sealed.baseAddress!.assumingMemoryBound(to: UInt8.self), sealed.count,
                         header.baseAddress!.assumingMemoryBound(to: UInt8.self), header.count,
                         out.assumingMemoryBound(to: UInt8.self)) == 1
        }
    }
}

/// Rejects numbers already seen or too far behind the highest one: packet numbers here, and
/// the node network's message ids (its duplicate filter).
public struct ReplayWindow: Sendable {
    /// Numbers further than this behind the highest seen are refused as too old.
    public static let size: UInt64 = 16_384
    private var bits: [UInt64] = []
    public private(set) var highest: UInt64 = 0
    private var any = false

    public enum Verdict: Sendable { case fresh, duplicate, tooOld }

    public init() {}

    public func check(_ packetNumber: UInt64) -> Verdict {
        guard any else { return .fresh }
        if packetNumber > highest { return .fresh }
        if highest - packetNumber >= Self.size { return .tooOld }
        return bit(packetNumber) ? .duplicate : .fresh
    }

    private func bit(_ packetNumber: UInt64) -> Bool {
        let index = Int(packetNumber % Self.size)
        return bits[index >> 6] & (1 << UInt64(index & 63)) != 0
    }

    public mutating func mark(_ packetNumber: UInt64) {
        if bits.isEmpty { bits = Array(repeating: 0, count: Int(Self.size / 64)) }
        if !any {
            any = true
            highest = packetNumber
        } else if packetNumber > highest {
            // Clear the slots between the old highest and the new one: they are now unseen.
            let advance = packetNumber - highest
            if advance >= Self.size {
                for i in bits.indices { bits[i] = 0 }
            } else {
                var number = highest + 1
                while number < packetNumber {
                    let index = Int(number % Self.size)
                    bits[index >> 6] &= ~(1 << UInt64(index & 63))
                    number += 1
                }
            }
            highest = packetNumber
        }
        let index = Int(packetNumber % Self.size)
        bits[index >> 6] |= 1 << UInt64(index & 63)
    }
}

/// Why a sealed packet was not accepted.
enum OpenFailure: Error {
    case authentication
    case replayed
    case tooOld
}

/// Both directions' keys for one session.
struct PacketProtection {
    let cipher: PacketCipher
    private var sendSecret: [UInt8]
    private var sendKey: PacketKey
    private(set) var sendPhase: UInt8 = 0
    private(set) var packetsSinceKeyUpdate: UInt64 = 0

    private var receiveSecret: [UInt8]
    private var receiveKey: PacketKey
    private var previousReceiveKey: PacketKey?
    private(set) var receivePhase: UInt8 = 0
    private var receivePhaseStart: UInt64 = 0
    private var replay = ReplayWindow()
    /// Key updates the peer has made that we followed.
    private(set) var peerKeyUpdates: UInt64 = 0

    init(cipher: PacketCipher, sendSecret: [UInt8], receiveSecret: [UInt8]) {
        self.cipher = cipher
        self.sendSecret = sendSecret
        self.sendKey = PacketKey(cipher: cipher, secret: sendSecret)
        self.receiveSecret = receiveSecret
        self.receiveKey = PacketKey(cipher: cipher, secret: receiveSecret)
    }

    static func nextSecret(_ secret: [UInt8]) -> [UInt8] {
        Array(HMAC<SHA256>.authenticationCode(for: Array("xtransport key update".utf8), using: SymmetricKey(data: secret)))
    }

    /// Switches to the next send key and flips the key phase.
    mutating func updateSendKey() {
        sendSecret = Self.nextSecret(sendSecret)
        sendKey = PacketKey(cipher: cipher, secret: sendSecret)
        sendPhase ^= 1
        packetsSinceKeyUpdate = 0
    }

    /// Seals in place: `packet[0..<13]` is the header (associated data), `packet[13..<13+length]`
    /// the plaintext. Writes ciphertext over the plaintext and appends the tag.
    /// - Returns: the sealed packet's size.
    mutating func seal(packet: UnsafeMutableRawBufferPointer, payloadLength: Int, packetNumber: UInt64) -> Int {
        let headerSize = PacketHeader.dataHeaderSize
        precondition(headerSize + payloadLength + PacketHeader.tagSize <= packet.count, "no room for the tag")
        sendKey.seal(packet.baseAddress! + headerSize, length: payloadLength,
                     header: UnsafeRawBufferPointer(rebasing: packet[0..<headerSize]), packetNumber: packetNumber)
        packetsSinceKeyUpdate += 1
        return headerSize + payloadLength + PacketHeader.tagSize
    }

    /// Opens a sealed data packet into `plaintext` (at least the datagram's size), enforcing
    /// the replay window.
    /// - Returns: the plaintext's length.
    mutating func open(_ datagram: UnsafeRawBufferPointer, header: PacketHeader,
                       into plaintext: UnsafeMutableRawBufferPointer) throws(OpenFailure) -> Int {
        switch replay.check(header.packetNumber) {
        case .duplicate: throw .replayed
        case .tooOld: throw .tooOld
        case .fresh: break
        }
        let headerSize = PacketHeader.dataHeaderSize
        guard datagram.count >= headerSize + PacketHeader.tagSize, plaintext.count >= datagram.count else { throw .authentication }
        let headerBytes = UnsafeRawBufferPointer(rebasing: datagram[0..<headerSize])
        let sealed = UnsafeRawBufferPointer(rebasing: datagram[headerSize...])
        let out = plaintext.baseAddress!
        if header.keyPhase == receivePhase {
            guard receiveKey.open(sealed, header: headerBytes, packetNumber: header.packetNumber, into: out) else { throw .authentication }
        } else if header.packetNumber < receivePhaseStart {
            // A late packet from before the peer's last key update.
            guard let previousReceiveKey,
                  previousReceiveKey.open(sealed, header: headerBytes, packetNumber: header.packetNumber, into: out)
            else { throw .authentication }
        } else {
            // The peer rotated: try the next key, and adopt it only if the packet opens.
            let nextSecret = Self.nextSecret(receiveSecret)
            let nextKey = PacketKey(cipher: cipher, secret: nextSecret)
            guard nextKey.open(sealed, header: headerBytes, packetNumber: header.packetNumber, into: out) else { throw .authentication }
            previousReceiveKey = receiveKey
            receiveKey = nextKey
            receiveSecret = nextSecret
            receivePhase ^= 1
            receivePhaseStart = header.packetNumber
            peerKeyUpdates += 1
        }
        replay.mark(header.packetNumber)
        return sealed.count - PacketHeader.tagSize
    }
}
