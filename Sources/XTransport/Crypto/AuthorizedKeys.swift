// The listener's list of admitted peers: one base64 public key per line, an optional name
// after it, `#` comments. Unknown keys are refused unless the endpoint runs in open mode.
import Foundation

/// Which peers a listener admits.
public struct AuthorizedKeys: Sendable, Hashable {
    /// Admitted keys and the names given to them in the file.
    public private(set) var names: [PublicKey: String]

    public init(_ keys: [PublicKey: String] = [:]) { names = keys }

    public func contains(_ key: PublicKey) -> Bool { names[key] != nil }

    public mutating func insert(_ key: PublicKey, name: String = "") { names[key] = name }

    public mutating func remove(_ key: PublicKey) { names[key] = nil }

    /// Parses the file format.
    /// - Throws: ``TransportError`` with code `invalidKey` naming the bad line.
    public init(parsing text: String, source: String = "authorized keys") throws(TransportError) {
        var keys: [PublicKey: String] = [:]
        for (index, rawLine) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = rawLine.trimmingCharacters(in: .whitespaces)
            if line.isEmpty || line.hasPrefix("#") { continue }
            let parts = line.split(separator: " ", maxSplits: 1)
            let key: PublicKey
            do {
                key = try PublicKey(base64: String(parts[0]))
            } catch {
                throw .invalidKey("\(source) line \(index + 1): '\(parts[0].prefix(60))' is not a public key (base64 of 32 bytes from `xt keygen`)")
            }
            keys[key] = parts.count > 1 ? parts[1].trimmingCharacters(in: .whitespaces) : ""
        }
        names = keys
    }

    /// Loads an authorized-keys file.
    /// - Throws: ``TransportError`` if it cannot be read or a line is not a key.
    public static func load(path: String) throws(TransportError) -> AuthorizedKeys {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else {
            throw .invalidKey("cannot read authorized keys file \(path): create it with one `xt keygen` public key per line, or listen with --open")
        }
        return try AuthorizedKeys(parsing: text, source: path)
    }
}
