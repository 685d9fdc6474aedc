// A subscriber's memory of the alarms it has handled, in a small file, so that an alarm sent
// again (the recorder did not see the ack, or either side restarted) is acknowledged without
// being handled twice. Each alarm is written "received" before it is handled and "handled"
// after; one received but not handled when the subscriber stopped is handled at the next start.
import Foundation

/// Alarm numbers a subscriber has seen, kept on disk.
public final class AlarmSubscriberState {
    public let path: String
    private var handled: Set<Int64> = []
    private var order: [Int64] = []
    /// Received before a stop and not handled: to be handled now.
    public private(set) var unfinished: [Int64] = []
    private var handle: FileHandle?
    private var lines = 0
    /// Numbers remembered (the oldest beyond are forgotten when the file is compacted).
    public let remembered: Int

    /// Opens (creating) the state file.
    /// - Throws: ``StorageError`` when it cannot be read or written.
    public init(path: String, remembered: Int = 10_000) throws(StorageError) {
        self.path = path
        self.remembered = remembered
        let text = (try? String(contentsOfFile: path, encoding: .utf8)) ?? ""
        var received: [Int64] = []
        for line in text.split(separator: "\n") {
            let parts = line.split(separator: " ")
            guard parts.count == 2, let id = Int64(parts[1]) else { continue }
            lines += 1
            if parts[0] == "R" {
                received.append(id)
            } else if parts[0] == "H", handled.insert(id).inserted {
                order.append(id)
            }
        }
        unfinished = received.filter { !handled.contains($0) }
        let directory = (path as NSString).deletingLastPathComponent
        if !directory.isEmpty { try? FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true) }
        if !FileManager.default.fileExists(atPath: path) { FileManager.default.createFile(atPath: path, contents: nil) }
        guard let handle = FileHandle(forWritingAtPath: path) else {
            throw .io("cannot write the alarm state file \(path): choose another --state or fix its permissions")
        }
        self.handle = handle
        _ = try? handle.seekToEnd()
    }

    deinit { try? handle?.close() }

    /// Whether alarm `id` was handled already.
    public func hasHandled(_ id: Int64) -> Bool { handled.contains(id) }

    /// Notes that alarm `id` is about to be handled (on disk before it is).
    public func received(_ id: Int64) throws(StorageError) { try append("R \(id)\n") }

    /// Notes that alarm `id` was handled.
    public func finished(_ id: Int64) throws(StorageError) {
        guard handled.insert(id).inserted else { return }
        order.append(id)
        unfinished.removeAll { $0 == id }
        try append("H \(id)\n")
        if lines > 3 * remembered { try compact() }
    }

    private func append(_ line: String) throws(StorageError) {
        do {
            try handle?.write(contentsOf: Data(line.utf8))
            try handle?.synchronize()
            lines += 1
        } catch {
            throw .io("cannot write the alarm state file \(path) (\(error.localizedDescription)): free disk space")
        }
    }

    /// Keeps the newest numbers only.
    private func compact() throws(StorageError) {
        let keep = order.suffix(remembered)
        let text = (keep.map { "H \($0)" } + unfinished.map { "R \($0)" }).joined(separator: "\n") + "\n"
        let temporary = path + ".new"
        do {
            try Data(text.utf8).write(to: URL(fileURLWithPath: temporary))
            try? handle?.close()
            guard rename(temporary, path) == 0 else { throw StorageError.io("cannot replace \(path)") }
            handle = FileHandle(forWritingAtPath: path)
            _ = try handle?.seekToEnd()
        } catch {
            throw .io("cannot compact the alarm state file \(path): \(error)")
        }
        order = Array(keep)
        handled = Set(keep)
        lines = keep.count + unfinished.count
    }
}
