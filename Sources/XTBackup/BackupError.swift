// The errors of backup, each with what to do about it.

/// Why a backup operation failed. Every case's text tells the user what to do.
public enum BackupError: Error, Sendable, Equatable, CustomStringConvertible {
    /// A value from outside (command line, config, a file) is unusable.
    case badInput(String)
    /// A file or directory could not be read or written (path, and what the system said).
    case io(String)
    /// The store has no room for the chunk under its quota.
    case quotaFull(used: UInt64, quota: UInt64)
    /// A Pi could not be reached or refused the session.
    case unreachable(String)
    /// A peer sent something that does not follow the protocol.
    case protocolViolation(String)
    /// Something the backup needs is on none of the Pis that answered.
    case missing(String)

    public var description: String {
        switch self {
        case .badInput(let text), .io(let text), .unreachable(let text), .missing(let text): text
        case .protocolViolation(let text): "protocol error: \(text)"
        case .quotaFull(let used, let quota):
            "the store is full (\(used) of its \(quota)-byte quota used): raise --quota on the Pi, or forget and prune old snapshots"
        }
    }
}
