// The media wire format: every message round-trips (a B-frame's composition offset included),
// version 1 messages from older builds' ring files still read, and truncated or foreign bytes
// or numbers out of range are refused with a reason instead of crashing.
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
        .frame(MediaFrame(stream: MediaStreamID(7), sequence: 43,
                          frame: EncodedFrame(codec: .h264, data: [0, 0, 1, 0x41, 9], captureTime: CaptureTime(nanoseconds: 1_700_000_000_156_789_000),
                                              duration: 33_333_000, isKeyframe: false, compositionOffset: 66_666_000))),
        .frame(MediaFrame(stream: MediaStreamID(8), sequence: 0,
                          frame: EncodedFrame(codec: .opus, data: [1, 2, 3], captureTime: CaptureTime(nanoseconds: 5_000), duration: 20_000_000,
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

    @Test func versionOneFramesStillReadWithNoOffset() throws {
        // A frame as a build before B-frame support wrote it (ring files and fill journals).
        var bytes: [UInt8] = [1, 2]
        bytes += UInt64(7).bigEndianBytes + UInt64(42).bigEndianBytes + Int64(1_700_000_000_000_000_000).bigEndianBytes
        bytes += UInt32(40_000).bigEndianBytes + [1, 1, 0, 0, 1, 0x65]
        guard case .frame(let frame) = try MediaMessage.decode(bytes) else { Issue.record("a frame"); return }
        #expect(frame.sequence == 42 && frame.frame.compositionOffset == 0 && frame.frame.isKeyframe && frame.frame.duration == 40_000_000)
        #expect(MediaMessage.frame(frame).encoded().first == MediaMessage.version)
    }

    @Test func numbersOutOfRangeAreRefused() throws {
        func frame(time: Int64, offset: UInt32) -> [UInt8] {
            var bytes: [UInt8] = [MediaMessage.version, 2]
            bytes += UInt64(7).bigEndianBytes + UInt64(1).bigEndianBytes + time.bigEndianBytes
            bytes += UInt32(40_000).bigEndianBytes + offset.bigEndianBytes + [1, 0, 0, 0, 1, 0x41]
            return bytes
        }
        #expect((try? MediaMessage.decode(frame(time: 1_700_000_000_000_000_000, offset: 80_000))) != nil)
        for (time, offset) in [(Int64.max, UInt32(0)), (Int64.min, 0), (-1, 0), (7_300_000_000_000_000_000, 0),
                               (1_700_000_000_000_000_000, 10_000_001), (1_700_000_000_000_000_000, .max)] {
            let error = #expect(throws: MediaError.self) { try MediaMessage.decode(frame(time: time, offset: offset)) }
            #expect(error?.code == .malformed)
        }
        // Sequences beyond 2^62 (counting over them could overflow) are malformed.
        var beyond = frame(time: 1_700_000_000_000_000_000, offset: 0)
        beyond.replaceSubrange(10..<18, with: (UInt64(1) << 62).bigEndianBytes)
        #expect(throws: MediaError.self) { try MediaMessage.decode(beyond) }
        var receipt = MediaMessage.receipt([ReceiptEntry(stream: MediaStreamID(1), ranges: [0...5])]).encoded()
        receipt.replaceSubrange((receipt.count - 8)..<receipt.count, with: UInt64.max.bigEndianBytes)
        #expect(throws: MediaError.self) { try MediaMessage.decode(receipt) }
        var grid = MediaMessage.motion(camera: "porch", MotionGrid(cells: [UInt8](repeating: 0, count: MotionGrid.columns * MotionGrid.rows),
                                                                   captureTime: CaptureTime(nanoseconds: 0))).encoded()
        grid.replaceSubrange(9..<17, with: Int64.min.bigEndianBytes)
        #expect(throws: MediaError.self) { try MediaMessage.decode(grid) }
    }
}

extension FixedWidthInteger {
    var bigEndianBytes: [UInt8] { withUnsafeBytes(of: bigEndian) { Array($0) } }
}
