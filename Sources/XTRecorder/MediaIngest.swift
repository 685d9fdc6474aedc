// The recorder's ingest: media published by agents on the camera channels (live) and sent
// to the host (backfill) goes into each stream's journal once. An agent's inventory is
// answered with a receipt of what the recorder holds, so the agent sends only the rest.
import Foundation
public import Logging
public import XTMedia
public import XTNet
public import XTransport

/// Capture → ingest latency of live frames, and what arrived how.
public struct IngestReport: Sendable, Codable, Equatable {
    public struct Kind: Sendable, Codable, Equatable {
        public var live = 0
        public var backfilled = 0
        public var duplicates = 0
        /// Live frames that arrived after the deadline.
        public var late = 0
        public var latencyP50Milliseconds = 0.0
        public var latencyP99Milliseconds = 0.0
        public var latencyMaxMilliseconds = 0.0
    }

    public var video = Kind()
    public var audio = Kind()
    public var streams = 0
    public var receipts = 0
    public var keyframeRequests = 0
    /// Frames that came before their stream's header (dropped; the agent sends them again).
    public var withoutHeader = 0
    /// Frames the disk could not take (the agent sends them again).
    public var storeFailures = 0
    public var malformed = 0
}

/// The ingest, fed by the host's application inbox.
public actor MediaIngest {
    public let root: String
    private let host: NetHost
    private let deadlineNanoseconds: Int64
    private let logger: Logger
    private var journals: [MediaStreamID: StreamJournal] = [:]
    private var report = IngestReport()
    private var latencies: [MediaKind: [Int64]] = [.video: [], .audio: []]
    /// Latency samples kept per kind (about an hour of video at 30 fps).
    static let latencySamples = 100_000
    /// Streams a keyframe was asked for (the recording starts at one).
    private var keyframeAsked: Set<MediaStreamID> = []

    /// Opens the storage root and reads back what it holds.
    /// - Throws: ``MediaError`` when the root cannot be created or written.
    public init(root: String, host: NetHost, deadline: Duration = .milliseconds(500), logger: Logger) throws(MediaError) {
        do {
            try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
        } catch {
            throw .io("the storage root \(root) cannot be created (\(error.localizedDescription)): choose another --storage or fix its permissions")
        }
        guard FileManager.default.isWritableFile(atPath: root) else {
            throw .io("the storage root \(root) is not writable: choose another --storage or fix its permissions")
        }
        self.root = root
        self.host = host
        deadlineNanoseconds = deadline.nanoseconds
        self.logger = logger
        for journal in StreamJournal.load(root: root) { journals[journal.header.stream] = journal }
    }

    /// Streams held (read back at start, or heard of since).
    public var streamCount: Int { journals.count }

    /// Takes deliveries until the host stops.
    public func run() async {
        for await delivery in host.messages { await handle(delivery.envelope) }
    }

    /// Handles one message for the recorder.
    public func handle(_ envelope: NetEnvelope) async {
        let message: MediaMessage
        do {
            message = try MediaMessage.decode(envelope.payload)
        } catch {
            report.malformed += 1
            return
        }
        switch message {
        case .header(let header):
            guard journals[header.stream] == nil else { return }
            do {
                journals[header.stream] = try StreamJournal(root: root, header: sanitized(header))
                report.streams = journals.count
                logger.info("new stream", metadata: ["camera": "\(header.camera)", "codec": "\(header.description.codec)",
                                                     "stream": "\(header.stream)", "from": "\(envelope.route.from)"])
            } catch {
                report.storeFailures += 1
                logger.error("cannot record a stream", metadata: ["camera": "\(header.camera)", "reason": "\(error.reason)"])
            }
        case .frame(let frame):
            await take(frame, from: envelope.route.from)
        case .inventory(_, let entries):
            report.receipts += 1
            let receipt = entries.map { entry in
                let held = journals[entry.header.stream]?.received.ranges ?? []
                // Only what overlaps the agent's ring matters to it.
                let relevant = held.filter { $0.upperBound >= entry.first && $0.lowerBound <= entry.last }
                return ReceiptEntry(stream: entry.header.stream, ranges: relevant)
            }
            try? await host.send(MediaMessage.receipt(receipt).encoded(), to: envelope.route.from, channel: envelope.route.channel)
        case .receipt, .keyframeRequest:
            break
        }
    }

    private func take(_ frame: MediaFrame, from sender: NodeID) async {
        guard let journal = journals[frame.stream] else {
            report.withoutHeader += 1
            return
        }
        let kind = frame.frame.codec.kind
        do {
            guard try journal.append(frame) else {
                update(kind) { $0.duplicates += 1 }
                return
            }
        } catch {
            if report.storeFailures == 0 { logger.error("cannot store frames", metadata: ["reason": "\(error.reason)"]) }
            report.storeFailures += 1
            return
        }
        if frame.isBackfill {
            update(kind) { $0.backfilled += 1 }
        } else {
            let latency = CaptureTime.now.nanoseconds(since: frame.frame.captureTime)
            // The percentiles cover the latest samples: a recorder runs for months.
            if latencies[kind, default: []].count >= Self.latencySamples { latencies[kind]!.removeFirst(Self.latencySamples / 2) }
            latencies[kind, default: []].append(latency)
            update(kind) {
                $0.live += 1
                if latency > deadlineNanoseconds { $0.late += 1 }
            }
        }
        // A stream first heard of mid-GOP: ask its agent for a keyframe, so the live
        // recording starts at one now rather than at the next GOP.
        if kind == .video, !frame.frame.isKeyframe, journal.received.count == 1, !keyframeAsked.contains(frame.stream) {
            keyframeAsked.insert(frame.stream)
            report.keyframeRequests += 1
            try? await host.send(MediaMessage.keyframeRequest(camera: journal.header.camera).encoded(), to: sender)
        }
    }

    private func update(_ kind: MediaKind, _ change: (inout IngestReport.Kind) -> Void) {
        if kind == .video { change(&report.video) } else { change(&report.audio) }
    }

    /// Camera names become directory names: nothing that climbs out of the root.
    private func sanitized(_ header: MediaStreamHeader) -> MediaStreamHeader {
        var copy = header
        let cleaned = header.camera.map { $0.isLetter || $0.isNumber || $0 == "-" || $0 == "_" || $0 == "." ? $0 : "_" }
        copy.camera = String(cleaned).trimmingCharacters(in: ["."])
        if copy.camera.isEmpty { copy.camera = "camera" }
        return copy
    }

    /// The report so far, with latency percentiles of live frames.
    public func currentReport() -> IngestReport {
        var result = report
        for kind in [MediaKind.video, .audio] {
            let sorted = (latencies[kind] ?? []).sorted()
            guard !sorted.isEmpty else { continue }
            func percentile(_ fraction: Double) -> Double {
                Double(sorted[min(sorted.count - 1, Int(Double(sorted.count - 1) * fraction))]) / 1e6
            }
            let set = { (value: inout IngestReport.Kind) in
                value.latencyP50Milliseconds = percentile(0.5)
                value.latencyP99Milliseconds = percentile(0.99)
                value.latencyMaxMilliseconds = Double(sorted.last!) / 1e6
            }
            if kind == .video { set(&result.video) } else { set(&result.audio) }
        }
        result.streams = journals.count
        return result
    }
}
