// `xt bench`: goodput (byte-verified) and round-trip latency between two endpoints.
import ArgumentParser
import Crypto
import Foundation
import XTransport
import XTransportNIO

struct Bench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Measure goodput and latency to an `xt listen`.")

    @OptionGroup var node: NodeOptions
    @OptionGroup var peer: PeerOptions

    @Option(name: .long, help: "Bytes to transfer for the goodput figure.")
    var bytes: Int = 256 << 20

    @Option(name: .long, help: "Round trips to time for the latency figures.")
    var pings = 200

    @Flag(name: .long, help: "Print one JSON object instead of text.")
    var json = false

    @Option(name: .long, help: "Instead of goodput: open this many idle sessions on one socket and report handshakes/s and memory per session.")
    var sessions: Int?

    func run() async throws {
        try await XT.run {
            try Checked.integer(bytes, "--bytes", in: 1...(1 << 40))
            try Checked.integer(pings, "--pings", in: 0...1_000_000)
            if let sessions { try Checked.integer(sessions, "--sessions", in: 1...1_000_000) }
            let client = try ClientSetup(node: node, peer: peer)
            let address = client.address
            let peerKey = client.peerKey
            let endpoint = try await client.bind()
            if let sessions {
                let result = try await SessionBench.run(endpoint: endpoint, address: address, peerKey: peerKey, count: sessions)
                let rate = Double(result.sessions) / result.seconds
                if json {
                    print("{\"sessions\":\(result.sessions),\"handshakes_per_second\":\(rate),\"bytes_per_session\":\(result.bytesPerSession),\"still_open\":\(result.stillOpen)}")
                } else {
                    print(String(format: "sessions: %d handshakes in %.2f s (%.0f/s); %.1f KiB per idle session; %d still open after idling",
                                 result.sessions, result.seconds, rate, result.bytesPerSession / 1024, result.stillOpen))
                }
                await endpoint.close()
                return
            }
            let session = try await endpoint.connect(to: address, peerKey: peerKey)
            try await AppChannel.configure(session)
            var iterator = session.inbound.makeAsyncIterator()

            // Goodput: a deterministic payload, hashed on both ends.
            var generator = SplitMix64(seed: 42)
            let block = (0..<(1 << 20)).map { _ in UInt8(truncatingIfNeeded: generator.next()) }
            var hash = SHA256()
            let start = ContinuousClock.now
            try await session.send(ControlMessage.benchStart(size: UInt64(bytes)).encoded, on: AppChannel.control)
            var remaining = bytes
            while remaining > 0 {
                let chunk = remaining >= block.count ? block : Array(block.prefix(remaining))
                hash.update(data: chunk)
                try await session.send(chunk, on: AppChannel.bulk)
                remaining -= chunk.count
            }
            var done: (UInt64, String)?
            while done == nil, let item = try await iterator.next() {
                if case .message(let reply) = item, case .benchDone(let received, let digest) = ControlMessage(reply.payload) { done = (received, digest) }
            }
            let elapsed = ContinuousClock.now - start
            let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
            let verified = done?.1 == hex(hash.finalize()) && done?.0 == UInt64(bytes)
            guard verified else { throw CLIError("bench payload arrived corrupted or short: \(String(describing: done))") }
            let transferStats = try await session.stats()

            // Latency: ping-pong on a control-priority channel.
            var samples: [Double] = []
            for index in 0..<pings {
                let sent = ContinuousClock.now
                try await session.send(Array("ping \(index)".utf8), on: AppChannel.ping)
                while let item = try await iterator.next() {
                    if case .message(let reply) = item, reply.channel == AppChannel.ping { break }
                }
                let rtt = ContinuousClock.now - sent
                samples.append(Double(rtt.components.seconds) * 1e3 + Double(rtt.components.attoseconds) / 1e15)
            }
            samples.sort()
            func percentile(_ p: Double) -> Double { samples.isEmpty ? 0 : samples[min(samples.count - 1, Int(Double(samples.count) * p))] }
            let goodput = Double(bytes) * 8 / seconds
            if json {
                let stats = transferStats ?? SessionStats()
                print("{\"bytes\":\(bytes),\"seconds\":\(seconds),\"goodput_bps\":\(goodput),\"verified\":\(verified),"
                    + "\"rtt_p50_ms\":\(percentile(0.5)),\"rtt_p99_ms\":\(percentile(0.99)),\"packets_sent\":\(stats.packetsSent),"
                    + "\"packets_lost\":\(stats.packetsLost),\"bytes_retransmitted\":\(stats.bytesRetransmitted),\"datagram_size\":\(stats.datagramSize)}")
            } else {
                print("goodput: \(formatRate(bytes: Double(bytes), seconds: seconds)) (\(bytes) bytes in \(String(format: "%.2f", seconds)) s, sha256 verified)")
                print(String(format: "latency: rtt p50 %.3f ms, p99 %.3f ms over %d round trips", percentile(0.5), percentile(0.99), pings))
                if let transferStats { print("link: \(describe(transferStats))") }
            }
            await session.close()
            await endpoint.close()
        }
    }
}
