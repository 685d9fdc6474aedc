// `xt testpattern`: the synthetic camera's pictures as raw I420 frames, for feeding other
// tools the same pictures the agent encodes (the bench's ffmpeg side), or for test clips.
import ArgumentParser
import Foundation
import XTMedia

struct TestPattern: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "testpattern",
        abstract: "Write the synthetic camera's pictures (scripted motion, clock, sync marker) as raw I420 frames.")

    @Option(name: .long, help: "Picture width in pixels.")
    var width = 1280

    @Option(name: .long, help: "Picture height in pixels.")
    var height = 720

    @Option(name: .long, help: "Frames per second (of stream time).")
    var fps = 30

    @Option(name: .long, help: "Seconds of stream time to write.")
    var seconds = 10.0

    @Option(name: .long, help: "Scripted motion, start-end:x,y>x,y[:size]; ...")
    var motion = ""

    @Option(name: .long, help: "The file to write (raw yuv420p; read it with ffmpeg -f rawvideo -pix_fmt yuv420p -s WxH).")
    var out: String

    func run() async throws {
        try await XT.run {
            try Checked.integer(width, "--width", in: 16...7680)
            try Checked.integer(height, "--height", in: 16...4320)
            try Checked.integer(fps, "--fps", in: 1...240)
            _ = try Checked.seconds(seconds, "--seconds", in: 0...86_400)
            let script = try MotionScript(parsing: motion, period: nil)
            let source = try SyntheticVideoSource(width: width, height: height, frameRate: fps, script: script, pacing: .virtual(start: .now))
            guard FileManager.default.createFile(atPath: out, contents: nil), let file = FileHandle(forWritingAtPath: out) else {
                throw CLIError("cannot create \(out)")
            }
            defer { try? file.close() }
            let count = Int(seconds * Double(fps))
            for _ in 0..<count {
                guard case .raw(let frame) = try source.next() else { continue }
                var bytes: [UInt8] = []
                bytes.reserveCapacity(width * height * 3 / 2)
                for plane in 0...2 {
                    let (columns, rows) = plane == 0 ? (width, height) : (width / 2, height / 2)
                    frame.withPlane(plane) { data, stride in
                        for row in 0..<rows { bytes += UnsafeBufferPointer(rebasing: data[(row * stride)..<(row * stride + columns)]) }
                    }
                }
                do { try file.write(contentsOf: bytes) } catch { throw CLIError("writing \(out) failed: \(error.localizedDescription)") }
            }
            print("wrote \(count) frames of \(width)x\(height) yuv420p to \(out)")
        }
    }
}
