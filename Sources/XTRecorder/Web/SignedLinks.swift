// Signed stream links: a URL path element that lets a player without the session cookie (VLC,
// ffmpeg, Home Assistant, an iPhone's player) open one camera's HLS until an expiry, as the user
// who made it. The token is `BASE64URL(payload).BASE64URL(HMAC-SHA256(key, payload)[0..<16])`
// with the payload `v1`, user, scope and expiry on four lines (expiry in seconds since 1970); the key is 32 random
// bytes kept in `<storage>/link-signing.key` (mode 0600), so links outlive a restart, and
// deleting the file revokes every link. A link stops working when its user is deleted.
import Crypto
public import Foundation

/// Makes and checks signed links.
public struct SignedLinks: Sendable {
    private let key: SymmetricKey

    /// The longest life a link may be given (30 days).
    public static let longestLife: Int64 = 30 * 86_400

    public init(key: [UInt8]) {
        self.key = SymmetricKey(data: key)
    }

    /// The key in `path`, made on first use.
    /// - Throws: ``StorageError`` when it cannot be read or written.
    public static func load(path: String) throws(StorageError) -> SignedLinks {
        if let data = FileManager.default.contents(atPath: path) {
            guard data.count == 32 else {
                throw StorageError(.invalidConfiguration, "\(path) is not a link-signing key (32 bytes): delete it and a new one is made (old links stop working)")
            }
            return SignedLinks(key: Array(data))
        }
        let bytes = SymmetricKey(size: .bits256).withUnsafeBytes { Array($0) }
        guard FileManager.default.createFile(atPath: path, contents: Data(bytes), attributes: [.posixPermissions: 0o600]) else {
            throw StorageError(.io, "cannot write the link-signing key \(path): check the storage folder's permissions")
        }
        return SignedLinks(key: bytes)
    }

    /// A token for `user` to reach `scope` (e.g. `live/porch`) until `expiry` (seconds since 1970).
    public func token(user: String, scope: String, expiry: Int64) -> String {
        let payload = Array(["v1", user, scope, "\(expiry)"].joined(separator: "\n").utf8)
        return Self.base64URL(payload) + "." + Self.base64URL(signature(payload))
    }

    /// The user of a token valid for `scope` at `now`, or nil (bad signature, another scope, expired).
    public func user(token: String, scope: String, now: Int64 = Int64(Date().timeIntervalSince1970)) -> String? {
        let halves = token.split(separator: ".", omittingEmptySubsequences: false)
        guard halves.count == 2, halves[0].count <= 1024, let payload = Self.decode(halves[0]), let mac = Self.decode(halves[1]),
              mac.count == 16 else { return nil }
        // Compared in constant time.
        let expected = signature(payload)
        guard zip(expected, mac).reduce(UInt8(0), { $0 | ($1.0 ^ $1.1) }) == 0 else { return nil }
        let fields = String(decoding: payload, as: UTF8.self).split(separator: "\n", omittingEmptySubsequences: false)
        guard fields.count == 4, fields[0] == "v1", fields[2] == scope, let expiry = Int64(fields[3]), now < expiry else { return nil }
        return String(fields[1])
    }

    private func signature(_ payload: [UInt8]) -> [UInt8] {
        Array(HMAC<SHA256>.authenticationCode(for: payload, using: key).prefix(16))
    }

    static func base64URL(_ bytes: [UInt8]) -> String {
        Data(bytes).base64EncodedString().replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
    }

    static func decode(_ text: Substring) -> [UInt8]? {
        var base64 = text.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        while base64.count % 4 != 0 { base64 += "=" }
        return Data(base64Encoded: base64).map(Array.init)
    }
}
