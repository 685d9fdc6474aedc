// Walks the paths to back up: every folder, file and symbolic link below them, in a fixed
// order, with what the manifest records (mode, mtime, size, inode). Nothing is read yet.
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// One thing found by the scan: where it is on disk, and its manifest entry (chunks still empty).
public struct ScannedEntry: Sendable {
    public var absolutePath: String
    public var entry: ManifestEntry
}

/// What the scan could not read (reported, not fatal: the rest is backed up).
public struct ScanProblem: Sendable, CustomStringConvertible {
    public var path: String
    public var reason: String
    public var description: String { "\(path): \(reason)" }
}

public enum FileScanner {
    /// Scans `paths` (files or folders).
    /// - Parameter only: the manifest paths (`NAME/…`, NAME the last part of a path given) of
    ///   the files to take; the folders above them come too, nothing else. nil: everything.
    /// - Returns: entries sorted by their manifest path, and what could not be read.
    public static func scan(_ paths: [String], only: Set<String>?) throws(BackupError) -> (entries: [ScannedEntry], problems: [ScanProblem]) {
        let (entries, problems) = try scan(paths)
        guard let only else { return (entries, problems) }
        var folders: Set<Substring> = []
        for path in only {
            var rest = Substring(path)
            while let slash = rest.lastIndex(of: "/") {
                rest = rest[..<slash]
                guard folders.insert(rest).inserted else { break }
            }
        }
        return (entries.filter { $0.entry.kind == .directory ? folders.contains(Substring($0.entry.path)) : only.contains($0.entry.path) }, problems)
    }

    /// Scans `paths` (files or folders).
    /// - Returns: entries sorted by their manifest path, and what could not be read.
    /// - Throws: ``BackupError/badInput(_:)`` if a path does not exist, or two paths end in the
    ///   same name (their entries would collide in the snapshot).
    public static func scan(_ paths: [String]) throws(BackupError) -> (entries: [ScannedEntry], problems: [ScanProblem]) {
        var entries: [ScannedEntry] = []
        var problems: [ScanProblem] = []
        var roots: Set<String> = []
        for given in paths {
            let absolute = URL(fileURLWithPath: given).standardizedFileURL.path
            let name = (absolute as NSString).lastPathComponent
            guard !name.isEmpty, name != "/" else { throw .badInput("cannot back up \(given) as a whole: name the folders below it") }
            guard roots.insert(name).inserted else {
                throw .badInput("two paths end in \(name): back up their parent folder instead, or run two backups")
            }
            var info = stat()
            guard lstat(absolute, &info) == 0 else {
                throw .badInput("\(given) does not exist or cannot be read: check the path")
            }
            walk(absolute, relative: name, info: info, into: &entries, problems: &problems)
        }
        entries.sort { $0.entry.path < $1.entry.path }
        return (entries, problems)
    }

    private static func walk(_ path: String, relative: String, info: stat, into entries: inout [ScannedEntry], problems: inout [ScanProblem]) {
        let mode = UInt32(info.st_mode)
        let mtime = Int64(info.st_mtim.tv_sec) * 1_000_000_000 + Int64(info.st_mtim.tv_nsec)
        let kind: ManifestEntry.Kind
        var target: String?
        switch mode & UInt32(S_IFMT) {
        case UInt32(S_IFREG): kind = .file
        case UInt32(S_IFDIR): kind = .directory
        case UInt32(S_IFLNK):
            kind = .symlink
            var buffer = [CChar](repeating: 0, count: 4096)
            let count = readlink(path, &buffer, buffer.count - 1)
            guard count >= 0 else {
                problems.append(ScanProblem(path: path, reason: "cannot read the link (\(String(cString: strerror(errno))))"))
                return
            }
            target = String(decoding: buffer[0..<count].map { UInt8(bitPattern: $0) }, as: UTF8.self)
        default:
            return  // sockets, devices, fifos: not backed up
        }
        entries.append(ScannedEntry(absolutePath: path, entry: ManifestEntry(
            path: relative, kind: kind, mode: mode & 0o7777, mtime: mtime, size: kind == .file ? UInt64(info.st_size) : 0,
            inode: UInt64(info.st_ino), target: target)))
        guard kind == .directory else { return }
        let names: [String]
        do {
            names = try FileManager.default.contentsOfDirectory(atPath: path)
        } catch {
            problems.append(ScanProblem(path: path, reason: "cannot list the folder: check its permissions"))
            return
        }
        for name in names.sorted() {
            let child = path + "/" + name
            var childInfo = stat()
            guard lstat(child, &childInfo) == 0 else {
                problems.append(ScanProblem(path: child, reason: "vanished or unreadable during the scan"))
                continue
            }
            walk(child, relative: relative + "/" + name, info: childInfo, into: &entries, problems: &problems)
        }
    }
}
