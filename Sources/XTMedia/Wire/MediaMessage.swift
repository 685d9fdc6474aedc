// The media protocol between camera agents, the recorder and viewers, carried as the payload
// of node-network messages (see docs/PROTOCOL.md, "Media"):
//   agent → subscribers (live lanes): stream descriptions and frames;
//   agent → recorder (bulk lane): frames the recorder missed (backfill);
//   agent → recorder (control): an inventory of what its ring buffer holds;
//   recorder → agent: receipts (which frames of each stream it has);
//   viewer or recorder → agent: a keyframe request;
//   agent → recorder (control): motion grids of its raw pictures.

/// A stream: one camera's video or audio from one start of its agent.
public struct MediaStreamID: Hashable, Sendable, Comparable, CustomStringConvertible {
    public var value: UInt64
    public init(_ value: UInt64) { self.value = value }
    public static func random() -> MediaStreamID { MediaStreamID(UInt64.random(in: 1...UInt64.max)) }
    public static func < (lhs: MediaStreamID, rhs: MediaStreamID) -> Bool { lhs.value < rhs.value }
    public var description: String { String(value, radix: 16) }
}

/// Which stream a frame belongs to, under which camera, and how to decode it.
public struct MediaStreamHeader: Hashable, Sendable {
    public var stream: MediaStreamID
    public var camera: String
    public var description: StreamDescription

    public init(stream: MediaStreamID, camera: String, description: StreamDescription) {
        self.stream = stream
        self.camera = camera
        self.description = description
    }
}

/// One coded frame in a stream, numbered from 0 at the stream's start with no gaps.
public struct MediaFrame: Hashable, Sendable {
    public var stream: MediaStreamID
    public var sequence: UInt64
    public var frame: EncodedFrame
    /// Sent again from the ring buffer (not live).
    public var isBackfill: Bool

    public init(stream: MediaStreamID, sequence: UInt64, frame: EncodedFrame, isBackfill: Bool = false) {
        self.stream = stream
        self.sequence = sequence
        self.frame = frame
        self.isBackfill = isBackfill
    }
}

/// What an agent's ring buffer holds of one stream.
public struct InventoryEntry: Hashable, Sendable {
    public var header: MediaStreamHeader
    /// The oldest and newest sequences held.
    public var first: UInt64
    public var last: UInt64

    public init(header: MediaStreamHeader, first: UInt64, last: UInt64) {
        self.header = header
        self.first = first
        self.last = last
    }
}

/// What the recorder holds of one stream.
public struct ReceiptEntry: Hashable, Sendable {
    public var stream: MediaStreamID
    /// Received sequences, ascending and disjoint.
    public var ranges: [ClosedRange<UInt64>]

    public init(stream: MediaStreamID, ranges: [ClosedRange<UInt64>]) {
        self.stream = stream
        self.ranges = ranges
    }
}

/// A message of the media protocol.
public enum MediaMessage: Hashable, Sendable {
    case header(MediaStreamHeader)
    case frame(MediaFrame)
    case keyframeRequest(camera: String)
    case inventory(camera: String, [InventoryEntry])
    case receipt([ReceiptEntry])
    /// Where a camera's picture changed (the agent's motion detector, a few times a second).
    case motion(camera: String, MotionGrid)

    /// Version of this format, the first byte of every message. Version 2 added the frame's
    /// composition offset (B-frames); version 1 messages (ring files and journals written by
    /// older builds) still read, with an offset of 0.
    public static let version: UInt8 = 2
    /// The oldest version still read.
    public static let oldestReadableVersion: UInt8 = 1
    /// Sequences are below this (a stream would need 2^62 frames to reach it): larger ones are
    /// malformed, so that counting and ranges over them cannot overflow.
    public static let sequenceLimit: UInt64 = 1 << 62
    /// Most ranges a receipt entry carries (the oldest beyond are merged away).
    public static let maximumReceiptRanges = 512

    private enum Kind: UInt8 {
        case header = 1, frame = 2, keyframeRequest = 3, inventory = 4, receipt = 5, motion = 6
    }

    public func encoded() -> [UInt8] {
        var writer = MediaWriter(capacity: { if case .frame(let frame) = self { return frame.frame.data.count + 40 }; return 64 }())
        writer.u8(Self.version)
        switch self {
        case .header(let header):
            writer.u8(Kind.header.rawValue)
            Self.write(header, into: &writer)
        case .frame(let frame):
            writer.u8(Kind.frame.rawValue)
            writer.u64(frame.stream.value)
            writer.u64(frame.sequence)
            writer.i64(frame.frame.captureTime.nanoseconds)
            writer.u32(UInt32(clamping: frame.frame.duration / 1000))
            writer.u32(UInt32(clamping: min(max(frame.frame.compositionOffset, 0), EncodedFrame.maximumCompositionOffset) / 1000))
            writer.u8(frame.frame.codec.rawValue)
            writer.u8((frame.frame.isKeyframe ? 1 : 0) | (frame.isBackfill ? 2 : 0))
            writer.bytes += frame.frame.data
        case .keyframeRequest(let camera):
            writer.u8(Kind.keyframeRequest.rawValue)
            writer.text(camera)
        case .inventory(let camera, let entries):
            writer.u8(Kind.inventory.rawValue)
            writer.text(camera)
            writer.u16(UInt16(min(entries.count, 65_535)))
            for entry in entries.prefix(65_535) {
                Self.write(entry.header, into: &writer)
                writer.u64(entry.first)
                writer.u64(entry.last)
            }
        case .receipt(let entries):
            writer.u8(Kind.receipt.rawValue)
            writer.u16(UInt16(min(entries.count, 65_535)))
            for entry in entries.prefix(65_535) {
                writer.u64(entry.stream.value)
                let ranges = entry.ranges.suffix(Self.maximumReceiptRanges)
                writer.u16(UInt16(ranges.count))
                for range in ranges {
                    writer.u64(range.lowerBound)
                    writer.u64(range.upperBound)
                }
            }
        case .motion(let camera, let grid):
            writer.u8(Kind.motion.rawValue)
            writer.text(camera)
            writer.i64(grid.captureTime.nanoseconds)
            writer.u8(UInt8(MotionGrid.columns))
            writer.u8(UInt8(MotionGrid.rows))
            writer.bytes += grid.cells
        }
        return writer.bytes
    }

    /// Parses a message.
    /// - Throws: ``MediaError/malformed(_:file:line:)`` for anything that is not a whole,
    ///   well-formed message of this version.
    public static func decode(_ bytes: [UInt8]) throws(MediaError) -> MediaMessage {
        var reader = MediaReader(bytes)
        let version = try reader.u8()
        guard (Self.oldestReadableVersion...Self.version).contains(version) else {
            throw .malformed("media message version \(version) is not understood (this build speaks \(Self.version)): update the older side")
        }
        guard let kind = Kind(rawValue: try reader.u8()) else { throw .malformed("unknown media message kind") }
        let message: MediaMessage
        switch kind {
        case .header:
            message = .header(try readHeader(&reader))
        case .frame:
            let stream = MediaStreamID(try reader.u64())
            let sequence = try readSequence(&reader)
            let time = try readTime(&reader, "a frame")
            let duration = Int64(try reader.u32()) * 1000
            let compositionOffset = version >= 2 ? Int64(try reader.u32()) * 1000 : 0
            guard compositionOffset <= EncodedFrame.maximumCompositionOffset else {
                throw .malformed("a frame's composition offset of \(compositionOffset / 1_000_000) ms is above the \(EncodedFrame.maximumCompositionOffset / 1_000_000) ms allowed")
            }
            guard let codec = MediaCodec(rawValue: try reader.u8()) else { throw .malformed("unknown codec in a media frame") }
            let flags = try reader.u8()
            let frame = EncodedFrame(codec: codec, data: reader.rest(), captureTime: time, duration: duration, isKeyframe: flags & 1 != 0,
                                     compositionOffset: compositionOffset)
            return .frame(MediaFrame(stream: stream, sequence: sequence, frame: frame, isBackfill: flags & 2 != 0))
        case .keyframeRequest:
            message = .keyframeRequest(camera: try reader.text())
        case .inventory:
            let camera = try reader.text()
            var entries: [InventoryEntry] = []
            for _ in 0..<(try reader.u16()) {
                let header = try readHeader(&reader)
                let first = try readSequence(&reader), last = try readSequence(&reader)
                guard first <= last else { throw .malformed("an inventory entry's first sequence is after its last") }
                entries.append(InventoryEntry(header: header, first: first, last: last))
            }
            message = .inventory(camera: camera, entries)
        case .receipt:
            var entries: [ReceiptEntry] = []
            for _ in 0..<(try reader.u16()) {
                let stream = MediaStreamID(try reader.u64())
                var ranges: [ClosedRange<UInt64>] = []
                for _ in 0..<(try reader.u16()) {
                    let low = try readSequence(&reader), high = try readSequence(&reader)
                    guard low <= high, (ranges.last?.upperBound ?? 0) < low || ranges.isEmpty else {
                        throw .malformed("a receipt's ranges are not ascending and disjoint")
                    }
                    ranges.append(low...high)
                }
                entries.append(ReceiptEntry(stream: stream, ranges: ranges))
            }
            message = .receipt(entries)
        case .motion:
            let camera = try reader.text()
            let time = try readTime(&reader, "a motion grid")
            let columns = Int(try reader.u8()), rows = Int(try reader.u8())
            guard columns == MotionGrid.columns, rows == MotionGrid.rows, reader.remaining == columns * rows else {
                throw .malformed("a motion grid of \(columns)×\(rows) cells is not the \(MotionGrid.columns)×\(MotionGrid.rows) this build reads")
            }
            message = .motion(camera: camera, MotionGrid(cells: reader.rest(), captureTime: time))
        }
        guard reader.remaining == 0 else { throw .malformed("\(reader.remaining) bytes follow a media message") }
        return message
    }

    private static func write(_ header: MediaStreamHeader, into writer: inout MediaWriter) {
        writer.u64(header.stream.value)
        writer.text(header.camera)
        let description = header.description
        writer.u8(description.codec.rawValue)
        writer.u16(UInt16(clamping: description.width))
        writer.u16(UInt16(clamping: description.height))
        writer.u16(UInt16(clamping: description.frameRate))
        writer.u32(UInt32(clamping: description.sampleRate))
        writer.u8(UInt8(clamping: description.channels))
        writer.short(description.configuration)
    }

    /// A sequence number, checked against ``sequenceLimit`` where it enters.
    private static func readSequence(_ reader: inout MediaReader) throws(MediaError) -> UInt64 {
        let sequence = try reader.u64()
        guard sequence < sequenceLimit else { throw .malformed("a sequence number of \(sequence) is beyond the 2^62 a stream can reach") }
        return sequence
    }

    /// A capture time, checked against ``CaptureTime/validRange`` where it enters.
    private static func readTime(_ reader: inout MediaReader, _ what: String) throws(MediaError) -> CaptureTime {
        let time = CaptureTime(nanoseconds: try reader.i64())
        guard time.isValid else {
            throw .malformed("\(what) has a capture time of \(time.nanoseconds) ns since 1970, outside 1970–2199: check the agent's clock")
        }
        return time
    }

    private static func readHeader(_ reader: inout MediaReader) throws(MediaError) -> MediaStreamHeader {
        let stream = MediaStreamID(try reader.u64())
        let camera = try reader.text()
        guard let codec = MediaCodec(rawValue: try reader.u8()) else { throw .malformed("unknown codec in a stream header") }
        let width = Int(try reader.u16()), height = Int(try reader.u16()), frameRate = Int(try reader.u16())
        let sampleRate = Int(try reader.u32()), channels = Int(try reader.u8())
        let configuration = try reader.short()
        return MediaStreamHeader(stream: stream, camera: camera,
                                 description: StreamDescription(codec: codec, width: width, height: height, frameRate: frameRate,
                                                                sampleRate: sampleRate, channels: channels, configuration: configuration))
    }
}
