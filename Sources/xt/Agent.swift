// `xt agent`: the camera agent on a Pi. Settings come from Config/agent.conf, then XT_AGENT_*
// (and XT_NODE_*) variables, then these options. It runs until Ctrl-C or SIGTERM (a systemd
// unit: Config/xt-agent.service), or for --seconds.
import ArgumentParser
import Foundation
import Logging
import XTAgent
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
            try await agent.start()
            print("agent \(configuration.cameraName): \(configuration.video) → video channel \(configuration.channel), \(configuration.audio) → audio channel \(configuration.audioChannel), host \(configuration.node.host):\(configuration.node.hostPort)")
            let reporter = Task {
                while !Task.isCancelled {
                    try? await Task.sleep(for: .seconds(1))
                    if let report { write(await agent.report(), to: report) }
                }
            }
            await Termination.wait(seconds: seconds)
            reporter.cancel()
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
