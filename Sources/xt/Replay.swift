// `xt replay`: many cameras publishing one pre-encoded stream, for measuring the recorder (not
// the encoders). The synthetic picture (with sensor noise, so the encoder spends its bitrate)
// is encoded once — a clip of whole GOPs — and then sent live by every camera in a loop at
// its frame rate, each with its own stream, sequences and capture times. `--write` saves the
// clip as raw H.264 for ffmpeg to segment the same bytes.
import ArgumentParser
import Foundation
import XTMedia
import XTNet
import XTransport

struct Replay: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Publish one pre-encoded stream from many cameras at once (recorder benchmarks).")

    @Option(name: .long, help: "Cameras publishing at once (one node each, named replay-N).")
    var cameras = 32

    @Option(name: .long, help: "Picture width.")
    var width = 1920

    @Option(name: .long, help: "Picture height.")
    var height = 1080

    @Option(name: .long, help: "Frames per second.")
    var fps = 30

    @Option(name: .long, help: "Video bitrate, kbit/s.")
    var bitrate = 4000

    @Option(name: .long, help: "Seconds of stream encoded once and looped (whole GOPs of 2 s).")
    var clipSeconds = 10

    @Option(name: .long, help: "Publish for this many seconds.")
    var seconds = 60.0

    @Option(name: .long, help: "The recorder, host:port.")
    var host = "127.0.0.1:9000"

    @Option(name: .long, help: "The recorder's public key (base64), or @FILE.")
    var hostKey: String

    @Option(name: .long, help: "The first camera's channel (each camera takes two).")
    var channel: UInt16 = 100

    @Option(name: .long, help: "Only write the encoded clip to this file (raw H.264) and exit.")
    var write: String?

    @Flag(name: .long, help: "Only time the motion detector on the clip (at the agent: raw pictures; at the recorder: decode + detect) and print JSON.")
    var motionBench = false

    @OptionGroup var node: NodeOptions

    func run() async throws {
        try await XT.run {
            try Checked.integer(cameras, "--cameras", in: 1...1_000)
            try Checked.integer(width, "--width", in: 16...7680)
            try Checked.integer(height, "--height", in: 16...4320)
            try Checked.integer(fps, "--fps", in: 1...240)
            try Checked.integer(bitrate, "--bitrate", in: 10...1_000_000)
            try Checked.integer(clipSeconds, "--clip-seconds", in: 1...600)
            let runFor = try Checked.seconds(seconds, "--seconds")
            guard Int(channel) + 2 * cameras < Int(UInt16.max) else {
                throw CLIError("--channel \(channel) with \(cameras) cameras (two channels each) runs past channel 65534: start lower or replay fewer")
            }
            let gop = 2 * fps
            let source = try SyntheticVideoSource(width: width, height: height, frameRate: fps,
                                                  script: try MotionScript(parsing: "0-4:0.1,0.5>0.9,0.5:0.3; noise:10", period: Double(clipSeconds)),
                                                  pacing: .virtual(start: CaptureTime(nanoseconds: 0)))
            let encoder = try H264Encoder(settings: H264Settings(width: width, height: height, frameRate: fps, bitrate: bitrate * 1000, gop: gop,
                                                                 implementation: .libx264))
            var clip: [EncodedFrame] = []
            let detector = MotionDetector()
            var analysis = Duration.zero
            for _ in 0..<(clipSeconds * fps) {
                guard case .raw(let picture) = try source.next() else { break }
                if motionBench { analysis += ContinuousClock().measure { _ = detector.analyze(picture) } }
                clip += try encoder.encode(picture)
            }
            clip += try encoder.flush()
            let bytes = clip.reduce(0) { $0 + $1.data.count }
            print("clip: \(clip.count) frames, \(Int(Double(bytes * 8) / Double(clipSeconds) / 1000)) kbit/s, \(clip.count { $0.isKeyframe }) keyframes")
            if motionBench {
                // The recorder's path for a camera without grids: decode every frame, analyse 10 a second.
                let decoder = try VideoDecoder(codec: .h264, fast: true)
                let recorderDetector = MotionDetector()
                var decoding = Duration.zero, analysing = Duration.zero
                var decoded = 0, analysed = 0
                let step = max(1, fps / 10)
                for frame in clip {
                    var pictures: [VideoFrame] = []
                    decoding += ContinuousClock().measure { pictures = decoder.decode(frame.data, captureTime: frame.presentationTime) }
                    for picture in pictures {
                        decoded += 1
                        if decoded % step == 0 {
                            analysing += ContinuousClock().measure { _ = recorderDetector.analyze(picture) }
                            analysed += 1
                        }
                    }
                }
                func milliseconds(_ duration: Duration, _ count: Int) -> Double {
                    Double(duration.components.seconds * 1_000_000_000 + duration.components.attoseconds / 1_000_000_000) / 1e6 / Double(max(count, 1))
                }
                let agent = milliseconds(analysis, clipSeconds * fps)
                let decode = milliseconds(decoding, decoded), detect = milliseconds(analysing, analysed)
                print(String(format: "{\"width\": %d, \"height\": %d, \"agentDetectMilliseconds\": %.3f, \"recorderDecodeMilliseconds\": %.3f, \"recorderDetectMilliseconds\": %.3f, \"recorderMillisecondsPerAnalysedPicture\": %.3f}",
                             width, height, agent, decode, detect, detect + decode * Double(step)))
                return
            }
            if let write {
                try Data(clip.flatMap(\.data)).write(to: URL(fileURLWithPath: write))
                return
            }
            let hostKey = try PeerOptions.parseKey(hostKey)
            let address = host.split(separator: ":")
            var publishers: [NetNode] = []
            for index in 0..<cameras {
                var configuration = NodeConfiguration()
                configuration.name = "replay-\(index + 1)"
                configuration.id = NodeID(area: 7, local: UInt16(index + 1))
                configuration.host = String(address.first ?? "127.0.0.1")
                configuration.hostPort = UInt16(address.last ?? "9000") ?? 9000
                configuration.portRange = configuration.hostPort...configuration.hostPort
                let session = try configuration.sessionConfiguration(base: try node.sessionConfiguration())
                let member = NetNode(configuration: configuration, identity: NodeIdentity(), hostKey: hostKey, session: session,
                                     liveDeadline: .milliseconds(500), logger: node.logger())
                try await member.start(waitForConnection: true)
                publishers.append(member)
            }
            print("\(cameras) cameras connected; publishing for \(seconds) s")
            let description = encoder.description
            let frames = clip, firstChannel = channel
            let interval = Duration.nanoseconds(1_000_000_000 / Int64(fps))
            let stop = ContinuousClock.now + runFor
            await withTaskGroup(of: Void.self) { group in
                for (index, member) in publishers.enumerated() {
                    let channel = firstChannel + UInt16(2 * index)
                    group.addTask {
                        let header = MediaStreamHeader(stream: .random(), camera: "replay-\(index + 1)", description: description)
                        var next = ContinuousClock.now
                        var sequence: UInt64 = 0
                        while next < stop {
                            var frame = frames[Int(sequence % UInt64(frames.count))]
                            frame.captureTime = .now
                            if frame.isKeyframe {
                                try? await member.send(MediaMessage.header(header).encoded(), routeCode: .unicast, toName: Router.hostName,
                                                       channel: channel, lane: .video)
                            }
                            try? await member.send(MediaMessage.frame(MediaFrame(stream: header.stream, sequence: sequence, frame: frame)).encoded(),
                                                   routeCode: .unicast, toName: Router.hostName, channel: channel, lane: .video)
                            sequence += 1
                            next += interval
                            try? await Task.sleep(until: next, clock: .continuous)
                        }
                    }
                }
            }
            for member in publishers { await member.stop() }
            print("replay done")
        }
    }
}
