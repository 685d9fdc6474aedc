// `xt agent`: the camera agent on a Pi. Settings come from Config/agent.conf, then XT_AGENT_*
// (and XT_NODE_*) variables, then these options. It runs until Ctrl-C or SIGTERM (a systemd
// unit per camera: Config/xt-agent@.service), or for --seconds.
import ArgumentParser
import Foundation
import Logging
import XTAgent
import XTCall
import XTMedia
import XTNet
import XTransport

struct AgentCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "agent",
        abstract: "Run a camera agent: capture video and audio, encode them (H.264, Opus), publish them live to the recorder and viewers, and backfill the recorder after an outage.",
        discussion: "Settings: Config/agent.conf (see Config/agent.conf.example), then XT_AGENT_<KEY> variables, then options. Any setting can also be given as --set key=value.")

    @Option(name: .long, help: "Agent settings file (key = value).")
    var config = "Config/agent.conf"

    @Flag(name: .long, help: "List the V4L2 cameras (with their formats and sizes) and ALSA capture devices, then exit.")
    var listDevices = false

    @Option(name: .long, help: "The camera's name in recordings (default: the node's name).")
    var camera: String?

    @Option(name: .long, help: "Video input: synthetic, /dev/videoN, file:PATH, rtsp://… or none.")
    var video: String?

    @Option(name: .long, help: "Audio input: synthetic, alsa:DEVICE, file:PATH or none.")
    var audio: String?

    @Option(name: .long, help: "Picture width in pixels.")
    var width: Int?

    @Option(name: .long, help: "Picture height in pixels.")
    var height: Int?

    @Option(name: .long, help: "Frames per second.")
    var fps: Int?

    @Option(name: .long, help: "Video bitrate in kbit/s.")
    var bitrate: Int?

    @Option(name: .long, help: "Frames between keyframes.")
    var gop: Int?

    @Option(name: .long, help: "Video channel (audio uses the next one).")
    var channel: UInt16?

    @Option(name: .long, help: "Live deadline in milliseconds: frames later than this are skipped and counted.")
    var deadline: Int?

    @Option(name: .long, help: "This node's id, area.local.")
    var id: String?

    @Option(name: .long, help: "This node's name.")
    var name: String?

    @Option(name: .long, help: "The recorder (host), host:port.")
    var host: String?

    @Option(name: .long, help: "The recorder's public key (base64), or @FILE.")
    var hostKey: String?

    @Option(name: .long, parsing: .singleValue, help: "Any setting, key=value (repeatable).")
    var set: [String] = []

    @Option(name: .long, help: "Run this many seconds, then stop (default: until Ctrl-C or SIGTERM).")
    var seconds: Double?

    @Option(name: .long, help: "Write the agent's counters as JSON to this file (every second and at the end).")
    var report: String?

    @OptionGroup var node: NodeOptions

    func run() async throws {
        try await XT.run {
            if let seconds { _ = try Checked.seconds(seconds, "--seconds") }
            if listDevices {
                // The configured camera is listed too, wherever it is.
                var extra: [String] = []
                if case .v4l2(let path)? = (try? settings())?.video, !path.hasPrefix("/dev/video") { extra.append(path) }
                print(DeviceList.text(extra: extra))
                return
            }
            let configuration = try settings()
            try configuration.validate()
            guard let hostKey else { throw CLIError("--host-key is required: the recorder's public key (base64) or @FILE") }
            let session = try configuration.node.sessionConfiguration(base: try node.sessionConfiguration())
            let logger = node.logger(level: .info)
            XT.routeFFmpegLog(to: logger)
            let agent = Agent(configuration: configuration, identity: try node.identity(), hostKey: try PeerOptions.parseKey(hostKey),
                              session: session, logger: logger)
            let calls = await AgentCalls(agent: agent, configuration: configuration, logger: logger)
            try await agent.start()
            await calls.start()
            print("agent \(configuration.cameraName): \(configuration.video) → video channel \(configuration.channel), \(configuration.audio) → audio channel \(configuration.audioChannel), host \(configuration.node.host):\(configuration.node.hostPort)")
            let reporter = Task {
                while !Task.isCancelled {
                    try? await Task.sleep(for: .seconds(1))
                    if let report { write(await agent.report(), to: report) }
                }
            }
            await Termination.wait(seconds: seconds)
            reporter.cancel()
            await calls.stop()
            await agent.stop()
            let final = await agent.report()
            if let report { write(final, to: report) }
            let stats = final.publisher
            print("agent stopped: video \(final.videoEncoded) frames, audio \(final.audioEncoded) frames; live sent \(stats.videoSent + stats.audioSent), late skipped \(stats.lateSkipped), while offline \(stats.offline), backfilled \(stats.backfilledFrames)")
        }
    }

    /// File, then environment, then options.
    func settings() throws -> AgentConfiguration {
        var configuration = AgentConfiguration()
        do {
            if FileManager.default.fileExists(atPath: config) {
                guard let file = FileHandle(forReadingAtPath: config) else { throw CLIError("\(config) cannot be read: check its permissions") }
                let data = file.readDataToEndOfFile()
                try? file.close()
                try configuration.apply(file: String(decoding: data, as: UTF8.self), source: config)
            }
            let environment = ProcessInfo.processInfo.environment
            try configuration.node.apply(environment: environment)
            try configuration.apply(environment: environment, prefix: "XT_AGENT_")
            let options: [(String, String?)] = [
                ("camera", camera), ("video", video), ("audio", audio), ("width", width.map(String.init)), ("height", height.map(String.init)),
                ("fps", fps.map(String.init)), ("bitrate", bitrate.map(String.init)), ("gop", gop.map(String.init)),
                ("channel", channel.map(String.init)), ("deadline", deadline.map(String.init)), ("id", id), ("name", name), ("host", host),
            ]
            for (key, value) in options { if let value { try configuration.set(key, value) } }
            for assignment in set {
                guard let equals = assignment.firstIndex(of: "=") else { throw CLIError("--set \(assignment): write key=value") }
                try configuration.set(String(assignment[..<equals]), String(assignment[assignment.index(after: equals)...]))
            }
        } catch let error as NodeConfigurationError {
            throw CLIError(error.description)
        }
        return configuration
    }
}

/// Writes a report as pretty JSON (replacing the file, so a reader never sees half of one).
func write<Report: Encodable>(_ report: Report, to path: String) {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
    guard let data = try? encoder.encode(report) else { return }
    try? data.write(to: URL(fileURLWithPath: path), options: .atomic)
}

/// The camera in calls: calls to it are answered (calls = answer) or declined, SIGUSR1 rings
/// its doorbell name, and its video in a call is the recording's own encode (one encode: the
/// pictures the agent publishes are also handed to the call, and a party's keyframe request
/// goes to the camera's encoder).
struct AgentCalls {
    let calls: CallAgent
    private let answer: Bool
    private let doorbell: String
    private let logger: Logger
    private let feed: CallVideoFeed?

    init(agent: Agent, configuration: AgentConfiguration, logger: Logger) async {
        answer = configuration.answerCalls
        doorbell = configuration.doorbell
        self.logger = logger
        feed = configuration.video == .none ? nil : CallVideoFeed(width: configuration.width, height: configuration.height, frameRate: configuration.fps) {
            Task { await agent.requestKeyframe() }
        }
        if let feed { await agent.tapVideo { feed.push($0) } }
        var settings = CallAgent.Configuration()
        let microphone: CallMicrophone? = switch configuration.callMicrophone {
        case .none: nil
        case .synthetic: .synthetic
        case .alsa(let name): .alsa(name)
        case .file(let location): .file(location)
        }
        settings.devices = CallAudioDevices(microphone: microphone, speaker: configuration.callSpeaker)
        settings.camera = feed.map { .feed($0) }
        settings.autoAnswer = configuration.answerCalls
        let calls = CallAgent(node: agent.netNode, configuration: settings, logger: logger)
        self.calls = calls
        await agent.handleMessagesFirst { envelope in await calls.handle(envelope) }
    }

    func start() async {
        await calls.start()
        let (calls, answer, doorbell, logger, video) = (self.calls, self.answer, self.doorbell, self.logger, feed != nil)
        Task {
            for await event in calls.events {
                switch event {
                case .incoming(let from, let media, _):
                    logger.notice("call from \(from) (\(media))\(answer ? ": answering" : ": declined (calls = off)")")
                    if !answer { await calls.decline() }
                case .parties(let parties) where !parties.isEmpty:
                    logger.notice("in a call with \(parties.joined(separator: ", "))")
                case .ended(let end):
                    logger.notice("call ended: \(end)")
                default:
                    break
                }
            }
        }
        // The doorbell button: SIGUSR1 (a GPIO watcher runs `kill -USR1`, or `systemctl kill -s USR1 xt-agent@door`).
        signal(SIGUSR1, SIG_IGN)
        let source = DispatchSource.makeSignalSource(signal: SIGUSR1, queue: .global())
        source.setEventHandler {
            Task {
                do {
                    try await calls.call([doorbell], media: video ? [.audio, .video] : .audio)
                    logger.notice("doorbell: ringing \(doorbell)")
                } catch {
                    logger.warning("doorbell: \(error)")
                }
            }
        }
        source.resume()
        Self.doorbellSource = source
    }

    func stop() async {
        await calls.stop()
    }

    /// The SIGUSR1 source, kept for the process's life (set once, at start).
    nonisolated(unsafe) private static var doorbellSource: (any DispatchSourceSignal)?
}
