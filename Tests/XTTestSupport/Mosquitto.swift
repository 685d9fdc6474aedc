// A real MQTT broker for tests (Debian's mosquitto on a loopback port of its own, in a
// temporary directory) and mosquitto_sub as a subscriber.
public import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A mosquitto broker in a temporary directory, on a loopback port of its own.
public final class MosquittoBroker {
    public static let binary = "/usr/sbin/mosquitto"
    public static var available: Bool { FileManager.default.isExecutableFile(atPath: binary) }

    public let port = Int.random(in: 33_000...39_000)
    public let dir: URL
    private var process: Process?

    /// - Parameter users: user → password; none: anonymous clients are let in.
    public init(users: [String: String] = [:]) throws {
        dir = FileManager.default.temporaryDirectory.appendingPathComponent("xt-mqtt-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        var config = """
            listener \(port) 127.0.0.1
            persistence true
            persistence_location \(dir.path)/
            log_dest file \(dir.path)/broker.log

            """
        if getuid() == 0 { config += "user root\n" }
        if users.isEmpty {
            config += "allow_anonymous true\n"
        } else {
            let passwords = dir.appendingPathComponent("passwords")
            FileManager.default.createFile(atPath: passwords.path, contents: nil)
            for (user, password) in users {
                _ = Self.run("/usr/bin/mosquitto_passwd", ["-b", passwords.path, user, password])
            }
            config += "allow_anonymous false\npassword_file \(passwords.path)\n"
        }
        try config.write(to: dir.appendingPathComponent("mosquitto.conf"), atomically: true, encoding: .utf8)
    }

    public func start() throws {
        let process = Process()
        // The test process blocks SIGTERM and friends in its threads (Swift's concurrency and
        // Dispatch handle signals), and a child inherits the mask: the broker would never see
        // the SIGTERM that makes it save and stop. Python clears the mask and execs it.
        process.executableURL = URL(fileURLWithPath: "/usr/bin/python3")
        process.arguments = Self.withSignals(Self.binary, ["-c", dir.appendingPathComponent("mosquitto.conf").path])
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        self.process = process
        // Ready when the port takes a connection.
        let deadline = Date().addingTimeInterval(10)
        while Date() < deadline, !Self.accepts(port) { Thread.sleep(forTimeInterval: 0.05) }
    }

    /// SIGTERM (the broker saves its persistent state) and wait.
    public func stop() {
        guard let process, process.isRunning else { return }
        process.terminate()
        process.waitUntilExit()
    }

    public func close() {
        stop()
        try? FileManager.default.removeItem(at: dir)
    }

    /// Python's arguments to run `path` with no signal blocked (see ``start()``).
    public static func withSignals(_ path: String, _ arguments: [String]) -> [String] {
        ["-c", "import os, signal, sys; signal.pthread_sigmask(signal.SIG_SETMASK, set()); os.execv(sys.argv[1], sys.argv[1:])", path] + arguments
    }

    public static func accepts(_ port: Int) -> Bool {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return false }
        defer { Glibc.close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        return withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0 }
        }
    }

    @discardableResult
    public static func run(_ path: String, _ arguments: [String]) -> Int32 {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: path)
        process.arguments = arguments
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        guard (try? process.run()) != nil else { return -1 }
        process.waitUntilExit()
        return process.terminationStatus
    }
}

/// `mosquitto_sub` collecting `count` messages (topic and payload per line) in the background.
public final class Subscriber {
    public let process = Process()
    private let output = Pipe()
    private var seconds = 30

    public init(port: Int, topic: String, count: Int, id: String? = nil, seconds: Int = 30) throws {
        process.executableURL = URL(fileURLWithPath: "/usr/bin/python3")  // its -W timeout needs signals (see MosquittoBroker.start)
        var arguments = ["-h", "127.0.0.1", "-p", "\(port)", "-t", topic, "-q", "1", "-C", "\(count)", "-W", "\(seconds)", "-F", "%t %p"]
        // A persistent session: the broker keeps QoS 1 messages for it across its own restart.
        if let id { arguments += ["-c", "-i", id] }
        process.arguments = MosquittoBroker.withSignals("/usr/bin/mosquitto_sub", arguments)
        self.seconds = seconds
        process.standardOutput = output
        process.standardError = FileHandle.nullDevice
        try process.run()
    }

    /// Waits for it to end and returns its lines.
    public func lines() -> [String] {
        // Past its own timeout, it is ended: a test never waits on it for ever.
        let pid = process.processIdentifier
        let watchdog = DispatchWorkItem { kill(pid, SIGKILL) }
        DispatchQueue.global().asyncAfter(deadline: .now() + .seconds(seconds + 5), execute: watchdog)
        defer { watchdog.cancel() }
        let data = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return String(decoding: data, as: UTF8.self).split(separator: "\n").map(String.init)
    }
}

/// Polls `condition` every 20 ms until it holds or `seconds` pass; returns whether it held.
public func eventually(_ seconds: Double = 10, _ condition: () -> Bool) async -> Bool {
    let deadline = Date().addingTimeInterval(seconds)
    while Date() < deadline {
        if condition() { return true }
        try? await Task.sleep(for: .milliseconds(20))
    }
    return condition()
}
