// Opus as calls use it: silence goes quiet (DTX), and a lost frame recovered from the next
// packet's in-band FEC sounds closer to what was sent than concealment does.
import Foundation
import Testing
import XTMedia

@Suite("Call audio codec", .enabled(if: FileManager.default.isExecutableFile(atPath: "/usr/bin/espeak-ng"), "espeak-ng is not installed"))
struct CallCodecTests {
    private static func encode(_ samples: [Int16], settings: OpusSettings) throws -> (packets: [[UInt8]], dtx: [Bool]) {
        let encoder = try OpusEncoder(settings: settings)
        var packets: [[UInt8]] = []
        var dtx: [Bool] = []
        let frame = settings.sampleRate / 50
        for start in stride(from: 0, to: samples.count - frame + 1, by: frame) {
            let block = AudioFrame(samples: Array(samples[start..<start + frame]), sampleRate: settings.sampleRate, channels: 1,
                                   captureTime: CaptureTime(nanoseconds: 1_000_000_000 + Int64(start) * 62_500))
            for packet in try encoder.encode(block) {
                packets.append(packet.data)
                dtx.append(encoder.lastWasDTX)
            }
        }
        return (packets, dtx)
    }

    private static func snr(_ reference: [Int16], _ test: [Int16]) -> Double {
        var signal = 0.0
        var noise = 0.0
        for (a, b) in zip(reference, test) {
            signal += Double(a) * Double(a)
            noise += (Double(a) - Double(b)) * (Double(a) - Double(b))
        }
        return 10 * log10(max(signal, 1) / max(noise, 1))
    }

    @Test("In silence the call encoder sends DTX frames of a byte or two; speech is coded in full")
    func dtx() throws {
        let speech = try Speech.samples("Someone is at the front door.")
        let silence = [Int16](repeating: 0, count: 16_000 * 2)
        let (packets, dtx) = try Self.encode(silence + speech, settings: .call())
        let quiet = Array(zip(packets, dtx).prefix(100).dropFirst(10))
        #expect(quiet.filter { $0.1 }.count >= 80, "\(quiet.filter { $0.1 }.count) of 90 silent frames in DTX")
        let dtxSizes = quiet.filter { $0.1 }.map { $0.0.count }
        #expect(dtxSizes.filter { $0 <= 3 }.count * 10 >= dtxSizes.count * 9, "DTX packet sizes \(dtxSizes)")
        let talking = zip(packets, dtx).dropFirst(100).filter { $0.0.count > 20 }
        #expect(talking.count > 30, "speech is coded: \(talking.count) full frames")
    }

    @Test("A single lost frame decoded from the next packet's FEC is closer to the original than concealment")
    func fecBeatsConcealment() throws {
        let speech = try Speech.samples("The quick brown fox jumps over the lazy dog. Please answer the door.")
        var settings = OpusSettings.call()
        settings.dtx = false
        settings.expectedLoss = 20
        let (packets, _) = try Self.encode(speech, settings: settings)
        let reference = try OpusDecoder(sampleRate: 16_000)
        let withFEC = try OpusDecoder(sampleRate: 16_000)
        let withPLC = try OpusDecoder(sampleRate: 16_000)
        var fecSNR: [Double] = []
        var plcSNR: [Double] = []
        for (index, packet) in packets.enumerated() {
            let original = try reference.decode(packet)
            if index % 5 == 2 && index + 1 < packets.count {
                let recovered = try withFEC.decodeFEC(from: packets[index + 1])
                let concealed = try withPLC.decode(nil)
                #expect(recovered.count == original.count && concealed.count == original.count)
                if Speech.energy(original[...]) > 1e7 {  // frames with speech in them
                    fecSNR.append(Self.snr(original, recovered))
                    plcSNR.append(Self.snr(original, concealed))
                }
            } else {
                _ = try withFEC.decode(packet)
                _ = try withPLC.decode(packet)
            }
        }
        let fec = fecSNR.reduce(0, +) / Double(max(fecSNR.count, 1))
        let plc = plcSNR.reduce(0, +) / Double(max(plcSNR.count, 1))
        #expect(fecSNR.count >= 20)
        #expect(fec > plc + 3, "mean SNR of a lost speech frame: FEC \(fec) dB, concealment \(plc) dB")
    }
}
