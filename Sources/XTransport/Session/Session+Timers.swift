// Time-driven behaviour: the session's next deadline, and what happens when it passes —
// dead-peer detection, close timeouts, loss detection by time, the probe timeout (tail-loss
// probe, then persistent congestion), live-message expiry and the 1 s keepalive.

extension Session {
    /// The probe-timeout deadline: when the last ack-eliciting packet should have been acknowledged.
    /// Consecutive timeouts double it, but only up to 4×: after an outage (a Wi-Fi dropout, a
    /// rebooting switch) the session notices the path is back within a few round trips instead
    /// of waiting out a long backoff. A probe is at most two packets, so this costs little.
    var probeTimeoutDeadline: Timestamp? {
        guard sent.elicitingInFlight > 0, let last = sent.lastElicitingSentTime else { return nil }
        let base = rtt.probeTimeout(maximumAckDelay: configuration.maximumAckDelay.nanoseconds)
        return last.adding(nanoseconds: base << Int64(min(probeTimeoutCount, Self.maximumProbeBackoff)))
    }

    /// Most doublings of the probe timeout.
    static let maximumProbeBackoff = 2

    /// The earliest time `handleTimeout` (or `pollTransmit`) has something to do.
    func nextTimeout() -> Timestamp? {
        if state == .closed { return nil }
        var earliest = lastReceiveTime.adding(configuration.deadPeerTimeout)
        func consider(_ time: Timestamp?) {
            if let time, time < earliest { earliest = time }
        }
        switch state {
        case .closing(let deadline), .draining(let deadline): consider(deadline)
        default: break
        }
        consider(ackTracker.ackDeadline)
        consider(lossTime)
        consider(probeTimeoutDeadline)
        consider(pacingWakeup)
        consider(candidatePath?.nextSend)
        if state == .established {
            consider(lastElicitingSendTime.adding(configuration.keepaliveInterval))
            // A probe waits for window room; the ACK that opens it re-polls the session.
            if sent.bytesInFlight + mtu.current <= congestion.congestionWindow { consider(mtu.nextTimeout) }
        }
        for id in sendOrder { consider(sendChannels[id]!.nextDeadline) }
        return earliest
    }

    func handleTimeout(now: Timestamp) {
        if state == .closed { return }
        if now.nanoseconds(since: lastReceiveTime) >= configuration.deadPeerTimeout.nanoseconds {
            finish(.timedOut)
            return
        }
        switch state {
        case .closing(let deadline) where deadline <= now:
            finish(.local)
            return
        case .draining(let deadline) where deadline <= now:
            state = .closed
            return
        default:
            break
        }
        if let lossTime, lossTime <= now { detectLosses(now: now) }
        if let deadline = probeTimeoutDeadline, deadline <= now { onProbeTimeout(now: now) }
        var expired = false
        for id in sendOrder where sendChannels[id]!.nextDeadline.map({ $0 <= now }) ?? false {
            let skipped = sendChannels[id]!.expireLiveMessages(now: now)
            stats.liveMessagesSkipped += skipped
            expired = true
        }
        if expired { releaseBuffer(now: now) }
        if state == .established, now.nanoseconds(since: lastElicitingSendTime) >= configuration.keepaliveInterval.nanoseconds {
            pingPending = true
        }
    }

    /// How long the peer must have acknowledged nothing, across three probe timeouts, before
    /// the path counts as gone. On a busy host a receiver can go quiet for tens of milliseconds
    /// (its thread not scheduled); that must not reset the rate and the MTU.
    static let persistentCongestionMinimum: Int64 = 500 * Nanos.millisecond

    /// Nothing acknowledged for a probe timeout: send up to two probes carrying data (the
    /// tail-loss probe). After three in a row spanning at least half a second, assume
    /// persistent congestion: the rate starts over and the path MTU is searched again.
    private func onProbeTimeout(now: Timestamp) {
        probeTimeoutCount += 1
        stats.probeTimeouts += 1
        probesToSend = 2
        if probeTimeoutCount >= 3, now.nanoseconds(since: lastAcknowledgmentTime) >= Self.persistentCongestionMinimum {
            congestion.onPersistentCongestion(now: now)
            mtu.onBlackHole(now: now)
            congestion.onMaximumDatagramSizeChanged(mtu.current)
            sent.declareAllLost { onLost($0, now: now) }
            return
        }
        if !hasDataToSend {
            // Resend the oldest unacknowledged data, or at least elicit an ACK.
            if let oldest = sent.oldestInFlight(), oldest.frames.first != nil {
                oldest.frames.forEach { frame in
                    if case .stream(let channel, let offset, let length) = frame {
                        sendChannels[channel]?.markLost(offset..<offset + UInt64(length))
                    }
                }
            }
            if !hasDataToSend { pingPending = true }
        }
    }
}
