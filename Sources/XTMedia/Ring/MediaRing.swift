// The agent's ring buffer: the last minutes of encoded media, in RAM or on disk, so that after
// an outage of the host or the network the recorder can be sent what it missed. Frames are
// appended into segments; the oldest segment goes when the ring holds more than its duration
// or its byte budget. On disk the ring survives a restart of the agent.
import Foundation

/// Where a frame is kept.
private struct Location {
    var segment: Int
    var offset: Int
    var length: Int
}

/// The encoded media of the last few minutes, by stream and sequence.
public final class MediaRing {
    /// How much stream time the ring keeps.
    public let retentionNanoseconds: Int64
    /// Most bytes it keeps.
    public let maximumBytes: Int
    /// The directory of a disk ring; nil in RAM.
    public let directory: String?
    private var segments: [MediaRecordLog] = []
    private var nextSegmentNumber = 0
    private var streams: [MediaStreamID: StreamIndex] = [:]
    /// Bytes held now.
    public private(set) var bytes = 0
    /// Frames the ring dropped to keep within its limits.
    public private(set) var evictedFrames = 0
    /// A segment is sealed (and may later be dropped whole) at this size or span.
    static let segmentBytes = 4 << 20
    static let segmentNanoseconds: Int64 = 10_000_000_000

    private struct StreamIndex {
        var header: MediaStreamHeader
        /// Sequence of `locations[0]`.
        var first: UInt64
        var locations: [Location?] = []
        /// Begun by this process and not ended: more frames may come.
        var isActive = false
        var last: UInt64? { locations.isEmpty ? nil : first + UInt64(locations.count - 1) }
    }

    /// - Parameters:
    ///   - retention: stream time kept (default 5 minutes).
    ///   - maximumBytes: bytes kept at most.
    ///   - directory: keep the ring in files there (read back if it holds a ring already);
    ///     nil keeps it in RAM.
    /// - Throws: ``MediaError`` when the directory cannot be used.
    public init(retention: Duration = .seconds(300), maximumBytes: Int = 512 << 20, directory: String? = nil) throws(MediaError) {
        retentionNanoseconds = Int64(retention.components.seconds) * 1_000_000_000 + retention.components.attoseconds / 1_000_000_000
        self.maximumBytes = maximumBytes
        self.directory = directory
        if let directory {
            do {
                try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            } catch {
                throw .io("the ring buffer directory \(directory) cannot be created (\(error.localizedDescription)): choose another ring-directory or use ring = ram")
            }
            try recover(directory)
        }
    }

    /// Streams held, with their oldest and newest sequences.
    public var inventory: [InventoryEntry] {
        streams.values.compactMap { index in
            guard let last = index.last else { return nil }
            return InventoryEntry(header: index.header, first: index.first, last: last)
        }.sorted { $0.header.stream < $1.header.stream }
    }

    /// The header of a stream held.
    public func header(of stream: MediaStreamID) -> MediaStreamHeader? { streams[stream]?.header }

    /// Starts keeping a stream (its header is written first, so a disk ring can be read back).
    public func begin(_ header: MediaStreamHeader) throws(MediaError) {
        guard streams[header.stream] == nil else { return }
        streams[header.stream] = StreamIndex(header: header, first: 0, isActive: true)
        _ = try store(MediaMessage.header(header).encoded(), newest: nil)
    }

    /// Marks a stream ended: once its frames age out, the ring forgets it.
    public func end(_ stream: MediaStreamID) { streams[stream]?.isActive = false }

    /// Keeps a frame. Sequences of a stream must follow on from the last kept.
    /// - Throws: ``MediaError`` when the stream was not begun, or the disk is full (the frame
    ///   is then not kept; the caller counts it).
    public func append(_ frame: MediaFrame) throws(MediaError) {
        guard var index = streams[frame.stream] else {
            throw .invalidConfiguration("stream \(frame.stream) was not begun in the ring")
        }
        if index.locations.isEmpty { index.first = frame.sequence }
        let expected = index.first + UInt64(index.locations.count)
        guard frame.sequence >= expected else { return }  // already kept
        var stored = frame
        stored.isBackfill = false
        let encoded = MediaMessage.frame(stored).encoded()
        let location = try store(encoded, newest: frame.frame.captureTime)
        // A frame the ring could not keep earlier leaves a hole; later frames still count.
        while index.first + UInt64(index.locations.count) < frame.sequence { index.locations.append(nil) }
        index.locations.append(location)
        segments.last!.lastSequence[frame.stream] = frame.sequence
        streams[frame.stream] = index
        evict()
    }

    /// The frame `sequence` of `stream`, if the ring holds it.
    public func frame(_ stream: MediaStreamID, _ sequence: UInt64) -> MediaFrame? {
        guard let index = streams[stream], sequence >= index.first, sequence < index.first + UInt64(index.locations.count),
              let location = index.locations[Int(sequence - index.first)],
              let segment = segments.first(where: { $0.number == location.segment }),
              let bytes = segment.read(offset: location.offset, length: location.length),
              case .frame(let frame)? = try? MediaMessage.decode(bytes) else { return nil }
        return frame
    }

    /// The sequence range held of `stream`.
    public func range(of stream: MediaStreamID) -> ClosedRange<UInt64>? {
        guard let index = streams[stream], let last = index.last else { return nil }
        return index.first...last
    }

    // MARK: - Segments

    private func store(_ message: [UInt8], newest: CaptureTime?) throws(MediaError) -> Location {
        if segments.isEmpty || shouldSeal(segments.last!, adding: newest) { try openSegment() }
        let segment = segments.last!
        let before = segment.size
        let offset = try segment.append(message)
        bytes += segment.size - before
        if let newest, newest > segment.newest { segment.newest = newest }
        return Location(segment: segment.number, offset: offset, length: message.count)
    }

    private func shouldSeal(_ segment: MediaRecordLog, adding time: CaptureTime?) -> Bool {
        if segment.size >= Self.segmentBytes { return true }
        guard let time, let first = firstTime[segment.number] else { return false }
        return time.nanoseconds(since: first) >= Self.segmentNanoseconds
    }

    /// Capture time of each segment's first frame.
    private var firstTime: [Int: CaptureTime] = [:]

    private func openSegment() throws(MediaError) {
        let segment = if let directory { try MediaRecordLog(number: nextSegmentNumber, directory: directory) } else { MediaRecordLog(number: nextSegmentNumber) }
        nextSegmentNumber += 1
        segments.append(segment)
        // Headers of the streams still held go first, so this segment reads back on its own.
        for index in streams.values.sorted(by: { $0.header.stream < $1.header.stream }) {
            let before = segment.size
            _ = try segment.append(MediaMessage.header(index.header).encoded())
            bytes += segment.size - before
        }
    }

    /// Drops the oldest segments while the ring is over its duration or byte budget.
    private func evict() {
        guard let newest = segments.last?.newest else { return }
        if firstTime[segments.last!.number] == nil { firstTime[segments.last!.number] = newest }
        while segments.count > 1 {
            let oldest = segments[0]
            let tooOld = newest.nanoseconds(since: oldest.newest) > retentionNanoseconds
            guard tooOld || bytes > maximumBytes else { break }
            drop(oldest)
        }
    }

    private func drop(_ segment: MediaRecordLog) {
        segments.removeFirst()
        bytes -= segment.size
        firstTime[segment.number] = nil
        for (stream, last) in segment.lastSequence {
            guard var index = streams[stream], last >= index.first else { continue }
            let count = min(Int(last - index.first + 1), index.locations.count)
            evictedFrames += index.locations[0..<count].reduce(0) { $0 + ($1 == nil ? 0 : 1) }
            index.locations.removeFirst(count)
            index.first = last + 1
            streams[stream] = index
        }
        // Streams that ended and have nothing left are forgotten.
        streams = streams.filter { $0.value.isActive || !$0.value.locations.isEmpty }
        segment.delete()
    }

    // MARK: - Recovery

    /// Reads a disk ring back after a restart.
    private func recover(_ directory: String) throws(MediaError) {
        let names = ((try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? [])
            .filter { $0.hasPrefix("ring-") && $0.hasSuffix(".xtm") }.sorted()
        for name in names {
            // Numbers count up from 0; a name beyond a billion is not one of ours.
            guard let number = Int(name.dropFirst(5).dropLast(4)), (0..<1_000_000_000).contains(number) else { continue }
            let segment = try MediaRecordLog(number: number, directory: directory, existing: true)
            segments.append(segment)
            nextSegmentNumber = number + 1
            bytes += segment.size
            for (offset, message) in segment.records() {
                switch try? MediaMessage.decode(message) {
                case .header(let header)?:
                    if streams[header.stream] == nil { streams[header.stream] = StreamIndex(header: header, first: 0) }
                case .frame(let frame)?:
                    guard var index = streams[frame.stream] else { continue }
                    if index.locations.isEmpty { index.first = frame.sequence }
                    // Already held, or (a damaged file) further ahead than any ring could reach.
                    let expected = index.first + UInt64(index.locations.count)
                    guard frame.sequence >= expected, frame.sequence - expected < 1 << 24 else { continue }
                    while index.first + UInt64(index.locations.count) < frame.sequence { index.locations.append(nil) }
                    index.locations.append(Location(segment: number, offset: offset, length: message.count))
                    streams[frame.stream] = index
                    segment.lastSequence[frame.stream] = frame.sequence
                    if frame.frame.captureTime > segment.newest { segment.newest = frame.frame.captureTime }
                    if firstTime[number] == nil { firstTime[number] = frame.frame.captureTime }
                default:
                    continue
                }
            }
        }
        streams = streams.filter { !$0.value.locations.isEmpty }
        evict()
    }
}
