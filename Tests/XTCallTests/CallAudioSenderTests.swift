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

    @Test("FEC follows the measured loss")
    func followsTheLink() throws {
        let sender = try CallAudioSender(call: CallID(1))
        #expect(sender.expectedLoss == 5)
        sender.linkChanged(lossPercent: 12.2, rateBitsPerSecond: 1e6)
        #expect(sender.expectedLoss == 13)
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
}
