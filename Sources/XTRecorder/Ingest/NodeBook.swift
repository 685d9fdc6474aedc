// The index's list of the network's nodes — name, address, key, channels, when first and last
// seen, and their link when last seen — kept up to date from the host, for `xt recorder nodes`
// and the web UI's Nodes page.
public import XTNet
import XTMedia

/// Writes what the host knows of its nodes into the index.
public enum NodeBook {
    /// Records every connected node now (call every few seconds).
    public static func update(from host: NetHost, into index: any RecorderIndex) async throws(StorageError) {
        let members = await host.members
        let links = Dictionary(await host.status().filter { $0.refused == nil }.map { ($0.name, $0) }, uniquingKeysWith: { first, _ in first })
        let now = CaptureTime.now.nanoseconds
        let records = members.map { member in
            let link = links[member.name]
            return NodeRecord(name: member.name, id: "\(member.id)", key: "\(member.key)", firstSeen: now, lastSeen: now,
                              channels: member.channels.sorted(), rttMilliseconds: link?.rttMilliseconds ?? 0,
                              lossPercent: link?.lossPercent ?? 0, retransmittedBytes: Int64(clamping: link?.retransmittedBytes ?? 0))
        }
        try await index.saveNodes(records)
    }
}
