// `xt agent --list-devices`: the cameras and microphones this machine has.
import XTMedia

enum DeviceList {
    static func text(extra: [String] = []) -> String {
        var lines: [String] = []
        let cameras = V4L2Camera.listDevices(extra: extra)
        lines.append(cameras.isEmpty ? "cameras: none found (no /dev/video* with capture)" : "cameras:")
        for camera in cameras { lines.append("  " + camera.summary.replacingOccurrences(of: "\n", with: "\n  ")) }
        let microphones = ALSACapture.listDevices()
        lines.append(microphones.isEmpty ? "microphones: none found" : "microphones (use audio = alsa:NAME):")
        for microphone in microphones { lines.append("  \(microphone)") }
        return lines.joined(separator: "\n")
    }
}
