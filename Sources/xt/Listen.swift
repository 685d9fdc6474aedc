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
        var file: (handle: FileHandle, path: String, size: UInt64, received: UInt64, hash: SHA256)?
        var bench: (size: UInt64, received: UInt64, hash: SHA256)?
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
                    case .fileHeader(let name, let size):
                        let safeName = (name as NSString).lastPathComponent.replacingOccurrences(of: "..", with: "_")
                        let path = (outDir as NSString).appendingPathComponent(safeName.isEmpty ? "unnamed" : safeName)
                        guard FileManager.default.createFile(atPath: path, contents: nil),
                              let handle = FileHandle(forWritingAtPath: path) else {
                            FileHandle.standardError.write("xt: cannot write \(path): check that \(outDir) is writable\n")
                            session.abort(reason: "receiver cannot store the file")
                            return
                        }
                        file = (handle, path, size, 0, SHA256())
                        if size == 0 { try await finishFile(&file, session: session, peer: peer) }
                    case .benchStart(let size):
                        bench = (size, 0, SHA256())
                    default:
                        FileHandle.standardError.write("xt: ignoring unknown control message from \(peer)\n")
                    }
                case .bytes(let channel, let bytes) where channel == AppChannel.bulk:
                    if var current = file {
                        do {
                            try current.handle.write(contentsOf: bytes)
                        } catch {
                            FileHandle.standardError.write("xt: cannot write \(current.path): \(error.localizedDescription): check free space and permissions, then send again\n")
                            session.abort(reason: "receiver cannot store the file")
                            return
                        }
                        current.received += UInt64(bytes.count)
                        current.hash.update(data: bytes)
                        file = current
                        if current.received >= current.size { try await finishFile(&file, session: session, peer: peer) }
                    } else if var current = bench {
                        current.received += UInt64(bytes.count)
                        current.hash.update(data: bytes)
                        bench = current
                        if current.received >= current.size {
                            try await session.send(ControlMessage.benchDone(received: current.received, sha256: hex(current.hash.finalize())).encoded,
                                                   on: AppChannel.control)
                            bench = nil
                        }
                    }
                default:
                    break
                }
            }
            if stats, let snapshot = try await session.stats() { print("session \(peer) ended: \(describe(snapshot))") }
        } catch {
            FileHandle.standardError.write("xt: session with \(peer) ended: \(error)\n")
        }
    }

    private func finishFile(_ file: inout (handle: FileHandle, path: String, size: UInt64, received: UInt64, hash: SHA256)?,
                            session: TransportSession, peer: String) async throws {
        guard let current = file else { return }
        try current.handle.close()
        let digest = hex(current.hash.finalize())
        print("file from \(peer): \(current.path) (\(current.received) bytes, sha256 \(digest))")
        try await session.send(ControlMessage.fileDone(sha256: digest).encoded, on: AppChannel.control)
        file = nil
    }
}
