// `xt call`: voice and video calls between nodes of the network, through the host or peer to peer.
// `xt call NAME…` calls one node or user (or up to 7: a group call), `xt call --answer` takes
// the next call, `--auto-answer` takes every call (an intercom), and `xt call ring NAME` is the
// doorbell button. Ctrl-C hangs up cleanly.
import ArgumentParser
import Foundation
import XTCall
import XTMedia
import XTNet
import XTransport

struct CallCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "call",
        abstract: "Voice and video calls between nodes: call a node or user by name, answer calls, or ring (a doorbell).",
        subcommands: [CallDial.self, CallRing.self, CallLoad.self],
        defaultSubcommand: CallDial.self)
}

/// What every way of calling shares: devices, path, the node.
struct CallOptions: ParsableArguments {
    @Option(name: .long, help: "Microphone: alsa:DEVICE, synthetic, file:PATH (as `xt agent` takes audio) or none.")
    var microphone = "alsa:default"

    @Option(name: .long, help: "Speaker: alsa:DEVICE or none.")
    var speaker = "alsa:default"

    @Flag(name: .long, help: "A video call: see the other side, and send the camera's picture (--camera none: see only). Answering, the camera is sent when the caller asked for video.")
    var video = false

    @Option(name: .long, help: "Camera for video calls: /dev/videoN (V4L2), synthetic, file:PATH (as `xt agent` takes video) or none.")
    var camera = "/dev/video0"

    @Option(name: .long, help: "Record each call, both directions with audio and video, to this MP4 file (a node without a screen).")
    var record: String?

    @Flag(name: .long, help: "List the microphones, speakers and cameras, then exit.")
    var listDevices = false

    @Flag(name: .long, help: "Never try a direct path: media always goes through the host.")
    var relay = false

    @Flag(name: .long, help: "For comparison, Mumble's way: no retransmission, no FEC, a fixed 40 ms jitter buffer (concealment alone).")
    var plcOnly = false

    @Option(name: .long, help: "Hang up after this many seconds.")
    var seconds: Double?

    @Option(name: .long, help: "Seconds a call rings before it counts as not answered.")
    var ringTimeout: Double = 30

    @Option(name: .long, help: "Write the call's figures per party as JSON to this file (every second and at the end).")
    var report: String?

    @OptionGroup var net: NetNodeOptions
    @OptionGroup var node: NodeOptions

    /// The microphone `text` names (nil for none).
    static func microphone(_ text: String) throws -> CallMicrophone? {
        if text == "none" { return nil }
        guard text.count <= 1000, !text.contains(where: \.isNewline), let microphone = CallMicrophone(text) else {
            throw CLIError("--microphone '\(text.prefix(60))': use alsa:DEVICE (see --list-devices), synthetic, file:PATH or none")
        }
        return microphone
    }

    /// The camera `text` names (nil for none).
    static func camera(_ text: String) throws -> CallCamera? {
        if text == "none" { return nil }
        guard text.count <= 1000, !text.contains(where: \.isNewline), let camera = CallCamera(text) else {
            throw CLIError("--camera '\(text.prefix(60))': use /dev/videoN (see --list-devices), synthetic, file:PATH or none")
        }
        return camera
    }

    /// A file to record to: its folder must exist, and the file must not be a folder.
    static func recordPath(_ text: String?) throws -> String? {
        guard let text else { return nil }
        guard !text.isEmpty, text.utf8.count <= 4000, !text.contains(where: \.isNewline) else { throw CLIError("--record: give an MP4 file name") }
        let url = URL(fileURLWithPath: text)
        var folder: ObjCBool = false
        guard FileManager.default.fileExists(atPath: url.deletingLastPathComponent().path, isDirectory: &folder), folder.boolValue else {
            throw CLIError("--record \(text.prefix(200)): the folder \(url.deletingLastPathComponent().path.prefix(200)) does not exist")
        }
        guard !FileManager.default.fileExists(atPath: url.path, isDirectory: &folder) || !folder.boolValue else {
            throw CLIError("--record \(text.prefix(200)) is a folder: give a file name such as call.mp4")
        }
        return url.path
    }

    /// An ALSA device from `alsa:NAME` (nil for none).
    static func device(_ text: String, _ option: String) throws -> String? {
        if text == "none" { return nil }
        guard text.hasPrefix("alsa:"), text.count > 5, text.count <= 200, !text.contains(where: \.isNewline) else {
            throw CLIError("\(option) '\(text.prefix(60))': use alsa:DEVICE (see --list-devices) or none")
        }
        return String(text.dropFirst(5))
    }

    static func deviceList() -> String {
        let microphones = ALSACapture.listDevices()
        let speakers = ALSAPlayback.listDevices()
        var lines = [microphones.isEmpty ? "microphones: none found" : "microphones (use --microphone alsa:NAME):"]
        lines += microphones.map { "  \($0)" }
        lines.append(speakers.isEmpty ? "speakers: none found" : "speakers (use --speaker alsa:NAME):")
        lines += speakers.map { "  \($0)" }
        let cameras = ((try? FileManager.default.contentsOfDirectory(atPath: "/dev")) ?? []).filter { $0.hasPrefix("video") }.sorted()
        lines.append(cameras.isEmpty ? "cameras: none found (--camera synthetic sends a test pattern)" : "cameras (use --camera /dev/NAME; some are a camera's metadata nodes):")
        lines += cameras.map { "  /dev/\($0)" }
        return lines.joined(separator: "\n")
    }

    /// Runs this node's calls: places one to `names` (if any), answers as told, prints what
    /// happens, and returns when the call is over (or at Ctrl-C, --seconds). With
    /// --list-devices, lists them instead.
    func run(calling names: [String], answer: Bool, autoAnswer: Bool, unansweredIsError: Bool) async throws {
        if listDevices {
            print(Self.deviceList())
            return
        }
        if let seconds { _ = try Checked.seconds(seconds, "--seconds") }
        // A call is real time: where it may, this process goes ahead of the machine's other work.
        CallPriority.raiseProcess()
        var configuration = CallAgent.Configuration()
        configuration.timeouts.ring = try Checked.seconds(ringTimeout, "--ring-timeout", in: 1...600)
        configuration.devices = CallAudioDevices(microphone: try Self.microphone(microphone),
                                                 speaker: try Self.device(speaker, "--speaker"))
        configuration.autoAnswer = answer || autoAnswer
        configuration.direct = !relay
        configuration.plcOnly = plcOnly
        configuration.camera = try Self.camera(camera)
        configuration.recordPath = try Self.recordPath(record)
        for name in names where !CallMessage.isValidName(name) { throw CLIError(CallError.invalidName(name).description) }
        let member = try await net.start(node: node)
        let agent = CallAgent(node: member, configuration: configuration, logger: node.logger(level: .notice))
        await agent.start()
        let inbox = Task { for await envelope in member.messages { _ = await agent.handle(envelope) } }
        let reporter = Task {
            while !Task.isCancelled {
                try? await Task.sleep(for: .seconds(1))
                if let report { write(await agent.stats(), to: report) }
            }
        }
        if !names.isEmpty {
            do {
                try await agent.call(names, media: video ? [.audio, .video] : .audio)
            } catch {
                throw CLIError(error.description)
            }
            print("calling \(names.joined(separator: ", "))…")
        } else {
            print("\(member.configuration.name) is waiting for calls\(autoAnswer ? " (answering each)" : answer ? "" : ": Enter answers, d and Enter declines")")
        }
        // Taking calls by hand: a line on standard input answers (d: declines) the ringing call.
        let keyboard = answer || autoAnswer || !names.isEmpty ? nil : Task.detached {
            while let line = readLine() {
                if line.trimmingCharacters(in: .whitespaces).lowercased().hasPrefix("d") { await agent.decline() } else { await agent.answer() }
            }
        }
        // Ctrl-C, SIGTERM or --seconds hang up; the call's end ends the command.
        let stop = Task {
            await Termination.wait(seconds: seconds)
            await agent.hangUp()
            // Waiting for calls, or the hang-up did not end one: stop anyway.
            try? await Task.sleep(for: .milliseconds(500))
            await agent.finishEvents()
        }
        var connected = false
        var ringing = false
        var ending: CallEnd?
        for await event in agent.events {
            switch event {
            case .incoming(let from, let media, let parties):
                print("\(from) is calling (\(media)\(parties.count > 1 ? ", with \(parties.filter { $0 != from }.joined(separator: ", "))" : ""))")
                ringing = true
            case .stopRinging:
                break
            case .parties(let parties):
                if !parties.isEmpty {
                    connected = true
                    print("in call with \(parties.joined(separator: ", "))")
                }
            case .path(let party, let path):
                print("\(party): \(path == .direct ? "direct path" : "relayed through the host")")
            case .ended(let end):
                ending = end
                for stats in await agent.stats() { print(stats.summary) }
                print("call ended: \(end)")
            }
            if ending != nil {
                if let report { write(await agent.stats(), to: report) }
                // Waiting for calls by hand or automatically: a call that ended (or one not
                // taken) leaves it waiting for the next.
                if !(autoAnswer || (keyboard != nil && !connected && ringing)) { break }
                ending = nil
                ringing = false
            }
        }
        stop.cancel()
        keyboard?.cancel()
        reporter.cancel()
        await agent.stop()
        inbox.cancel()
        await member.stop()
        if unansweredIsError, !connected, let ending { throw CLIError(ending.description) }
    }

    private func write(_ stats: [CallStats], to path: String) {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        guard let data = try? encoder.encode(stats) else { return }
        try? data.write(to: URL(fileURLWithPath: path), options: .atomic)
    }
}

struct CallDial: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dial",
        abstract: "Call a node or user by name (several names: a group call of up to 8), or take calls.",
        discussion: "`xt call NAME` calls; `xt call` alone waits for calls and asks (Enter answers, d declines); `xt call --answer` answers the next call; `xt call --auto-answer` answers every call until Ctrl-C.")

    @Argument(help: "Who to call: node or user names.")
    var names: [String] = []

    @Flag(name: .long, help: "Answer the next call, then exit when it ends.")
    var answer = false

    @Flag(name: .long, help: "Answer every call (an intercom) until Ctrl-C.")
    var autoAnswer = false

    @OptionGroup var options: CallOptions

    func run() async throws {
        try await XT.run {
            guard names.isEmpty || !(answer || autoAnswer) else {
                throw CLIError("either call NAME or take calls (--answer, --auto-answer), not both")
            }
            try await options.run(calling: names, answer: answer, autoAnswer: autoAnswer, unansweredIsError: true)
        }
    }
}

struct CallRing: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ring",
        abstract: "The doorbell button: ring NAME (default: web, every browser with the call page open) and talk when it answers.",
        discussion: "Nobody answering is not an error: the command says so and exits 0.")

    @Argument(help: "Who to ring: a node or user name, or web.")
    var name = "web"

    @OptionGroup var options: CallOptions

    func run() async throws {
        try await XT.run {
            try await options.run(calling: [name], answer: false, autoAnswer: false, unansweredIsError: false)
        }
    }
}

struct CallLoad: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "load",
        abstract: "Bench: N calls at once between 2N nodes in this process, through the host (synthetic microphones, no speakers).",
        discussion: "Node i is named PREFIXi with id 3.(i+1), each with a new key: the host must run --open. Prints a JSON summary at the end.")

    @Option(name: .long, help: "Calls at once.")
    var calls = 50

    @Option(name: .long, help: "Seconds the calls last.")
    var seconds: Double = 20

    @Option(name: .long, help: "Node names start with this.")
    var prefix = "load"

    @Option(name: .long, help: "The host, host:port.")
    var host = "127.0.0.1:9000"

    @Option(name: .long, help: "The host's public key (base64), or @FILE.")
    var hostKey: String

    @OptionGroup var node: NodeOptions

    func run() async throws {
        try await XT.run { try await load() }
    }

    private func load() async throws {
        _ = try Checked.integer(calls, "--calls", in: 1...500)
        let duration = try Checked.seconds(seconds, "--seconds", in: 1...3600)
        let key = try PeerOptions.parseKey(hostKey)
        var members: [NetNode] = []
        var agents: [CallAgent] = []
        var inboxes: [Task<Void, Never>] = []
        for index in 0..<(2 * calls) {
            var configuration = NodeConfiguration()
            do {
                try configuration.set("host", host)
                try configuration.set("name", "\(prefix)\(index)")
                try configuration.set("id", "3.\(index + 1)")
            } catch {
                throw CLIError(error.description)
            }
            // A key of its own for each node (the host runs --open).
            let member = NetNode(configuration: configuration, identity: NodeIdentity(), hostKey: key, session: try node.sessionConfiguration(),
                                 logger: node.logger(level: .warning))
            try await member.start()
            var settings = CallAgent.Configuration()
            settings.devices = CallAudioDevices(microphone: .synthetic, speaker: nil)
            settings.devices.realTimeThreads = false
            // What the host relays is what is measured: the talkers skip the voice processing.
            settings.voice.echoCancellation = false
            settings.voice.noiseSuppression = false
            settings.voice.gainControl = false
            settings.opus.complexity = 0
            settings.direct = false
            settings.autoAnswer = index % 2 == 1
            let agent = CallAgent(node: member, configuration: settings, logger: node.logger(level: .warning))
            await agent.start()
            members.append(member)
            agents.append(agent)
            inboxes.append(Task { for await envelope in member.messages { _ = await agent.handle(envelope) } })
        }
        for pair in 0..<calls {
            do {
                try await agents[2 * pair].call(["\(prefix)\(2 * pair + 1)"])
            } catch {
                throw CLIError(error.description)
            }
        }
        try await Task.sleep(for: duration)
        var connected = 0
        var frames = 0
        var concealed = 0.0
        var heard = 0
        for agent in agents {
            let stats = await agent.stats()
            if !stats.isEmpty { connected += 1 }
            for party in stats {
                frames += party.framesReceived
                concealed += party.concealedPercent
                heard += 1
            }
        }
        for agent in agents { await agent.stop() }
        for inbox in inboxes { inbox.cancel() }
        for member in members { await member.stop() }
        print("{\"calls\": \(calls), \"partiesInCall\": \(connected), \"framesReceived\": \(frames), \"concealedPercent\": \(heard == 0 ? 0 : concealed / Double(heard))}")
    }
}
