// The publisher without a network: every frame is numbered and kept in the ring; a frame
// already past its deadline is not sent live but counted; the host being away is counted;
// and what a receipt leaves out is exactly what backfill sends.
import Logging
import Testing
@testable import XTAgent
import XTMedia
import XTNet
import XTransport

@Suite struct MediaPublisherTests {
    func publisher() throws -> MediaPublisher {
        var configuration = NodeConfiguration()
        configuration.host = "127.0.0.1"
        configuration.hostPort = 9
        let node = NetNode(configuration: configuration, identity: NodeIdentity(), hostKey: NodeIdentity().publicKey)
        return MediaPublisher(node: node, ring: try MediaRing(), camera: "porch", videoChannel: 100, audioChannel: 101, deadline: .milliseconds(500),
                              multicast: true, logger: Logger(label: "test")) {}
    }

    func frame(age milliseconds: Int64, keyframe: Bool = true) -> PipelineOutput {
        PipelineOutput(frame: EncodedFrame(codec: .h264, data: [0, 0, 0, 1, 0x65, 1], captureTime: CaptureTime.now.adding(nanoseconds: -milliseconds * 1_000_000),
                                           duration: 33_000_000, isKeyframe: keyframe),
                       description: StreamDescription(codec: .h264, width: 640, height: 360, frameRate: 30))
    }

    @Test func lateFramesAreSkippedLiveButKept() async throws {
        let publisher = try publisher()
        await publisher.publish(frame(age: 10))
        await publisher.publish(frame(age: 800, keyframe: false))
        await publisher.publish(frame(age: 20, keyframe: false))
        let stats = await publisher.stats
        #expect(stats.lateSkipped == 1)
        #expect(stats.offline == 2)  // never connected: the other two wait in the ring
        let stream = try #require(await publisher.inventory.first)
        #expect(stream.first == 0 && stream.last == 2)
        #expect(stream.header.camera == "porch")
    }

    @Test func backfillSendsWhatTheReceiptLeavesOut() async throws {
        let publisher = try publisher()
        #expect(await publisher.missing(in: 0...9, received: []) == Array(0...9))
        #expect(await publisher.missing(in: 0...9, received: [0...9]) == [])
        #expect(await publisher.missing(in: 0...9, received: [2...3, 6...20]) == [0, 1, 4, 5])
        #expect(await publisher.missing(in: 5...9, received: [0...6]) == [7, 8, 9])
        #expect(await publisher.missing(in: 5...9, received: [0...2, 12...14]) == Array(5...9))
    }
}
