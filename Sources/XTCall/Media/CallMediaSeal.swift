// Relayed call media is sealed end to end with the call's key (ChaCha20-Poly1305 from
// swift-crypto, as the transport's own packets): the host forwards the call's channel without
// reading it, and a node that subscribes to that channel without being invited learns nothing.
// Direct sessions need no seal of their own (the transport already encrypts them end to end).
import Crypto
import Foundation

/// Sealing of relayed media with a ``CallKey``.
public enum CallMediaSeal {
    /// Bytes a seal adds: a random 12-byte nonce before, a 16-byte tag after.
    public static let overhead = 28

    /// `packet` sealed: nonce (12) ‖ ciphertext ‖ tag (16). The call id is authenticated with
    /// it, so a packet of one call cannot pass for another's.
    public static func seal(_ packet: [UInt8], key: CallKey, call: CallID) -> [UInt8] {
        guard let box = try? ChaChaPoly.seal(packet, using: SymmetricKey(data: key.bytes), authenticating: associatedData(call)) else {
            return []  // not reached: sealing fails only for a key of the wrong size, which CallKey rules out
        }
        return Array(box.combined)
    }

    /// The packet inside `sealed`, or nil if it was not sealed with `key` for `call` (a stranger's
    /// or a corrupted datagram: the caller counts it as dropped).
    public static func open(_ sealed: [UInt8], key: CallKey, call: CallID) -> [UInt8]? {
        guard sealed.count >= overhead, let box = try? ChaChaPoly.SealedBox(combined: sealed),
              let packet = try? ChaChaPoly.open(box, using: SymmetricKey(data: key.bytes), authenticating: associatedData(call)) else { return nil }
        return Array(packet)
    }

    private static func associatedData(_ call: CallID) -> [UInt8] {
        (0..<8).map { UInt8(truncatingIfNeeded: call.raw >> (56 - 8 * $0)) }
    }
}
