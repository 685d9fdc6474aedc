// The media wire format: every message round-trips, and truncated or foreign bytes are
// refused with a reason instead of crashing.
import Testing
@testable import XTMedia

@Suite struct MediaMessageTests {
    static let header = MediaStreamHeader(stream: MediaStreamID(0xABCD), camera: "porch",
                                          description: StreamDescription(codec: .h264, width: 1280, height: 720, frameRate: 30,
                                                                         configuration: [0, 0, 0, 1, 0x67, 1, 2]))
    static let messages: [MediaMessage] = [
        .header(header),
        .frame(MediaFrame(stream: MediaStreamID(7), sequence: 42,
                          frame: EncodedFrame(codec: .h264, data: [0, 0, 1, 0x65, 9], captureTime: CaptureTime(nanoseconds: 1_700_000_000_123_456_000),
                                              duration: 33_333_000, isKeyframe: true), isBackfill: true)),
        .frame(MediaFrame(stream: MediaStreamID(8), sequence: 0,
                          frame: EncodedFrame(codec: .opus, data: [1, 2, 3], captureTime: CaptureTime(nanoseconds: 5), duration: 20_000_000,
                                              isKeyframe: true))),
        .keyframeRequest(camera: "porch"),
        .inventory(camera: "porch", [InventoryEntry(header: header, first: 3, last: 900)]),
        .receipt([ReceiptEntry(stream: MediaStreamID(7), ranges: [0...10, 12...40]), ReceiptEntry(stream: MediaStreamID(8), ranges: [])]),
        .motion(camera: "porch", MotionGrid(cells: (0..<(MotionGrid.columns * MotionGrid.rows)).map { UInt8($0 % 256) },
                                            captureTime: CaptureTime(nanoseconds: 1_700_000_000_500_000_000))),
    ]

    @Test func everyMessageRoundTrips() throws {
        for message in Self.messages {
            #expect(try MediaMessage.decode(message.encoded()) == message)
        }
    }

    @Test func truncatedAndForeignBytesAreRefused() {
        for message in Self.messages where { if case .frame = message { return false }; return true }() {
            let bytes = message.encoded()
            for length in 0..<bytes.count {
                #expect(throws: MediaError.self) { try MediaMessage.decode(Array(bytes.prefix(length))) }
            }
        }
        #expect(throws: MediaError.self) { try MediaMessage.decode([9, 1]) }
        #expect(throws: MediaError.self) { try MediaMessage.decode([1, 99]) }
        // Ranges out of order are refused.
        var bytes = MediaMessage.receipt([ReceiptEntry(stream: MediaStreamID(1), ranges: [5...6, 1...2])]).encoded()
        #expect(throws: MediaError.self) { try MediaMessage.decode(bytes) }
        bytes = MediaMessage.keyframeRequest(camera: "x").encoded() + [0]
        #expect(throws: MediaError.self) { try MediaMessage.decode(bytes) }
    }
}
