// `xt alarms`: a node that subscribes to the recorder's motion alarms (all cameras, or some
// cameras and zones) and prints each as a JSON line, or runs a hook command with the alarm in
// XT_ALARM_* variables. Alarms are acknowledged once handled; the numbers handled are kept in
// a state file, so after a restart of either side nothing is lost and nothing handled twice.
import ArgumentParser
import Foundation
import XTMedia
import XTNet
import XTRecorder

struct AlarmsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "alarms",
        abstract: "Subscribe to the recorder's motion alarms: print each (one JSON line) or run a hook.")

    @Option(name: .long, help: "Only this camera (repeatable; default: all).")
    var camera: [String] = []

    @Option(name: .long, help: "Only this zone (repeatable; default: all).")
    var zone: [String] = []

    @Option(name: .long, help: "Run this shell command for each alarm (XT_ALARM_ID, _KIND, _CAMERA, _ZONE, _START, _END, _SCORE, _SNAPSHOT, _JSON).")
    var exec: String?

    @Option(name: .long, help: "Where the alarms handled are remembered (default: xt-alarms-<name>.state).")
    var state: String?

    @Flag(name: .long, help: "Only alarms of events that start (not their ends).")
    var startsOnly = false

    @Option(name: .long, help: "Exit after this many seconds.")
    var seconds: Double?

    @OptionGroup var net: NetNodeOptions
    @OptionGroup var node: NodeOptions

    func run() async throws {
        try await XT.run {
            let stopAfter = try seconds.map { try Checked.seconds($0, "--seconds") }
            let name = try net.configuration().name
            let memory = try AlarmSubscriberState(path: state ?? "xt-alarms-\(name).state")
            let member = try await net.start(node: node)
            let subscription = AlarmSubscription(node: name, cameras: camera, zones: zone)
            print("subscribing to alarms of \(camera.isEmpty ? "every camera" : camera.joined(separator: ", "))\(zone.isEmpty ? "" : " (zones \(zone.joined(separator: ", ")))")")
            // Subscribing again is harmless and covers reconnects and recorder restarts.
            let subscriber = Task {
                while !Task.isCancelled {
                    try? await member.send(AlarmMessage.subscribe(subscription).encoded(), routeCode: .unicast, toName: Router.hostName,
                                           channel: AlarmMessage.channel, lane: .control)
                    try? await Task.sleep(for: .seconds(5))
                }
            }
            let timer = stopAfter.map { stopAfter in Task { try? await Task.sleep(for: stopAfter); await member.stop() } }
            for await envelope in member.messages where envelope.route.channel == AlarmMessage.channel {
                guard case .alarm(let alarm)? = try? AlarmMessage.decode(envelope.payload) else { continue }
                if !memory.hasHandled(alarm.id) {
                    try memory.received(alarm.id)
                    if !(startsOnly && alarm.kind == .ended) { handle(alarm) }
                    try memory.finished(alarm.id)
                }
                try? await member.send(AlarmMessage.ack([alarm.id]).encoded(), routeCode: .unicast, toName: Router.hostName,
                                       channel: AlarmMessage.channel, lane: .control)
            }
            subscriber.cancel()
            timer?.cancel()
            await member.stop()
        }
    }

    private func handle(_ alarm: Alarm) {
        let json = AlarmNotice(alarm).json
        guard let exec else {
            print(json)
            return
        }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/sh")
        process.arguments = ["-c", exec]
        var environment = ProcessInfo.processInfo.environment
        environment["XT_ALARM_ID"] = String(alarm.id)
        environment["XT_ALARM_KIND"] = alarm.kind == .started ? "started" : "ended"
        environment["XT_ALARM_CAMERA"] = alarm.camera
        environment["XT_ALARM_ZONE"] = alarm.zone
        environment["XT_ALARM_START"] = CaptureTime(nanoseconds: alarm.start).description
        environment["XT_ALARM_END"] = alarm.end.map { CaptureTime(nanoseconds: $0).description } ?? ""
        environment["XT_ALARM_SCORE"] = String(alarm.peakScore)
        environment["XT_ALARM_SNAPSHOT"] = alarm.snapshot ?? ""
        environment["XT_ALARM_JSON"] = json
        process.environment = environment
        do {
            try process.run()
            process.waitUntilExit()
            if process.terminationStatus != 0 {
                FileHandle.standardError.write("xt: the alarm hook exited with status \(process.terminationStatus) for alarm \(alarm.id)\n")
            }
        } catch {
            FileHandle.standardError.write("xt: the alarm hook could not run (\(error.localizedDescription)): check --exec\n")
        }
    }
}

