// Per-packet AEAD for an established session: ChaChaPoly keyed per direction, the packet
// number as nonce and the cleartext header as associated data. Keys rotate: each direction
// derives its next key from the current secret (HKDF-style HMAC) and flips the key-phase bit;
// the receiver follows the first packet that opens under the next key.
import Crypto
import Foundation

/// Rejects packet numbers already seen or too far behind the highest one.
struct ReplayWindow {
    /// Packets further than this behind the highest seen are refused as too old.
    static let size: UInt64 = 16_384
    private var bits: [UInt64] = []
    private(set) var highest: UInt64 = 0
    private var any = false

    enum Verdict { case fresh, duplicate, tooOld }

    func check(_ packetNumber: UInt64) -> Verdict {
        guard any else { return .fresh }
        if packetNumber > highest { return .fresh }
        if highest - packetNumber >= Self.size { return .tooOld }
        return bit(packetNumber) ? .duplicate : .fresh
    }

    private func bit(_ packetNumber: UInt64) -> Bool {
        let index = Int(packetNumber % Self.size)
        return bits[index >> 6] & (1 << UInt64(index & 63)) != 0
    }

    mutating func mark(_ packetNumber: UInt64) {
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
    private var sendSecret: [UInt8]
    private var sendKey: SymmetricKey
    private(set) var sendPhase: UInt8 = 0
    private(set) var packetsSinceKeyUpdate: UInt64 = 0

    private var receiveSecret: [UInt8]
    private var receiveKey: SymmetricKey
    private var previousReceiveKey: SymmetricKey?
    private(set) var receivePhase: UInt8 = 0
    private var receivePhaseStart: UInt64 = 0
    private var replay = ReplayWindow()
    /// Key updates the peer has made that we followed.
    private(set) var peerKeyUpdates: UInt64 = 0

    init(sendSecret: [UInt8], receiveSecret: [UInt8]) {
        self.sendSecret = sendSecret
        self.sendKey = SymmetricKey(data: sendSecret)
        self.receiveSecret = receiveSecret
        self.receiveKey = SymmetricKey(data: receiveSecret)
    }

    static func nextSecret(_ secret: [UInt8]) -> [UInt8] {
        Array(HMAC<SHA256>.authenticationCode(for: Array("xtransport key update".utf8), using: SymmetricKey(data: secret)))
    }

    /// Switches to the next send key and flips the key phase.
    mutating func updateSendKey() {
        sendSecret = Self.nextSecret(sendSecret)
        sendKey = SymmetricKey(data: sendSecret)
        sendPhase ^= 1
        packetsSinceKeyUpdate = 0
    }

    @inline(__always)
    static func nonce(_ packetNumber: UInt64) -> ChaChaPoly.Nonce {
        // 32 zero bits, then the packet number big-endian (three packed words, no padding).
        var raw: (UInt32, UInt32, UInt32) = (0, UInt32(truncatingIfNeeded: packetNumber >> 32).bigEndian,
                                             UInt32(truncatingIfNeeded: packetNumber).bigEndian)
        return withUnsafeBytes(of: &raw) { try! ChaChaPoly.Nonce(data: $0) }
    }

    /// Seals in place: `packet[0..<13]` is the header (associated data), `packet[13..<13+length]`
    /// the plaintext. Writes ciphertext over the plaintext and appends the tag.
    /// - Returns: the sealed packet's size.
    mutating func seal(packet: UnsafeMutableRawBufferPointer, payloadLength: Int, packetNumber: UInt64) -> Int {
        let headerSize = PacketHeader.dataHeaderSize
        let header = UnsafeRawBufferPointer(rebasing: packet[0..<headerSize])
        let plaintext = UnsafeRawBufferPointer(rebasing: packet[headerSize..<headerSize + payloadLength])
        let box = try! ChaChaPoly.seal(plaintext, using: sendKey, nonce: Self.nonce(packetNumber), authenticating: header)
        let ciphertextRange = headerSize..<headerSize + payloadLength
        box.ciphertext.withUnsafeBytes { UnsafeMutableRawBufferPointer(rebasing: packet[ciphertextRange]).copyMemory(from: $0) }
        box.tag.withUnsafeBytes { packet.baseAddress!.advanced(by: ciphertextRange.upperBound).copyMemory(from: $0.baseAddress!, byteCount: 16) }
        packetsSinceKeyUpdate += 1
        return headerSize + payloadLength + PacketHeader.tagSize
    }

    /// Opens a sealed data packet, enforcing the replay window.
    mutating func open(_ datagram: UnsafeRawBufferPointer, header: PacketHeader) throws(OpenFailure) -> Data {
        switch replay.check(header.packetNumber) {
        case .duplicate: throw .replayed
        case .tooOld: throw .tooOld
        case .fresh: break
        }
        let headerBytes = UnsafeRawBufferPointer(rebasing: datagram[0..<PacketHeader.dataHeaderSize])
        let ciphertext = UnsafeRawBufferPointer(rebasing: datagram[PacketHeader.dataHeaderSize..<datagram.count - PacketHeader.tagSize])
        let tag = UnsafeRawBufferPointer(rebasing: datagram[(datagram.count - PacketHeader.tagSize)...])
        let nonce = Self.nonce(header.packetNumber)
        guard let box = try? ChaChaPoly.SealedBox(nonce: nonce, ciphertext: ciphertext, tag: tag) else { throw .authentication }

        let plaintext: Data
        if header.keyPhase == receivePhase {
            guard let opened = try? ChaChaPoly.open(box, using: receiveKey, authenticating: headerBytes) else { throw .authentication }
            plaintext = opened
        } else if header.packetNumber < receivePhaseStart {
            // A late packet from before the peer's last key update.
            guard let previousReceiveKey,
                  let opened = try? ChaChaPoly.open(box, using: previousReceiveKey, authenticating: headerBytes)
            else { throw .authentication }
            plaintext = opened
        } else {
            // The peer rotated: try the next key, and adopt it only if the packet opens.
            let nextSecret = Self.nextSecret(receiveSecret)
            let nextKey = SymmetricKey(data: nextSecret)
            guard let opened = try? ChaChaPoly.open(box, using: nextKey, authenticating: headerBytes) else { throw .authentication }
            previousReceiveKey = receiveKey
            receiveKey = nextKey
            receiveSecret = nextSecret
            receivePhase ^= 1
            receivePhaseStart = header.packetNumber
            peerKeyUpdates += 1
            plaintext = opened
        }
        replay.mark(header.packetNumber)
        return plaintext
    }
}
