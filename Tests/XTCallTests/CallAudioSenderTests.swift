// The sending side and the media packet: speech and silence from the microphone become packets
// (silence mostly skipped, kept alive every 400 ms), the receiver plays the gaps as comfort noise
// rather than counting them lost; the FEC follows the link's loss; packets are checked on arrival.
import Foundation
import Testing
import XTCall
import XTMedia
import XTransport

@Suite("Call audio sender", .enabled(if: FileManager.default.isExecutableFile(atPath: "/usr/bin/espeak-ng"), "espeak-ng is not installed"))
struct CallAudioSenderTests {
    @Test("Silence is mostly not sent; the receiver fills it with comfort noise and counts no loss")
    func silenceAndSpeech() throws {
        let speech = try Speech.samples("Someone is at the front door.")
        let microphone = [Int16](repeating: 0, count: 16_000 * 3) + speech + [Int16](repeating: 0, count: 16_000 * 2) + speech
        let sender = try CallAudioSender(call: CallID(42))
        let receiver = try CallAudioReceiver()
        let silence = [Int16](repeating: 0, count: sender.frameSamples)
        var sent: [CallMediaPacket] = []
        var output: [Int16] = []
        for (index, start) in stride(from: 0, to: microphone.count - 320 + 1, by: 320).enumerated() {
            let now = UInt64(1_000_000_000) + UInt64(index) * 20_000_000
            if let packet = try sender.process(microphone: Array(microphone[start..<start + 320]), speaker: silence, captureMicroseconds: now / 1000) {
                let wire = try CallMediaPacket(decoding: packet.encoded)
                #expect(wire == packet)
                sent.append(packet)
                receiver.receive(wire, arrival: Timestamp(nanoseconds: now + 15_000_000))
            }
            output += receiver.read(count: 320, now: Timestamp(nanoseconds: now + 20_000_000))
        }
        #expect(sender.framesSkipped > 150, "\(sender.framesSkipped) silent frames not sent")
        #expect(sent.filter { $0.flags.contains(.silence) }.count >= 5, "keep-alives in silence")
        #expect(sent.filter { !$0.flags.contains(.silence) }.count > 80, "speech is sent")
        let stats = receiver.stats
        #expect(stats.silent > 150 && stats.concealed <= 2, "\(stats)")
        // Both utterances came through, within 6 dB (the gain control levels espeak's loud voice).
        let level = 10 * log10(Speech.energy(output[...]) / (2 * Speech.energy(speech[...])))
        #expect(level > -6, "level \(level) dB")
    }

    @Test("FEC, duplication and redundancy follow the measured loss")
    func followsTheLink() throws {
        let sender = try CallAudioSender(call: CallID(1))
        #expect(sender.expectedLoss == 5)
        sender.linkChanged(lossPercent: 0.6)
        #expect(sender.expectedLoss == 1 && !sender.redundancy && !sender.duplicating)
        sender.linkChanged(lossPercent: 5)
        #expect(sender.expectedLoss == 1 && sender.duplicating && !sender.redundancy, "both copies lost: 5%² = 0.25%")
        sender.linkChanged(lossPercent: 30, rateBitsPerSecond: 1e6)
        #expect(sender.expectedLoss == 1 && sender.duplicating && sender.redundancy, "9% of frames lose both copies, 0.8% both copies of the next too")
        sender.linkChanged(lossPercent: 45)
        #expect(sender.expectedLoss == 5, "45%² = 20% of frames lose both copies, 4.1% both copies of the next too")
        sender.linkChanged(lossPercent: 0)
        #expect(sender.expectedLoss == 1)
        sender.linkChanged(lossPercent: .nan)
        #expect(sender.expectedLoss == 1)
    }

    @Test("Media packets round-trip; every truncation and bad field is an error")
    func packets() throws {
        let packet = CallMediaPacket(kind: .video, flags: .keyframe, call: CallID(0xfeed), sequence: 77, captureMicroseconds: 123_456_789, payload: [1, 2, 3])
        let bytes = packet.encoded
        #expect(try CallMediaPacket(decoding: bytes) == packet)
        for length in 0..<25 { #expect(throws: CallMessageError.self) { try CallMediaPacket(decoding: Array(bytes[..<length])) } }
        var bad = bytes
        bad[3] = 9
        #expect(throws: CallMessageError.malformed("media kind 9")) { try CallMediaPacket(decoding: bad) }
        bad = bytes
        bad[2] = 2
        #expect(throws: CallMessageError.unsupportedVersion(2)) { try CallMediaPacket(decoding: bad) }
        #expect(throws: CallMessageError.notSignalling) { try CallMediaPacket(decoding: CallMessage.hangup(call: CallID(1), from: "a").encoded) }
    }

    @Test("Redundant audio packets: the frame and the previous one round-trip; a bad length is an error; the browser gets the frame alone")
    func redundantPackets() throws {
        let packet = CallMediaPacket.audio(call: CallID(5), sequence: 8, captureMicroseconds: 99, opus: [1, 2, 3], previous: [7, 7])
        #expect(packet.flags == .redundant)
        let decoded = try CallMediaPacket(decoding: packet.encoded)
        #expect(Array(decoded.primary) == [1, 2, 3] && decoded.redundant.map(Array.init) == [7, 7])
        #expect(decoded.withoutRedundancy == CallMediaPacket(kind: .audio, call: CallID(5), sequence: 8, captureMicroseconds: 99, payload: [1, 2, 3]))
        let plain = CallMediaPacket.audio(call: CallID(5), sequence: 8, captureMicroseconds: 99, opus: [1, 2, 3], silence: true)
        #expect(plain.flags == .silence && Array(plain.primary) == [1, 2, 3] && plain.redundant == nil)
        // Cut inside the frame or its length: an error. (The copy runs to the end, so a cut there
        // shortens the copy; the transport's AEAD already refuses a datagram cut on the way.)
        for length in 25...(27 + 3) {
            #expect(throws: CallMessageError.self) { try CallMediaPacket(decoding: Array(packet.encoded[..<length])) }
        }
        var bad = packet.encoded
        bad[25] = 0xff  // a frame length past the end
        #expect(throws: CallMessageError.self) { try CallMediaPacket(decoding: bad) }
        bad = packet.encoded
        (bad[25], bad[26]) = (0, 0)  // an empty frame
        #expect(throws: CallMessageError.self) { try CallMediaPacket(decoding: bad) }
        bad = packet.encoded
        bad[3] = CallMediaPacket.Kind.video.rawValue
        #expect(throws: CallMessageError.malformed("a redundant copy in a video packet")) { try CallMediaPacket(decoding: bad) }
        // A second copy: the same packet flagged; only audio is sent twice.
        let copy = try CallMediaPacket(decoding: packet.secondCopy.encoded)
        #expect(copy.flags == [.redundant, .copy] && copy.payload == packet.payload && copy.sequence == 8)
        var video = CallMediaPacket(kind: .video, flags: .copy, call: CallID(5), sequence: 1, captureMicroseconds: 0, payload: [1]).encoded
        #expect(throws: CallMessageError.malformed("a second copy of a video packet")) { try CallMediaPacket(decoding: video) }
        video[4] = 16
        #expect(throws: CallMessageError.malformed("media flags 16")) { try CallMediaPacket(decoding: video) }
    }

    @Test("On a very lossy link each packet carries the previous speech frame too; on a clean one it does not")
    func redundancyFollowsTheLink() throws {
        let speech = try Speech.samples("Someone is at the front door, please come down.")
        let sender = try CallAudioSender(call: CallID(3))
        let silence = [Int16](repeating: 0, count: 320)
        func frames(_ range: Range<Int>) throws -> [CallMediaPacket] {
            try range.compactMap { index in
                try sender.process(microphone: Array(speech[index * 320..<(index + 1) * 320]), speaker: silence, captureMicroseconds: UInt64(index) * 20_000)
            }
        }
        #expect(try frames(0..<20).allSatisfy { $0.redundant == nil }, "no redundancy before any loss")
        sender.linkChanged(lossPercent: 5)
        #expect(!sender.redundancy && sender.duplicating, "at 5% the second copy is enough")
        sender.linkChanged(lossPercent: 10)
        #expect(sender.redundancy)
        let lossy = try frames(20..<60)
        let speaking = zip(lossy, lossy.dropFirst()).filter { $0.1.sequence == $0.0.sequence + 1 && !$0.0.flags.contains(.silence) }
        #expect(speaking.count > 10)
        for (previous, packet) in speaking { #expect(packet.redundant.map(Array.init) == Array(previous.primary), "frame \(packet.sequence) carries \(previous.sequence)") }
        sender.linkChanged(lossPercent: 0)
        #expect(try frames(60..<80).allSatisfy { $0.redundant == nil })
    }

    @Test("Relayed media is sealed with the call's key: only that key and that call open it; a stranger's bytes do not")
    func sealed() throws {
        let packet = CallMediaPacket(kind: .audio, flags: [], call: CallID(0xfeed), sequence: 9, captureMicroseconds: 42, payload: Array(repeating: 0x55, count: 60))
        let key = CallKey.random()
        let sealed = CallMediaSeal.seal(packet.encoded, key: key, call: CallID(0xfeed))
        #expect(sealed.count == packet.encoded.count + CallMediaSeal.overhead)
        #expect(throws: CallMessageError.self, "a node without the key cannot read it") { try CallMediaPacket(decoding: sealed) }
        #expect(!sealed.indices.dropLast(8).contains { Array(sealed[$0..<$0 + 8]) == Array(repeating: 0x55, count: 8) }, "the payload is not in the clear")
        #expect(try CallMediaPacket(decoding: #require(CallMediaSeal.open(sealed, key: key, call: CallID(0xfeed)))) == packet)
        #expect(CallMediaSeal.open(sealed, key: CallKey.random(), call: CallID(0xfeed)) == nil, "another call's key")
        #expect(CallMediaSeal.open(sealed, key: key, call: CallID(0xbeef)) == nil, "another call's id")
        #expect(CallMediaSeal.seal(packet.encoded, key: key, call: CallID(0xfeed)) != sealed, "a fresh nonce each time")
        for length in 0..<sealed.count { #expect(CallMediaSeal.open(Array(sealed[..<length]), key: key, call: CallID(0xfeed)) == nil) }
        for index in sealed.indices {
            var corrupt = sealed
            corrupt[index] ^= 0x20
            #expect(CallMediaSeal.open(corrupt, key: key, call: CallID(0xfeed)) == nil)
        }
    }
}
