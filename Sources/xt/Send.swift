// `xt send`: open a session and send a text message and/or a file, verified end to end.
import ArgumentParser
import Crypto
import Foundation
import XTransport
import XTransportNIO

struct Send: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Send a message or a file to a listener.")

    @OptionGroup var node: NodeOptions
    @OptionGroup var peer: PeerOptions

    @Option(name: .long, help: "A text message to send.")
    var message: String?

    @Option(name: .long, help: "A file to send; the listener stores it and confirms its SHA-256.")
    var file: String?

    @Flag(inversion: .prefixedNo, help: "Check the listener's copy by SHA-256 at both ends (--no-verify: by size only).")
    var verify = true

    @Flag(name: .long, help: "Print the link stats at the end.")
    var stats = false

    @Flag(name: .long, help: "Print the link stats at the end as one line of JSON.")
    var statsJson = false

    func validate() throws {
        if message == nil && file == nil { throw ValidationError("give --message TEXT, --file PATH, or both") }
    }

    func run() async throws {
        try await XT.run {
            let client = try ClientSetup(node: node, peer: peer)
            let address = client.address
            let peerKey = client.peerKey
            var handle: FileHandle?
            var size: UInt64 = 0
            if let file {
                guard let opened = FileHandle(forReadingAtPath: file),
                      let attributes = try? FileManager.default.attributesOfItem(atPath: file),
                      let fileSize = attributes[.size] as? NSNumber else {
                    throw CLIError("cannot read \(file): check the path and permissions")
                }
                handle = opened
                size = fileSize.uint64Value
            }
            let endpoint = try await client.bind()
            defer { Task { await endpoint.close() } }
            let session = try await endpoint.connect(to: address, peerKey: peerKey)
            try await AppChannel.configure(session)
            if let message {
                try await session.send(Array(message.utf8), on: AppChannel.text)
            }
            if let handle, let file {
                let start = ContinuousClock.now
                var hash: SHA256? = verify ? SHA256() : nil
                try await session.send(ControlMessage.fileHeader(name: (file as NSString).lastPathComponent, size: size, verify: verify).encoded,
                                       on: AppChannel.control)
                var sent: UInt64 = 0
                while true {
                    let bytes = try handle.readChunk(maximum: 1 << 20)
                    if bytes.isEmpty { break }
                    hash?.update(data: bytes)
                    sent += UInt64(bytes.count)
                    try await session.send(bytes, on: AppChannel.bulk)
                }
                guard sent == size else { throw CLIError("\(file) changed size while it was sent (\(sent) of \(size) bytes): send it again") }
                let expected = hash.map { hex($0.finalize()) }
                var iterator = session.inbound.makeAsyncIterator()
                var confirmed: (received: UInt64, digest: String?)?
                while confirmed == nil, let item = try await iterator.next() {
                    if case .message(let reply) = item, case .fileDone(let received, let digest) = ControlMessage(reply.payload) {
                        confirmed = (received, digest)
                    }
                }
                let seconds = Double((ContinuousClock.now - start).components.attoseconds) / 1e18 + Double((ContinuousClock.now - start).components.seconds)
                guard let confirmed, confirmed.received == size else {
                    throw CLIError("the listener stored \(confirmed.map { "\($0.received)" } ?? "no") bytes of \(file)'s \(size): send it again")
                }
                guard confirmed.digest == expected else {
                    throw CLIError("the listener's copy of \(file) differs (sha256 \(confirmed.digest ?? "none") vs \(expected ?? "none")): send it again")
                }
                print("sent \(file): \(size) bytes in \(String(format: "%.2f", seconds)) s, \(formatRate(bytes: Double(size), seconds: seconds)), "
                      + (verify ? "sha256 verified" : "size confirmed (not hashed: --no-verify)"))
            }
            if stats || statsJson, let snapshot = try await session.stats() {
                print(statsJson ? statsJSON(snapshot) : "link: \(describe(snapshot))")
            }
            await session.close()
        }
    }
}
