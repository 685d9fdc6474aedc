// An adaptive jitter buffer for a call's audio frames, in the manner of WebRTC's NetEQ: the
// target delay follows a high percentile of the measured arrival jitter, and the buffer moves
// towards it by time-stretching (accelerate: play a frame shorter; expand: longer) instead of
// dropping or inserting whole frames. A single lost frame is decoded from the next packet's
// in-band FEC (Opus LBRR); longer gaps are concealed (Opus PLC). Sans-IO: packets and the time
// in, playout decisions out; the call's audio path decodes and stretches.
public import XTransport

/// What to play next, one frame's worth of audio at a time.
public enum PlayoutDecision: Equatable, Sendable {
    /// Nothing to play yet (before the first frame is due, or nothing arrived): silence.
    case silence
    /// Decode `payload` (frame `sequence`) and play it, stretched by `stretch` (see ``Stretch``).
    case play(sequence: UInt32, payload: [UInt8], stretch: Stretch)
    /// Frame `sequence` is lost; the next frame is here: decode `sequence` from its in-band FEC.
    case recover(sequence: UInt32, from: [UInt8])
    /// Frame `sequence` is lost or late: conceal it (packet-loss concealment).
    case conceal(sequence: UInt32)
    /// Nothing is buffered and the next frame is not here yet: play concealment for as long
    /// as the output reads at a time (10 ms for a speaker; at most a frame) and ask again,
    /// keeping the place (NetEQ's expand). If the frame was only late, it plays next: a frame
    /// 2 ms late costs the rest of the talk spurt 10 ms, not a whole frame's 20.
    case wait

    /// How long the decoded frame plays.
    public enum Stretch: Equatable, Sendable {
        /// As recorded.
        case normal
        /// One pitch period (2.5–10 ms) shorter, where the frame has one: the buffer holds more
        /// than the target (``TimeStretch/accelerate(_:)``).
        case accelerate
        /// One pitch period longer: the buffer is running low (``TimeStretch/expand(_:)``).
        case expand

        /// Output duration ÷ input duration for a typical 5 ms period (planning and tests; the
        /// real length is what ``TimeStretch`` returns).
        public var ratio: Double {
            switch self {
            case .normal: 1
            case .accelerate: 0.75
            case .expand: 1.25
            }
        }
    }
}

/// Counts of what the buffer did, for a call's stats.
public struct JitterBufferStats: Equatable, Sendable {
    public var received = 0
    public var played = 0
    public var accelerated = 0
    public var expanded = 0
    /// Frames decoded from the next packet's FEC.
    public var recovered = 0
    /// Lost frames filled, whole, from the copy the next packet carried (redundancy), before their turn.
    public var repaired = 0
    /// Frames concealed (lost, or arrived after their turn).
    public var concealed = 0
    /// Packets that arrived after their turn (concealed already; not played).
    public var late = 0
    public var duplicates = 0
    /// Frames the sender skipped in silence (DTX), filled with comfort noise.
    public var silent = 0
    /// Concealment played while waiting for a frame not yet here (nothing buffered): one
    /// output read each (``PlayoutDecision/wait``).
    public var waited = 0
    /// Packets refused as implausible (a sequence number far from the call's).
    public var refused = 0
    /// The current target delay and buffer level.
    public var target: Duration = .zero
    public var level: Duration = .zero

    /// Share of frames due that were concealed, recovered, or arrived late, in percent.
    public var concealedPercent: Double { percent(concealed) }
    public var recoveredPercent: Double { percent(recovered) }
    public var repairedPercent: Double { percent(repaired) }
    public var latePercent: Double { percent(late) }
    /// Concealment played while waiting for a late frame, against the frames due, in percent.
    public var waitedPercent: Double { percent(waited) }
    /// Frames played shortened or lengthened, in percent.
    public var stretchedPercent: Double { percent(accelerated + expanded) }

    private func percent(_ count: Int) -> Double {
        let due = played + recovered + concealed
        return due == 0 ? 0 : Double(count) * 100 / Double(due)
    }
}

/// The jitter buffer of one incoming audio stream.
public struct JitterBuffer: Sendable {
    public struct Configuration: Sendable, Equatable {
        /// Duration of one frame (Opus at 20 ms).
        public var frame: Duration = .milliseconds(20)
        /// The target covers this share of the measured delays (NetEQ: 0.95–0.97).
        public var percentile = 0.95
        /// How many recent arrivals the percentile is taken over (100 × 20 ms: 2 s).
        public var history = 100
        /// Bounds of the target delay.
        public var minimumTarget: Duration = .milliseconds(20)
        public var maximumTarget: Duration = .milliseconds(500)
        /// How far the (smoothed) buffer level may stray from the target before stretching:
        /// above by this much it accelerates, below by half of it it expands.
        public var slack: Duration = .milliseconds(20)
        /// Whether the buffer time-stretches at all (off: a fixed buffer, the PLC-only mode).
        public var stretching = true
        /// Most frames held (1 s): beyond, the oldest are played accelerated in turn.
        public var capacity = 50
        /// A fixed target instead of an adaptive one (the "PLC-only" comparison mode).
        public var fixedTarget: Duration?
        /// Whether lost frames are decoded from the next packet's FEC.
        public var useFEC = true

        public init() {}
    }

    public let configuration: Configuration
    public private(set) var stats = JitterBufferStats()
    private var packets: [UInt32: [UInt8]] = [:]
    /// Frames the sender marked as silence (DTX): after one is played, the frames it does not
    /// send are expected gaps, not losses.
    private var silent: Set<UInt32> = []
    private var inSilence = false
    private var silentRun = 0
    /// The buffer level (whole frames and half a frame more) averaged over about 8 frames, in nanoseconds.
    private var smoothedLevel: Int64 = 0
    private var next: UInt32?
    private var started = false
    private var firstArrival: Timestamp?
    /// Recent (arrival − ``senderTime``) in nanoseconds: the transit plus an unknown offset.
    private var transits: [Int64] = []
    private var transitIndex = 0
    /// Whether the sender's capture times are used for the delay estimate (see ``senderTime``).
    private var captureClockUsable = true
    /// The newest frame with a capture time, and that time in nanoseconds.
    private var lastCapture: (sequence: UInt32, nanoseconds: Int64)?
    private var target: Int64
    /// The percentile of recent delays beyond the fastest, in nanoseconds.
    private var jitter: Int64 = 0
    /// The most any recent packet was delayed beyond the fastest, in nanoseconds.
    private var worstJitter: Int64 = 0
    /// The last frame found missing at its turn (see ``wantsLookAhead``).
    private var lastLoss: UInt32?
    /// The last frame the next packet carried again (redundancy): the sender's link loses
    /// packets, and a missing frame's copy comes a frame later.
    private var lastCarried: UInt32?
    /// The last frame that came as a second copy: the sender sends every packet twice (its
    /// link loses packets), so a frame is missing only when both copies are.
    private var lastCopy: UInt32?
    /// Frames missing at their turn within the last ``lossMemory`` frames.
    private var losses: [UInt32] = []
    /// Frames received lately: a second copy, or a repeat, of one is dropped whether it is
    /// still buffered or already played.
    private var heard = SequenceWindow()
    /// The part of the target that is look-ahead for FEC or redundancy (a frame, or 0), in nanoseconds.
    private var lookAhead: Int64 = 0
    /// How many packets in a row, all slower than the fastest before them by more than a frame
    /// and the jitter, make a step in the path's delay (10: 200 ms of speech).
    static let stepWindow = 10
    /// Speech longer than this (5 s) without a pause is expanded to its look-ahead too.
    static let talkSpurtFrames = 250
    /// How far short of the target the level may be before a frame is expanded: half the slack,
    /// and a young talk spurt's look-ahead frame (which the next silence takes instead).
    private var shortfall: Int64 { deferredLookAhead + configuration.slack.nanoseconds / 2 }
    /// The look-ahead that waits for the sender's next silence rather than being expanded to.
    private var deferredLookAhead: Int64 { sawSilence && sinceOnset < Self.talkSpurtFrames ? lookAhead : 0 }
    /// How long a loss keeps the look-ahead frame, in frames (10 s): through a conversation's
    /// pauses, so the next words do not start a frame short and wait at their first loss
    /// (a wait in mid-word cost 0.6 PESQ-WB at 5% loss).
    static let lossMemory = 500
    /// Since when concealment has played while nothing was buffered (waiting for the next frame).
    private var waitingSince: Timestamp?
    /// Since when speech that resumed after the sender's silence has been held back.
    private var onsetHeldSince: Timestamp?
    /// The newest frame received and when it came: the time since then is the part of the
    /// buffer level finer than a frame (see `preciseLevel`).
    private var newest: (sequence: UInt32, arrival: Timestamp)?
    private var lastPlayed: UInt32?
    /// Frames played since speech resumed after the sender's silence: the first words are
    /// not stretched (the silence before them already set the level; see `pull`).
    private var sinceOnset = Int.max
    /// The sender pauses in silence (DTX): a slip can wait for the next pause, which takes it
    /// back for free, so accelerating needs twice the slack.
    private var sawSilence = false

    public init(configuration: Configuration = Configuration()) {
        self.configuration = configuration
        target = (configuration.fixedTarget ?? configuration.minimumTarget).nanoseconds
        stats.target = .nanoseconds(target)
    }

    private var frame: Int64 { configuration.frame.nanoseconds }

    /// Whether the buffer plays no speech now: before its start, or in the sender's silence.
    public var isIdle: Bool { !started || inSilence }

    /// Whether speech is buffered while the buffer is idle: the filler played meanwhile may be
    /// cut short, so the speech starts at the next read rather than after a frame of filler.
    /// (A fixed buffer, PLC-only mode, keeps its frame rhythm.)
    public var speechWaiting: Bool {
        guard isIdle, configuration.stretching else { return false }
        return packets.keys.contains { !silent.contains($0) }
    }
    /// Frames after speech resumes that are not stretched (300 ms).
    static let onsetFrames = 15

    /// Takes a redundant copy of frame `sequence` (carried by the next packet): it fills the
    /// frame's place if the frame is missing and its turn has not come; otherwise it is dropped
    /// quietly (most copies are of frames already here). It is not an arrival: the delay
    /// estimate and the level's newest frame take no note of it.
    public mutating func insertRedundant(sequence: UInt32, payload: [UInt8]) {
        if lastCarried.map({ Int32(bitPattern: sequence &- $0) > 0 }) ?? true {
            lastCarried = sequence  // the sender's link loses packets: hold the look-ahead frame
            updateTarget()
        }
        guard let next, packets[sequence] == nil, !payload.isEmpty else { return }
        let ahead = Int64(Int32(bitPattern: sequence &- next))
        guard ahead >= 0, ahead < Int64(configuration.capacity) * 4 else { return }
        packets[sequence] = payload
        stats.repaired += 1
        updateLevel()
    }

    /// Takes frame `sequence` arriving at `arrival`.
    /// - Parameters:
    ///   - silence: the sender's encoder was in DTX (silence): until its next normal frame it
    ///     sends only now and then, and the frames between are not losses.
    ///   - copy: the packet is the second copy of one sent just before it (``CallMediaPacket/Flags/copy``).
    ///   - captureMicroseconds: when the sender captured the frame, on its own clock (0: not
    ///     known). The delay estimate measures each packet from it (see ``senderTime``).
    public mutating func insert(sequence: UInt32, payload: [UInt8], arrival: Timestamp, silence: Bool = false, copy: Bool = false,
                                captureMicroseconds: UInt64 = 0) {
        let sent = senderTime(sequence: sequence, captureMicroseconds: captureMicroseconds)
        stats.received += 1
        if copy, lastCopy.map({ Int32(bitPattern: sequence &- $0) > 0 }) ?? true {
            lastCopy = sequence
            updateTarget()
        }
        guard !heard.contains(sequence) else { stats.duplicates += 1; return }
        if let next {
            let ahead = Int64(Int32(bitPattern: sequence &- next))
            if ahead < 0, inSilence, !silence, -ahead <= Int64(configuration.capacity), configuration.stretching,
               lastPlayed.map({ Int32(bitPattern: sequence &- $0) > 0 }) ?? true {
                // Speech after the sender's silence, behind its slot (the path got slower while
                // nothing was sent): only comfort noise stood in its place, so the playout moves
                // back to it rather than dropping the first words.
                self.next = sequence
            } else if ahead < 0 {
                // Too late to play, but its delay counts (as in NetEQ): left out, a path that
                // brings every other frame 30 ms late kept a target that fitted only the others,
                // and half the frames were late for good.
                stats.late += 1
                _ = heard.insert(sequence)
                learn(sent: sent, arrival: arrival)
                return
            }
            guard ahead < Int64(configuration.capacity) * 4 else { stats.refused += 1; return }
        }
        guard packets[sequence] == nil else { stats.duplicates += 1; return }
        packets[sequence] = payload
        _ = heard.insert(sequence)
        if silence {
            silent.insert(sequence)
            sawSilence = true
        }
        if firstArrival == nil { firstArrival = arrival }
        // A frame that comes after a later one (reordered, or retransmitted) counts in the
        // delay estimate as any other, as in NetEQ: the target covers reordering. (It once
        // stayed out, so that retransmissions at 5% loss did not lift the target to a round trip;
        // a sender on a lossy link now sends each packet twice, and the second copy of a frame
        // already here is not an arrival.) The newest frame is the highest number.
        let reordered = newest.map { Int32(bitPattern: sequence &- $0.sequence) < 0 } ?? false
        if !reordered { newest = (sequence, arrival) }
        learn(sent: sent, arrival: arrival)
        updateLevel()
    }

    /// Decides the next frame to play. Call it whenever the output needs the next frame's audio.
    public mutating func pull(now: Timestamp) -> PlayoutDecision {
        defer { updateLevel() }
        if !started {
            guard let firstArrival, let lowest = lowestSequence, now.nanoseconds(since: firstArrival) >= target - frame else { return .silence }
            started = true
            next = lowest
        }
        guard let sequence = next else { return .silence }
        let level = bufferedSpan(from: sequence)
        let precise = preciseLevel(from: sequence, now: now)
        // The level stretching compares with the target, in whole frames and half a frame more
        // (the middle of what a whole-frame count can mean). Counted down to the whole frame, a
        // target between two frames (31 ms through 0–14 ms of jitter) read a buffer at its
        // target as 11 ms short, and words were expanded every few frames (PESQ-WB 3.7 against
        // 4.3). The precise measure (`preciseLevel`) reads no further ahead than the next
        // frame, so a buffer short for a path that brings every other frame 30 ms late never
        // deepened.
        let centred = level + frame / 2
        if !packets.isEmpty { waitingSince = nil }
        // Speech resuming after the sender's silence, with less than the target buffered: it
        // waits in the silence (inaudible) until the buffer is at its target, rather than
        // stretching its first words (as NetEQ delays the end of comfort noise). The level is
        // measured finer than a frame here, so the words start as soon as the target allows;
        // the hold lasts a target's time at most.
        if inSilence, configuration.stretching, packets[sequence] != nil, !silent.contains(sequence),
           precise < onsetTarget, now.nanoseconds(since: onsetHeldSince ?? now) < onsetTarget {
            if onsetHeldSince == nil { onsetHeldSince = now }
            stats.silent += 1
            return .wait
        }
        if let payload = packets.removeValue(forKey: sequence) {
            onsetHeldSince = nil
            lastPlayed = sequence
            next = sequence &+ 1
            stats.played += 1
            let wasSilent = inSilence
            inSilence = silent.remove(sequence) != nil
            if wasSilent && !inSilence {
                sinceOnset = 0
                smoothedLevel = centred
            } else if sinceOnset < Int.max {
                sinceOnset += 1
            }
            silentRun = 0
            // The audio held, this frame included, against the target (centred, as above).
            // The level moves by up to a frame as packets come and go; its average over ~8 frames
            // is what is compared, so one early or late packet does not start a stretch.
            smoothedLevel = smoothedLevel == 0 ? centred : smoothedLevel + (centred - smoothedLevel) / 8
            var stretch = PlayoutDecision.Stretch.normal
            if !configuration.stretching {
                // A fixed buffer plays as it comes.
            } else if sinceOnset < Self.onsetFrames && level <= target + 3 * frame {
                // The first words after a silence play as they are: stretching them (a pitch
                // period cut or repeated while the level settles) is what a listener hears most.
            } else if min(centred, smoothedLevel) > target + (sawSilence ? 2 : 1) * configuration.slack.nanoseconds || packets.count >= configuration.capacity {
                stretch = .accelerate
                stats.accelerated += 1
            } else if max(centred, smoothedLevel) < target - shortfall {
                // Short of the target in mid-speech: expand. A DTX sender's look-ahead frame is
                // not part of this while its talk spurt is young: it is taken in the next silence
                // (the onset waits for the whole target), as a pitch period repeated in a word is
                // heard and scored (PESQ-WB 0.4 at 5% loss).
                stretch = .expand
                stats.expanded += 1
            }
            return .play(sequence: sequence, payload: payload, stretch: stretch)
        }
        // In the sender's silence, frames it did not send are comfort noise, not losses.
        if inSilence {
            silentRun += 1
            if packets.isEmpty && silentRun >= configuration.capacity {
                pause()  // the sender stopped altogether
                return .silence
            }
            // Speech buffered ahead of its slot: the comfort noise before it is dropped and the
            // words start as soon as what is buffered from their first frame covers the target
            // (the same measure the onset hold uses) and in whole frames and half a frame more
            // too (as stretching counts the level), so they are not then expanded (a clean
            // sentence through 0-20 ms of jitter started a frame short had 15-19 frames
            // stretched, PESQ-WB 4.3 -> 3.6), wherever the schedule that ran on through the
            // silence stands. A delay picked up before (an output that stalled, a late burst, a
            // sender whose clock restarted) is shed here, not carried through the rest of the
            // call: dropping comfort noise only while a whole frame more than the target was
            // buffered left a stall's delay in every later word (20 ms after both ends of a
            // loopback call stalled at once), and so did counting in whole frames alone: a
            // target a hair over a frame (20.3 ms through 0.3 ms of loopback jitter) then asked
            // for two, and after both ends stopped for 60 ms every later word came 33 ms late.
            if configuration.stretching, let onset = lowestSpeech, Int32(bitPattern: onset &- sequence) > 0,
               preciseLevel(from: onset, now: now) >= onsetTarget, bufferedSpan(from: onset) + frame / 2 >= target {
                // The sender's silence frames buffered before the words go with the comfort noise
                // (left behind the playout they would count as buffered for ever).
                for key in packets.keys where Int32(bitPattern: key &- onset) < 0 {
                    packets[key] = nil
                    silent.remove(key)
                }
                next = onset
                return pull(now: now)
            }
            next = sequence &+ 1
            stats.silent += 1
            return .conceal(sequence: sequence)
        }
        // This frame is not here, and nothing else is buffered either: it is late, lost, or
        // the sender paused. Conceal *without moving on* (NetEQ's expand): if it is late, it
        // plays when it comes, and the buffer is that wait deeper from then on; if it was lost,
        // the next frame finds it missing with a later one buffered (FEC, or conceal and move
        // on). After a second of nothing the stream has paused: silence, then start afresh.
        guard !packets.isEmpty else {
            if waitingSince == nil { waitingSince = now }
            guard now.nanoseconds(since: waitingSince ?? now) < Int64(configuration.capacity - 1) * frame else {
                pause()
                return .silence
            }
            if !configuration.stretching {
                // A fixed buffer cannot catch up after waiting: it conceals and moves on, and
                // the frame, if it comes, is late (as Mumble's buffer does).
                next = sequence &+ 1
                stats.concealed += 1
                return .conceal(sequence: sequence)
            }
            stats.waited += 1
            return .wait
        }
        // Not here, but a later frame is: lost (or late).
        next = sequence &+ 1
        noteLoss(sequence)
        if configuration.useFEC, let following = packets[sequence &+ 1] {
            stats.recovered += 1
            return .recover(sequence: sequence, from: following)
        }
        stats.concealed += 1
        return .conceal(sequence: sequence)
    }

    // MARK: - Delay estimate

    /// When the sender made frame `sequence`, in nanoseconds on a clock of its own: its capture
    /// time, while its capture clock is plausible; otherwise the frame's place in the stream
    /// (`sequence` × frame, as RTP's sample clock counts). Measured from the capture time, a
    /// sender that stops (a stalled machine, a microphone that restarts) and numbers its frames
    /// on, captured later, shows no step: only the frames it held meanwhile came late. (From the
    /// frames' places, both ends of a call stopping for 60 ms read as a 75 ms step, and until
    /// ten packets had shown it, four seconds of a DTX sender's silence, the target stood at
    /// 90 ms and the next words started two frames late.) A capture clock that moves less than
    /// half a frame per frame (absent, frozen, or going back) is not used again for the call.
    private mutating func senderTime(sequence: UInt32, captureMicroseconds: UInt64) -> Int64 {
        let place = Int64(sequence) &* frame
        guard captureClockUsable, captureMicroseconds > 0, captureMicroseconds < UInt64(Int64.max / 1000) else {
            if captureClockUsable, captureMicroseconds == 0 { dropCaptureClock() }
            return place
        }
        let captured = Int64(captureMicroseconds) * 1000
        if let (reference, at) = lastCapture {
            let frames = Int64(Int32(bitPattern: sequence &- reference))
            let moved = captured - at
            // Later frames were captured at least half a frame each later; earlier ones, earlier.
            let plausible = frames > 0 ? moved >= frames * frame / 2 : frames < 0 ? moved <= frames * frame / 2 : moved == 0
            guard plausible else {
                dropCaptureClock()
                return place
            }
            if frames > 0 { lastCapture = (sequence, captured) }
        } else {
            lastCapture = (sequence, captured)
        }
        return captured
    }

    /// Measures delays from the frames' places from now on (the two clocks' delays do not mix).
    private mutating func dropCaptureClock() {
        captureClockUsable = false
        transits = []
        transitIndex = 0
    }

    private mutating func learn(sent: Int64, arrival: Timestamp) {
        let transit = Int64(bitPattern: arrival.nanoseconds) &- sent
        if transits.count < configuration.history {
            transits.append(transit)
        } else {
            transits[transitIndex] = transit
            transitIndex = (transitIndex + 1) % configuration.history
        }
        // A step: the last few packets all came slower than the fastest before them by more than
        // a frame and more than the jitter already covered. The path got slower, or the sender's
        // microphone restarted after a stall (its frames numbered on, captured later): the old,
        // faster packets are forgotten, or they would hold the step as jitter, and the target a
        // step too deep, for two seconds of packets (the words after a stall started 40 ms late).
        if transits.count > Self.stepWindow {
            // In insertion order: the ring's oldest entry is at transitIndex once it is full.
            let ordered = Array(transits[transitIndex...] + transits[..<transitIndex])
            let before = ordered.dropLast(Self.stepWindow)
            let last = ordered.suffix(Self.stepWindow)
            if let fastest = before.min(), let recentFastest = last.min(), recentFastest - fastest > frame,
               recentFastest - fastest > Self.percentile(before.map { $0 - fastest }, configuration.percentile) {
                transits = Array(last)
                transitIndex = 0
            }
        }
        guard configuration.fixedTarget == nil, let fastest = transits.min() else { return }
        // The delay each packet had beyond the fastest recent one; the target covers the percentile.
        jitter = Self.percentile(transits.map { $0 - fastest }, configuration.percentile)
        worstJitter = (transits.max() ?? fastest) - fastest
        updateTarget()
    }

    /// The `share` (0…1) percentile of `values` (0 for none).
    private static func percentile(_ values: [Int64], _ share: Double) -> Int64 {
        guard !values.isEmpty else { return 0 }
        let sorted = values.sorted()
        return sorted[max(0, min(sorted.count - 1, Int((Double(sorted.count) * share).rounded(.up)) - 1))]
    }

    /// Nothing has come for a second: play silence and start afresh with what comes next.
    private mutating func pause() {
        waitingSince = nil
        started = false
        firstArrival = nil
        newest = nil
        onsetHeldSince = nil
        next = nil
        heard = SequenceWindow()
        inSilence = false
        silentRun = 0
        silent = []
    }

    private mutating func noteLoss(_ sequence: UInt32) {
        lastLoss = sequence
        losses.removeAll { Int64(Int32(bitPattern: sequence &- $0)) > Int64(Self.lossMemory) }
        losses.append(sequence)
        updateTarget()
    }

    /// Missing frames, of ``lossMemory``, from which a sender that sends every packet twice
    /// still needs the look-ahead frame (1%: both copies lost that often, as at 10% random drop).
    static let residualLosses = lossMemory / 100

    /// Whether the target holds a frame of look-ahead, so that the next packet (its FEC, its
    /// copy of this frame) is here when a frame is missing: while the sender's frames go
    /// missing or come again in the next packet (within ``lossMemory``). A sender that sends
    /// every packet twice needs it only while frames still go missing often
    /// (``residualLosses``) or it carries redundancy too: a frame is missing when both copies
    /// are lost (0.25% at 5% random drop), and a frame of look-ahead for each of those would
    /// cost every word 20 ms.
    private var wantsLookAhead: Bool {
        guard configuration.useFEC, let next else { return false }
        let recent = { (sequence: UInt32?) in sequence.map { Int64(Int32(bitPattern: next &- $0)) <= Int64(Self.lossMemory) } ?? false }
        if recent(lastCarried) { return true }
        if recent(lastCopy) {
            return losses.count(where: { Int64(Int32(bitPattern: next &- $0)) <= Int64(Self.lossMemory) }) >= Self.residualLosses
        }
        return recent(lastLoss)
    }

    /// One frame plus the jitter percentile, plus one frame of look-ahead for FEC while losses
    /// are recent (``wantsLookAhead``), within the bounds.
    private mutating func updateTarget() {
        guard configuration.fixedTarget == nil else { return }
        var wanted = jitter + frame
        lookAhead = 0
        if wantsLookAhead {
            wanted += frame
            lookAhead = frame
        }
        target = min(max(wanted, configuration.minimumTarget.nanoseconds), configuration.maximumTarget.nanoseconds)
        stats.target = .nanoseconds(target)
    }

    /// The level words start at after the sender's silence: the target, or a frame and the
    /// worst recent delay if that is more (by at most a quarter of the slack). The target covers 95% of
    /// packets, and a talk spurt of a hundred frames started there waited for one of the other
    /// 5% in mid-word (concealment heard, and the words a read later for the rest of the spurt);
    /// starting it where the worst recent packet would have been in time costs a few
    /// milliseconds where the path is steady, and nothing where it is not (the percentile is
    /// then near the worst).
    private var onsetTarget: Int64 {
        guard configuration.fixedTarget == nil else { return target }
        return max(target, min(frame + worstJitter, target + configuration.slack.nanoseconds / 4))
    }

    /// The earliest speech frame buffered (not one the sender marked as silence).
    private var lowestSpeech: UInt32? {
        packets.keys.filter { !silent.contains($0) }.min { Int32(bitPattern: $0 &- $1) < 0 }
    }

    private var lowestSequence: UInt32? {
        guard let any = packets.keys.first else { return nil }
        return packets.keys.reduce(any) { Int32(bitPattern: $1 &- $0) < 0 ? $1 : $0 }
    }

    /// Audio held from `sequence` to the newest frame, gaps included, in nanoseconds.
    private func bufferedSpan(from sequence: UInt32) -> Int64 {
        let newest = packets.keys.map { Int64(Int32(bitPattern: $0 &- sequence)) }.max() ?? -1
        return max(0, newest + 1) * frame
    }

    /// The audio held from `sequence` (as ``bufferedSpan(from:)``) plus the time the newest
    /// frame has waited, up to a frame: the next frame is due that much later. In nanoseconds.
    /// (Counting a late frame's lateness as waited too started words sooner through jitter, but
    /// then short of the target in whole frames: expanded, clean PESQ-WB 4.33 -> 3.94.)
    private func preciseLevel(from sequence: UInt32, now: Timestamp) -> Int64 {
        guard let newest, Int32(bitPattern: newest.sequence &- sequence) >= 0 else { return 0 }
        return bufferedSpan(from: sequence) + min(frame, max(0, now.nanoseconds(since: newest.arrival)))
    }

    private mutating func updateLevel() {
        stats.level = .nanoseconds(next.map { bufferedSpan(from: $0) } ?? 0)
    }
}
