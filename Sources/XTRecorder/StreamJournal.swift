// The recorder's journal of one stream: every frame received (live or backfilled), appended
// as it arrives, in `<root>/<camera>/<stream>.xtm`. It is read back at start-up, so after a
// restart the recorder knows what it has and asks agents only for the rest.
import Foundation
public import XTMedia

/// One stream's frames on disk and which sequences are there.
public final class StreamJournal {
    public let header: MediaStreamHeader
    public private(set) var received = SequenceSet()
    private let log: MediaRecordLog
    /// Capture time of the first and last frame held.
    public private(set) var firstTime: CaptureTime?
    public private(set) var lastTime: CaptureTime?

    /// A new journal for a stream first heard of now.
    /// - Throws: ``MediaError`` when its file cannot be created.
    public init(root: String, header: MediaStreamHeader) throws(MediaError) {
        self.header = header
        let directory = (root as NSString).appendingPathComponent(header.camera)
        do {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        } catch {
            throw .io("the recorder cannot create \(directory) (\(error.localizedDescription)): check the storage root exists and is writable")
        }
        log = try MediaRecordLog(path: (directory as NSString).appendingPathComponent("\(header.stream).xtm"), existing: false,
                                 owner: "the recorder", hint: "check the storage root is writable")
        _ = try log.append(MediaMessage.header(header).encoded())
    }

    /// A journal read back from its file; nil when the file holds no stream header.
    public init?(path: String) {
        guard let log = try? MediaRecordLog(path: path, existing: true, owner: "the recorder", hint: "") else { return nil }
        var header: MediaStreamHeader?
        var frames: [MediaFrame] = []
        for (_, message) in log.records() {
            switch try? MediaMessage.decode(message) {
            case .header(let found)?: if header == nil { header = found }
            case .frame(let frame)?: frames.append(frame)
            default: continue
            }
        }
        guard let header else { return nil }
        self.header = header
        self.log = log
        for frame in frames where frame.stream == header.stream { note(frame) }
    }

    private func note(_ frame: MediaFrame) {
        received.insert(frame.sequence)
        if firstTime == nil || frame.frame.captureTime < firstTime! { firstTime = frame.frame.captureTime }
        if lastTime == nil || frame.frame.captureTime > lastTime! { lastTime = frame.frame.captureTime }
    }

    /// Keeps a frame; returns false for one held already.
    /// - Throws: ``MediaError`` when the disk cannot take it (it is then not counted as held,
    ///   so the agent sends it again).
    public func append(_ frame: MediaFrame) throws(MediaError) -> Bool {
        guard !received.contains(frame.sequence) else { return false }
        var stored = frame
        stored.isBackfill = false
        _ = try log.append(MediaMessage.frame(stored).encoded())
        note(frame)
        return true
    }

    /// Every frame held, in sequence order.
    public func frames() -> [MediaFrame] {
        var frames: [UInt64: MediaFrame] = [:]
        for (_, message) in log.records() {
            if case .frame(let frame)? = try? MediaMessage.decode(message), frame.stream == header.stream { frames[frame.sequence] = frame }
        }
        return frames.keys.sorted().map { frames[$0]! }
    }

    /// The journals under `root`, read back.
    public static func load(root: String) -> [StreamJournal] {
        let fileManager = FileManager.default
        var journals: [StreamJournal] = []
        for camera in (try? fileManager.contentsOfDirectory(atPath: root)) ?? [] {
            let directory = (root as NSString).appendingPathComponent(camera)
            for name in (try? fileManager.contentsOfDirectory(atPath: directory)) ?? [] where name.hasSuffix(".xtm") {
                if let journal = StreamJournal(path: (directory as NSString).appendingPathComponent(name)) { journals.append(journal) }
            }
        }
        return journals
    }
}
