// The receiving half of a channel: reassembles bytes by offset, applies the sender's skip
// ranges (live gaps), cuts messages out of the ordered bytes, and grants flow-control credit
// as the application consumes.

/// What an in-order advance of a receive channel produced.
enum ReceiveOutput {
    case message(Message)
    case bytes([UInt8])
    case gap(firstSequence: UInt64, count: UInt64)
}

/// A reference type for the same reason as ``SendChannel``.
final class ReceiveChannel {
    let id: UInt16
    var mode: DeliveryMode
    /// Every byte below this has been delivered or skipped.
    private(set) var deliveredOffset: UInt64 = 0
    /// Out-of-order segments above `deliveredOffset`, sorted by offset. `early`: a whole message
    /// already delivered on arrival (unordered live), passed over without delivering again.
    private var segments: [(offset: UInt64, bytes: [UInt8], early: Bool)] = []
    private(set) var bufferedBytes = 0
    /// Skip ranges received ahead of `deliveredOffset`, sorted by start.
    private var skips: [SkipRange] = []
    /// The flow-control limit last granted to the sender.
    private(set) var grantedLimit: UInt64
    let windowSize: UInt64
    /// Set while the application is not keeping up: nothing is delivered, no credit granted.
    var paused = false

    // Message framing state: `varint length` + routing header + payload.
    private var header: [UInt8] = []
    private var messageLength = -1
    private var messageRoute = RoutingHeader()
    private var payload: [UInt8] = []
    private(set) var nextSequence: UInt64 = 0
    private(set) var messagesSkipped: UInt64 = 0

    static let maximumSkipRanges = 4096

    /// In-order stream bytes not yet handed to the application. Packets append into room
    /// reserved ahead, so a read pass costs one allocation instead of one per packet; the
    /// session hands the chunk over when the application next polls.
    private var pendingStream: [UInt8] = []
    /// Room reserved for a chunk of stream bytes.
    static let streamChunkSize = 256 * 1024

    var hasPendingStream: Bool { !pendingStream.isEmpty }

    /// The stream bytes gathered since the last call (empty if none).
    func takePendingStream() -> [UInt8] {
        let chunk = pendingStream
        pendingStream = []
        return chunk
    }

    init(id: UInt16, mode: DeliveryMode, windowSize: UInt64) {
        self.id = id
        self.mode = mode
        self.windowSize = windowSize
        self.grantedLimit = windowSize
    }

    /// Accepts a STREAM frame. Data past the granted limit is a flow-control violation.
    /// - Parameter whole: the frame is one whole message (an unordered live channel's): ahead
    ///   of a gap it is delivered at once, with ``Message/unknownSequence``.
    /// - Returns: how many of its bytes this side already had (a spurious retransmission's cost).
    @discardableResult
    func receive(offset: UInt64, data: UnsafeRawBufferPointer, whole: Bool = false, maximumMessageSize: Int,
                          output: inout [ReceiveOutput]) throws(TransportError) -> Int {
        let end = offset + UInt64(data.count)
        guard end <= grantedLimit else {
            throw .protocolViolation("channel \(id) data to offset \(end) exceeds the granted window \(grantedLimit)")
        }
        guard end > deliveredOffset else { return data.count }  // duplicate
        if offset <= deliveredOffset && !paused && segments.isEmpty && skips.isEmpty {
            // In order, nothing buffered: the fast path, no copy into the reassembly buffer.
            let start = Int(deliveredOffset - offset)
            try consume(UnsafeRawBufferPointer(rebasing: data[start...]), maximumMessageSize: maximumMessageSize, output: &output)
            deliveredOffset = end
            return start
        }
        if whole, mode == .live, !paused, offset > deliveredOffset {
            guard insertEarly(offset: offset, data: data) else { return data.count }
            try deliverWhole(data, maximumMessageSize: maximumMessageSize, output: &output)
            return 0
        }
        let duplicate = store(offset: offset, data: data)
        try drain(maximumMessageSize: maximumMessageSize, output: &output)
        return duplicate
    }

    /// Keeps a whole message that arrived ahead of a gap as delivered, unless any of its bytes
    /// are held already (then it is, or will be, delivered in order). Returns whether it was new.
    private func insertEarly(offset: UInt64, data: UnsafeRawBufferPointer) -> Bool {
        let end = offset + UInt64(data.count)
        var low = 0
        var high = segments.count
        while low < high {
            let mid = (low + high) / 2
            if segments[mid].offset < offset { low = mid + 1 } else { high = mid }
        }
        if low < segments.count, segments[low].offset < end { return false }
        if low > 0, segments[low - 1].offset + UInt64(segments[low - 1].bytes.count) > offset { return false }
        segments.insert((offset, [UInt8](data), true), at: low)
        bufferedBytes += data.count
        return true
    }

    /// Delivers one whole message out of order.
    private func deliverWhole(_ data: UnsafeRawBufferPointer, maximumMessageSize: Int, output: inout [ReceiveOutput]) throws(TransportError) {
        guard let parsed = Self.parseHeader(data, channel: id), parsed.size + parsed.length == data.count else {
            throw .protocolViolation("a whole-message frame on channel \(id) does not hold one message")
        }
        guard parsed.length <= maximumMessageSize else {
            throw .protocolViolation("message of \(parsed.length) bytes on channel \(id) exceeds the limit \(maximumMessageSize)")
        }
        let payload = [UInt8](UnsafeRawBufferPointer(rebasing: data[parsed.size...]))
        output.append(.message(Message(channel: id, route: parsed.route, sequence: Message.unknownSequence, payload: payload)))
    }

    /// Accepts a SKIP frame (idempotent).
    func receiveSkip(_ skip: SkipRange, maximumMessageSize: Int, output: inout [ReceiveOutput]) throws(TransportError) {
        guard skip.end > deliveredOffset, skip.start < skip.end else { return }
        guard skip.end <= grantedLimit + (1 << 40) else { throw .protocolViolation("skip range beyond any plausible offset") }
        if !skips.contains(where: { $0.start == skip.start }) {
            guard skips.count < Self.maximumSkipRanges else { throw .protocolViolation("too many pending skip ranges") }
            let index = skips.firstIndex(where: { $0.start > skip.start }) ?? skips.count
            skips.insert(skip, at: index)
        }
        try drain(maximumMessageSize: maximumMessageSize, output: &output)
    }

    /// Buffers out-of-order data. - Returns: how many of its bytes were held already.
    private func store(offset: UInt64, data: UnsafeRawBufferPointer) -> Int {
        var start = offset
        var slice = data
        var held = 0
        if start < deliveredOffset {
            held = Int(deliveredOffset - start)
            slice = UnsafeRawBufferPointer(rebasing: data[held...])
            start = deliveredOffset
        }
        // Binary search for the insertion point; skip exact duplicates.
        var low = 0
        var high = segments.count
        while low < high {
            let mid = (low + high) / 2
            if segments[mid].offset < start { low = mid + 1 } else { high = mid }
        }
        if low < segments.count, segments[low].offset == start, segments[low].bytes.count >= slice.count { return data.count }
        if low > 0 {
            let previous = segments[low - 1]
            if previous.offset + UInt64(previous.bytes.count) >= start + UInt64(slice.count) { return data.count }
        }
        segments.insert((start, [UInt8](slice), false), at: low)
        bufferedBytes += slice.count
        return held
    }

    /// Delivers whatever is now contiguous at `deliveredOffset`.
    func drain(maximumMessageSize: Int, output: inout [ReceiveOutput]) throws(TransportError) {
        guard !paused else { return }
        // Segments used up are removed once at the end (removing each from the front would
        // shift the whole array every time).
        var used = 0
        defer { segments.removeFirst(used) }
        while true {
            if let skip = skips.first, skip.start <= deliveredOffset {
                skips.removeFirst()
                guard skip.end > deliveredOffset else { continue }
                // Drop any half-assembled message: it was part of what the sender skipped.
                // Messages of the range delivered already (their ACK was lost) are not a gap.
                resetFraming()
                let endSequence = skip.firstSequence + skip.messageCount
                if endSequence > nextSequence {
                    // Messages of the range delivered on arrival (unordered live) are not missed.
                    let early = UInt64(segments[used...].lazy.prefix { $0.offset < skip.end }
                        .filter { $0.early && $0.offset >= self.deliveredOffset }.count)
                    let missed = (endSequence - nextSequence) - min(early, endSequence - nextSequence)
                    if missed > 0 { output.append(.gap(firstSequence: nextSequence, count: missed)) }
                    messagesSkipped += missed
                    nextSequence = endSequence
                }
                deliveredOffset = skip.end
                continue
            }
            guard used < segments.count, segments[used].offset <= deliveredOffset else { break }
            let first = segments[used]
            used += 1
            bufferedBytes -= first.bytes.count
            let end = first.offset + UInt64(first.bytes.count)
            guard end > deliveredOffset else { continue }
            if first.early {
                // Delivered when it came: now in order, it only moves the place on.
                resetFraming()
                nextSequence += 1
                deliveredOffset = end
                continue
            }
            // A skip that starts inside this segment cuts it short.
            var usableEnd = end
            if let skip = skips.first, skip.start < end { usableEnd = skip.start }
            let from = Int(deliveredOffset - first.offset)
            let to = Int(usableEnd - first.offset)
            if to > from {
                try first.bytes.withUnsafeBytesTyped { (raw) throws(TransportError) in
                    try consume(UnsafeRawBufferPointer(rebasing: raw[from..<to]), maximumMessageSize: maximumMessageSize, output: &output)
                }
                deliveredOffset = usableEnd
            }
        }
    }

    private func resetFraming() {
        header.removeAll(keepingCapacity: true)
        messageLength = -1
        payload = []
    }

    /// Feeds in-order bytes to the application (streams) or the message parser.
    private func consume(_ bytes: UnsafeRawBufferPointer, maximumMessageSize: Int, output: inout [ReceiveOutput]) throws(TransportError) {
        guard !bytes.isEmpty else { return }
        if mode == .stream {
            if pendingStream.capacity - pendingStream.count < bytes.count {
                // Full: hand this chunk over now and start the next one.
                if !pendingStream.isEmpty { output.append(.bytes(takePendingStream())) }
                pendingStream.reserveCapacity(max(Self.streamChunkSize, bytes.count))
            }
            pendingStream.append(contentsOf: bytes)
            return
        }
        var position = 0
        while position < bytes.count {
            if messageLength < 0 {
                // Parse the message header straight from `bytes` when it is all there.
                if header.isEmpty, let parsed = Self.parseHeader(UnsafeRawBufferPointer(rebasing: bytes[position...]), channel: id) {
                    position += parsed.size
                    try beginMessage(length: parsed.length, route: parsed.route, maximumMessageSize: maximumMessageSize)
                } else {
                    header.append(bytes[position])
                    position += 1
                    let parsed = header.withUnsafeBytes { Self.parseHeader($0, channel: id) }
                    if let parsed {
                        header.removeAll(keepingCapacity: true)
                        try beginMessage(length: parsed.length, route: parsed.route, maximumMessageSize: maximumMessageSize)
                    } else if header.count > 8 + RoutingHeader.encodedSize {
                        throw .protocolViolation("malformed message header on channel \(id)")
                    }
                }
                if messageLength == 0 { finishMessage(output: &output) }
                continue
            }
            let take = min(messageLength - payload.count, bytes.count - position)
            payload.append(contentsOf: UnsafeRawBufferPointer(rebasing: bytes[position..<position + take]))
            position += take
            if payload.count == messageLength { finishMessage(output: &output) }
        }
    }

    private func beginMessage(length: Int, route: RoutingHeader, maximumMessageSize: Int) throws(TransportError) {
        guard length <= maximumMessageSize else {
            throw .protocolViolation("message of \(length) bytes on channel \(id) exceeds the limit \(maximumMessageSize)")
        }
        messageLength = length
        messageRoute = route
        payload = []
        payload.reserveCapacity(length)
    }

    private func finishMessage(output: inout [ReceiveOutput]) {
        output.append(.message(Message(channel: id, route: messageRoute, sequence: nextSequence, payload: payload)))
        nextSequence += 1
        payload = []
        messageLength = -1
    }

    /// Parses `varint length` + routing header; nil if `bytes` holds less than a full header.
    private static func parseHeader(_ bytes: UnsafeRawBufferPointer, channel: UInt16) -> (length: Int, route: RoutingHeader, size: Int)? {
        var reader = ByteReader(bytes)
        guard let length = try? reader.readVarInt(), length <= UInt64(Int32.max),
              let route = try? RoutingHeader.decode(from: &reader, channel: channel)
        else { return nil }
        return (Int(length), route, reader.position)
    }

    /// A new limit to grant, when the application has consumed enough of the window.
    func windowUpdate() -> UInt64? {
        guard !paused else { return nil }
        let target = deliveredOffset + windowSize
        guard target >= grantedLimit + windowSize / 4 else { return nil }
        grantedLimit = target
        return target
    }

    /// Whether this channel has data waiting for the application to resume.
    var hasBufferedData: Bool { !segments.isEmpty || !skips.isEmpty }
}

extension ReceiveChannel {
    /// Encodes a message for a messages or live channel: `varint length`, routing header, payload.
    static func frameMessage(_ payload: [UInt8], route: RoutingHeader) -> [UInt8] {
        let headerSize = VarInt.encodedLength(UInt64(payload.count)) + RoutingHeader.encodedSize
        return [UInt8](unsafeUninitializedCapacity: headerSize + payload.count) { buffer, count in
            var cursor = BufferCursor(UnsafeMutableRawBufferPointer(buffer))
            cursor.writeVarInt(UInt64(payload.count))
            route.encode(into: &cursor)
            cursor.writeBytes(payload)
            count = cursor.position
        }
    }
}
