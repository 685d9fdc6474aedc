// The small application protocol `xt listen`, `xt send` and `xt bench` speak over a session:
// which channel carries what, and the control messages on channel 2.
import Crypto
import Foundation
import XTransport

enum AppChannel {
    /// Text messages (`xt send --message`).
    static let text: UInt16 = 1
    /// Control: file headers and acknowledgements, bench start and end.
    static let control: UInt16 = 2
    /// Bulk bytes: file contents and bench payload.
    static let bulk: UInt16 = 3
    /// Latency probes.
    static let ping: UInt16 = 4

    static func configure(_ session: XTransportNIO.TransportSession) async throws {
        try await session.configure(channel: text, .messages)
        try await session.configure(channel: control, .messages)
        try await session.configure(channel: bulk, .stream)
        try await session.configure(channel: ping, ChannelConfiguration(mode: .messages, priority: .control))
    }
}

/// Control messages: a kind byte and UTF-8 fields separated by newlines.
enum ControlMessage: Equatable {
    /// A file follows on the bulk channel; `verify` asks the receiver for its SHA-256.
    case fileHeader(name: String, size: UInt64, verify: Bool)
    /// The receiver has stored the whole file: its size, and its SHA-256 if asked for.
    case fileDone(received: UInt64, sha256: String?)
    /// `size` bench bytes follow on the bulk channel.
    case benchStart(size: UInt64)
    /// The receiver got all bench bytes; their SHA-256.
    case benchDone(received: UInt64, sha256: String)

    var encoded: [UInt8] {
        switch self {
        case .fileHeader(let name, let size, let verify): Array("F\n\(name)\n\(size)\n\(verify ? 1 : 0)".utf8)
        case .fileDone(let received, let digest): Array("D\n\(received)\n\(digest ?? "")".utf8)
        case .benchStart(let size): Array("B\n\(size)".utf8)
        case .benchDone(let received, let digest): Array("E\n\(received)\n\(digest)".utf8)
        }
    }

    init?(_ bytes: [UInt8]) {
        let parts = String(decoding: bytes, as: UTF8.self).split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        switch parts.first {
        case "F" where parts.count == 4:
            guard let size = UInt64(parts[2]), parts[3] == "0" || parts[3] == "1" else { return nil }
            self = .fileHeader(name: parts[1], size: size, verify: parts[3] == "1")
        case "D" where parts.count == 3:
            guard let received = UInt64(parts[1]) else { return nil }
            self = .fileDone(received: received, sha256: parts[2].isEmpty ? nil : parts[2])
        case "B" where parts.count == 2: guard let size = UInt64(parts[1]) else { return nil }; self = .benchStart(size: size)
        case "E" where parts.count == 3: guard let size = UInt64(parts[1]) else { return nil }; self = .benchDone(received: size, sha256: parts[2])
        default: return nil
        }
    }
}

func hex(_ digest: some Sequence<UInt8>) -> String { digest.map { String(format: "%02x", $0) }.joined() }

func formatRate(bytes: Double, seconds: Double) -> String {
    let bits = bytes * 8 / max(seconds, 1e-9)
    return bits >= 1e9 ? String(format: "%.2f Gbit/s", bits / 1e9) : String(format: "%.1f Mbit/s", bits / 1e6)
}

func describe(_ stats: SessionStats) -> String {
    String(format: "rtt %.2f ms (min %.2f)  cwnd %d KiB  pacing %@  mtu %d  %@  sent %llu pkts  lost %llu (%.2f%%, %llu of them spurious)  "
           + "retransmitted %llu KiB  received twice %llu KiB  rejected %llu",
           Double(stats.smoothedRTT.nanoseconds) / 1e6, Double(stats.minimumRTT.nanoseconds) / 1e6,
           stats.congestionWindow / 1024, formatRate(bytes: stats.pacingRate, seconds: 1), stats.datagramSize, stats.packetCipher,
           stats.packetsSent, stats.packetsLost, stats.lossRate * 100, stats.spuriousLosses, stats.bytesRetransmitted / 1024,
           stats.payloadBytesDuplicate / 1024, stats.packetsRejectedAuthentication + stats.packetsRejectedReplay)
}

/// A session's link stats as one line of JSON (`--stats-json`), for scripts such as `make bench`.
/// Times in milliseconds, sizes in bytes.
func statsJSON(_ stats: SessionStats) -> String {
    struct Report: Encodable {
        var rttMs, minRttMs: Double
        var packetsSent, packetsReceived, packetsLost, spuriousLosses: UInt64
        var bytesSent, bytesReceived, bytesRetransmitted, payloadBytesDelivered, payloadBytesDuplicate: UInt64
        var reorderWindowQuarters: Int
        enum CodingKeys: String, CodingKey {
            case rttMs = "rtt_ms", minRttMs = "min_rtt_ms", packetsSent = "packets_sent", packetsReceived = "packets_received"
            case packetsLost = "packets_lost", spuriousLosses = "spurious_losses", bytesSent = "bytes_sent"
            case bytesReceived = "bytes_received", bytesRetransmitted = "bytes_retransmitted"
            case payloadBytesDelivered = "payload_bytes_delivered", payloadBytesDuplicate = "payload_bytes_duplicate"
            case reorderWindowQuarters = "reorder_window_quarters"
        }
    }
    let report = Report(rttMs: Double(stats.smoothedRTT.nanoseconds) / 1e6, minRttMs: Double(stats.minimumRTT.nanoseconds) / 1e6,
                        packetsSent: stats.packetsSent, packetsReceived: stats.packetsReceived, packetsLost: stats.packetsLost,
                        spuriousLosses: stats.spuriousLosses, bytesSent: stats.bytesSent, bytesReceived: stats.bytesReceived,
                        bytesRetransmitted: stats.bytesRetransmitted, payloadBytesDelivered: stats.payloadBytesDelivered,
                        payloadBytesDuplicate: stats.payloadBytesDuplicate, reorderWindowQuarters: stats.reorderWindowQuarters)
    let encoder = JSONEncoder()
    encoder.outputFormatting = .sortedKeys
    return (try? encoder.encode(report)).map { String(decoding: $0, as: UTF8.self) } ?? "{}"
}

import XTransportNIO
