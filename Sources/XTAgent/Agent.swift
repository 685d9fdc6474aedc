// The camera agent: opens its sources, runs one capture pipeline per source, publishes what
// they encode, keeps the ring buffer and answers the recorder's receipts with backfill.
import Foundation
public import Logging
public import XTMedia
public import XTNet
public import XTransport

/// What the agent reports (`xt agent --report FILE`).
public struct AgentReport: Sendable, Codable, Equatable {
    public var camera: String
    public var video: String
    public var audio: String
    public var videoCaptured = 0
    public var videoEncoded = 0
    public var audioCaptured = 0
    public var audioEncoded = 0
    public var deviceLosses = 0
    public var connections = 0
    public var liveSkippedBySession = 0
    public var publisher = PublisherStats()
}

/// A running agent.
public actor Agent {
    public let configuration: AgentConfiguration
    private let node: NetNode
    private let logger: Logger
    private var publisher: MediaPublisher?
    private var pipelines: [CapturePipeline] = []
    private var tasks: [Task<Void, Never>] = []
    private var videoTap: (@Sendable (EncodedFrame) -> Void)?
    private var firstHandler: (@Sendable (NetEnvelope) async -> Bool)?
    private var video: CapturePipeline?

    /// The node the agent runs on: a call on the same node (the camera in a call) uses it.
    public nonisolated var netNode: NetNode { node }

    /// Hands every coded picture to `tap` too, as it is published (set before ``start()``):
    /// the camera's one encode also feeds a call.
    public func tapVideo(_ tap: @escaping @Sendable (EncodedFrame) -> Void) { videoTap = tap }

    /// Offers each message from the network to `handler` first; those it takes (true) the
    /// publisher does not see (set before ``start()``).
    public func handleMessagesFirst(_ handler: @escaping @Sendable (NetEnvelope) async -> Bool) { firstHandler = handler }

    /// Makes the camera's next picture a keyframe.
    public func requestKeyframe() { video?.requestKeyframe() }

    /// - Parameters:
    ///   - identity: this node's key pair.
    ///   - hostKey: the recorder's (host's) public key.
    public init(configuration: AgentConfiguration, identity: NodeIdentity, hostKey: PublicKey,
                session: SessionConfiguration = SessionConfiguration(), logger: Logger) {
        self.configuration = configuration
        self.logger = logger
        node = NetNode(configuration: configuration.node, identity: identity, hostKey: hostKey, session: session,
                       liveDeadline: configuration.deadline, logger: logger)
    }

    /// Opens the ring, checks the sources open, and starts capturing and publishing. Returns
    /// at once; the host may come later (the ring keeps what it would have received).
    /// - Throws: ``MediaError`` for a bad configuration or a ring directory that cannot be used.
    ///   A camera or microphone that is missing is not fatal: it is logged and retried.
    public func start() async throws {
        try configuration.validate()
        MediaLibrary.initialize()
        let ring = try MediaRing(retention: .milliseconds(Int64(configuration.ringMinutes * 60_000)),
                                 maximumBytes: configuration.ringMegabytes << 20,
                                 directory: configuration.ringOnDisk ? configuration.ringDirectory : nil)
        let (outputs, continuation) = AsyncStream<PipelineOutput>.makeStream()
        self.outputs = continuation
        // Grids are only worth their latest: a backlog keeps the newest few.
        let (grids, gridContinuation) = AsyncStream<MotionGrid>.makeStream(bufferingPolicy: .bufferingNewest(8))
        self.grids = gridContinuation
        let clocks = Sources.Clocks(configuration)
        var video: CapturePipeline?
        if configuration.video != .none {
            let open = try Sources.video(configuration, clocks: clocks)
            video = CapturePipeline.video(name: "\(configuration.cameraName) video (\(configuration.video))", settings: configuration.h264,
                                          followSourceSize: !configuration.sizeIsSet, followSourceRate: !configuration.fpsIsSet,
                                          logger: logger, open: open,
                                          motionInterval: configuration.motionFPS > 0 ? .milliseconds(1000 / configuration.motionFPS) : nil,
                                          motion: { gridContinuation.yield($0) }) { continuation.yield($0) }
            pipelines.append(video!)
            self.video = video
        }
        if configuration.audio != .none {
            let open = try Sources.audio(configuration, clocks: clocks)
            pipelines.append(CapturePipeline.audio(name: "\(configuration.cameraName) audio (\(configuration.audio))", settings: configuration.opus,
                                                   logger: logger, open: open) { continuation.yield($0) })
        }
        let publisher = MediaPublisher(node: node, ring: ring, camera: configuration.cameraName, videoChannel: configuration.channel,
                                       audioChannel: configuration.audioChannel, deadline: configuration.deadline,
                                       multicast: configuration.multicast, logger: logger) { [video] in video?.requestKeyframe() }
        self.publisher = publisher
        try await node.start(waitForConnection: false)
        tasks.append(Task { [videoTap] in
            for await output in outputs {
                if output.frame.codec == .h264 { videoTap?(output.frame) }
                await publisher.publish(output)
            }
        })
        tasks.append(Task { [node, firstHandler] in
            for await envelope in node.messages {
                if let firstHandler, await firstHandler(envelope) { continue }
                await publisher.handle(envelope)
            }
        })
        tasks.append(Task {
            for await grid in grids { await publisher.publish(grid) }
        })
        tasks.append(Task { [node] in
            while !Task.isCancelled {
                try? await Task.sleep(for: .seconds(1))
                if await node.isConnected { await publisher.sendInventory() }
            }
        })
        for pipeline in pipelines { pipeline.start() }
        logger.info("agent started", metadata: ["camera": "\(configuration.cameraName)", "video": "\(configuration.video)",
                                                "audio": "\(configuration.audio)", "host": "\(configuration.node.host):\(configuration.node.hostPort)",
                                                "channels": "\(configuration.channel) (video), \(configuration.audioChannel) (audio)"])
    }

    /// Stops capturing, sends the recorder what it still lacks (if it is there), then leaves
    /// the network.
    public func stop() async {
        for pipeline in pipelines { await pipeline.stop() }
        outputs?.finish()
        grids?.finish()
        if let publishing = tasks.first { await publishing.value }  // every captured frame is numbered and kept
        if await node.isConnected, let publisher, await publisher.flush() {
            try? await Task.sleep(for: .milliseconds(500))  // the last backfill leaves the send buffer
        }
        for task in tasks { task.cancel() }
        await node.stop()
    }

    private var outputs: AsyncStream<PipelineOutput>.Continuation?
    private var grids: AsyncStream<MotionGrid>.Continuation?

    /// Counters so far.
    public func report() async -> AgentReport {
        var report = AgentReport(camera: configuration.cameraName, video: configuration.video.description, audio: configuration.audio.description)
        for pipeline in pipelines {
            let stats = pipeline.stats
            if pipeline.name.contains(" video ") {
                report.videoCaptured = stats.captured
                report.videoEncoded = stats.encoded
            } else {
                report.audioCaptured = stats.captured
                report.audioEncoded = stats.encoded
            }
            report.deviceLosses += stats.deviceLosses
        }
        report.connections = await node.connections
        report.liveSkippedBySession = Int(await node.sessionStats()?.liveMessagesSkipped ?? 0)
        if let publisher { report.publisher = await publisher.stats }
        return report
    }
}
