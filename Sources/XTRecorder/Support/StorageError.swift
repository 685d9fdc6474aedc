// The recorder's one error type: what went wrong with the storage root, a segment file, the
// index or the configuration, and what the user can do about it.
import Foundation
public import XTMedia

/// A failure of the recorder's storage, index or settings.
public struct StorageError: Error, Hashable, Sendable, CustomStringConvertible {
    /// The kind of failure.
    public enum Code: String, Hashable, Sendable {
        /// The storage root is missing, not a directory, or not writable.
        case storageRoot
        /// The disk is full (ENOSPC); the recorder frees space and goes on.
        case diskFull
        /// A file could not be read or written.
        case io
        /// A segment file that does not parse.
        case corruptSegment
        /// The index database failed.
        case index
        /// A setting that cannot work (unknown key, bad value).
        case invalidConfiguration
        /// Nothing recorded matches.
        case notFound
    }

    public let code: Code
    /// A sentence for a person: what happened and what to do about it.
    public let reason: String
    public let file: String
    public let line: Int

    public init(_ code: Code, _ reason: String, file: String = #fileID, line: Int = #line) {
        self.code = code
        self.reason = reason
        self.file = file
        self.line = line
    }

    public static func == (lhs: StorageError, rhs: StorageError) -> Bool { lhs.code == rhs.code }
    public func hash(into hasher: inout Hasher) { hasher.combine(code) }
    public var description: String { reason }

    public static func storageRoot(_ reason: String, file: String = #fileID, line: Int = #line) -> StorageError {
        StorageError(.storageRoot, reason, file: file, line: line)
    }
    public static func io(_ reason: String, file: String = #fileID, line: Int = #line) -> StorageError {
        StorageError(.io, reason, file: file, line: line)
    }
    public static func corruptSegment(_ reason: String, file: String = #fileID, line: Int = #line) -> StorageError {
        StorageError(.corruptSegment, reason, file: file, line: line)
    }
    public static func index(_ what: String, _ error: any Error, file: String = #fileID, line: Int = #line) -> StorageError {
        StorageError(.index, "the recording index failed \(what): \(error): if the index file is damaged, `xt recorder --reindex` rebuilds it from the segment files",
                     file: file, line: line)
    }
    public static func invalidConfiguration(_ reason: String, file: String = #fileID, line: Int = #line) -> StorageError {
        StorageError(.invalidConfiguration, reason, file: file, line: line)
    }
    public static func notFound(_ reason: String, file: String = #fileID, line: Int = #line) -> StorageError {
        StorageError(.notFound, reason, file: file, line: line)
    }

    /// A media-layer failure writing or reading storage: a full disk becomes ``Code/diskFull``.
    public static func media(_ error: MediaError, file: String = #fileID, line: Int = #line) -> StorageError {
        let full = error.reason.contains("No space left") || error.reason.contains("ENOSPC")
        return StorageError(full ? .diskFull : error.code == .malformed ? .corruptSegment : .io, error.reason, file: file, line: line)
    }
}
