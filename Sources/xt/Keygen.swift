// `xt keygen`: make a node identity (X25519 key pair).
import ArgumentParser
import Foundation
import XTransport

struct Keygen: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Create a node key pair (private key file and .pub file).")

    @Option(name: .long, help: "Where to write the private key; the public key goes to <out>.pub.")
    var out = "Config/node.key"

    @Flag(name: .long, help: "Overwrite an existing key file.")
    var force = false

    func run() async throws {
        try await XT.run {
            if FileManager.default.fileExists(atPath: out) && !force {
                throw CLIError("\(out) already exists: pass --force to replace it (peers that trust the old key will refuse the new one)")
            }
            let identity = NodeIdentity()
            try identity.save(path: out)
            print(identity.publicKey.base64)
            FileHandle.standardError.write("private key written to \(out) (mode 0600), public key to \(out).pub\n")
        }
    }
}
