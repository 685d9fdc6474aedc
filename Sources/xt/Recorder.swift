// `xt recorder`: the host that camera agents publish to, ingesting their live and backfilled
// media into journals under --storage; `xt recorder check` shows each camera's timeline and
// its gaps, `xt recorder export` writes one playable file.
import ArgumentParser
import Foundation
import Logging
import XTMedia
import XTNet
import XTRecorder
import XTransport

struct RecorderCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "recorder",
        abstract: "Run the recorder (the host agents publish to), or check and export what it recorded.",
        subcommands: [RecorderRun.self, RecorderCheck.self, RecorderExport.self],
        defaultSubcommand: RecorderRun.self)
}

struct RecorderRun: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "run", abstract: "Run the recorder: host the node network and record the camera channels.")

    @Option(name: .long, help: "Where recordings go.")
    var storage = "/var/lib/xt/recordings"

    @Option(name: .long, help: "Camera channels to record, first-last (video on each agent's channel, audio on the next).")
    var channels = "100-199"

    @Option(name: .long, help: "Live deadline in milliseconds (frames later than this count as late).")
    var deadline = 500

    @Option(name: .long, help: "Write the ingest counters and latency as JSON to this file (every second and at the end).")
    var report: String?

    @Option(name: .long, help: "Run this many seconds, then stop.")
    var seconds: Double?

    @OptionGroup var host: HostOptions
    @OptionGroup var node: NodeOptions

    func run() async throws {
        try await XT.run {
            let channelBounds = channels.split(separator: "-").compactMap { UInt16($0) }
            guard (1...2).contains(channelBounds.count), channelBounds.first! <= channelBounds.last!, channelBounds.last! < UInt16.max else {
                throw CLIError("--channels '\(channels)' is not a range: use first-last, e.g. 100-199")
            }
            let logger = node.logger(level: .info)
            let (host, configuration) = try await self.host.start(node: node, liveDeadline: .milliseconds(deadline), logger: logger)
            let ingest = try MediaIngest(root: storage, host: host, deadline: .milliseconds(deadline), logger: logger)
            for channel in channelBounds.first!...(channelBounds.last! + 1) { await host.subscribe(channel) }
            print("recorder listening on \(host.endpoint.localAddress) as \(configuration.identity.publicKey)\(self.host.open ? " (open mode)" : ""), recording channels \(channels) into \(storage) (\(await ingest.streamCount) streams already there)")
            let consumer = Task { await ingest.run() }
            let events = Task { await HostOptions.printEvents(of: host) }
            let reporter = Task {
                while !Task.isCancelled {
                    try? await Task.sleep(for: .seconds(1))
                    if let report { write(await ingest.currentReport(), to: report) }
                }
            }
            await Termination.wait(seconds: seconds)
            reporter.cancel()
            await host.stop()
            _ = await consumer.value
            events.cancel()
            let final = await ingest.currentReport()
            if let report { write(final, to: report) }
            print("recorder stopped: video \(final.video.live) live + \(final.video.backfilled) backfilled, audio \(final.audio.live) live + \(final.audio.backfilled) backfilled; video latency p50 \(final.video.latencyP50Milliseconds) ms, p99 \(final.video.latencyP99Milliseconds) ms")
        }
    }
}

struct RecorderCheck: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "check", abstract: "Print each camera's recorded timeline and its gaps, as JSON.")

    @Option(name: .long, help: "Where recordings are.")
    var storage = "/var/lib/xt/recordings"

    @Option(name: .long, help: "Only this camera.")
    var camera: String?

    func run() async throws {
        try await XT.run {
            guard FileManager.default.fileExists(atPath: storage) else { throw CLIError("no recordings at \(storage): give --storage") }
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            print(String(decoding: try encoder.encode(Recording.check(root: storage, camera: camera)), as: UTF8.self))
        }
    }
}

struct RecorderExport: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "export", abstract: "Write one camera's recording into a playable MP4 or MKV file.")

    @Option(name: .long, help: "Where recordings are.")
    var storage = "/var/lib/xt/recordings"

    @Option(name: .long, help: "The camera.")
    var camera: String

    @Option(name: .long, help: "The file to write (.mp4 or .mkv).")
    var out: String

    func run() async throws {
        try await XT.run {
            let summary = try Recording.export(root: storage, camera: camera, to: out)
            print("exported \(summary.videoFrames) video and \(summary.audioFrames) audio frames of \(camera) to \(summary.path)")
        }
    }
}
