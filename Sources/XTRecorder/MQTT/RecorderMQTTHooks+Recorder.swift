// The bridge's hooks on a running recorder: the cameras the store knows, the `stats` payload
// from the metrics' latest rates and the host's links, and the motion and recording switches.
public import Foundation
public import XTNet
public import XTransport

extension RecorderMQTTHooks {
    /// Hooks reading `store`, `monitor`, `ingest`, `metrics` and `host` (the links of the
    /// nodes the cameras' video comes from).
    public static func recorder(store: RecordingStore, monitor: MotionMonitor, ingest: MediaIngest, metrics: RecorderMetrics,
                                host: NetHost?, started: Date = Date()) -> RecorderMQTTHooks {
        RecorderMQTTHooks(
            cameras: { await store.knownCameras() },
            stats: {
                let links = Dictionary(((await host?.status()) ?? []).filter { $0.refused == nil }.map { ($0.id, $0) }) { first, _ in first }
                var switches: [String: (motion: Bool, recording: Bool)] = [:]
                for camera in await store.knownCameras() {
                    switches[camera] = (await monitor.detects(camera), await store.records(camera))
                }
                return RecorderMQTTHooks.statsPayload(rates: metrics.rates, switches: switches, nodes: await ingest.cameraNodes(),
                                                      links: links, storageRoot: store.root, uptime: Date().timeIntervalSince(started))
            },
            setSwitch: { camera, which, on in
                switch which {
                case .motion: await monitor.setDetection(camera: camera, on: on)
                case .recordings: await store.setRecording(camera: camera, on: on)
                }
            },
            switchState: { camera, which in
                switch which {
                case .motion: await monitor.detects(camera)
                case .recordings: await store.records(camera)
                }
            })
    }

    /// The `stats` payload, shaped like Frigate's:
    /// `{"cameras": {NAME: {"camera_fps", "bitrate_kbps", "gaps_last_day", "link_rtt_ms",
    /// "link_loss_percent", "node", "motion_detection", "recording"}}, "service": {"version",
    /// "uptime" (s), "storage": {ROOT: {"total", "used", "free", "recordings"}}}}`, storage in
    /// MB (10^6 bytes) as Frigate gives it. A camera whose node is not connected has no link
    /// figures.
    public static func statsPayload(rates: RecorderRates, switches: [String: (motion: Bool, recording: Bool)], nodes: [String: NodeID],
                                    links: [String: NodeStatus], storageRoot: String, uptime: TimeInterval) -> [String: any Sendable] {
        let rounded = { (value: Double, places: Double) in (value * places).rounded() / places }
        var cameras: [String: any Sendable] = [:]
        for camera in Set(rates.cameras.keys).union(switches.keys).sorted() {
            let rate = rates.cameras[camera] ?? RecorderRates.Camera()
            var entry: [String: any Sendable] = [
                "camera_fps": rounded(rate.framesPerSecond, 10),
                "bitrate_kbps": rounded(rate.bitsPerSecond / 1000, 10),
                "gaps_last_day": rate.gapsLastDay,
                "motion_detection": switches[camera]?.motion ?? true,
                "recording": switches[camera]?.recording ?? true,
            ]
            if let node = nodes[camera], let link = links[node.description] {
                entry["node"] = link.name
                entry["link_rtt_ms"] = rounded(link.rttMilliseconds, 10)
                entry["link_loss_percent"] = rounded(link.lossPercent, 100)
            }
            cameras[camera] = entry
        }
        let megabytes = { (bytes: Int64) in rounded(Double(bytes) / 1e6, 10) }
        var storage: [String: any Sendable] = ["recordings": megabytes(rates.recordingBytes)]
        if let total = rates.diskTotal, let free = rates.diskFree {
            storage["total"] = megabytes(total)
            storage["free"] = megabytes(free)
            storage["used"] = megabytes(total - free)
        }
        return [
            "cameras": cameras,
            "service": ["version": XTVersion.current, "uptime": Int(uptime), "storage": [storageRoot: storage] as [String: any Sendable]]
                as [String: any Sendable],
        ]
    }
}
