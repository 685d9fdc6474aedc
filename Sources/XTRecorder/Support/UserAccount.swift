// People who may use the recorder's web UI: a name, a role, and a password kept only as a
// salted PBKDF2-SHA256 hash (600,000 rounds, as OWASP advises), written
// `pbkdf2-sha256$ROUNDS$SALT$HASH` (base64) in Config/recorder.conf by `xt recorder passwd`.
import Crypto
import CryptoExtras
import Foundation

/// One user of the web UI.
public struct UserAccount: Sendable, Equatable {
    public enum Role: String, Sendable, Equatable, CaseIterable {
        /// Sees live video, recordings and events.
        case viewer
        /// Also manages cameras, subscriptions and users.
        case admin
    }

    public var name: String
    public var role: Role
    /// `pbkdf2-sha256$ROUNDS$SALT$HASH`.
    public var passwordHash: String

    public init(name: String, role: Role, passwordHash: String) {
        self.name = name
        self.role = role
        self.passwordHash = passwordHash
    }

    /// Whether `name` can be a user's name: letters, digits, '-', '_' and '.'.
    public static func isValidName(_ name: String) -> Bool {
        !name.isEmpty && name.allSatisfy { $0.isLetter || $0.isNumber || $0 == "-" || $0 == "_" || $0 == "." }
    }

    /// A user from the value of a `user.NAME = ROLE HASH` setting; nil when it is not one.
    public init?(name: String, setting value: some StringProtocol) {
        let parts = value.split(separator: " ", omittingEmptySubsequences: true)
        guard Self.isValidName(name), parts.count == 2, let role = Role(rawValue: String(parts[0])), Self.isValidHash(String(parts[1])) else {
            return nil
        }
        self.init(name: name, role: role, passwordHash: String(parts[1]))
    }

    /// The user as a settings line: `user.NAME = ROLE HASH`.
    public var settingLine: String { "user.\(name) = \(role.rawValue) \(passwordHash)" }

    static let scheme = "pbkdf2-sha256"
    /// Rounds for new hashes.
    public static let rounds = 600_000

    /// A new hash of `password` with a random salt.
    public static func hash(password: String, rounds: Int = rounds) -> String {
        let salt = (0..<16).map { _ in UInt8.random(in: 0...255) }
        let key = derive(password, salt: salt, rounds: rounds)
        return "\(scheme)$\(rounds)$\(Data(salt).base64EncodedString())$\(key.base64EncodedString())"
    }

    private static func derive(_ password: String, salt: [UInt8], rounds: Int) -> Data {
        let key = try? KDF.Insecure.PBKDF2.deriveKey(from: Array(password.utf8), salt: salt, using: .sha256, outputByteCount: 32,
                                                     unsafeUncheckedRounds: rounds)
        return key.map { $0.withUnsafeBytes { Data($0) } } ?? Data()
    }

    /// Rounds a stored hash may ask for: at least 100,000 (weaker is refused), at most 10,000,000
    /// (more would let one edited line hold every login for minutes, or overflow the library's
    /// 32-bit count).
    static let acceptedRounds = 100_000...10_000_000

    /// Whether a stored hash has the right form.
    public static func isValidHash(_ text: String) -> Bool {
        let parts = text.split(separator: "$", omittingEmptySubsequences: false)
        guard parts.count == 4, parts[0] == scheme, let rounds = Int(parts[1]), Self.acceptedRounds.contains(rounds),
              let salt = Data(base64Encoded: String(parts[2])), salt.count >= 8, let hash = Data(base64Encoded: String(parts[3])),
              hash.count == 32 else { return false }
        return true
    }

    /// Whether `password` is this user's (compared in constant time).
    public func verify(password: String) -> Bool {
        let parts = passwordHash.split(separator: "$", omittingEmptySubsequences: false)
        guard parts.count == 4, parts[0] == Self.scheme, let rounds = Int(parts[1]), Self.acceptedRounds.contains(rounds),
              let salt = Data(base64Encoded: String(parts[2])),
              let expected = Data(base64Encoded: String(parts[3])) else { return false }
        let actual = Self.derive(password, salt: [UInt8](salt), rounds: rounds)
        guard actual.count == expected.count else { return false }
        return zip(actual, expected).reduce(UInt8(0)) { $0 | ($1.0 ^ $1.1) } == 0
    }
}
