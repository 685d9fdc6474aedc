// Packet assembly: what goes into the next datagram, in priority order — ACK, close and
// reset, flow-control credit, live skips, then application data by channel priority (lost
// ranges before new bytes, round-robin within a priority) — limited by the congestion
// window and paced. Packets are written and sealed straight into the caller's buffer.

/// A datagram the endpoint's driver must send.
public struct Transmit: Sendable, Equatable {
    public var destination: NetworkAddress
    public var size: Int
    /// A path-MTU probe: larger than the path may carry, so it must travel alone (a GSO batch
    /// that holds it would be refused whole, taking ordinary packets with it).
    public var isMTUProbe = false

    public init(destination: NetworkAddress, size: Int, isMTUProbe: Bool = false) {
        self.destination = destination
        self.size = size
        self.isMTUProbe = isMTUProbe
    }
}

extension Session {
    var hasDataToSend: Bool {
        if !datagrams.isEmpty { return true }
        for id in sendOrder where sendChannels[id]!.wantsToSend { return true }
        return false
    }

    /// Builds the next packet into `buffer` (at least `configuration.maximumDatagramSize` bytes).
    func pollTransmit(now: Timestamp, into buffer: UnsafeMutableRawBufferPointer) -> Transmit? {
        if state == .closed { return nil }
        if let reset = resetPending {
            resetPending = nil
            let size = buildPacket(into: buffer, now: now, destination: peerAddress) { cursor, _, _ in
                Frame.reset(code: reset.code, reason: String(reset.reason.prefix(200))).encode(into: &cursor)
                return false
            }
            finish(closeReason ?? .aborted(reset.reason))
            return Transmit(destination: peerAddress, size: size)
        }
        if !pendingPathResponses.isEmpty {
            let response = pendingPathResponses.removeFirst()
            let size = buildPacket(into: buffer, now: now, destination: response.address) { cursor, _, _ in
                cursor.writeUInt8(FrameType.pathResponse.rawValue)
                cursor.writeUInt64(response.value)
                return true
            }
            return Transmit(destination: response.address, size: size)
        }
        if var candidate = candidatePath, candidate.nextSend <= now {
            if candidate.attempts >= 5 {
                candidatePath = nil
            } else {
                candidate.attempts += 1
                candidate.nextSend = now.adding(nanoseconds: 2 * rtt.probeTimeout(maximumAckDelay: configuration.maximumAckDelay.nanoseconds))
                candidatePath = candidate
                let size = buildPacket(into: buffer, now: now, destination: candidate.address) { cursor, refs, _ in
                    cursor.writeUInt8(FrameType.pathChallenge.rawValue)
                    cursor.writeUInt64(candidate.challenge)
                    refs.append(.pathChallenge)
                    return true
                }
                return Transmit(destination: candidate.address, size: size)
            }
        }
        if case .draining = state {
            guard ackTracker.ackDue(now: now) else { return nil }
            let size = buildPacket(into: buffer, now: now, destination: peerAddress) { _, _, _ in false }
            return Transmit(destination: peerAddress, size: size)
        }

        updateKeysIfDue(now: now)
        let datagramSize = mtu.current
        let ackDue = ackTracker.ackDue(now: now)
        let windowOpen = sent.bytesInFlight + datagramSize <= congestion.congestionWindow || probesToSend > 0
        let control = closeFramePending || !pendingWindowUpdates.isEmpty || pingPending
        let dataWaiting = hasDataToSend
        var allowData = false
        pacingWakeup = nil
        if dataWaiting && windowOpen {
            if probesToSend > 0 {
                allowData = true
            } else {
                let next = pacer.nextSendTime(now: now, rate: pacingRate, size: datagramSize, maximumDatagramSize: datagramSize)
                if next <= now { allowData = true } else { pacingWakeup = next }
            }
        } else if !dataWaiting && windowOpen && sent.bytesInFlight > 0 {
            // Nothing to send with room in the window: rate samples from now on are app-limited.
            appLimitedUntil = max(1, delivered + UInt64(sent.bytesInFlight))
        }

        // A due probe goes ahead of data (it is one packet), so probing works during transfers.
        if windowOpen, state == .established, let probeSize = mtu.probeDue(now: now) {
            mtu.onProbeSent(size: probeSize)
            let size = buildPacket(into: buffer, now: now, destination: peerAddress, datagramSize: probeSize, isMTUProbe: true) { cursor, _, limit in
                cursor.writeUInt8(FrameType.ping.rawValue)
                cursor.fill(0, count: limit - cursor.position)
                return true
            }
            return Transmit(destination: peerAddress, size: size, isMTUProbe: true)
        }

        guard allowData || control || ackDue else { return nil }
        let size = buildPacket(into: buffer, now: now, destination: peerAddress) { cursor, refs, limit in
            var eliciting = false
            if closeFramePending {
                closeFramePending = false
                closeFrameSent = true
                Frame.close(code: 0, reason: "").encode(into: &cursor)
                refs.append(.close)
                eliciting = true
            }
            while let channel = pendingWindowUpdates.first, limit - cursor.position >= 16 {
                pendingWindowUpdates.removeFirst()
                guard let receiver = receiveChannels[channel] else { continue }
                FrameWriter.window(channel: channel, maximumOffset: receiver.grantedLimit, into: &cursor)
                refs.append(.window(channel: channel))
                eliciting = true
            }
            if allowData, fillData(cursor: &cursor, limit: limit, refs: &refs, now: now) { eliciting = true }
            if pingPending && !eliciting && limit - cursor.position >= 1 {
                cursor.writeUInt8(FrameType.ping.rawValue)
                eliciting = true
            }
            if eliciting { pingPending = false }
            return eliciting
        }
        if allowData { pacer.onPacketSent(size: size) }
        return Transmit(destination: peerAddress, size: size)
    }

    /// Writes header, optional ACK, the frames `body` adds, seals and records the packet.
    /// `body` returns whether it added an ack-eliciting frame.
    private func buildPacket(into buffer: UnsafeMutableRawBufferPointer, now: Timestamp, destination: NetworkAddress,
                             datagramSize: Int? = nil, isMTUProbe: Bool = false,
                             _ body: (inout BufferCursor, inout FrameRefs, Int) -> Bool) -> Int {
        let packetNumber = nextPacketNumber
        nextPacketNumber += 1
        var cursor = BufferCursor(buffer)
        PacketHeader(keyPhase: protection.sendPhase, connectionID: remoteIndex, packetNumber: packetNumber).encode(into: &cursor)
        let limit = min(buffer.count, datagramSize ?? mtu.current) - PacketHeader.tagSize
        var refs = FrameRefs()
        var largestAckedInFrame: UInt64?
        if !isMTUProbe, ackTracker.hasUnacknowledged || ackTracker.ackDue(now: now), let ack = ackTracker.makeAck(now: now) {
            if ack.encodedSize <= limit - cursor.position {
                ack.encode(into: &cursor)
                largestAckedInFrame = ack.largest
            }
        }
        let eliciting = body(&cursor, &refs, limit)
        let size = protection.seal(packet: buffer, payloadLength: cursor.position - PacketHeader.dataHeaderSize, packetNumber: packetNumber)
        if eliciting {
            if sent.bytesInFlight == 0 {
                firstSentTime = now
                deliveredTime = now
            }
            lastElicitingSendTime = now
            sent.noteElicitingSent(now)
            if probesToSend > 0 { probesToSend -= 1 }
        }
        sent.append(SentPacket(packetNumber: packetNumber, timeSent: now, size: size, ackEliciting: eliciting,
                               isMTUProbe: isMTUProbe, delivered: delivered, lostBefore: lostBytesTotal, deliveredTime: deliveredTime,
                               firstSentTime: firstSentTime, appLimited: appLimitedUntil > 0,
                               largestAckedInFrame: largestAckedInFrame, frames: refs))
        if eliciting && !isMTUProbe { congestion.onPacketSent(bytes: size, bytesInFlight: sent.bytesInFlight, now: now) }
        stats.packetsSent += 1
        stats.bytesSent += UInt64(size)
        return size
    }

    /// Adds skips, datagrams and channel data until the packet is full. Returns whether any
    /// frame was added.
    private func fillData(cursor: inout BufferCursor, limit: Int, refs: inout FrameRefs, now: Timestamp) -> Bool {
        var wrote = false
        for id in sendOrder {
            let channel = sendChannels[id]!
            guard !channel.pendingSkips.isEmpty || !channel.repeatSkips.isEmpty else { continue }
            // Second copies of skips sent in an earlier packet go first (untracked: the first
            // copy is); then first copies, tracked for loss and queued to be repeated.
            let repeats = channel.repeatSkips
            channel.repeatSkips = []
            for (index, skip) in repeats.enumerated() {
                guard FrameSizes.skip(skip, channel: id) <= limit - cursor.position else {
                    channel.repeatSkips = Array(repeats[index...])
                    return wrote
                }
                FrameWriter.skip(skip, channel: id, into: &cursor)
                wrote = true
            }
            while let skip = channel.pendingSkips.first {
                guard FrameSizes.skip(skip, channel: id) <= limit - cursor.position else { return wrote }
                channel.pendingSkips.removeFirst()
                FrameWriter.skip(skip, channel: id, into: &cursor)
                refs.append(.skip(channel: id, skip))
                channel.repeatSkips.append(skip)
                wrote = true
            }
        }
        while limit - cursor.position >= 24 {
            // The highest-priority channel with data; among equals, the one served longest ago.
            var best: UInt16?
            for id in sendOrder {
                let channel = sendChannels[id]!
                guard channel.canSendNewData || channel.hasLostData else { continue }
                if let current = best {
                    let chosen = sendChannels[current]!
                    if channel.configuration.priority > chosen.configuration.priority { break }
                    if channel.lastServed < chosen.lastServed { best = id }
                } else {
                    best = id
                }
            }
            if let datagram = datagrams.first, best == nil || datagram.priority <= sendChannels[best!]!.configuration.priority {
                let size = FrameSizes.datagramHeader(channel: datagram.channel, length: datagram.bytes.count) + datagram.bytes.count
                guard size <= limit - cursor.position else { break }
                datagrams.popFirst()
                datagram.bytes.withUnsafeBytes {
                    FrameWriter.datagram(channel: datagram.channel, route: datagram.route, data: $0, into: &cursor)
                }
                wrote = true
                continue
            }
            guard let id = best else { break }
            serveCounter += 1
            sendChannels[id]!.lastServed = serveCounter
            guard writeChannelData(id, cursor: &cursor, limit: limit, refs: &refs) else { break }
            wrote = true
        }
        return wrote
    }

    /// One STREAM frame from channel `id`: a lost range if any, else new bytes.
    private func writeChannelData(_ id: UInt16, cursor: inout BufferCursor, limit: Int, refs: inout FrameRefs) -> Bool {
        let space = limit - cursor.position
        let mode = sendChannels[id]!.configuration.mode
        // An unordered live channel marks a frame that holds one whole message, so the
        // receiver may deliver it ahead of a gap.
        let unordered = sendChannels[id]!.configuration.unordered
        let headerBound = FrameSizes.streamHeader(channel: id, offset: VarInt.max, length: space)
        guard space > headerBound else { return false }
        let room = space - headerBound
        if let range = sendChannels[id]!.takeLost(maximum: room) {
            let length = Int(range.upperBound - range.lowerBound)
            let buffer = sendChannels[id]!.buffer
            let written = buffer.withBytes(at: range.lowerBound, maximum: length) { bytes in
                let whole = unordered && buffer.isWholeChunk(at: range.lowerBound, length: bytes.count)
                FrameWriter.stream(mode: mode, channel: id, offset: range.lowerBound, data: bytes, whole: whole, into: &cursor)
                return bytes.count
            }
            guard let written, written > 0 else { return false }
            refs.append(.stream(channel: id, offset: range.lowerBound, length: UInt32(written)))
            stats.bytesRetransmitted += UInt64(written)
            return true
        }
        let channel = sendChannels[id]!
        guard channel.canSendNewData else { return false }
        let offset = channel.sendOffset
        let allowed = Int(min(channel.writeOffset, channel.peerLimit) - offset)
        let written = channel.buffer.withBytes(at: offset, maximum: min(room, allowed)) { bytes in
            let whole = unordered && channel.buffer.isWholeChunk(at: offset, length: bytes.count)
            FrameWriter.stream(mode: mode, channel: id, offset: offset, data: bytes, whole: whole, into: &cursor)
            return bytes.count
        }
        guard let written, written > 0 else { return false }
        sendChannels[id]!.sendOffset = offset + UInt64(written)
        refs.append(.stream(channel: id, offset: offset, length: UInt32(written)))
        return true
    }

    /// Rotates the send key when due, once the peer has acknowledged the current phase.
    private func updateKeysIfDue(now: Timestamp) {
        let due = protection.packetsSinceKeyUpdate >= configuration.keyUpdatePackets
            || now.nanoseconds(since: lastKeyUpdate) >= configuration.keyUpdateInterval.nanoseconds
        guard due, let largestAcked = sent.largestAcknowledged, largestAcked >= firstPacketOfKeyPhase else { return }
        protection.updateSendKey()
        lastKeyUpdate = now
        firstPacketOfKeyPhase = nextPacketNumber
        stats.keyUpdates += 1
    }
}
