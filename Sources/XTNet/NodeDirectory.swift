// The host's list of nodes: the authorized-keys file, where each key's name field may also
// give the node's id ("KEY garage 1.2"). A node whose handshake claims another id or name
// than its key's entry is refused (no spoofed node ids).
public import XTransport

/// Registered identities by key.
public struct NodeDirectory: Hashable, Sendable {
    /// The name and id each key is registered with (the id is absent when the file gives none).
    public private(set) var entries: [PublicKey: (name: String, id: NodeID?)] = [:]

    public static func == (lhs: NodeDirectory, rhs: NodeDirectory) -> Bool {
        lhs.entries.count == rhs.entries.count
            && lhs.entries.allSatisfy { key, entry in rhs.entries[key].map { $0.name == entry.name && $0.id == entry.id } ?? false }
    }

    public func hash(into hasher: inout Hasher) { hasher.combine(entries.count) }

    /// Reads names and ids from authorized keys (`name` or `name area.local` after each key).
    /// - Throws: ``NodeConfigurationError`` when an id is malformed.
    public init(_ keys: AuthorizedKeys) throws(NodeConfigurationError) {
        for (key, label) in keys.names {
            let parts = label.split(separator: " ", omittingEmptySubsequences: true)
            let name = parts.first.map(String.init) ?? ""
            var id: NodeID?
            if parts.count >= 2 {
                guard let parsed = NodeConfiguration.parseID(String(parts[1])) else {
                    throw .badValue(key: "node id for \(name.isEmpty ? key.description : name)", value: String(parts[1]),
                                    expected: "area.local, e.g. 1.2")
                }
                id = parsed
            }
            entries[key] = (name, id)
        }
    }

    /// An empty directory (no names pinned).
    public init() {}

    /// Pins `key` to `name` and `id` (a node of the host's own process).
    public mutating func pin(_ key: PublicKey, name: String, id: NodeID) { entries[key] = (name, id) }

    /// Forgets `key`'s entry.
    public mutating func unpin(_ key: PublicKey) { entries[key] = nil }

    /// The identity `key` is registered with, when the directory pins both name and id.
    public func registered(_ key: PublicKey) -> (id: NodeID, name: String)? {
        guard let entry = entries[key], let id = entry.id, !entry.name.isEmpty else { return nil }
        return (id, entry.name)
    }
}
