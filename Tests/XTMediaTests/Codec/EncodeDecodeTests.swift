// The synthetic camera through libx264 and back through libavcodec's decoder: pictures survive,
// keyframes carry SPS/PPS, the bar code and marker read back, and a forced keyframe is one.
import Testing
@testable import XTMedia

@Suite struct EncodeDecodeTests {
    @Test func syntheticVideoRoundTripsThroughH264() throws {
        let start = CaptureTime(nanoseconds: 1_700_000_000_000_000_000)
        let source = try SyntheticVideoSource(width: 320, height: 240, frameRate: 30, pacing: .virtual(start: start))
        let encoder = try H264Encoder(settings: H264Settings(width: 320, height: 240, frameRate: 30, bitrate: 500_000, gop: 30,
                                                             implementation: .libx264))
        let decoder = try VideoDecoder(codec: .h264)
        var encoded: [EncodedFrame] = []
        var decoded: [VideoFrame] = []
        for index in 0..<60 {
            guard case .raw(let frame) = try source.next() else { Issue.record("expected raw frames"); return }
            if index == 45 { frame.forceKeyframe = true }
            for packet in try encoder.encode(frame) {
                encoded.append(packet)
                decoded += decoder.decode(packet.data, captureTime: packet.captureTime)
            }
        }
        for packet in try encoder.flush() {
            encoded.append(packet)
            decoded += decoder.decode(packet.data, captureTime: packet.captureTime)
        }
        decoded += decoder.flush()
        #expect(encoded.count == 60)
        #expect(decoded.count == 60)
        #expect(decoder.errors == 0)
        #expect(encoded[0].isKeyframe && encoded[30].isKeyframe && encoded[45].isKeyframe)
        #expect(!encoded[1].isKeyframe)
        #expect(H264Bitstream.isKeyframe(encoded[45].data))
        #expect(!H264Bitstream.parameterSets(encoded[45].data).isEmpty)
        #expect(!encoder.parameterSets.isEmpty)
        // Capture times are carried and rise.
        #expect(encoded.map(\.captureTime) == encoded.map(\.captureTime).sorted())
        #expect(encoded[0].captureTime == start)
        // The bar code carries the capture time's milliseconds; the marker lights in the first 100 ms.
        let mask: Int64 = (1 << SyntheticVideoSource.barcodeBits) - 1
        for frame in decoded {
            #expect(SyntheticVideoSource.readBarcode(frame) == (frame.captureTime.nanoseconds / 1_000_000) & mask)
        }
        #expect(SyntheticVideoSource.markerLit(decoded[0]))
        #expect(!SyntheticVideoSource.markerLit(decoded[10]))
        #expect(SyntheticVideoSource.markerLit(decoded[30]))
    }

    @Test func profileAndBitrateAreHonoured() throws {
        // A profile caps what the preset may use: with ultrafast everything is baseline, so the
        // second encode uses a preset that has main's tools.
        func encode(bitrate: Int, profile: String, preset: String = "ultrafast") throws -> (bytes: Int, profileIDC: UInt8) {
            let source = try SyntheticVideoSource(width: 640, height: 360, frameRate: 30,
                                                  script: try MotionScript(parsing: "0-4:0.1,0.5>0.9,0.5"), pacing: .virtual(start: .now))
            let encoder = try H264Encoder(settings: H264Settings(width: 640, height: 360, frameRate: 30, bitrate: bitrate, gop: 30, profile: profile,
                                                                 preset: preset, implementation: .libx264))
            var bytes = 0
            for _ in 0..<90 {
                guard case .raw(let frame) = try source.next() else { continue }
                bytes += try encoder.encode(frame).reduce(0) { $0 + $1.data.count }
            }
            let sps = H264Bitstream.nalUnits(encoder.parameterSets).first { H264Bitstream.type($0) == H264Bitstream.sequenceParameterSet }
            return (bytes, sps.map { $0[$0.startIndex + 1] } ?? 0)
        }
        let low = try encode(bitrate: 100_000, profile: "baseline")
        let high = try encode(bitrate: 1_500_000, profile: "main", preset: "veryfast")
        #expect(low.profileIDC == 66)
        #expect(high.profileIDC == 77)
        // 3 s: about 37 KB at 100 kbit/s, several times more at 1.5 Mbit/s.
        #expect(low.bytes < 80_000)
        #expect(high.bytes > 3 * low.bytes)
    }

    @Test func opusPacketsAreTwentyMillisecondsAndDecode() throws {
        let start = CaptureTime(nanoseconds: 1_700_000_000_000_000_000)
        let source = SyntheticAudioSource(pacing: .virtual(start: start))
        let encoder = try OpusEncoder(settings: OpusSettings())
        let decoder = try OpusDecoder()
        var packets: [EncodedFrame] = []
        for _ in 0..<50 { packets += try encoder.encode(try source.next()) }
        #expect(packets.count == 50)
        #expect(packets[1].captureTime.nanoseconds(since: packets[0].captureTime) == 20_000_000)
        #expect(encoder.header.count == 19 && encoder.header.starts(with: Array("OpusHead".utf8)))
        var pcm: [Int16] = []
        for packet in packets { pcm += try decoder.decode(packet.data) }
        #expect(pcm.count == 48_000)
        // The beep (first 100 ms of the second) is loud; the hum after it is quiet.
        let beep = pcm[(encoder.preSkip + 1000)..<(encoder.preSkip + 4000)].map { abs(Int($0)) }.max() ?? 0
        let hum = pcm[(encoder.preSkip + 10_000)..<(encoder.preSkip + 20_000)].map { abs(Int($0)) }.max() ?? 0
        #expect(beep > 10_000)
        #expect(hum < 2_000)
    }

    @Test func badSettingsSayWhatToChange() {
        #expect(throws: MediaError.self) { try H264Encoder(settings: H264Settings(width: 321, height: 240, frameRate: 30)) }
        #expect(throws: MediaError.self) { try OpusEncoder(settings: OpusSettings(sampleRate: 44_100)) }
        #expect(throws: MediaError.self) { try MotionScript(parsing: "10-5:0,0>1,1") }
        // Numbers that would reach trapping conversions when the picture is drawn are refused.
        for bad in ["0-5:nan,0.5>1e300,0.5", "0-inf:0,0>1,1", "0-5:0,0>1,1:nan", "light 0-inf:1.2", "0-5:-3,0>1,1"] {
            #expect(throws: MediaError.self, "\(bad)") { try MotionScript(parsing: bad) }
        }
        #expect(throws: MediaError.self) { try MotionScript(parsing: "", period: .infinity) }
        let script = try? MotionScript(parsing: "10-14:0.1,0.6>0.8,0.6; 40-43:0.7,0.2>0.2,0.3:0.15", period: 60)
        #expect(script?.motions.count == 2)
        #expect(script?.isMoving(at: 71) == true)
        #expect(script?.isMoving(at: 20) == false)
    }
}
