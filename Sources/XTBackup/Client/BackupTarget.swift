// The Pis a backup goes to, from a targets file: one per line, `NAME KEY ADDRESS[,ADDRESS…]`.
// Several addresses of one Pi are its networks (Ethernet, Wi-Fi, a second LAN): the bond opens
// connections over each.
public import XTransport
import XTransportNIO

/// A Pi running `xt backup serve`.
public struct BackupTarget: Sendable, Hashable {
    /// Its name (letters, digits, `-`, `_`, `.`), as `--to` names it.
    public var name: String
    /// Its node key (the `.pub` its `xt keygen` wrote).
    public var key: PublicKey
    /// Where it listens, one per network.
    public var addresses: [NetworkAddress]

    public init(name: String, key: PublicKey, addresses: [NetworkAddress]) {
        self.name = name
        self.key = key
        self.addresses = addresses
    }

    /// Whether `name` is usable as a target name.
    public static func isValidName(_ name: String) -> Bool {
        !name.isEmpty && name.count <= 64 && name.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || "-_.".contains($0)) }
    }

    /// Parses a targets file.
    /// - Parameter source: the file's name, for messages.
    /// - Throws: ``BackupError/badInput(_:)`` naming the line and what is wrong.
    public static func parse(_ text: String, source: String) throws(BackupError) -> [BackupTarget] {
        var targets: [BackupTarget] = []
        for (index, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = raw.split(separator: "#", maxSplits: 1, omittingEmptySubsequences: false).first.map(String.init) ?? ""
            let fields = line.split(whereSeparator: { $0 == " " || $0 == "\t" }).map(String.init)
            if fields.isEmpty { continue }
            let at = "\(source) line \(index + 1)"
            guard fields.count == 3 else {
                throw .badInput("\(at): write `NAME KEY ADDRESS[,ADDRESS…]` (the Pi's name, its public key, where `xt backup serve` listens)")
            }
            guard isValidName(fields[0]) else {
                throw .badInput("\(at): '\(fields[0].prefix(64))' is not a usable name (letters, digits, - _ . and at most 64)")
            }
            guard !targets.contains(where: { $0.name == fields[0] }) else { throw .badInput("\(at): \(fields[0]) is named twice") }
            let key: PublicKey
            do { key = try PublicKey(base64: fields[1]) } catch {
                throw .badInput("\(at): \(error.description)")
            }
            var addresses: [NetworkAddress] = []
            for text in fields[2].split(separator: ",") {
                do { addresses.append(try NetworkAddress.resolve(String(text))) } catch {
                    throw .badInput("\(at): \(error.description)")
                }
            }
            guard !addresses.isEmpty, addresses.count <= 16 else { throw .badInput("\(at): give 1 to 16 addresses, comma-separated") }
            targets.append(BackupTarget(name: fields[0], key: key, addresses: addresses))
        }
        return targets
    }
}

extension BackupTarget {
    /// The Pis of a targets file (one per line, `NAME KEY ADDRESS[,ADDRESS…]`), all of them or
    /// those `names` gives, in that order.
    /// - Throws: ``BackupError/badInput(_:)`` if the file cannot be read or has a bad line, a
    ///   name is not in it or given twice, or it lists no Pi (each message says what to write).
    public static func load(file: String, names: [String]?) throws(BackupError) -> [BackupTarget] {
        guard let text = try? String(contentsOfFile: file, encoding: .utf8) else {
            throw .badInput("cannot read the backup targets \(file): write one Pi per line, NAME KEY ADDRESS[,ADDRESS…] (its `xt keygen` public key, where `xt backup serve` listens)")
        }
        let all = try parse(text, source: file)
        guard let names else {
            guard !all.isEmpty else { throw .badInput("\(file) lists no Pi: add one line per Pi, NAME KEY ADDRESS") }
            return all
        }
        guard !names.isEmpty else { throw .badInput("name at least one Pi") }
        guard Set(names).count == names.count else { throw .badInput("a Pi is named twice") }
        var chosen: [BackupTarget] = []
        for name in names {
            guard let target = all.first(where: { $0.name == name }) else {
                throw .badInput("\(name) is not in \(file) (it lists \(all.map(\.name).joined(separator: ", "))): add a line for it")
            }
            chosen.append(target)
        }
        return chosen
    }
}
