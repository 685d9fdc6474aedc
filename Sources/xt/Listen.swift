// `xt listen`: accept sessions; print text messages, store files, answer benches and pings.
import ArgumentParser
import Crypto
import Foundation
import XTransport
import XTransportNIO

struct Listen: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Accept sessions: print messages, receive files, answer `xt bench`.")

    @Option(name: .long, help: "Local address to listen on, host:port.")
    var bind = "0.0.0.0:9000"

    @OptionGroup var node: NodeOptions

    @Option(name: .long, help: "Public keys admitted, one per line.")
    var authorizedKeys = "Config/authorized_keys"

    @Flag(name: .long, help: "Admit any key (each handshake must prove its source address first).")
    var open = false

    @Option(name: .long, help: "Directory for received files.")
    var outDir = "received"

    @Option(name: .long, help: "Exit after this many sessions have ended (default: run until stopped).")
    var sessions: Int?

    @Flag(name: .long, help: "Print each session's link stats when it ends.")
    var stats = false

    @Flag(name: .long, help: "Print each session's link stats as one line of JSON when it ends.")
    var statsJson = false

    func run() async throws {
        try await XT.run {
            let sessionConfiguration = try node.sessionConfiguration()  // options first, then files
            let identity = try node.identity()
            let admission: Admission = open ? .open : .authorized(try AuthorizedKeys.load(path: authorizedKeys))
            let address = try NetworkAddress.resolve(bind)
            let host = bind.split(separator: ":").dropLast().joined(separator: ":")
            let configuration = EndpointConfiguration(identity: identity, admission: admission, session: sessionConfiguration)
            let endpoint = try await TransportEndpoint.bind(host: host.isEmpty ? "0.0.0.0" : host.trimmingCharacters(in: ["[", "]"]),
                                                            port: Int(address.port), configuration: configuration, logger: node.logger())
            print("listening on \(endpoint.localAddress) as \(identity.publicKey)\(open ? " (open mode)" : "")")
            try FileManager.default.createDirectory(atPath: outDir, withIntermediateDirectories: true)
            let finished = AsyncStream<Void>.makeStream()
            Task {
                for await session in endpoint.incomingSessions {
                    Task {
                        await serve(session)
                        finished.continuation.yield()
                    }
                }
            }
            var ended = 0
            for await _ in finished.stream {
                ended += 1
                if let sessions, ended >= sessions { break }
            }
            await endpoint.close()
        }
    }

    private func serve(_ session: TransportSession) async {
        let peer = String(session.peerKey.base64.prefix(8))
        var file: (handle: FileHandle, path: String, size: UInt64, received: UInt64, hash: SHA256?)?
        var bench: (size: UInt64, received: UInt64, hash: SHA256)?
        // Channels are not ordered with each other: if the packet with a file header was lost,
        // its bulk bytes may arrive first. They wait here until the header is repaired.
        var early: [ArraySlice<UInt8>] = []
        var earlyBytes = 0

        /// Feeds bulk bytes to the file or bench in progress; bytes past its end, or with none
        /// in progress, wait for the next header.
        func takeBulk(_ bytes: ArraySlice<UInt8>) async throws {
            var rest = bytes
            while !rest.isEmpty {
                if var current = file {
                    let part = rest.prefix(Int(min(UInt64(rest.count), current.size - current.received)))
                    rest = rest.dropFirst(part.count)
                    do {
                        try current.handle.write(contentsOf: part)
                    } catch {
                        session.abort(reason: "receiver cannot store the file")
                        throw CLIError("cannot write \(current.path): \(error.localizedDescription): check free space and permissions, then send again")
                    }
                    current.received += UInt64(part.count)
                    current.hash?.update(data: part)
                    file = current
                    if current.received >= current.size { try await finishFile(&file, session: session, peer: peer) }
                } else if var current = bench {
                    let part = rest.prefix(Int(min(UInt64(rest.count), current.size - current.received)))
                    rest = rest.dropFirst(part.count)
                    current.received += UInt64(part.count)
                    current.hash.update(data: part)
                    bench = current
                    if current.received >= current.size {
                        try await session.send(ControlMessage.benchDone(received: current.received, sha256: hex(current.hash.finalize())).encoded,
                                               on: AppChannel.control)
                        bench = nil
                    }
                } else {
                    early.append(rest)
                    earlyBytes += rest.count
                    guard earlyBytes <= Self.maximumEarlyBulk else {
                        session.abort(reason: "bulk data without a file header")
                        throw CLIError("the peer sent \(earlyBytes) bulk bytes without announcing a file or bench")
                    }
                    return
                }
            }
        }

        /// After a header: the bytes that arrived ahead of it.
        func takeEarlyBulk() async throws {
            let waiting = early
            early = []
            earlyBytes = 0
            for chunk in waiting { try await takeBulk(chunk) }
        }

        do {
            try await AppChannel.configure(session)
            for try await item in session.inbound {
                switch item {
                case .message(let message) where message.channel == AppChannel.text:
                    print("message from \(peer): \(String(decoding: message.payload, as: UTF8.self))")
                case .message(let message) where message.channel == AppChannel.ping:
                    try await session.send(message.payload, on: AppChannel.ping)
                case .message(let message) where message.channel == AppChannel.control:
                    switch ControlMessage(message.payload) {
                    case .fileHeader(let name, let size, let verify):
                        let safeName = (name as NSString).lastPathComponent.replacingOccurrences(of: "..", with: "_")
                        let path = (outDir as NSString).appendingPathComponent(safeName.isEmpty ? "unnamed" : safeName)
                        guard FileManager.default.createFile(atPath: path, contents: nil),
                              let handle = FileHandle(forWritingAtPath: path) else {
                            FileHandle.standardError.write("xt: cannot write \(path): check that \(outDir) is writable\n")
                            session.abort(reason: "receiver cannot store the file")
                            return
                        }
                        file = (handle, path, size, 0, verify ? SHA256() : nil)
                        if size == 0 { try await finishFile(&file, session: session, peer: peer) }
                        try await takeEarlyBulk()
                    case .benchStart(let size):
                        bench = (size, 0, SHA256())
                        try await takeEarlyBulk()
                    default:
                        FileHandle.standardError.write("xt: ignoring unknown control message from \(peer)\n")
                    }
                case .bytes(let channel, let bytes) where channel == AppChannel.bulk:
                    try await takeBulk(bytes[...])
                default:
                    break
                }
            }
            if stats || statsJson, let snapshot = try await session.stats() {
                print(statsJson ? statsJSON(snapshot) : "session \(peer) ended: \(describe(snapshot))")
            }
        } catch {
            FileHandle.standardError.write("xt: session with \(peer) ended: \(error)\n")
        }
    }

    /// Most bulk bytes held while their header is repaired (a few round trips of data).
    static let maximumEarlyBulk = 64 << 20

    private func finishFile(_ file: inout (handle: FileHandle, path: String, size: UInt64, received: UInt64, hash: SHA256?)?,
                            session: TransportSession, peer: String) async throws {
        guard let current = file else { return }
        try current.handle.close()
        let digest = current.hash.map { hex($0.finalize()) }
        print("file from \(peer): \(current.path) (\(current.received) bytes\(digest.map { ", sha256 \($0)" } ?? ""))")
        try await session.send(ControlMessage.fileDone(received: current.received, sha256: digest).encoded, on: AppChannel.control)
        file = nil
    }
}
