// `xt`: one command with subcommands. This file holds the root command and the options
// every networked subcommand shares; each subcommand lives in its own file.
import ArgumentParser
internal import CXTSystem
import Logging
import XTBackup
import XTMedia
import XTRecorder
import XTransport
import XTransportNIO
#if canImport(Glibc)
import Glibc
#endif

@main
struct XT: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "xt",
        abstract: "XTransport: encrypted, congestion-controlled transport for cameras, alarms, calls and backups.",
        subcommands: [Keygen.self, Listen.self, Send.self, Bench.self, Host.self, Node.self, Msg.self, Pub.self, Sub.self, Status.self,
                      AgentCommand.self, RecorderCommand.self, CallCommand.self, AlarmsCommand.self, BackupCommand.self, TestPattern.self, Replay.self, Relay.self]
    )

    /// Runs a subcommand body, turning any error into one clear line and exit status 1.
    static func run(_ body: () async throws -> Void) async throws {
        tuneAllocator()
        xt_line_buffer_stdout()
        do {
            try await body()
        } catch let error as TransportError {
            FileHandle.standardError.write("xt: \(error.reason)\n")
            throw ExitCode.failure
        } catch let error as CLIError {
            FileHandle.standardError.write("xt: \(error.message)\n")
            throw ExitCode.failure
        } catch let error as MediaError {
            FileHandle.standardError.write("xt: \(error.reason)\n")
            throw ExitCode.failure
        } catch let error as StorageError {
            FileHandle.standardError.write("xt: \(error.reason)\n")
            throw ExitCode.failure
        } catch let error as BackupError {
            FileHandle.standardError.write("xt: \(error.description)\n")
            throw ExitCode.failure
        }
    }
}

/// Media and file transfers allocate and free buffers of 16 KiB–1 MiB at a high rate, across
/// threads. glibc's defaults hand such blocks back to the kernel (munmap, heap trimming) and
/// fault fresh zeroed pages in for the next one, which cost more than the transfer's copies.
/// Keep blocks up to 4 MiB in the heap and up to 64 MiB of free heap before trimming.
func tuneAllocator() {
    _ = xt_tune_allocator(4 << 20, 64 << 20)
}

/// A usage problem found by a subcommand (not by the argument parser).
extension XT {
    /// FFmpeg's warnings and errors go to `logger` (repeats held back and counted), not stderr.
    static func routeFFmpegLog(to logger: Logger) {
        MediaLibrary.routeLog { level, line in
            if level == .error { logger.error("ffmpeg: \(line)") } else { logger.warning("ffmpeg: \(line)") }
        }
    }
}

struct CLIError: Error {
    let message: String
    init(_ message: String) { self.message = message }
}

/// Options for the node's identity and transport knobs.
struct NodeOptions: ParsableArguments {
    @Option(name: .long, help: "This node's private key file (from `xt keygen`).")
    var key = "Config/node.key"

    @Option(name: .long, help: "Largest UDP payload, bytes (xTransporter setmtu); path-MTU probing searches up to it.")
    var mtu = 65_000

    @Option(name: .long, help: "Pacing timer granularity in microseconds (xTransporter netlatency).")
    var netlatency = 200

    @Option(name: .long, help: "Packets sent back to back before pacing (xTransporter packetburst).")
    var packetburst = 32

    @Option(name: .long, help: "Congestion control: rate (default) or ledbat (background bulk).")
    var cc = "rate"

    @Option(name: .long, help: "Packet cipher: auto (AES-256-GCM where the CPU has AES instructions), chacha20-poly1305 or aes-256-gcm.")
    var cipher = "auto"

    @Option(name: .long, help: "Seconds of silence before a peer is declared dead.")
    var deadPeerTimeout = 15

    @Option(name: .long, help: "Seconds to keep retrying a handshake before giving up.")
    var connectTimeout = 10

    @Flag(name: .long, help: "Log at debug level.")
    var verbose = false

    func sessionConfiguration() throws -> SessionConfiguration {
        var session = SessionConfiguration()
        session.maximumDatagramSize = mtu
        session.netLatency = .microseconds(netlatency)
        session.packetBurst = packetburst
        session.deadPeerTimeout = .seconds(deadPeerTimeout)
        session.handshakeTimeout = .seconds(connectTimeout)
        guard let algorithm = CongestionControlAlgorithm(rawValue: cc) else {
            throw CLIError("unknown congestion control '\(cc)': use rate or ledbat")
        }
        session.congestionControl = algorithm
        if cipher != "auto" {
            guard let chosen = PacketCipher.allCases.first(where: { $0.description == cipher }) else {
                throw CLIError("unknown cipher '\(cipher)': use auto, chacha20-poly1305 or aes-256-gcm")
            }
            session.packetCiphers = [chosen]
        }
        try session.validate()
        return session
    }

    func identity() throws -> NodeIdentity { try NodeIdentity.load(path: key) }

    func logger(level: Logger.Level = .notice) -> Logger {
        var logger = Logger(label: "xt")
        logger.logLevel = verbose ? .debug : level
        return logger
    }
}

/// Where a peer is and which key it must prove.
struct PeerOptions: ParsableArguments {
    @Option(name: .long, help: "The listener's address, host:port.")
    var to: String

    @Option(name: .long, help: "The listener's public key (base64), or @FILE to read it from a .pub file.")
    var peerKey: String

    func address() throws -> NetworkAddress { try NetworkAddress.resolve(to) }

    func key() throws -> PublicKey { try Self.parseKey(peerKey) }

    /// A base64 public key, or @FILE to read one from a .pub file.
    static func parseKey(_ text: String) throws -> PublicKey {
        if text.hasPrefix("@") {
            let path = String(text.dropFirst())
            guard let contents = try? String(contentsOfFile: path, encoding: .utf8) else {
                throw CLIError("cannot read peer key file \(path): copy the other side's .pub file here")
            }
            return try PublicKey(base64: contents)
        }
        return try PublicKey(base64: text)
    }
}

extension FileHandle {
    func write(_ text: String) { write(text.data(using: .utf8)!) }

    /// Reads up to `maximum` bytes straight into an array (empty at the end of the file).
    func readChunk(maximum: Int) throws -> [UInt8] {
        try [UInt8](unsafeUninitializedCapacity: maximum) { buffer, count in
            var result: Int
            repeat { result = Glibc.read(fileDescriptor, buffer.baseAddress, maximum) } while result < 0 && errno == EINTR
            guard result >= 0 else { throw CLIError("read failed: \(String(cString: strerror(errno)))") }
            count = result
        }
    }
}

import Foundation

/// What `send` and `bench` need before talking to a listener: validated options and keys,
/// then an ephemeral endpoint that trusts only that listener.
struct ClientSetup {
    let configuration: EndpointConfiguration
    let address: NetworkAddress
    let peerKey: PublicKey
    let logger: Logger

    /// Validates the options first, then reads the key files.
    init(node: NodeOptions, peer: PeerOptions) throws {
        let session = try node.sessionConfiguration()
        let identity = try node.identity()
        address = try peer.address()
        peerKey = try peer.key()
        configuration = EndpointConfiguration(identity: identity, admission: .authorized(AuthorizedKeys([peerKey: "listener"])), session: session)
        logger = node.logger()
    }

    /// Binds an endpoint on an ephemeral port.
    func bind() async throws -> TransportEndpoint {
        try await TransportEndpoint.bind(host: "0.0.0.0", port: 0, configuration: configuration, logger: logger)
    }
}
