// The jitter buffer under scripted arrival patterns: frames sent every 20 ms arrive with a
// scripted delay (or not at all); the output pulls a frame whenever it has played the last one,
// for as long as the decision's stretch makes it last.
import Testing
import XTCall
import XTransport

private struct Playout {
    var buffer: JitterBuffer
    /// Every frame's fate by sequence: played, recovered, concealed.
    var fates: [UInt32: String] = [:]
    /// Buffer level in ms at each pull after `measureFrom`.
    var levels: [Double] = []
    var targets: [Double] = []
    /// Sequences played, in playing order.
    var order: [UInt32] = []
    /// When each played frame began to play, in ms after it was sent (its delay through the buffer).
    var delays: [UInt32: Double] = [:]

    /// Sends `count` frames; `delay(i)` is frame i's one-way delay in ms (nil: lost).
    /// `silent(i)`: the sender marked frame i as silence (DTX).
    /// `redundancy`: each packet also carries the previous frame (as the sender does on a lossy link).
    /// `copy(i)`: the delay in ms of frame i's second copy, sent right after it (nil: lost, or
    /// not sent: the sender sends each packet twice on a lossy link).
    /// `stall`: the output stops pulling at `at` s for `for` ms (a speaker that starved).
    /// `read`: the output reads this many ms at a time, as `CallAudioReceiver` does: filler
    /// (comfort noise, silence) is cut short at the next read once speech waits, and a wait for
    /// a late frame lasts one read. nil: it pulls a frame at a time.
    /// `captured(i)`: when the sender captured frame i, in ms on its clock (nil: not sent, as an
    /// old sender or a test that leaves it out).
    init(count: Int, configuration: JitterBuffer.Configuration = .init(), measureFrom: Double = 0, silent: (Int) -> Bool = { _ in false },
         redundancy: Bool = false, copy: (Int) -> Double? = { _ in nil }, stall: (at: Double, for: Double)? = nil, read: Double? = nil,
         captured: ((Int) -> Double)? = nil, delay: (Int) -> Double?) {
        buffer = JitterBuffer(configuration: configuration)
        let start: UInt64 = 1_000_000_000
        var arrivals: [(UInt64, UInt32, isCopy: Bool)] = []
        for i in 0..<count {
            if let ms = delay(i) { arrivals.append((start + UInt64(i) * 20_000_000 + UInt64(ms * 1e6), UInt32(i), false)) }
            if let ms = copy(i) { arrivals.append((start + UInt64(i) * 20_000_000 + UInt64(ms * 1e6), UInt32(i), true)) }
        }
        arrivals.sort { $0.0 < $1.0 }
        var next = 0
        var pullAt = start
        let end = start + UInt64(count) * 20_000_000 + 1_000_000_000
        var stalled = stall == nil
        let readStep = UInt64((read ?? 20) * 1e6)
        var fillerLeft: UInt64 = 0
        while pullAt < end {
            if !stalled, let stall, Double(pullAt - start) / 1e9 >= stall.at {
                pullAt += UInt64(stall.for * 1e6)
                stalled = true
            }
            while next < arrivals.count, arrivals[next].0 <= pullAt {
                buffer.insert(sequence: arrivals[next].1, payload: [UInt8(truncatingIfNeeded: arrivals[next].1)], arrival: Timestamp(nanoseconds: arrivals[next].0),
                              silence: silent(Int(arrivals[next].1)), copy: arrivals[next].isCopy,
                              captureMicroseconds: captured.map { UInt64(($0(Int(arrivals[next].1)) + 1000) * 1000) } ?? 0)
                if redundancy, arrivals[next].1 > 0 {
                    buffer.insertRedundant(sequence: arrivals[next].1 - 1, payload: [UInt8(truncatingIfNeeded: arrivals[next].1 - 1)])
                }
                next += 1
            }
            if fillerLeft > 0 {
                // Filler still playing: it is cut at this read if speech waits, else a read of it plays.
                if buffer.speechWaiting {
                    fillerLeft = 0
                } else {
                    fillerLeft -= min(fillerLeft, readStep)
                    pullAt += readStep
                    continue
                }
            }
            let decision = buffer.pull(now: Timestamp(nanoseconds: pullAt))
            var ratio = 1.0
            switch decision {
            case .silence, .wait: break
            case .play(let sequence, let payload, let stretch):
                #expect(payload == [UInt8(truncatingIfNeeded: sequence)])
                #expect(fates[sequence] != "played", "frame \(sequence) played twice")
                fates[sequence] = "played"
                order.append(sequence)
                delays[sequence] = Double(pullAt - (start + UInt64(sequence) * 20_000_000)) / 1e6
                ratio = stretch.ratio
            case .recover(let sequence, let from):
                #expect(from == [UInt8(truncatingIfNeeded: sequence &+ 1)], "FEC comes from the next frame")
                fates[sequence] = "recovered"
            case .conceal(let sequence):
                // (Comfort noise in the sender's silence may stand in a slot that speech takes later.)
                if sequence < UInt32(count), fates[sequence] == nil { fates[sequence] = "concealed" }  // past the end: the stream stopped
            }
            if Double(pullAt - start) / 1e9 >= measureFrom {
                levels.append(Double(buffer.stats.level.nanoseconds) / 1e6)
                targets.append(Double(buffer.stats.target.nanoseconds) / 1e6)
            }
            switch decision {
            case .wait where read != nil:
                pullAt += readStep
            case .conceal, .silence, .wait:
                if read != nil, buffer.isIdle {
                    fillerLeft = 20_000_000 - readStep
                    pullAt += readStep
                } else {
                    pullAt += 20_000_000
                }
            default:
                pullAt += UInt64(20_000_000 * ratio)
            }
        }
    }

    func count(_ fate: String, in range: Range<Int>? = nil) -> Int {
        fates.filter { $0.value == fate && (range?.contains(Int($0.key)) ?? true) }.count
    }
}

private func percentile(_ values: [Double], _ p: Double) -> Double {
    let sorted = values.sorted()
    return sorted[min(sorted.count - 1, Int(Double(sorted.count) * p))]
}

/// A DTX sender's talk: spurts of `talk` frames in every `spurt`, silence between (one silence
/// frame, then a keep-alive every 20 frames; the frames between are not sent).
private struct TalkSpurts {
    let spurt: Int
    let talk: Int
    func silent(_ i: Int) -> Bool { i % spurt >= talk }
    /// Whether frame i is sent at all.
    func sent(_ i: Int) -> Bool { !silent(i) || (i % spurt - talk) % 20 == 0 }
}

/// A reproducible uniform number in 0..<1 for frame i.
private func noise(_ i: Int, _ seed: UInt64 = 1) -> Double {
    var generator = SplitMix64(seed: seed &+ UInt64(i) &* 0x9E37_79B9)
    return Double(generator.next() >> 11) / Double(1 << 53)
}

@Suite("Jitter buffer")
struct JitterBufferTests {
    @Test("A steady stream plays every frame as it is, one frame deep")
    func steady() {
        let run = Playout(count: 500) { _ in 15 }
        #expect(run.count("played") == 500)
        #expect(run.buffer.stats.concealed == 0 && run.buffer.stats.late == 0)
        #expect(run.buffer.stats.target == .milliseconds(20))
        #expect(run.buffer.stats.accelerated + run.buffer.stats.expanded <= 2)
    }

    @Test("The target follows the 95th percentile of the jitter; few frames come late")
    func uniformJitter() {
        var percentileOnly = JitterBuffer.Configuration()
        percentileOnly.useFEC = false  // no look-ahead frame for FEC: the target is the percentile alone
        let run = Playout(count: 1500, configuration: percentileOnly, measureFrom: 5) { i in 10 + 60 * noise(i) }
        let target = run.targets.last ?? 0
        #expect((66...86).contains(target), "target \(target) ms for 0…60 ms jitter (95th percentile 57 + one frame)")
        #expect(run.buffer.stats.latePercent < 5, "\(run.buffer.stats.latePercent)% late")
        #expect(run.count("played") + run.count("concealed") + run.count("recovered") == 1500, "every frame has its turn once")
        // The level sits just under the target: time-stretching keeps it there. (The level is
        // what is held besides the frame playing, in whole frames: the target less a frame, and
        // half a frame more or less.)
        let medianLevel = percentile(run.levels, 0.5)
        #expect(medianLevel <= target && medianLevel >= target - 50, "median level \(medianLevel) ms, target \(target) ms")
        // With FEC, the few late frames keep one frame of look-ahead, and FEC recovers most of them.
        let withFEC = Playout(count: 1500, measureFrom: 5) { i in 10 + 60 * noise(i) }
        #expect((66...106).contains(withFEC.targets.last ?? 0))
        #expect(withFEC.count("concealed") <= run.count("concealed"), "FEC: \(withFEC.count("concealed")) concealed, without: \(run.count("concealed"))")
    }

    @Test("A single lost frame is decoded from the next one's FEC; a burst is concealed but its last frame recovered")
    func losses() {
        // The first loss is concealed and makes the buffer hold one frame more; from then on the
        // next packet is there when a frame is missing.
        let single = Playout(count: 1000) { i in i % 10 == 5 ? nil : 15 }
        #expect(single.count("recovered") >= 98 && single.count("recovered") + single.count("concealed") == 100,
                "\(single.count("recovered")) recovered, \(single.count("concealed")) concealed")
        #expect(single.buffer.stats.target == .milliseconds(40), "one frame of look-ahead while losses are recent")
        let burst = Playout(count: 1000) { i in (i % 50 >= 20 && i % 50 < 23) ? nil : 15 }
        #expect(burst.count("recovered") >= 18 && burst.count("recovered") + burst.count("concealed") == 60,
                "per burst of 3: 2 concealed, the last one from FEC (\(burst.count("recovered")) recovered)")
        var noFEC = JitterBuffer.Configuration()
        noFEC.useFEC = false
        let plc = Playout(count: 1000, configuration: noFEC) { i in i % 10 == 5 ? nil : 15 }
        #expect(plc.count("concealed") == 100 && plc.count("recovered") == 0)
        #expect(abs(single.buffer.stats.recoveredPercent - 10) < 0.5)
        let clean = Playout(count: 500) { _ in 15 }
        #expect(clean.buffer.stats.target == .milliseconds(20), "no look-ahead without losses")
    }

    @Test("With redundancy a single lost frame plays whole from the next packet's copy; a copy of a frame already here is dropped quietly")
    func redundancy() {
        let single = Playout(count: 1000, redundancy: true) { i in i % 10 == 5 ? nil : 15 + 10 * noise(i) }
        #expect(single.count("played") >= 998, "\(single.count("played")) played, \(single.count("recovered")) recovered, \(single.count("concealed")) concealed")
        #expect(single.buffer.stats.repaired >= 98 && single.buffer.stats.repaired <= 100, "\(single.buffer.stats.repaired) repaired")
        #expect(single.buffer.stats.late == 0 && single.buffer.stats.duplicates == 0, "copies of frames already here are not counted as late or duplicate")
        #expect(single.buffer.stats.received == 900, "copies are not arrivals")
        // Two lost in a row: the second comes back whole, the first from the second's FEC.
        let pairs = Playout(count: 1000, redundancy: true) { i in i % 20 == 5 || i % 20 == 6 ? nil : 15 }
        #expect(pairs.count("played") >= 948 && pairs.count("recovered") >= 48 && pairs.count("concealed") <= 2,
                "\(pairs.count("played")) played, \(pairs.count("recovered")) recovered, \(pairs.count("concealed")) concealed")
        // A copy of a frame whose turn has passed is dropped (and so is one before the stream starts).
        var buffer = JitterBuffer()
        buffer.insertRedundant(sequence: 4, payload: [4])
        #expect(buffer.stats.repaired == 0)
        buffer.insert(sequence: 10, payload: [10], arrival: Timestamp(nanoseconds: 1_000_000_000))
        _ = buffer.pull(now: Timestamp(nanoseconds: 1_100_000_000))
        buffer.insertRedundant(sequence: 9, payload: [9])
        buffer.insertRedundant(sequence: 10, payload: [10])
        #expect(buffer.stats.repaired == 0 && buffer.stats.late == 0)
    }

    @Test("A sender that sends each packet twice: a frame is missing only when both copies are, and the buffer holds no look-ahead frame for those")
    func secondCopies() {
        // 5% random drop of each datagram, 0…20 ms of jitter each.
        func original(_ i: Int) -> Double? { noise(i, 11) < 0.05 ? nil : 5 + 20 * noise(i, 12) }
        func copy(_ i: Int) -> Double? { noise(i, 13) < 0.05 ? nil : 5 + 20 * noise(i, 14) }
        let both = (0..<1500).filter { original($0) == nil && copy($0) == nil }.count
        let copies = Playout(count: 1500, copy: copy, delay: original)
        let missing = copies.count("concealed") + copies.count("recovered")
        #expect(missing <= both + 8, "\(missing) frames missing, both copies lost of \(both)")
        let twice = (0..<1500).filter { original($0) != nil && copy($0) != nil }.count
        #expect(copies.buffer.stats.duplicates == twice, "every frame that came twice is counted once as a duplicate, played once")
        #expect(copies.buffer.stats.latePercent < 2, "a copy of a frame already played is not late: \(copies.buffer.stats.latePercent)%")
        // The same drop with the copy in the next packet instead (redundancy): each frame waits a
        // frame longer for it.
        let redundant = Playout(count: 1500, redundancy: true, delay: original)
        let delays = (copies: percentile(Array(copies.delays.values), 0.5), redundant: percentile(Array(redundant.delays.values), 0.5))
        #expect(delays.copies <= delays.redundant - 15, "median delay through the buffer: \(delays.copies) ms with copies, \(delays.redundant) with redundancy")
        // At 20% drop both copies are lost for 4% of frames: the look-ahead frame is held, and
        // the next packet's FEC brings most of them back.
        func original20(_ i: Int) -> Double? { noise(i, 21) < 0.2 ? nil : 5 + 20 * noise(i, 12) }
        func copy20(_ i: Int) -> Double? { noise(i, 23) < 0.2 ? nil : 5 + 20 * noise(i, 14) }
        let lossy = Playout(count: 1500, copy: copy20, delay: original20)
        #expect(lossy.count("recovered") > 2 * lossy.count("concealed"), "\(lossy.count("recovered")) recovered, \(lossy.count("concealed")) concealed")
        #expect((lossy.targets.last ?? 0) >= (copies.targets.last ?? 0) + 15, "the look-ahead frame is held at 20%: \(lossy.targets.last ?? 0) ms")
        #expect(percentile(Array(lossy.delays.values), 0.5) > delays.copies)
    }

    @Test("A target between two frames: a buffer at its target is not stretched", arguments: [7.0, 11.0, 14.0])
    func targetBetweenFrames(jitter: Double) {
        // 0…7, 0…11 and 0…14 ms of jitter: targets of 27-34 ms, where the buffer holds the frame
        // playing and the next only now and then.
        let run = Playout(count: 1500, measureFrom: 3) { i in 5 + jitter * noise(i, 31) }
        let target = run.targets.last ?? 0
        #expect(target > 20 && target < 40, "target \(target) ms")
        #expect(run.buffer.stats.expanded + run.buffer.stats.accelerated <= 15,
                "\(run.buffer.stats.expanded) expanded, \(run.buffer.stats.accelerated) accelerated of 1500 frames at a \(target) ms target")
        #expect(run.count("played") == 1500)
    }

    @Test("After a jitter spike the buffer drains back to the target by accelerating, without dropping frames")
    func spikeThenCalm() {
        // 4 s of 0…200 ms jitter, then 12 s of none.
        let run = Playout(count: 800, measureFrom: 14) { i in i < 200 ? 10 + 200 * noise(i, 7) : 10 }
        #expect(run.buffer.stats.accelerated > 10, "it accelerated \(run.buffer.stats.accelerated) times")
        #expect(run.buffer.stats.target <= .milliseconds(30), "the target came back down: \(run.buffer.stats.target)")
        #expect((run.levels.max() ?? 0) <= 40, "the level came back down: \(run.levels.max() ?? 0) ms")
        #expect(run.count("played", in: 300..<800) == 500, "nothing dropped once calm")
        #expect(run.buffer.stats.late == run.count("concealed") + run.count("recovered"), "only frames that came after their turn were missing")
    }

    @Test("Reordered frames within the target play in order; duplicates and far-off numbers are counted, not played")
    func reorderAndDuplicates() {
        // Pairs swap: frame 2k arrives 30 ms late, after 2k+1.
        let run = Playout(count: 400) { i in i % 2 == 0 ? 45 : 15 }
        #expect(run.count("played") >= 390, "\(run.count("played")) played: \(run.buffer.stats)")
        #expect(zip(run.order, run.order.dropFirst()).allSatisfy { $0 < $1 }, "in order")
        var buffer = JitterBuffer()
        let now = Timestamp(nanoseconds: 1_000_000_000)
        buffer.insert(sequence: 10, payload: [1], arrival: now)
        buffer.insert(sequence: 10, payload: [1], arrival: now)
        #expect(buffer.pull(now: now) == .play(sequence: 10, payload: [1], stretch: .normal))
        buffer.insert(sequence: 10_000, payload: [2], arrival: now)
        buffer.insert(sequence: 9, payload: [3], arrival: now)
        #expect(buffer.stats.duplicates == 1 && buffer.stats.refused == 1 && buffer.stats.late == 1)
    }

    @Test("Speech after the sender's silence is not lost when the path got slower meanwhile")
    func speechAfterSilence() {
        // Talk spurts of 2 s with 1 s of DTX between (one silence frame, then a keep-alive every
        // 20 frames). Each spurt comes 30 ms slower than the one before (a queue building up
        // while nothing was sent), with 0…20 ms of jitter.
        let spurt = 150
        let talk = TalkSpurts(spurt: spurt, talk: 100)
        func silent(_ i: Int) -> Bool { talk.silent(i) }
        func delay(_ i: Int) -> Double? {
            guard talk.sent(i) else { return nil }  // DTX: not sent
            return 10 + 30 * Double(i / spurt) + 20 * noise(i, 3)
        }
        let run = Playout(count: 900, silent: silent, delay: delay)
        let speech = (0..<900).filter { !silent($0) }
        let missing = speech.filter { run.fates[UInt32($0)] != "played" }
        #expect(missing.isEmpty, "speech frames not played: \(missing)")
        // Without the elastic silence (the PLC-only buffer), the late spurts lose their first frames.
        var fixed = JitterBuffer.Configuration()
        fixed.stretching = false
        let plain = Playout(count: 900, configuration: fixed, silent: silent, delay: delay)
        #expect(speech.filter { plain.fates[UInt32($0)] != "played" }.count > 5)
    }

    @Test("A delay picked up while the output stalled is shed by the next utterance",
          arguments: [(40.0, nil, 0.0), (100.0, nil, 0.0), (40.0, 10.0, 0.0), (100.0, 10.0, 0.0), (40.0, 10.0, 0.5), (60.0, 5.0, 0.5)]
            as [(Double, Double?, Double)])
    func aStallIsNotCarriedOn(stall: Double, read: Double?, jitter: Double) {
        // Talk spurts of 1 s with 1 s of DTX between, 10 ms of steady delay (and 0…`jitter` ms
        // more: a target a hair over a frame, as on loopback); the output (a speaker starved by
        // a machine that stopped for a while) pulls nothing for `stall` ms in the middle of the
        // second spurt.
        let spurt = 100
        let talk = TalkSpurts(spurt: spurt, talk: 50)
        func silent(_ i: Int) -> Bool { talk.silent(i) }
        func delay(_ i: Int) -> Double? {
            guard talk.sent(i) else { return nil }  // DTX: not sent
            return 10 + jitter * noise(i, 21)
        }
        let run = Playout(count: 1000, silent: silent, stall: (at: 2.5, for: stall), read: read, delay: delay)
        // Each spurt's delay: its first word's.
        let onsets = (0..<10).map { run.delays[UInt32($0 * spurt)] ?? -1 }
        #expect(onsets.allSatisfy { $0 > 0 }, "every spurt starts: \(onsets)")
        #expect(onsets[2...].allSatisfy { abs($0 - onsets[0]) <= 5 }, "from the next spurt on, spurts start as late as before the stall: \(onsets)")
        let speech = (0..<1000).filter { !silent($0) }
        #expect(speech.allSatisfy { run.fates[UInt32($0)] == "played" }, "every word plays")
    }

    @Test("A path that gets slower while the output stalls costs the words what it got slower, no more, once its history has turned over")
    func aSlowerPathAfterAStall() {
        // As when a machine stops both ends of a call for a moment: the sender's microphone
        // restarts (its frames are stamped 45 ms later than their numbers say from then on)
        // and the receiver's output stalls 45 ms. Talk spurts of 1 s, 1 s of DTX between.
        let spurt = 100
        let talk = TalkSpurts(spurt: spurt, talk: 50)
        func silent(_ i: Int) -> Bool { talk.silent(i) }
        func delay(_ i: Int) -> Double? {
            guard talk.sent(i) else { return nil }  // DTX: not sent
            return (i >= 225 ? 55 : 10) + 2 * noise(i, 13)
        }
        let run = Playout(count: 1200, silent: silent, stall: (at: 2.5, for: 45), read: 10, delay: delay)
        let onsets = (0..<12).map { run.delays[UInt32($0 * spurt)] ?? -1 }
        #expect(onsets.allSatisfy { $0 > 0 }, "every spurt starts: \(onsets)")
        #expect(onsets[3...].allSatisfy { $0 <= onsets[1] + 45 + 10 }, "from the next spurt on, words start no later than before, plus the 45 ms: \(onsets)")
        let speech = (0..<1200).filter { !silent($0) }
        #expect(speech.filter { run.fates[UInt32($0)] != "played" }.count <= 5, "words lost for it")
    }

    @Test("A sender that stops and numbers its frames on shows no step in its capture times: the target stays where it was")
    func aSenderThatStopped() {
        // Both ends of a call stop for 60 ms, as a stalled machine stops them: the sender's
        // microphone restarts (frames from 225 on are captured 75 ms later than their numbers
        // say, and frame 224, held meanwhile, comes 75 ms late), and the receiver's output
        // stalls. Talk spurts of 1 s, 1 s of DTX between; 0…2 ms of jitter.
        let spurt = 100
        let talk = TalkSpurts(spurt: spurt, talk: 50)
        func silent(_ i: Int) -> Bool { talk.silent(i) }
        func captured(_ i: Int) -> Double { Double(i) * 20 + (i >= 225 ? 75 : 0) }
        func delay(_ i: Int) -> Double? {
            guard talk.sent(i) else { return nil }  // DTX: not sent
            return (i >= 224 ? 85 : 10) + 2 * noise(i, 17)
        }
        func runs(_ clock: ((Int) -> Double)?) -> Playout {
            Playout(count: 1200, measureFrom: 4.7, silent: silent, stall: (at: 4.5, for: 60), read: 5, captured: clock, delay: delay)
        }
        let run = runs(captured)
        let onsets = (0..<12).map { run.delays[UInt32($0 * spurt)] ?? -1 }
        #expect(onsets.allSatisfy { $0 > 0 }, "every spurt starts: \(onsets)")
        // From the capture: the words after the stop start as soon after their capture as before it.
        #expect(onsets[3...].allSatisfy { $0 - 75 <= onsets[1] + 5 }, "words after the stop start no later than before it: \(onsets)")
        #expect(run.targets.max() ?? 0 < 30, "the target after the stop: up to \(run.targets.max() ?? 0) ms")
        let speech = (0..<1200).filter { !silent($0) }
        #expect(speech.filter { run.fates[UInt32($0)] != "played" }.count <= 5, "words lost for it")
        // The same stream measured from the frames' places (a sender without a capture clock, or
        // one whose clock stands still and so is not used) reads the stop as a step of 75 ms.
        for clock: ((Int) -> Double)? in [nil, { _ in 5_000 }] {
            let places = runs(clock)
            #expect(places.targets.max() ?? 0 > 60, "without the capture clock the target rose to \(places.targets.max() ?? 0) ms")
        }
    }

    @Test("The look-ahead a lossy link needs is taken in the sender's silences, not by stretching words")
    func lookAheadInSilence() {
        // Talk spurts of 2 s with 1 s of DTX between; 5% of the speech packets lost, each packet
        // carrying the one before (redundancy); 0…20 ms of jitter.
        let spurt = 150
        func silent(_ i: Int) -> Bool { i % spurt >= 100 }
        func delay(_ i: Int) -> Double? {
            if silent(i) { return i % spurt == 100 || (i % spurt - 100) % 20 == 0 ? 10 : nil }
            return noise(i, 7) < 0.05 ? nil : 10 + 20 * noise(i, 8)
        }
        let run = Playout(count: 1500, silent: silent, redundancy: true, delay: delay)
        let speech = (0..<1500).filter { !silent($0) }
        #expect(speech.allSatisfy { run.fates[UInt32($0)] == "played" || run.fates[UInt32($0)] == "recovered" }, "every word plays")
        #expect(run.buffer.stats.target >= .milliseconds(55), "the look-ahead frame is held: \(run.buffer.stats.target)")
        #expect(run.buffer.stats.expanded <= 8, "\(run.buffer.stats.expanded) words stretched to reach it")
        #expect(run.buffer.stats.waited <= 2, "\(run.buffer.stats.waited) waits (only before the first silence)")
    }

    @Test("A fixed target (the PLC-only comparison) does not adapt")
    func fixedTarget() {
        var fixed = JitterBuffer.Configuration()
        fixed.fixedTarget = .milliseconds(30)
        fixed.useFEC = false
        let run = Playout(count: 1000, configuration: fixed) { i in 10 + 60 * noise(i) }
        #expect(run.buffer.stats.target == .milliseconds(30))
        let adaptive = Playout(count: 1000) { i in 10 + 60 * noise(i) }
        #expect(run.buffer.stats.late > adaptive.buffer.stats.late * 3, "fixed: \(run.buffer.stats.late) late, adaptive: \(adaptive.buffer.stats.late)")
    }
}
