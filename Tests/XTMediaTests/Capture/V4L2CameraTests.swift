// The real V4L2 code path (libv4l2: open, VIDIOC_*, mmap streaming) against the emulated camera
// that libv4l2 loads as a plugin: each format the agent negotiates, an unplug and replug, and
// the errors for a missing camera and one with no usable format.
import Foundation
import Testing
@testable import XTMedia

@Suite(.serialized, .enabled(if: getuid() == 0, "installing a libv4l2 plugin needs root"))
final class V4L2CameraTests {
    let directory = TestSupport.temporaryDirectory("xt-v4l2")

    init() throws { try TestSupport.installCameraPlugin() }

    deinit {
        TestSupport.removeCameraPlugin()
        try? FileManager.default.removeItem(atPath: directory)
    }

    func path(_ name: String) -> String { (directory as NSString).appendingPathComponent(name) }

    @Test func mjpegIsListedNegotiatedStreamedAndDecoded() throws {
        try TestSupport.writeCamera(path("mjpeg"), fourcc: "MJPG", width: 640, height: 360, fps: 30,
                                    frames: TestSupport.mjpegFrames(width: 640, height: 360, count: 30))
        let info = try V4L2Camera.describe(path: path("mjpeg"))
        #expect(info.formats.map(\.name) == ["MJPG"])
        #expect(info.formats.first?.sizes == [V4L2FrameSize(width: 640, height: 360, frameRates: [30])])
        #expect(info.summary.contains("MJPG (Motion-JPEG): 640x360@30"))

        let camera = try V4L2Camera(path: path("mjpeg"), width: 640, height: 360, fps: 30)
        #expect(camera.summary.contains("MJPG 640x360 at 30 fps"))
        var times: [CaptureTime] = []
        for _ in 0..<10 {
            guard case .raw(let frame) = try camera.next() else { Issue.record("MJPEG should decode to pictures"); return }
            #expect(frame.width == 640 && frame.height == 360)
            times.append(frame.captureTime)
        }
        // Stamped by the driver on the monotonic clock, moved to the wall clock: recent and rising.
        #expect(times == times.sorted())
        #expect(abs(CaptureTime.now.nanoseconds(since: times.last!)) < 1_000_000_000)
    }

    @Test func yuyvIsConvertedAndEncoded() throws {
        try TestSupport.writeCamera(path("yuyv"), fourcc: "YUYV", width: 320, height: 240, fps: 30,
                                    frames: TestSupport.yuyvFrames(width: 320, height: 240, count: 10))
        let camera = try V4L2Camera(path: path("yuyv"), width: 320, height: 240, fps: 30)
        let encoder = try H264Encoder(settings: H264Settings(width: 320, height: 240, frameRate: 30, implementation: .libx264))
        var coded = 0
        for _ in 0..<5 {
            guard case .raw(let frame) = try camera.next() else { Issue.record("YUYV gives pictures"); return }
            #expect(frame.format == .yuyv422)
            coded += try encoder.encode(frame).count
        }
        #expect(coded == 5)
    }

    @Test func aCamerasOwnH264PassesThrough() throws {
        try TestSupport.writeCamera(path("h264"), fourcc: "H264", width: 320, height: 240, fps: 30,
                                    frames: try TestSupport.h264Frames(width: 320, height: 240, count: 30))
        let camera = try V4L2Camera(path: path("h264"), width: 320, height: 240, fps: 30)
        var keyframes = 0
        for _ in 0..<20 {
            guard case .encoded(let frame) = try camera.next() else { Issue.record("H.264 passes through"); return }
            if frame.isKeyframe { keyframes += 1 }
        }
        #expect(keyframes >= 1)
        #expect(camera.encodedDescription?.configuration.isEmpty == false)
        // MJPEG or YUYV cannot be asked of an H.264-only camera.
        let refused = #expect(throws: MediaError.self) { try V4L2Camera(path: path("h264"), width: 320, height: 240, fps: 30, choice: .yuyv) }
        #expect(refused?.reason.contains("does not offer YUYV (it offers H264)") == true)
    }

    @Test func anUnpluggedCameraIsLostThenBack() throws {
        let device = path("unplug")
        let frames = TestSupport.mjpegFrames(width: 320, height: 240, count: 5)
        try TestSupport.writeCamera(device, fourcc: "MJPG", width: 320, height: 240, fps: 30, frames: frames)
        let camera = try V4L2Camera(path: device, width: 320, height: 240, fps: 30)
        _ = try camera.next()
        try FileManager.default.removeItem(atPath: device)
        let lost = #expect(throws: MediaError.self) { _ = try camera.next() }
        #expect(lost?.code == .deviceLost)
        #expect(lost?.reason.contains("disconnected") == true)
        let missing = #expect(throws: MediaError.self) { try V4L2Camera(path: device, width: 320, height: 240, fps: 30) }
        #expect(missing?.code == .deviceMissing)
        try TestSupport.writeCamera(device, fourcc: "MJPG", width: 320, height: 240, fps: 30, frames: frames)
        let back = try V4L2Camera(path: device, width: 320, height: 240, fps: 30)
        guard case .raw = try back.next() else { Issue.record("the replugged camera streams"); return }
    }

    @Test func missingAndUnusableCamerasAreClearErrors() throws {
        let missing = #expect(throws: MediaError.self) { try V4L2Camera(path: "/dev/video-xt-none", width: 640, height: 480, fps: 30) }
        #expect(missing?.code == .deviceMissing)
        #expect(missing?.reason.contains("--list-devices") == true)
        try TestSupport.writeCamera(path("grey"), fourcc: "GREY", width: 320, height: 240, fps: 30, frames: [([UInt8](repeating: 128, count: 320 * 240), true)])
        let unusable = #expect(throws: MediaError.self) { try V4L2Camera(path: path("grey"), width: 320, height: 240, fps: 30) }
        #expect(unusable?.code == .unsupportedFormat)
        #expect(unusable?.reason.contains("offers no format the agent can use (it offers GREY)") == true)
        // A file that is not a camera at all.
        try Data("hello".utf8).write(to: URL(fileURLWithPath: path("text")))
        #expect(throws: MediaError.self) { try V4L2Camera(path: path("text"), width: 320, height: 240, fps: 30) }
    }
}
