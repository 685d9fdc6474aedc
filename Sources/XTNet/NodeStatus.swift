// What `xt status` shows: each connected node with its channels, ports and the link to it.
import Foundation
public import XTransport

/// One node as the host sees it.
public struct NodeStatus: Codable, Hashable, Sendable {
    public var id: String
    public var name: String
    public var channels: [UInt16]
    public var ports: [UInt16: String]
    /// The host's link to the node.
    public var rttMilliseconds: Double
    public var lossPercent: Double
    public var retransmittedBytes: UInt64
    public var bytesSent: UInt64
    public var bytesReceived: UInt64
    public var cipher: String
    /// Channels whose multicast stream reaches this node through the IP group (the others
    /// it subscribes to are relayed by the host).
    public var multicastViaGroup: [UInt16] = []
    /// Set for a node that tried to connect and was refused (its key is not authorized, or it
    /// claimed a name or id pinned to another key); nil for connected nodes.
    public var refused: Refusal?
    /// What the node says it is doing (a call and its path), if anything.
    public var activity: String?

    /// A refused node: what it tried and how to let it in.
    public struct Refusal: Codable, Hashable, Sendable {
        /// Its public key (base64).
        public var key: String
        public var address: String
        public var attempts: Int
        /// When it last tried, ms since 1970.
        public var lastMilliseconds: Int64
        /// Why, and the fix ("not in the authorized keys: add KEY NAME ID").
        public var reason: String

        public init(key: String, address: String, attempts: Int, lastMilliseconds: Int64, reason: String) {
            self.key = key
            self.address = address
            self.attempts = attempts
            self.lastMilliseconds = lastMilliseconds
            self.reason = reason
        }
    }

    /// A refused node's entry.
    public init(refused: Refusal, name: String = "?", id: String = "-") {
        self.id = id
        self.name = name
        channels = []
        ports = [:]
        rttMilliseconds = 0
        lossPercent = 0
        retransmittedBytes = 0
        bytesSent = 0
        bytesReceived = 0
        cipher = ""
        self.refused = refused
    }

    public init(member: Router.Member, stats: SessionStats?) {
        id = member.id.description
        name = member.name
        channels = member.channels.sorted()
        ports = member.ports
        rttMilliseconds = Double(stats?.smoothedRTT.nanoseconds ?? 0) / 1e6
        lossPercent = (stats?.lossRate ?? 0) * 100
        retransmittedBytes = stats?.bytesRetransmitted ?? 0
        bytesSent = stats?.bytesSent ?? 0
        bytesReceived = stats?.bytesReceived ?? 0
        cipher = stats?.packetCipher ?? ""
        activity = member.activity.isEmpty ? nil : member.activity
    }

    /// A table for people.
    public static func table(_ nodes: [NodeStatus]) -> String {
        var lines = ["id       name             channels        rtt ms   loss %   retx KiB    sent KiB    recv KiB"]
        for node in nodes where node.refused == nil {
            // A channel the group reaches the node on is marked with an asterisk.
            let channels = node.channels.isEmpty ? "-"
                : node.channels.map { node.multicastViaGroup.contains($0) ? "\($0)*" : "\($0)" }.joined(separator: ",")
            // Text columns padded here: String(format:)'s %-8@ does not pad on Linux.
            func pad(_ text: String, _ width: Int) -> String { text.count >= width ? text + " " : text + String(repeating: " ", count: width - text.count) }
            lines.append(pad(node.id, 9) + pad(node.name, 17) + pad(channels, 15)
                         + String(format: "%7.2f %8.2f %10llu %11llu %11llu", node.rttMilliseconds, node.lossPercent,
                                  node.retransmittedBytes / 1024, node.bytesSent / 1024, node.bytesReceived / 1024))
        }
        if !nodes.contains(where: { $0.refused == nil }) { lines.append("(no nodes connected)") }
        for node in nodes where node.refused == nil { if let activity = node.activity { lines.append("\(node.name): \(activity)") } }
        let refused = nodes.compactMap(\.refused)
        if !refused.isEmpty {
            lines.append("refused:")
            for refusal in refused { lines.append("  \(refusal.key) from \(refusal.address), \(refusal.attempts) tries: \(refusal.reason)") }
        }
        if nodes.contains(where: { !$0.multicastViaGroup.isEmpty }) { lines.append("* multicast reaches the node through the IP group") }
        return lines.joined(separator: "\n")
    }
}
