// The sending half of a channel: written bytes kept until acknowledged, what is in flight,
// what was lost and must go again, flow-control credit from the peer, and for live channels
// the messages' deadlines and the byte ranges skipped when a deadline passes.

/// Written bytes addressed by stream offset, held in the chunks they were written as.
struct SendBuffer {
    private struct Chunk {
        var start: UInt64
        var bytes: [UInt8]
        var end: UInt64 { start + UInt64(bytes.count) }
    }
    private var chunks = RingBuffer<Chunk>()
    /// Bytes currently held.
    private(set) var byteCount = 0
    /// Offset just past the last written byte.
    private(set) var endOffset: UInt64 = 0

    mutating func append(_ bytes: [UInt8]) {
        guard !bytes.isEmpty else { return }
        chunks.append(Chunk(start: endOffset, bytes: bytes))
        endOffset += UInt64(bytes.count)
        byteCount += bytes.count
    }

    /// Frees chunks that lie wholly below `offset`.
    mutating func release(below offset: UInt64) {
        while let first = chunks.first, first.end <= offset {
            byteCount -= first.bytes.count
            chunks.popFirst()
        }
    }

    /// Index of the chunk holding `offset`.
    private func chunkIndex(_ offset: UInt64) -> Int? {
        var low = 0
        var high = chunks.count
        while low < high {
            let mid = (low + high) / 2
            if chunks[mid].end <= offset { low = mid + 1 } else { high = mid }
        }
        guard low < chunks.count, chunks[low].start <= offset else { return nil }
        return low
    }

    /// Calls `body` with the bytes from `offset`, at most `maximum` of them and not past the
    /// end of the chunk holding `offset`. Returns false if the bytes are no longer held.
    func withBytes<R>(at offset: UInt64, maximum: Int, _ body: (UnsafeRawBufferPointer) -> R) -> R? {
        guard let index = chunkIndex(offset) else { return nil }
        let chunk = chunks[index]
        let start = Int(offset - chunk.start)
        let length = min(maximum, chunk.bytes.count - start)
        return chunk.bytes.withUnsafeBytes { body(UnsafeRawBufferPointer(rebasing: $0[start..<start + length])) }
    }

    /// Whether `offset..<offset + length` is exactly one chunk (one written message).
    func isWholeChunk(at offset: UInt64, length: Int) -> Bool {
        guard let index = chunkIndex(offset) else { return false }
        return chunks[index].start == offset && chunks[index].bytes.count == length
    }

    /// Bytes available contiguously at `offset` (to the end of its chunk).
    func contiguousBytes(at offset: UInt64) -> Int {
        guard let index = chunkIndex(offset) else { return 0 }
        return Int(chunks[index].end - offset)
    }
}

/// A live message's extent and deadline.
struct LiveMessage {
    var sequence: UInt64
    var start: UInt64
    var end: UInt64
    var deadline: Timestamp
}

/// A range of a live channel the receiver must skip, and how many messages it held.
struct SkipRange: Hashable {
    var start: UInt64
    var end: UInt64
    /// Sequence number of the first message in the range, so a receiver that already
    /// delivered some of them (their ACK was lost) reports only what it missed.
    var firstSequence: UInt64
    var messageCount: UInt64
}

/// A reference type: the session reaches it through a dictionary on every packet, and a
/// struct there would be copied out and back (and its accessor heap-allocated) each time.
final class SendChannel {
    let id: UInt16
    var configuration: ChannelConfiguration
    var buffer = SendBuffer()
    /// Next byte never sent yet.
    var sendOffset: UInt64 = 0
    /// Every byte below this is acknowledged or skipped.
    var ackedPrefix: UInt64 = 0
    /// Acknowledged (or skipped) ranges above `ackedPrefix`.
    var acked = RangeSet()
    /// Ranges declared lost that still need sending again.
    var lost = RangeSet()
    /// The peer's flow-control limit: we may not send bytes at or past it.
    var peerLimit: UInt64
    /// Live messages not yet delivered or skipped, oldest first.
    var liveMessages = RingBuffer<LiveMessage>()
    /// Skip ranges waiting to be sent (or sent again after loss).
    var pendingSkips: [SkipRange] = []
    /// Skip ranges sent once that go out once more, in a later packet: a lost SKIP would hold
    /// back every later message at the receiver until it was repaired, past their deadlines.
    var repeatSkips: [SkipRange] = []
    /// Skipped ranges whose SKIP the peer has not acknowledged yet. Messages behind one may be
    /// acknowledged yet still waiting at the receiver, so they are not known delivered.
    var unconfirmedSkips = RangeSet()
    /// Unacknowledged skip ranges in flight, so a late ack can retire them.
    var messagesSkipped: UInt64 = 0
    var messagesWritten: UInt64 = 0
    /// Round-robin position among channels of equal priority.
    var lastServed: UInt64 = 0

    init(id: UInt16, configuration: ChannelConfiguration, peerLimit: UInt64) {
        self.id = id
        self.configuration = configuration
        self.peerLimit = peerLimit
    }

    var writeOffset: UInt64 { buffer.endOffset }
    /// Bytes written and not yet acknowledged or skipped.
    var unacknowledgedBytes: Int { Int(writeOffset - ackedPrefix) }

    var hasNewData: Bool { sendOffset < writeOffset }
    var canSendNewData: Bool { sendOffset < writeOffset && sendOffset < peerLimit }
    var hasLostData: Bool { !lost.isEmpty }
    var blockedByFlowControl: Bool { sendOffset < writeOffset && sendOffset >= peerLimit }

    /// Whether there is anything to put in a packet now.
    var wantsToSend: Bool { canSendNewData || hasLostData || !pendingSkips.isEmpty || !repeatSkips.isEmpty }

    func write(_ bytes: [UInt8], now: Timestamp) {
        let start = writeOffset
        buffer.append(bytes)
        messagesWritten += 1
        if configuration.mode == .live {
            liveMessages.append(LiveMessage(sequence: messagesWritten - 1, start: start, end: writeOffset,
                                            deadline: now.adding(configuration.deadline)))
        }
    }

    /// Marks `range` acknowledged and frees what the peer now holds.
    func acknowledge(_ range: Range<UInt64>) {
        guard range.upperBound > ackedPrefix else { return }
        let clipped = max(range.lowerBound, ackedPrefix)..<range.upperBound
        lost.remove(clipped)
        if clipped.lowerBound == ackedPrefix {
            ackedPrefix = clipped.upperBound
            // Absorb ranges acknowledged earlier that now touch the prefix.
            while let first = acked.first, first.lowerBound <= ackedPrefix {
                ackedPrefix = max(ackedPrefix, first.upperBound)
                _ = acked.removeFirst()
            }
            buffer.release(below: ackedPrefix)
        } else {
            acked.insert(clipped)
        }
    }

    /// Queues the unacknowledged parts of `range` for retransmission.
    func markLost(_ range: Range<UInt64>) {
        guard range.upperBound > ackedPrefix else { return }
        let clipped = max(range.lowerBound, ackedPrefix)..<range.upperBound
        if acked.isEmpty {
            lost.insert(clipped)
        } else {
            for gap in acked.gaps(in: clipped) { lost.insert(gap) }
        }
    }

    /// The next range to retransmit, at most `maximum` bytes, not crossing a chunk boundary.
    func takeLost(maximum: Int) -> Range<UInt64>? {
        while let first = lost.first {
            if first.upperBound <= ackedPrefix {
                _ = lost.removeFirst()
                continue
            }
            let start = max(first.lowerBound, ackedPrefix)
            let available = buffer.contiguousBytes(at: start)
            guard available > 0 else {
                // No longer held (skipped): drop it.
                lost.remove(start..<first.upperBound)
                continue
            }
            let length = min(UInt64(maximum), UInt64(available), first.upperBound - start)
            let range = start..<start + length
            lost.remove(range)
            return range
        }
        return nil
    }

    /// Skips live messages whose deadline has passed. Returns how many messages were skipped.
    func expireLiveMessages(now: Timestamp) -> UInt64 {
        var skippedNow: UInt64 = 0
        while let message = liveMessages.first, message.deadline <= now {
            liveMessages.popFirst()
            // Delivered for sure only when everything before its end is acknowledged and no
            // skip below it is still unconfirmed. Otherwise the receiver may be holding it
            // behind a lost SKIP: skip it too, so it is not delivered past its deadline.
            if isDelivered(message) { continue }
            skippedNow += 1
            // Merge with the previous pending skip when contiguous.
            if let last = pendingSkips.last, last.end == message.start {
                pendingSkips[pendingSkips.count - 1].end = message.end
                pendingSkips[pendingSkips.count - 1].messageCount += 1
            } else {
                pendingSkips.append(SkipRange(start: message.start, end: message.end, firstSequence: message.sequence, messageCount: 1))
            }
            lost.remove(message.start..<message.end)
            unconfirmedSkips.insert(message.start..<message.end)
            if sendOffset < message.end { sendOffset = message.end }
            // The bytes are gone for good: treat them as acknowledged so the buffer frees them.
            acknowledge(message.start..<message.end)
        }
        messagesSkipped += skippedNow
        return skippedNow
    }

    /// The earliest live deadline still pending.
    var nextDeadline: Timestamp? { liveMessages.first?.deadline }

    /// Whether the receiver has certainly delivered `message` (in order, nothing before it
    /// missing or waiting on a skip).
    func isDelivered(_ message: LiveMessage) -> Bool {
        guard message.end <= ackedPrefix else { return false }
        if let skip = unconfirmedSkips.first, skip.lowerBound < message.end { return false }
        return true
    }

    /// The peer acknowledged a SKIP covering `range`.
    func confirmSkip(_ range: Range<UInt64>) {
        unconfirmedSkips.remove(range)
        retireAcknowledgedLiveMessages()
    }

    /// Live messages certainly delivered leave the deadline queue early.
    func retireAcknowledgedLiveMessages() {
        while let message = liveMessages.first, isDelivered(message) { liveMessages.popFirst() }
    }
}
