// Helpers for tests that need real devices where the machine has none: the emulated V4L2
// camera (a libv4l2 plugin) and the real-time ALSA PCM, both built by this package; and the
// ffmpeg and espeak-ng command-line tools for test media.
import Foundation
import XTMedia

enum TestSupport {
    /// The directory the test binary (and the package's plugin libraries) were built into.
    static var buildDirectory: String { (CommandLine.arguments[0] as NSString).deletingLastPathComponent }

    static func temporaryDirectory(_ prefix: String) -> String {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("\(prefix)-\(UInt32.random(in: 0...UInt32.max))").path
        try? FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }

    /// Runs a tool; returns its exit status and standard output.
    @discardableResult
    static func run(_ tool: String, _ arguments: [String], environment: [String: String]? = nil) -> (status: Int32, output: Data) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = [tool] + arguments
        if let environment { process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 } }
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = FileHandle.nullDevice
        guard (try? process.run()) != nil else { return (-1, Data()) }
        let output = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, output)
    }

    /// Writes `seconds` of lavfi's testsrc2 (frame number and pattern drawn) at `size`, 25 fps,
    /// coded in H.264 as MPEG-TS to `path`, starting at `offset` seconds; `extra` adds encoder
    /// options (-bf, -pix_fmt, -profile:v). Returns whether ffmpeg made it.
    @discardableResult
    static func h264Clip(_ path: String, size: String, seconds: Int, gop: Int = 25, offset: Int = 0, extra: [String] = []) -> Bool {
        run("ffmpeg", ["-v", "error", "-f", "lavfi", "-i", "testsrc2=size=\(size):rate=25", "-t", "\(seconds)", "-c:v", "libx264",
                       "-g", "\(gop)"] + extra + ["-output_ts_offset", "\(offset)", "-f", "mpegts", "-y", path]).status == 0
    }

    // MARK: - The emulated camera

    static let pluginDirectory = "/usr/lib/x86_64-linux-gnu/libv4l/plugins"
    static let installedPlugin = pluginDirectory + "/libxt-test-emulated-camera.so"

    /// Puts the emulated camera where libv4l2 loads plugins (root only).
    static func installCameraPlugin() throws {
        let built = (buildDirectory as NSString).appendingPathComponent("libxtv4l2emulator.so")
        guard FileManager.default.fileExists(atPath: built) else { throw MediaError.deviceMissing("\(built) was not built: run swift build") }
        try? FileManager.default.createDirectory(atPath: pluginDirectory, withIntermediateDirectories: true)
        try? FileManager.default.removeItem(atPath: installedPlugin)
        try FileManager.default.copyItem(atPath: built, toPath: installedPlugin)
    }

    static func removeCameraPlugin() { try? FileManager.default.removeItem(atPath: installedPlugin) }

    /// Writes an emulated camera file: the header, the frame table, the frames.
    static func writeCamera(_ path: String, fourcc: String, width: Int, height: Int, fps: Int, frames: [(data: [UInt8], keyframe: Bool)]) throws {
        func le32(_ value: Int) -> [UInt8] { (0..<4).map { UInt8((value >> ($0 * 8)) & 0xFF) } }
        func le64(_ value: Int) -> [UInt8] { (0..<8).map { UInt8((value >> ($0 * 8)) & 0xFF) } }
        var file = Array("XTV4L2E1".utf8) + Array(fourcc.utf8) + le32(width) + le32(height) + le32(fps) + le32(frames.count)
        file += [UInt8](repeating: 0, count: 36)
        var offset = 64 + 16 * frames.count
        for frame in frames {
            file += le64(offset) + le32(frame.data.count) + le32(frame.keyframe ? 1 : 0)
            offset += frame.data.count
        }
        for frame in frames { file += frame.data }
        try Data(file).write(to: URL(fileURLWithPath: path))
    }

    /// MJPEG pictures of ffmpeg's test source.
    static func mjpegFrames(width: Int, height: Int, count: Int) -> [(data: [UInt8], keyframe: Bool)] {
        let (_, output) = run("ffmpeg", ["-v", "error", "-f", "lavfi", "-i", "testsrc2=size=\(width)x\(height):rate=30", "-frames:v", "\(count)",
                                         "-c:v", "mjpeg", "-q:v", "5", "-f", "mjpeg", "-"])
        let bytes = [UInt8](output)
        var starts: [Int] = []
        var index = 0
        while index + 2 < bytes.count {
            if bytes[index] == 0xFF, bytes[index + 1] == 0xD8, bytes[index + 2] == 0xFF { starts.append(index); index += 3 } else { index += 1 }
        }
        return starts.enumerated().map { position, start in
            (Array(bytes[start..<(position + 1 < starts.count ? starts[position + 1] : bytes.count)]), true)
        }
    }

    /// YUYV pictures of ffmpeg's test source.
    static func yuyvFrames(width: Int, height: Int, count: Int) -> [(data: [UInt8], keyframe: Bool)] {
        let (_, output) = run("ffmpeg", ["-v", "error", "-f", "lavfi", "-i", "testsrc2=size=\(width)x\(height):rate=30", "-frames:v", "\(count)",
                                         "-pix_fmt", "yuyv422", "-f", "rawvideo", "-"])
        let size = width * height * 2
        let bytes = [UInt8](output)
        return stride(from: 0, to: bytes.count - size + 1, by: size).map { (Array(bytes[$0..<($0 + size)]), true) }
    }

    /// H.264 access units, as a camera with its own encoder gives them.
    static func h264Frames(width: Int, height: Int, count: Int) throws -> [(data: [UInt8], keyframe: Bool)] {
        let source = try SyntheticVideoSource(width: width, height: height, frameRate: 30, pacing: .virtual(start: .now))
        let encoder = try H264Encoder(settings: H264Settings(width: width, height: height, frameRate: 30, bitrate: 500_000, gop: 15,
                                                             implementation: .libx264))
        var frames: [(data: [UInt8], keyframe: Bool)] = []
        for _ in 0..<count {
            guard case .raw(let picture) = try source.next() else { continue }
            frames += try encoder.encode(picture).map { ($0.data, $0.isKeyframe) }
        }
        return frames
    }

    // MARK: - The real-time ALSA microphone

    /// An ALSA configuration with `pcm.xtmic`: ALSA's file plugin reading `speech` (raw 16-bit
    /// 48 kHz mono) over the real-time xtclock PCM. Returns the value for ALSA_CONFIG_PATH.
    static func alsaMicrophone(speech: String, directory: String) throws -> String {
        try alsaConfiguration(name: "xtmic", file: "/dev/null", infile: speech, directory: directory)
    }

    /// An ALSA configuration with `pcm.xtspeaker`: the real-time xtclock PCM played through
    /// ALSA's file plugin, which records what is played to `heard` (raw). Returns the value for
    /// ALSA_CONFIG_PATH.
    static func alsaSpeaker(heard: String, directory: String, stamps: String? = nil) throws -> String {
        try alsaConfiguration(name: "xtspeaker", file: heard, infile: nil, directory: directory, stamps: stamps)
    }

    /// `pcm.NAME`: ALSA's file plugin over the real-time xtclock PCM, writing what is played to
    /// `file` and, if given, capturing `infile`; with `stamps`, xtclock writes there when each
    /// frame of the file played.
    private static func alsaConfiguration(name: String, file: String, infile: String?, directory: String, stamps: String? = nil) throws -> String {
        let plugin = (buildDirectory as NSString).appendingPathComponent("libxtalsaclock.so")
        let path = (directory as NSString).appendingPathComponent("asound-\(name).conf")
        try """
            pcm_type.xtclock { lib "\(plugin)" }
            pcm.\(name) {
              type file
              slave.pcm { type xtclock\(stamps.map { "; stamp \"\($0)\"" } ?? "") }
              file "\(file)"
            \(infile.map { "  infile \"\($0)\"\n" } ?? "")  format "raw"
            }
            """.write(toFile: path, atomically: true, encoding: .utf8)
        return "/usr/share/alsa/alsa.conf:" + path
    }

    /// A spoken sentence from espeak-ng, as raw 16-bit 48 kHz mono (what `infile` reads).
    static func speech(_ text: String, directory: String) throws -> String {
        let wav = (directory as NSString).appendingPathComponent("speech.wav")
        let raw = (directory as NSString).appendingPathComponent("speech.raw")
        guard run("espeak-ng", ["-w", wav, text]).status == 0,
              run("sox", [wav, "-r", "48000", "-c", "1", "-b", "16", "-e", "signed-integer", "-t", "raw", raw]).status == 0 else {
            throw MediaError.deviceMissing("espeak-ng or sox failed: run `make deps`")
        }
        return raw
    }
}
