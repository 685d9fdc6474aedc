// The recorder's metrics (swift-metrics, kept in a Prometheus registry and served as text on
// /metrics): per camera frames per second, bitrate, gaps and backfilled seconds; per node
// link RTT, loss and retransmitted bytes; disk used and free and segments deleted; alarms
// pending and delivered. `update` reads them from the recorder's parts once a second.
import CoreMetrics
import Foundation
import Prometheus
public import XTNet
public import XTMQTT

/// The latest per-camera rates and disk figures (for MQTT's `stats`).
public struct RecorderRates: Sendable, Equatable {
    public struct Camera: Sendable, Equatable {
        /// Video frames per second and bits per second received over the last update's interval.
        public var framesPerSecond = 0.0
        public var bitsPerSecond = 0.0
        /// Gaps in the recording over the last 24 hours.
        public var gapsLastDay = 0
    }
    public var cameras: [String: Camera] = [:]
    /// Bytes: the recordings, and the disk they are on (nil when it cannot be read).
    public var recordingBytes: Int64 = 0
    public var diskFree: Int64?
    public var diskTotal: Int64?
}

/// Metrics of one recorder.
public final class RecorderMetrics: @unchecked Sendable {
    private let registry = PrometheusCollectorRegistry()
    private let factory: PrometheusMetricsFactory
    private let lock = NSLock()
    private var gauges: [String: CoreMetrics.Gauge] = [:]
    private var counters: [String: CoreMetrics.Counter] = [:]
    /// Last cumulative values seen, for counters fed from totals.
    private var totals: [String: Int64] = [:]
    private var lastUpdate = Date()
    private var latestRates = RecorderRates()

    /// The rates of the last ``update(store:host:alarms:monitor:)``.
    public var rates: RecorderRates { lock.withLock { latestRates } }

    public init() {
        factory = PrometheusMetricsFactory(registry: registry)
    }

    /// The Prometheus text exposition.
    public func render() -> String { registry.emitToString() }

    private func gauge(_ name: String, _ dimensions: [(String, String)] = []) -> CoreMetrics.Gauge {
        let key = name + dimensions.map { "|\($0.0)=\($0.1)" }.joined()
        if let gauge = gauges[key] { return gauge }
        let gauge = CoreMetrics.Gauge(label: name, dimensions: dimensions, factory: factory)
        gauges[key] = gauge
        return gauge
    }

    /// Moves a counter up to a cumulative `total` (totals that restart are taken as new).
    private func count(_ name: String, _ dimensions: [(String, String)] = [], total: Int64) {
        let key = name + dimensions.map { "|\($0.0)=\($0.1)" }.joined()
        let counter = counters[key] ?? CoreMetrics.Counter(label: name, dimensions: dimensions, factory: factory)
        counters[key] = counter
        let previous = totals[key] ?? 0
        if total > previous { counter.increment(by: total - previous) }
        totals[key] = total
    }

    private func add(_ name: String, _ dimensions: [(String, String)] = [], _ amount: Int64) {
        let key = name + dimensions.map { "|\($0.0)=\($0.1)" }.joined()
        let counter = counters[key] ?? CoreMetrics.Counter(label: name, dimensions: dimensions, factory: factory)
        counters[key] = counter
        if amount > 0 { counter.increment(by: amount) }
    }

    /// Reads everything once (call about once a second).
    public func update(store: RecordingStore, host: NetHost?, alarms: AlarmDispatcher?, monitor: MotionMonitor?) async {
        let traffic = await store.takeTraffic()
        let retention = await store.currentRetention()
        let cameras = (try? await store.index.cameras()) ?? []
        var gapCounts: [String: Int] = [:]
        let day = Int64(Date().timeIntervalSince1970 * 1e9) - 86_400_000_000_000
        for camera in cameras { gapCounts[camera.name] = (try? await store.index.gaps(camera: camera.name, from: day, to: nil).count) ?? 0 }
        let links = (await host?.status() ?? []).filter { $0.refused == nil }
        let alarmReport = await alarms?.currentReport()
        let motion = await monitor?.currentReport()
        let disk = diskSpace(store.root)

        lock.withLock {
            record(traffic: traffic, retention: retention, cameras: cameras, gapCounts: gapCounts, links: links, alarmReport: alarmReport,
                   motion: motion, disk: disk)
        }
    }

    private func record(traffic: [String: CameraTraffic], retention: RetentionReport, cameras: [CameraRecord], gapCounts: [String: Int],
                        links: [NodeStatus], alarmReport: AlarmReport?, motion: MotionReport?, disk: (free: Int64, total: Int64)?) {
        let now = Date()
        let seconds = max(now.timeIntervalSince(lastUpdate), 0.001)
        lastUpdate = now
        var rates = RecorderRates(recordingBytes: retention.recordingBytes, diskFree: disk?.free, diskTotal: disk?.total)
        for camera in cameras {
            let sent = traffic[camera.name] ?? CameraTraffic()
            let labels = [("camera", camera.name)]
            let rate = RecorderRates.Camera(framesPerSecond: Double(sent.videoFrames) / seconds, bitsPerSecond: Double(sent.bytes * 8) / seconds,
                                            gapsLastDay: gapCounts[camera.name] ?? 0)
            rates.cameras[camera.name] = rate
            gauge("xt_camera_frames_per_second", labels).record(rate.framesPerSecond)
            gauge("xt_camera_bitrate_bits_per_second", labels).record(rate.bitsPerSecond)
            gauge("xt_camera_gaps_last_day", labels).record(rate.gapsLastDay)
            add("xt_camera_backfilled_seconds_total", labels, sent.backfilledNanoseconds / 1_000_000_000)
        }
        for link in links {
            let labels = [("node", link.name)]
            gauge("xt_link_rtt_seconds", labels).record(link.rttMilliseconds / 1000)
            gauge("xt_link_loss_ratio", labels).record(link.lossPercent / 100)
            count("xt_link_retransmitted_bytes_total", labels, total: Int64(clamping: link.retransmittedBytes))
        }
        gauge("xt_disk_recordings_bytes").record(retention.recordingBytes)
        if let disk {
            gauge("xt_disk_free_bytes").record(disk.free)
            gauge("xt_disk_total_bytes").record(disk.total)
        }
        latestRates = rates
        count("xt_segments_deleted_total", total: Int64(retention.segmentsDeleted))
        count("xt_disk_full_total", total: Int64(retention.diskFull))
        if let alarmReport {
            gauge("xt_alarms_pending").record(alarmReport.pending)
            count("xt_alarms_delivered_total", total: Int64(alarmReport.delivered))
            count("xt_alarms_raised_total", total: Int64(alarmReport.raised))
        }
        if let motion {
            count("xt_motion_events_total", total: Int64(motion.eventsStarted))
            count("xt_motion_pictures_decoded_total", total: Int64(motion.decodedPictures))
        }
    }

    /// Reads the MQTT client: connected (1/0), messages published, dropped (QoS 0 while away,
    /// or past the queue), and waiting for the broker's acknowledgement.
    public func update(mqtt status: MQTTClientStatus) {
        lock.withLock {
            gauge("xt_mqtt_connected").record(status.connected ? 1 : 0)
            gauge("xt_mqtt_unacknowledged").record(status.unacknowledged)
            count("xt_mqtt_published_total", total: Int64(status.published))
            count("xt_mqtt_dropped_total", total: Int64(status.dropped))
            count("xt_mqtt_connects_total", total: Int64(status.connects))
        }
    }

    /// Reads the recorder's backup: how far behind it is (bytes, files, and the age of the
    /// oldest recording waiting, in seconds), when it last succeeded (seconds since 1970), runs
    /// by outcome and bytes sent.
    public func update(backup: RecorderBackup) async {
        let status = await backup.currentStatus
        gauge("xt_backup_behind_bytes").record(status.behindBytes)
        gauge("xt_backup_behind_files").record(status.behindFiles)
        gauge("xt_backup_behind_seconds").record(status.behindSeconds)
        if let success = status.lastSuccess { gauge("xt_backup_last_success_timestamp_seconds").record(Double(success) / 1000) }
        count("xt_backup_runs_total", [("result", "ok")], total: Int64(await backup.succeeded))
        count("xt_backup_runs_total", [("result", "failed")], total: Int64(await backup.failed))
        count("xt_backup_sent_bytes_total", total: Int64(clamping: await backup.bytesSent))
    }
}
