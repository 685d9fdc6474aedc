// `xt relay`: a user-space UDP relay that gives the path between a client and a server what a
// real link does — a bottleneck rate with a bounded queue, propagation delay, per-datagram
// jitter (which reorders), random and burst loss — for tests and benchmarks on machines without
// netem. The impairments are the simulator's `LinkModel`, so a benchmark through the relay and
// a simulator test with the same settings meet the same link.
import ArgumentParser
internal import CXTSystem
import Foundation
import HeapModule
import NIOCore
import XTransport
import XTransportNIO
import XTSimulator
#if canImport(Glibc)
import Glibc
#endif

struct Relay: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Relay UDP between one client and a server over an impaired link (rate, delay, jitter, loss), for tests and benchmarks.",
        discussion: """
        The client sends to --listen; the relay forwards from its own port to --to and sends the \
        replies back. Each direction gets the same impairments, decided per datagram. On Ctrl-C, \
        SIGTERM or after --seconds it prints what each direction did as one line of JSON.
        Example (the jittery Wi-Fi-like link of the benchmarks): xt relay --listen 127.0.0.1:9800 \
        --to 127.0.0.1:9600 --rate 50mbit --delay 20 --jitter 2 --burst-loss 0.0066,0.2
        """)

    @Option(name: .long, help: "Address the client sends to, host:port.")
    var listen: String

    @Option(name: .long, help: "The server's address, host:port.")
    var to: String

    @Option(name: .long, help: "Bottleneck rate of each direction, e.g. 50mbit, 800kbit, 1gbit (default: unlimited).")
    var rate: String?

    @Option(name: .long, help: "One-way propagation delay in milliseconds (0…10000).")
    var delay: Double = 0

    @Option(name: .long, help: "Extra delay per datagram, uniform in 0…this many milliseconds (0…10000); reorders datagrams closer than this.")
    var jitter: Double = 0

    @Option(name: .long, help: "Random loss in percent (0…100).")
    var loss: Double = 0

    @Option(name: .long, help: "Gilbert–Elliott burst loss: 'ENTER,EXIT', the chances per datagram (0…1) to enter and to leave the losing state.")
    var burstLoss: String?

    @Option(name: .long, help: "Most queueing delay at the bottleneck before tail drop, in milliseconds (1…10000).")
    var queue: Double = 50

    @Option(name: .long, help: "Largest datagram passed, in bytes (576…65507); larger ones are dropped, as a real link's MTU does. Default: Ethernet's 1500 less IPv4 and UDP headers.")
    var mtu = 1472

    @Option(name: .long, help: "Seed of the impairments' random choices.")
    var seed: UInt64 = 1

    @Option(name: .long, help: "Stop after this many seconds (default: run until stopped).")
    var seconds: Double?

    func run() async throws {
        try await XT.run {
            let conditions = try linkConditions()
            let stopAfter = try seconds.map { try Checked.seconds($0, "--seconds") }
            let front: NetworkAddress
            let server: NetworkAddress
            do {
                front = try NetworkAddress.resolve(listen)
                server = try NetworkAddress.resolve(to)
            } catch {
                throw CLIError("\(error)")
            }
            let relay = try UDPRelay(listen: front, server: server, conditions: conditions, seed: seed)
            FileHandle.standardError.write("xt relay: \(listen) ⇄ \(to): \(summary(conditions))\n")
            await withCheckedContinuation { (finished: CheckedContinuation<Void, Never>) in
                let thread = Thread {
                    relay.run()
                    finished.resume()
                }
                thread.name = "xt relay"
                thread.start()
                Task {
                    await Termination.wait(seconds: stopAfter.map { Double($0.nanoseconds) / 1e9 })
                    relay.stop()
                }
            }
            print(relay.reportJSON())
        }
    }

    /// The options as the simulator's link conditions, each number checked.
    func linkConditions() throws -> LinkConditions {
        var conditions = LinkConditions()
        conditions.mtu = try Checked.integer(mtu, "--mtu", in: 576...65_507)
        conditions.delay = try Checked.milliseconds(delay, "--delay", in: 0...10_000)
        conditions.jitter = try Checked.milliseconds(jitter, "--jitter", in: 0...10_000)
        conditions.queueLimit = try Checked.milliseconds(queue, "--queue", in: 1...10_000)
        guard loss.isFinite, (0...100).contains(loss) else { throw CLIError("--loss \(loss) is out of range: give a percentage from 0 to 100") }
        conditions.lossRate = loss / 100
        if let rate { conditions.bandwidth = try Self.bitsPerSecond(rate) }
        if let burstLoss {
            let parts = burstLoss.split(separator: ",").map { Double($0.trimmingCharacters(in: .whitespaces)) }
            guard parts.count == 2, let enter = parts[0], let exit = parts[1], enter.isFinite, exit.isFinite,
                  (0...1).contains(enter), exit > 0, exit <= 1 else {
                throw CLIError("--burst-loss '\(burstLoss)' is not two chances 'ENTER,EXIT': ENTER from 0 to 1, EXIT above 0 up to 1 (e.g. 0.0066,0.2)")
            }
            conditions.burstEnterProbability = enter
            conditions.burstExitProbability = exit
        }
        return conditions
    }

    /// "50mbit", "800kbit", "1gbit" or a plain number of bits per second, from 1 kbit/s to 100 Gbit/s.
    static func bitsPerSecond(_ text: String) throws -> Double {
        let lower = text.lowercased()
        let units: [(String, Double)] = [("gbit", 1e9), ("mbit", 1e6), ("kbit", 1e3), ("bit", 1)]
        var value: Double?
        for (suffix, scale) in units where lower.hasSuffix(suffix) {
            value = Double(lower.dropLast(suffix.count)).map { $0 * scale }
            break
        }
        if value == nil { value = Double(lower) }
        guard let value, value.isFinite, (1e3...1e11).contains(value) else {
            throw CLIError("--rate '\(text)' is not a rate from 1kbit to 100gbit: write it like 50mbit, 800kbit or 1gbit")
        }
        return value
    }

    private func summary(_ conditions: LinkConditions) -> String {
        var parts = [conditions.bandwidth.map { String(format: "%.3g Mbit/s", $0 / 1e6) } ?? "unlimited rate",
                     "delay \(delay) ms", "jitter 0…\(jitter) ms", "mtu \(mtu)"]
        if loss > 0 { parts.append("loss \(loss)%") }
        if conditions.burstEnterProbability > 0 {
            let share = conditions.burstEnterProbability / (conditions.burstEnterProbability + conditions.burstExitProbability)
            parts.append(String(format: "burst loss %.2g/%.2g (%.1f%% of datagrams)", conditions.burstEnterProbability,
                                conditions.burstExitProbability, share * 100))
        }
        return parts.joined(separator: ", ") + ", each direction"
    }
}

/// Two UDP sockets and a `LinkModel` per direction, driven by one thread: datagrams wait in a
/// heap ordered by their arrival time and leave when it comes. Owns its file descriptors.
final class UDPRelay: @unchecked Sendable {
    private struct Pending: Comparable {
        var time: UInt64
        var sequence: UInt64
        var toServer: Bool
        var bytes: [UInt8]
        static func < (a: Pending, b: Pending) -> Bool { (a.time, a.sequence) < (b.time, b.sequence) }
        static func == (a: Pending, b: Pending) -> Bool { a.time == b.time && a.sequence == b.sequence }
    }

    private let front: Int32
    private let back: Int32
    private let wakeRead: Int32
    private let wakeWrite: Int32
    private let server: SocketAddress
    private var client: sockaddr_storage?
    private var clientLength = socklen_t(0)
    private var models: [LinkModel]  // [0]: client → server, [1]: server → client
    private var random: SplitMix64
    private var heap = Heap<Pending>()
    private var sequence: UInt64 = 0
    private var buffer = [UInt8](repeating: 0, count: 65_536)
    private var sendFailures = 0
    private var strangers = 0

    /// - Throws: ``CLIError`` if a socket cannot be made or bound (the port is taken, the address is not local).
    init(listen: NetworkAddress, server: NetworkAddress, conditions: LinkConditions, seed: UInt64) throws {
        self.server = server.socketAddress
        models = [LinkModel(conditions: conditions), LinkModel(conditions: conditions)]
        random = SplitMix64(seed: seed)
        var pipeEnds: [Int32] = [0, 0]
        guard pipe(&pipeEnds) == 0 else { throw CLIError("cannot make a pipe: \(String(cString: strerror(errno)))") }
        wakeRead = pipeEnds[0]
        wakeWrite = pipeEnds[1]
        front = try Self.socket(bound: listen.socketAddress, what: "--listen \(listen)")
        do {
            var any = server.socketAddress
            switch server.host {
            case .v4: any = try SocketAddress(ipAddress: "0.0.0.0", port: 0)
            case .v6: any = try SocketAddress(ipAddress: "::", port: 0)
            }
            back = try Self.socket(bound: any, what: "the relay's own port")
        } catch {
            close(front)
            throw error
        }
    }

    deinit {
        for fd in [front, back, wakeRead, wakeWrite] { close(fd) }
    }

    private static func socket(bound address: SocketAddress, what: String) throws -> Int32 {
        let fd = Glibc.socket(Int32(address.protocol.rawValue), Int32(SOCK_DGRAM.rawValue), 0)
        guard fd >= 0 else { throw CLIError("cannot open a UDP socket for \(what): \(String(cString: strerror(errno)))") }
        var size: Int32 = 8 << 20  // room for a burst: a datagram the kernel drops here would be loss nobody counted
        for option in [SO_RCVBUFFORCE, SO_SNDBUFFORCE, SO_RCVBUF, SO_SNDBUF] {
            _ = setsockopt(fd, SOL_SOCKET, option, &size, socklen_t(MemoryLayout<Int32>.size))
        }
        let result = address.withSockAddr { bind(fd, $0, socklen_t($1)) }
        guard result == 0 else {
            let reason = String(cString: strerror(errno))
            close(fd)
            throw CLIError("cannot bind \(what): \(reason): choose a free local port")
        }
        return fd
    }

    /// Relays until ``stop()``.
    func run() {
        var fds = [pollfd(fd: front, events: Int16(POLLIN), revents: 0), pollfd(fd: back, events: Int16(POLLIN), revents: 0),
                   pollfd(fd: wakeRead, events: Int16(POLLIN), revents: 0)]
        while true {
            let now = Self.monotonic()
            while let first = heap.min, first.time <= now { deliver(heap.removeMin()) }
            let wait = heap.min.map { Int64($0.time - now) } ?? -1
            for i in fds.indices { fds[i].revents = 0 }
            let ready = xt_poll_ns(&fds, 3, wait)
            guard ready > 0 else { continue }
            if fds[2].revents != 0 { return }
            if fds[0].revents != 0 { receive(on: front, toServer: true) }
            if fds[1].revents != 0 { receive(on: back, toServer: false) }
        }
    }

    /// Makes ``run()`` return (from any thread).
    func stop() {
        var byte: UInt8 = 1
        _ = write(wakeWrite, &byte, 1)
    }

    private func receive(on fd: Int32, toServer: Bool) {
        while true {
            var from = sockaddr_storage()
            var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
            let count = buffer.withUnsafeMutableBytes { raw in
                withUnsafeMutablePointer(to: &from) {
                    $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { recvfrom(fd, raw.baseAddress, raw.count, Int32(MSG_DONTWAIT), $0, &length) }
                }
            }
            guard count >= 0 else { return }
            if toServer {
                client = from
                clientLength = length
            } else if clientLength == 0 {
                strangers += 1  // the server spoke first: nobody to send it to
                continue
            }
            let now = Self.monotonic()
            let direction = toServer ? 0 : 1
            guard case .delivered(let arrival, let corruptBit, let duplicate) = models[direction].admit(size: count, now: Timestamp(nanoseconds: now), random: &random) else { continue }
            var bytes = Array(buffer[0..<count])
            if let bit = corruptBit { bytes[bit / 8] ^= UInt8(1 << (bit % 8)) }
            push(arrival.nanoseconds, toServer, bytes)
            if let duplicate { push(duplicate.nanoseconds, toServer, bytes) }
        }
    }

    private func push(_ time: UInt64, _ toServer: Bool, _ bytes: [UInt8]) {
        sequence += 1
        heap.insert(Pending(time: time, sequence: sequence, toServer: toServer, bytes: bytes))
    }

    private func deliver(_ pending: Pending) {
        let sent: Int
        if pending.toServer {
            sent = pending.bytes.withUnsafeBytes { raw in server.withSockAddr { sendto(back, raw.baseAddress, raw.count, 0, $0, socklen_t($1)) } }
        } else if var client {
            sent = pending.bytes.withUnsafeBytes { raw in
                withUnsafePointer(to: &client) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { sendto(front, raw.baseAddress, raw.count, 0, $0, clientLength) } }
            }
        } else {
            sent = -1
        }
        if sent < 0 { sendFailures += 1 }
    }

    private static func monotonic() -> UInt64 {
        var now = timespec()
        clock_gettime(CLOCK_MONOTONIC, &now)
        return UInt64(now.tv_sec) * 1_000_000_000 + UInt64(now.tv_nsec)
    }

    /// What each direction did, as one line of JSON (call after ``run()`` has returned).
    func reportJSON() -> String {
        func direction(_ counters: LinkCounters) -> [String: Int] {
            ["offered": counters.offered, "bytes_offered": counters.bytesOffered, "delivered": counters.delivered,
             "bytes_delivered": counters.bytesDelivered, "dropped_burst": counters.droppedBurst, "dropped_random": counters.droppedRandom,
             "dropped_queue": counters.droppedQueue, "dropped_mtu": counters.droppedMTU, "bytes_dropped": counters.bytesDropped, "duplicated": counters.duplicated,
             "corrupted": counters.corrupted]
        }
        let report: [String: [String: Int]] = ["client_to_server": direction(models[0].counters), "server_to_client": direction(models[1].counters),
                                               "relay": ["send_failures": sendFailures, "from_server_before_client": strangers,
                                                         "still_queued": heap.count]]
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        return (try? encoder.encode(report)).map { String(decoding: $0, as: UTF8.self) } ?? "{}"
    }
}
