// Frames that cannot go into the segment being written live wait here: backfill from an
// agent's ring after an outage, a live frame that came too late, video before a keyframe.
// They are appended to `<root>/<camera>/fill.xtm` as they arrive (so a crash keeps them) and
// moved into segments at their place on the timeline by `CameraRecorder`'s fill pass.
import Foundation
import XTMedia

/// One camera's frames waiting to be filled into segments.
final class FillJournal {
    struct Entry {
        var stream: MediaStreamID
        var sequence: UInt64
        var kind: MediaKind
        var captureTime: CaptureTime
        var offset: Int
        var length: Int
    }

    let path: String
    /// Opened at the first frame kept (most cameras never need one).
    private var log: MediaRecordLog?
    /// Stream headers written to the log (each once per log).
    private var headers: [MediaStreamID: MediaStreamHeader] = [:]
    private(set) var entries: [Entry] = []
    private(set) var bytes = 0
    /// When the last frame was added (monotonic), to tell when a backfill has settled.
    private(set) var lastAdded: Int64 = 0

    /// Opens the journal of `directory`, reading back what a previous run left.
    init(directory: String) throws(StorageError) {
        path = (directory as NSString).appendingPathComponent("fill.xtm")
        guard FileManager.default.fileExists(atPath: path) else { return }
        let log: MediaRecordLog
        do {
            log = try MediaRecordLog(path: path, existing: true, owner: "the recorder", hint: "check the storage root is writable")
        } catch {
            throw .media(error)
        }
        self.log = log
        for (offset, message) in log.records() {
            switch try? MediaMessage.decode(message) {
            case .header(let header)?: headers[header.stream] = header
            case .frame(let frame)?:
                guard let header = headers[frame.stream] else { continue }
                entries.append(Entry(stream: frame.stream, sequence: frame.sequence, kind: header.description.codec.kind,
                                     captureTime: frame.frame.captureTime, offset: offset, length: message.count))
                bytes += message.count
            default: continue
            }
        }
        lastAdded = CaptureTime.monotonicNow
    }

    /// The headers of the streams it holds frames of.
    var streamHeaders: [MediaStreamHeader] { Array(headers.values) }

    /// Keeps a frame (its stream's header first, once).
    /// - Throws: ``StorageError`` when the disk refuses it.
    func append(_ frame: MediaFrame, header: MediaStreamHeader) throws(StorageError) {
        do throws(MediaError) {
            if log == nil {
                let directory = (path as NSString).deletingLastPathComponent
                do {
                    try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
                } catch {
                    throw MediaError.io("the recorder cannot create \(directory): \(error.localizedDescription): check the storage root is writable")
                }
                log = try MediaRecordLog(path: path, existing: false, owner: "the recorder", hint: "check the storage root is writable and has free space")
                headers = [:]
            }
            guard let log else { return }
            if headers[frame.stream] == nil {
                _ = try log.append(MediaMessage.header(header).encoded())
                headers[frame.stream] = header
            }
            var stored = frame
            stored.isBackfill = false
            let message = MediaMessage.frame(stored).encoded()
            let offset = try log.append(message)
            entries.append(Entry(stream: frame.stream, sequence: frame.sequence, kind: header.description.codec.kind,
                                 captureTime: frame.frame.captureTime, offset: offset, length: message.count))
            bytes += message.count
            lastAdded = CaptureTime.monotonicNow
        } catch {
            throw .media(error)
        }
    }

    /// The frame an entry points at.
    func frame(_ entry: Entry) -> MediaFrame? {
        guard let message = log?.read(offset: entry.offset, length: entry.length),
              case .frame(let frame)? = try? MediaMessage.decode(message) else { return nil }
        return frame
    }

    /// The header of a stream it holds.
    func header(_ stream: MediaStreamID) -> MediaStreamHeader? { headers[stream] }

    /// Forgets the entries `done` says were filled in, rewriting the file with the rest.
    func remove(where done: (Entry) -> Bool) throws(StorageError) {
        let keep = entries.filter { !done($0) }
        guard keep.count != entries.count else { return }
        if keep.isEmpty {
            log = nil
            unlink(path)
            headers = [:]
            entries = []
            bytes = 0
            return
        }
        let frames = keep.compactMap { entry in frame(entry).map { (entry, $0) } }
        let replacement = path + ".new"
        do throws(MediaError) {
            let fresh = try MediaRecordLog(path: replacement, existing: false, owner: "the recorder", hint: "free disk space")
            var written: Set<MediaStreamID> = []
            var rewritten: [Entry] = []
            var total = 0
            for (entry, frame) in frames {
                if written.insert(entry.stream).inserted, let header = headers[entry.stream] {
                    _ = try fresh.append(MediaMessage.header(header).encoded())
                }
                let message = MediaMessage.frame(frame).encoded()
                let offset = try fresh.append(message)
                rewritten.append(Entry(stream: entry.stream, sequence: entry.sequence, kind: entry.kind, captureTime: entry.captureTime,
                                       offset: offset, length: message.count))
                total += message.count
            }
            guard rename(replacement, path) == 0 else { throw MediaError.io("cannot replace \(path): \(String(cString: strerror(errno)))") }
            log = fresh
            headers = headers.filter { written.contains($0.key) }
            entries = rewritten
            bytes = total
        } catch {
            unlink(replacement)
            throw .media(error)
        }
    }
}
