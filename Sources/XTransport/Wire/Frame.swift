// Frames: the units inside a sealed data packet. `FrameDecoder` walks a decrypted payload
// without copying (views into the packet); `Frame` is the owned form used by tests, the
// fuzzer and the encoder's round trips.

/// Frame type bytes.
public enum FrameType: UInt8, Sendable {
    case padding = 0x00
    case ping = 0x01
    case ack = 0x02
    case stream = 0x03
    case skip = 0x04
    case datagram = 0x05
    case window = 0x06
    case close = 0x07
    case reset = 0x08
    case pathChallenge = 0x09
    case pathResponse = 0x0a
}

/// An acknowledgement: the packet numbers received, as descending inclusive ranges.
public struct AckFrame: Hashable, Sendable {
    /// Inclusive ranges of received packet numbers, highest first, not touching.
    public var ranges: [ClosedRange<UInt64>]
    /// How long the receiver held the ACK for the largest packet, in microseconds.
    public var delayMicroseconds: UInt64

    public init(ranges: [ClosedRange<UInt64>], delayMicroseconds: UInt64) {
        self.ranges = ranges
        self.delayMicroseconds = delayMicroseconds
    }

    public var largest: UInt64 { ranges.first?.upperBound ?? 0 }

    /// Most ranges an ACK may carry; more are a protocol violation (bounds decode work).
    public static let maximumRanges = 256

    var encodedSize: Int {
        guard let first = ranges.first else { return 0 }
        var size = 1 + VarInt.encodedLength(first.upperBound) + VarInt.encodedLength(delayMicroseconds)
            + VarInt.encodedLength(UInt64(ranges.count - 1)) + VarInt.encodedLength(first.upperBound - first.lowerBound)
        var previousLower = first.lowerBound
        for range in ranges.dropFirst() {
            size += VarInt.encodedLength(previousLower - range.upperBound - 2) + VarInt.encodedLength(range.upperBound - range.lowerBound)
            previousLower = range.lowerBound
        }
        return size
    }

    func encode(into cursor: inout BufferCursor) {
        guard let first = ranges.first else { return }
        cursor.writeUInt8(FrameType.ack.rawValue)
        cursor.writeVarInt(first.upperBound)
        cursor.writeVarInt(delayMicroseconds)
        cursor.writeVarInt(UInt64(ranges.count - 1))
        cursor.writeVarInt(first.upperBound - first.lowerBound)
        var previousLower = first.lowerBound
        for range in ranges.dropFirst() {
            // gap counts the missing packets between ranges minus one, as in QUIC.
            cursor.writeVarInt(previousLower - range.upperBound - 2)
            cursor.writeVarInt(range.upperBound - range.lowerBound)
            previousLower = range.lowerBound
        }
    }

    static func decode(from reader: inout ByteReader) throws(WireError) -> AckFrame {
        let largest = try reader.readVarInt("ack largest")
        let delay = try reader.readVarInt("ack delay")
        let extra = try reader.readLength("ack range count", limit: maximumRanges - 1)
        let firstLength = try reader.readVarInt("ack first range")
        guard firstLength <= largest else { throw WireError.valueOutOfRange("ack first range") }
        var ranges: [ClosedRange<UInt64>] = []
        ranges.reserveCapacity(extra + 1)
        ranges.append((largest - firstLength)...largest)
        var lower = largest - firstLength
        for _ in 0..<extra {
            let gap = try reader.readVarInt("ack gap")
            let length = try reader.readVarInt("ack range")
            guard gap <= VarInt.max, lower >= gap + 2 else { throw WireError.valueOutOfRange("ack gap") }
            let upper = lower - gap - 2
            guard length <= upper else { throw WireError.valueOutOfRange("ack range") }
            ranges.append((upper - length)...upper)
            lower = upper - length
        }
        return AckFrame(ranges: ranges, delayMicroseconds: delay)
    }
}

/// A frame viewed in place inside a decrypted payload. Slices are valid only while the
/// payload's memory is; copy what must outlive the call.
public enum FrameView {
    case padding
    case ping
    case ack(AckFrame)
    /// `whole`: the data is exactly one message, from its start (live channels only): a receiver
    /// may deliver it on arrival, ahead of earlier data still missing.
    case stream(mode: DeliveryMode, channel: UInt16, offset: UInt64, data: UnsafeRawBufferPointer, whole: Bool)
    case skip(channel: UInt16, start: UInt64, end: UInt64, firstSequence: UInt64, messageCount: UInt64)
    case datagram(channel: UInt16, route: RoutingHeader, data: UnsafeRawBufferPointer)
    case window(channel: UInt16, maximumOffset: UInt64)
    case close(code: UInt64, reason: UnsafeRawBufferPointer)
    case reset(code: UInt64, reason: UnsafeRawBufferPointer)
    case pathChallenge(UInt64)
    case pathResponse(UInt64)
}

/// Walks the frames of a decrypted payload.
public struct FrameDecoder {
    var reader: ByteReader

    /// Largest channel id.
    public static let maximumChannel = Int(UInt16.max)
    /// Longest close reason, in bytes.
    public static let maximumReasonLength = 1024

    public init(_ payload: UnsafeRawBufferPointer) { reader = ByteReader(payload) }

    /// The next frame, or nil at the end of the payload.
    public mutating func next() throws(WireError) -> FrameView? {
        guard !reader.isAtEnd else { return nil }
        let raw = try reader.readUInt8("frame type")
        guard let type = FrameType(rawValue: raw) else { throw WireError.unknownFrameType(raw) }
        switch type {
        case .padding:
            // Padding runs to the end of the packet.
            try reader.skip(reader.remaining)
            return .padding
        case .ping:
            return .ping
        case .ack:
            return .ack(try AckFrame.decode(from: &reader))
        case .stream:
            let flags = try reader.readUInt8("stream flags")
            guard let mode = DeliveryMode(rawValue: flags & 0x03), mode != .unreliable else { throw WireError.valueOutOfRange("stream mode") }
            let whole = flags & FrameWriter.wholeMessage != 0
            guard flags & ~(0x03 | FrameWriter.wholeMessage) == 0, !whole || mode == .live else { throw WireError.valueOutOfRange("stream flags") }
            let channel = try reader.readLength("channel", limit: Self.maximumChannel)
            let offset = try reader.readVarInt("stream offset")
            let length = try reader.readLength("stream length", limit: reader.remaining)
            guard offset <= VarInt.max - UInt64(length) else { throw WireError.valueOutOfRange("stream offset") }
            return .stream(mode: mode, channel: UInt16(channel), offset: offset, data: try reader.readSlice(length, "stream data"), whole: whole)
        case .skip:
            let channel = try reader.readLength("channel", limit: Self.maximumChannel)
            let start = try reader.readVarInt("skip start")
            let end = try reader.readVarInt("skip end")
            let first = try reader.readVarInt("first skipped message")
            let count = try reader.readVarInt("skipped messages")
            guard start < end else { throw WireError.valueOutOfRange("skip range") }
            guard first <= VarInt.max - count else { throw WireError.valueOutOfRange("skipped messages") }
            return .skip(channel: UInt16(channel), start: start, end: end, firstSequence: first, messageCount: count)
        case .datagram:
            let channel = try reader.readLength("channel", limit: Self.maximumChannel)
            let length = try reader.readLength("datagram length", limit: reader.remaining)
            let route = try RoutingHeader.decode(from: &reader, channel: UInt16(channel))
            return .datagram(channel: UInt16(channel), route: route, data: try reader.readSlice(length, "datagram data"))
        case .window:
            let channel = try reader.readLength("channel", limit: Self.maximumChannel)
            return .window(channel: UInt16(channel), maximumOffset: try reader.readVarInt("window offset"))
        case .close, .reset:
            let code = try reader.readVarInt("close code")
            let length = try reader.readLength("close reason length", limit: Self.maximumReasonLength)
            let reason = try reader.readSlice(length, "close reason")
            return type == .close ? .close(code: code, reason: reason) : .reset(code: code, reason: reason)
        case .pathChallenge:
            return .pathChallenge(try reader.readUInt64("path challenge"))
        case .pathResponse:
            return .pathResponse(try reader.readUInt64("path response"))
        }
    }
}

/// An owned frame: what tests, the fuzzer and diagnostics build and compare.
public enum Frame: Hashable, Sendable {
    case padding(count: Int)
    case ping
    case ack(AckFrame)
    case stream(mode: DeliveryMode, channel: UInt16, offset: UInt64, data: [UInt8], whole: Bool = false)
    case skip(channel: UInt16, start: UInt64, end: UInt64, firstSequence: UInt64, messageCount: UInt64)
    case datagram(channel: UInt16, route: RoutingHeader, data: [UInt8])
    case window(channel: UInt16, maximumOffset: UInt64)
    case close(code: UInt64, reason: String)
    case reset(code: UInt64, reason: String)
    case pathChallenge(UInt64)
    case pathResponse(UInt64)

    /// Copies a view into an owned frame (padding's length is not recoverable from a view).
    public init(_ view: FrameView) {
        switch view {
        case .padding: self = .padding(count: 0)
        case .ping: self = .ping
        case .ack(let ack): self = .ack(ack)
        case .stream(let mode, let channel, let offset, let data, let whole):
            self = .stream(mode: mode, channel: channel, offset: offset, data: [UInt8](data), whole: whole)
        case .skip(let channel, let start, let end, let first, let count): self = .skip(channel: channel, start: start, end: end, firstSequence: first, messageCount: count)
        case .datagram(let channel, let route, let data): self = .datagram(channel: channel, route: route, data: [UInt8](data))
        case .window(let channel, let offset): self = .window(channel: channel, maximumOffset: offset)
        case .close(let code, let reason): self = .close(code: code, reason: String(decoding: reason, as: UTF8.self))
        case .reset(let code, let reason): self = .reset(code: code, reason: String(decoding: reason, as: UTF8.self))
        case .pathChallenge(let value): self = .pathChallenge(value)
        case .pathResponse(let value): self = .pathResponse(value)
        }
    }

    /// Bytes this frame takes on the wire.
    public var encodedSize: Int {
        switch self {
        case .padding(let count): return count
        case .ping: return 1
        case .ack(let ack): return ack.encodedSize
        case .stream(_, let channel, let offset, let data, _):
            return FrameSizes.streamHeader(channel: channel, offset: offset, length: data.count) + data.count
        case .skip(let channel, let start, let end, let first, let count):
            return FrameSizes.skip(SkipRange(start: start, end: end, firstSequence: first, messageCount: count), channel: channel)
        case .datagram(let channel, _, let data):
            return FrameSizes.datagramHeader(channel: channel, length: data.count) + data.count
        case .window(let channel, let offset):
            return 1 + VarInt.encodedLength(UInt64(channel)) + VarInt.encodedLength(offset)
        case .close(let code, let reason), .reset(let code, let reason):
            let count = reason.utf8.count
            return 1 + VarInt.encodedLength(code) + VarInt.encodedLength(UInt64(count)) + count
        case .pathChallenge, .pathResponse: return 9
        }
    }

    func encode(into cursor: inout BufferCursor) {
        switch self {
        case .padding(let count): cursor.fill(0, count: count)
        case .ping: cursor.writeUInt8(FrameType.ping.rawValue)
        case .ack(let ack): ack.encode(into: &cursor)
        case .stream(let mode, let channel, let offset, let data, let whole):
            data.withUnsafeBytes { FrameWriter.stream(mode: mode, channel: channel, offset: offset, data: $0, whole: whole, into: &cursor) }
        case .skip(let channel, let start, let end, let first, let count):
            FrameWriter.skip(SkipRange(start: start, end: end, firstSequence: first, messageCount: count), channel: channel, into: &cursor)
        case .datagram(let channel, let route, let data):
            data.withUnsafeBytes { FrameWriter.datagram(channel: channel, route: route, data: $0, into: &cursor) }
        case .window(let channel, let offset):
            FrameWriter.window(channel: channel, maximumOffset: offset, into: &cursor)
        case .close(let code, let reason), .reset(let code, let reason):
            cursor.writeUInt8((self.isClose ? FrameType.close : FrameType.reset).rawValue)
            cursor.writeVarInt(code)
            let utf8 = Array(reason.utf8)
            cursor.writeVarInt(UInt64(utf8.count))
            cursor.writeBytes(utf8)
        case .pathChallenge(let value):
            cursor.writeUInt8(FrameType.pathChallenge.rawValue)
            cursor.writeUInt64(value)
        case .pathResponse(let value):
            cursor.writeUInt8(FrameType.pathResponse.rawValue)
            cursor.writeUInt64(value)
        }
    }

    private var isClose: Bool { if case .close = self { true } else { false } }

    /// Encodes a sequence of frames into one payload.
    public static func encode(_ frames: [Frame]) -> [UInt8] {
        let size = frames.reduce(0) { $0 + $1.encodedSize }
        return [UInt8](unsafeUninitializedCapacity: size) { buffer, count in
            var cursor = BufferCursor(UnsafeMutableRawBufferPointer(buffer))
            for frame in frames { frame.encode(into: &cursor) }
            count = cursor.position
        }
    }

    /// Decodes every frame of a payload.
    public static func decodeAll(_ payload: [UInt8]) throws(WireError) -> [Frame] {
        try payload.withUnsafeBytesTyped { (bytes) throws(WireError) -> [Frame] in
            var decoder = FrameDecoder(bytes)
            var frames: [Frame] = []
            while let view = try decoder.next() { frames.append(Frame(view)) }
            return frames
        }
    }
}

/// Frame header sizes, so the packet builder can fit frames before writing them.
enum FrameSizes {
    @inline(__always)
    static func streamHeader(channel: UInt16, offset: UInt64, length: Int) -> Int {
        2 + VarInt.encodedLength(UInt64(channel)) + VarInt.encodedLength(offset) + VarInt.encodedLength(UInt64(length))
    }
    static func skip(_ skip: SkipRange, channel: UInt16) -> Int {
        1 + VarInt.encodedLength(UInt64(channel)) + VarInt.encodedLength(skip.start) + VarInt.encodedLength(skip.end)
            + VarInt.encodedLength(skip.firstSequence) + VarInt.encodedLength(skip.messageCount)
    }
    @inline(__always)
    static func datagramHeader(channel: UInt16, length: Int) -> Int {
        1 + VarInt.encodedLength(UInt64(channel)) + VarInt.encodedLength(UInt64(length)) + RoutingHeader.encodedSize
    }
}

/// Writes frames straight into packet memory (the hot path).
enum FrameWriter {
    /// STREAM flags bit: the data is one whole message (``FrameView/stream(mode:channel:offset:data:whole:)``).
    static let wholeMessage: UInt8 = 0x04

    @inline(__always)
    static func stream(mode: DeliveryMode, channel: UInt16, offset: UInt64, data: UnsafeRawBufferPointer, whole: Bool = false,
                       into cursor: inout BufferCursor) {
        cursor.writeUInt8(FrameType.stream.rawValue)
        cursor.writeUInt8(mode.rawValue | (whole ? wholeMessage : 0))
        cursor.writeVarInt(UInt64(channel))
        cursor.writeVarInt(offset)
        cursor.writeVarInt(UInt64(data.count))
        cursor.writeBytes(data)
    }
    static func skip(_ skip: SkipRange, channel: UInt16, into cursor: inout BufferCursor) {
        cursor.writeUInt8(FrameType.skip.rawValue)
        cursor.writeVarInt(UInt64(channel))
        cursor.writeVarInt(skip.start)
        cursor.writeVarInt(skip.end)
        cursor.writeVarInt(skip.firstSequence)
        cursor.writeVarInt(skip.messageCount)
    }
    static func datagram(channel: UInt16, route: RoutingHeader, data: UnsafeRawBufferPointer, into cursor: inout BufferCursor) {
        cursor.writeUInt8(FrameType.datagram.rawValue)
        cursor.writeVarInt(UInt64(channel))
        cursor.writeVarInt(UInt64(data.count))
        route.encode(into: &cursor)
        cursor.writeBytes(data)
    }
    static func window(channel: UInt16, maximumOffset: UInt64, into cursor: inout BufferCursor) {
        cursor.writeUInt8(FrameType.window.rawValue)
        cursor.writeVarInt(UInt64(channel))
        cursor.writeVarInt(maximumOffset)
    }
}
