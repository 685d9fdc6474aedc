// Who may use the web UI, and who is logged in. Users come from Config/recorder.conf
// (`user.NAME = role hash`, read-only here) and from a users file the recorder owns
// (`<storage>/web-users.conf`, same lines), where the first-run prompt and the admin's Users
// API write. Passwords are kept only as salted PBKDF2 hashes (``UserAccount``). A login gets a
// random session token, sent back as an HttpOnly, SameSite=Strict cookie; sessions expire after
// 12 idle hours and live in memory (a restarted recorder asks everyone to log in again).
// Five wrong passwords in a row for one name lock that name for a minute.
import Foundation
import NIOPosix
import Synchronization

/// A logged-in user as the web layer sees them.
public struct WebUser: Sendable, Codable, Equatable {
    public var name: String
    public var role: UserAccount.Role

    public init(name: String, role: UserAccount.Role) {
        self.name = name
        self.role = role
    }
}

extension UserAccount.Role: Codable {}

/// Why a login or a change of users was refused.
public enum WebAccountError: Error, Equatable, CustomStringConvertible {
    case wrongPassword
    case locked(seconds: Int)
    case noUsers
    case invalid(String)
    case notFound(String)
    case fromConfig(String)
    case cannotSave(String)

    public var description: String {
        switch self {
        case .wrongPassword: "wrong user name or password"
        case .locked(let seconds): "too many wrong passwords for this user: try again in \(seconds) s"
        case .noUsers:
            "no web users yet: add one with `xt recorder passwd NAME --role admin` to Config/recorder.conf, or start `xt recorder` in a terminal to be asked for the first admin"
        case .invalid(let reason): reason
        case .notFound(let name): "no user '\(name)'"
        case .fromConfig(let name): "user '\(name)' is set in the recorder's config file: change it there"
        case .cannotSave(let reason): "the users file cannot be written: \(reason)"
        }
    }
}

/// The web UI's users and sessions.
public final class WebAccounts: Sendable {
    /// Name of the cookie that carries the session token.
    public static let cookieName = "xt_session"
    /// A session ends after this long without a request.
    public static let idleLimit: Duration = .seconds(12 * 3600)
    /// Wrong passwords for one name before it is locked, and for how long.
    static let failureLimit = 5
    static let lockSeconds = 60

    private struct Session {
        var user: WebUser
        var lastUsed: ContinuousClock.Instant
    }

    private struct State {
        var configured: [String: UserAccount]
        var saved: [String: UserAccount]
        var sessions: [String: Session] = [:]
        /// Wrong passwords per name: how many in a row, and when the last was.
        var failures: [String: (count: Int, last: ContinuousClock.Instant)] = [:]
    }

    private let state: Mutex<State>
    /// The users file (nil: users come from the config only).
    public let file: String?

    /// PBKDF2 rounds for passwords saved here.
    let rounds: Int

    /// Users from the config, and those in `file` (read now; a missing file is an empty one).
    /// `rounds` is for new hashes (tests use fewer).
    /// - Throws: ``WebAccountError/invalid(_:)`` naming the line of `file` that is wrong.
    public init(configured: [UserAccount], file: String?, rounds: Int = UserAccount.rounds) throws(WebAccountError) {
        self.file = file
        self.rounds = rounds
        var saved: [String: UserAccount] = [:]
        if let file, let text = try? String(contentsOfFile: file, encoding: .utf8) {
            for (number, line) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
                let trimmed = line.trimmingCharacters(in: .whitespaces)
                if trimmed.isEmpty || trimmed.hasPrefix("#") { continue }
                guard let account = Self.parse(trimmed) else {
                    throw .invalid("\(file):\(number + 1): not a user line (`user.NAME = viewer|admin pbkdf2-sha256$…`): fix or delete it")
                }
                saved[account.name] = account
            }
        }
        state = Mutex(State(configured: Dictionary(configured.map { ($0.name, $0) }, uniquingKeysWith: { $1 }), saved: saved))
    }

    /// Whether nobody can log in yet.
    public var isEmpty: Bool { state.withLock { $0.configured.isEmpty && $0.saved.isEmpty } }

    /// Every user, with where they are set.
    public func users() -> [(user: WebUser, inConfig: Bool)] {
        state.withLock { state in
            let all = state.saved.merging(state.configured) { $1 }
            return all.values.sorted { $0.name < $1.name }.map { (WebUser(name: $0.name, role: $0.role), state.configured[$0.name] != nil) }
        }
    }

    /// Checks a password (off the caller's thread: a PBKDF2 hash takes a while) and opens a session.
    public func login(name: String, password: String) async throws(WebAccountError) -> (token: String, user: WebUser) {
        let now = ContinuousClock.now
        let account: UserAccount? = try state.withLock { (state) throws(WebAccountError) -> UserAccount? in
            if state.configured.isEmpty && state.saved.isEmpty { throw .noUsers }
            if let failures = state.failures[name], failures.count >= Self.failureLimit {
                let waited = now - failures.last
                if waited < .seconds(Self.lockSeconds) { throw .locked(seconds: Self.lockSeconds - Int(waited.components.seconds)) }
                state.failures[name] = nil
            }
            return state.configured[name] ?? state.saved[name]
        }
        // A name that does not exist costs as much as a wrong password.
        let checked = account ?? UserAccount(name: name, role: .viewer, passwordHash: Self.decoyHash)
        let matches = (try? await Self.hashing.runIfActive { checked.verify(password: password) }) ?? false
        guard account != nil, matches else {
            state.withLock { state in
                let now = ContinuousClock.now
                var failures = state.failures[name] ?? (0, now)
                // A minute without a wrong password forgives the earlier ones.
                if now - failures.last > .seconds(Self.lockSeconds) { failures.count = 0 }
                failures.count += 1
                failures.last = now
                state.failures[name] = failures
            }
            throw .wrongPassword
        }
        let token = Self.newToken()
        let user = WebUser(name: checked.name, role: checked.role)
        state.withLock { state in
            state.failures[name] = nil
            state.sessions[token] = Session(user: user, lastUsed: now)
            // Expired sessions go when someone logs in.
            state.sessions = state.sessions.filter { now - $0.value.lastUsed < Self.idleLimit }
        }
        return (token, user)
    }

    /// The user of a session token, if it is open (and keeps it open).
    public func user(token: String) -> WebUser? {
        let now = ContinuousClock.now
        return state.withLock { state in
            guard var session = state.sessions[token] else { return nil }
            guard now - session.lastUsed < Self.idleLimit,
                  let account = state.configured[session.user.name] ?? state.saved[session.user.name] else {
                state.sessions[token] = nil
                return nil
            }
            // A user whose role changed has the new role from the next request.
            session.user.role = account.role
            session.lastUsed = now
            state.sessions[token] = session
            return session.user
        }
    }

    /// Ends a session.
    public func logout(token: String) {
        _ = state.withLock { $0.sessions.removeValue(forKey: token) }
    }

    /// Adds or changes a user in the users file.
    public func save(name: String, role: UserAccount.Role, password: String) async throws(WebAccountError) {
        guard name.count <= 64, UserAccount.isValidName(name) else {
            throw .invalid("'\(name)' is not a user name: use up to 64 letters, digits, '-', '_' and '.'")
        }
        guard password.count >= 8 else { throw .invalid("a password needs at least 8 characters") }
        guard file != nil else { throw .cannotSave("this recorder keeps users only in its config file") }
        if state.withLock({ $0.configured[name] != nil }) { throw .fromConfig(name) }
        let rounds = self.rounds
        let hash = (try? await Self.hashing.runIfActive { UserAccount.hash(password: password, rounds: rounds) })
            ?? UserAccount.hash(password: password, rounds: rounds)
        try change { $0[name] = UserAccount(name: name, role: role, passwordHash: hash) }
    }

    /// Removes a user from the users file, ending their sessions.
    public func remove(name: String) throws(WebAccountError) {
        if state.withLock({ $0.configured[name] != nil }) { throw .fromConfig(name) }
        guard state.withLock({ $0.saved[name] != nil }) else { throw .notFound(name) }
        try change { $0[name] = nil }
        state.withLock { state in state.sessions = state.sessions.filter { $0.value.user.name != name } }
    }

    /// Changes the saved users and writes the file (aside, then renamed into place).
    private func change(_ edit: (inout [String: UserAccount]) -> Void) throws(WebAccountError) {
        guard let file else { throw .cannotSave("this recorder keeps users only in its config file") }
        try state.withLock { (state) throws(WebAccountError) in
            var saved = state.saved
            edit(&saved)
            let text = "# Web UI users, written by xt recorder (the first-run prompt and the Users API).\n"
                + saved.values.sorted { $0.name < $1.name }.map { $0.settingLine + "\n" }.joined()
            let aside = file + ".new"
            do {
                try Data(text.utf8).write(to: URL(fileURLWithPath: aside))
                chmod(aside, 0o600)
                guard rename(aside, file) == 0 else { throw CocoaError(.fileWriteUnknown) }
            } catch {
                throw .cannotSave("\(file): \(error.localizedDescription)")
            }
            state.saved = saved
        }
    }

    /// `user.NAME = role hash`.
    static func parse(_ line: String) -> UserAccount? {
        guard line.hasPrefix("user."), let equals = line.firstIndex(of: "=") else { return nil }
        let name = line[line.index(line.startIndex, offsetBy: 5)..<equals].trimmingCharacters(in: .whitespaces)
        return UserAccount(name: name, setting: line[line.index(after: equals)...])
    }

    /// 32 random bytes, base64url.
    static func newToken() -> String {
        var generator = SystemRandomNumberGenerator()
        let bytes = (0..<32).map { _ in UInt8.random(in: 0...255, using: &generator) }
        return Data(bytes).base64EncodedString().replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
    }

    /// Where passwords are hashed: one thread of its own, so that a login neither blocks an
    /// event loop nor waits behind file reads on the shared pool (and guesses queue up).
    private static let hashing: NIOThreadPool = {
        let pool = NIOThreadPool(numberOfThreads: 1)
        pool.start()
        return pool
    }()

    /// Checked when the name is unknown, so that the answer takes as long either way.
    private static let decoyHash = UserAccount.hash(password: "decoy password, never matches \(UInt64.random(in: 0...UInt64.max))")
}
