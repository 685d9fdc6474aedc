// B-frames (Main/High profile cameras): a clip's pictures pass through in decode order, one
// frame interval apart, each with its composition offset; every way the system writes MP4 (a
// plain file for exports, fragments on disk for segments, fragments in memory for the live
// view) keeps those offsets, so players show the pictures in their original order; and the
// segment reader gives back the same decode times and offsets.
import Foundation
import Testing
@testable import XTMedia

@Suite(.serialized) struct BFrameTests {
    /// Decode and presentation times (ms) of a file's video packets, in file order.
    static func packets(_ path: String) -> [(decode: Int, presentation: Int)] {
        let (_, output) = TestSupport.run("ffprobe", ["-v", "error", "-select_streams", "v", "-show_entries", "packet=dts_time,pts_time",
                                                      "-of", "csv=p=0", path])
        return String(decoding: output, as: UTF8.self).split(separator: "\n").compactMap { line in
            let fields = line.split(separator: ",").compactMap { Double($0) }
            // ffprobe prints pts_time then dts_time.
            return fields.count == 2 ? (Int((fields[1] * 1000).rounded()), Int((fields[0] * 1000).rounded())) : nil
        }
    }

    /// Positions of the packets when sorted by presentation time: the order a player shows them.
    static func displayOrder(_ packets: [(decode: Int, presentation: Int)]) -> [Int] {
        packets.indices.sorted { packets[$0].presentation < packets[$1].presentation }
    }

    @Test func bFramesKeepTheirDisplayOrderThroughEveryWriter() throws {
        let directory = TestSupport.temporaryDirectory("xt-bframes")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let clip = (directory as NSString).appendingPathComponent("bf.ts")
        #expect(TestSupport.h264Clip(clip, size: "640x360", seconds: 2, gop: 50, extra: ["-bf", "1"]))
        let original = Self.packets(clip)
        try #require(original.count == 50)
        let offsets = original.map { $0.presentation - $0.decode }
        #expect(Set(offsets).count > 1, "the clip has B-frames")

        let start = CaptureTime(nanoseconds: 1_800_000_000_000_000_000)
        let source = try FileVideoSource(location: clip, clock: FileClock(pacing: .virtual(start: start)))
        var frames: [EncodedFrame] = []
        while frames.count < 50 {
            guard case .encoded(let frame) = try source.next() else { Issue.record("H.264 passes through"); return }
            frames.append(frame)
        }
        // Decode order, one frame interval apart: no bursts; each with its offset.
        #expect(frames.first?.captureTime == start && frames.first?.isKeyframe == true)
        for (earlier, later) in zip(frames, frames.dropFirst()) { #expect(later.captureTime.nanoseconds(since: earlier.captureTime) == 40_000_000) }
        #expect(frames.map { Int($0.compositionOffset / 1_000_000) } == offsets)
        let description = try #require(source.encodedDescription)

        // A plain MP4 (exports), fragments on disk (segments), fragments in memory (live view).
        let plain = (directory as NSString).appendingPathComponent("plain.mp4")
        let plainWriter = try MediaFileWriter(path: plain, streams: [description])
        for frame in frames { try plainWriter.write(frame, stream: 0) }
        try plainWriter.finish()

        let fragmented = (directory as NSString).appendingPathComponent("fragmented.mp4")
        let fragmentWriter = try MediaFileWriter(path: fragmented, format: "mp4", streams: [description], origin: start, fragmented: true,
                                                 metadata: ["xt_start": String(start.nanoseconds)])
        for (index, frame) in frames.enumerated() {
            if index % 25 == 0 && index > 0 { try fragmentWriter.flushFragment() }
            try fragmentWriter.write(frame, stream: 0)
        }
        try fragmentWriter.finish()

        let memory = (directory as NSString).appendingPathComponent("live.mp4")
        let liveWriter = try MediaFileWriter(path: "live:test", format: "mp4", streams: [description], origin: start, inMemory: true)
        var live = liveWriter.takeOutput()
        for frame in frames {
            try liveWriter.write(frame, stream: 0)
            try liveWriter.flushFragment()
            live += liveWriter.takeOutput()
        }
        try Data(live).write(to: URL(fileURLWithPath: memory))

        for path in [plain, fragmented, memory] {
            let written = Self.packets(path)
            let name = (path as NSString).lastPathComponent
            #expect(written.count == 50, "\(name)")
            #expect(written.map { $0.presentation - $0.decode } == offsets, "\(name): composition offsets")
            #expect(Self.displayOrder(written) == Self.displayOrder(original), "\(name): display order")
        }

        // Read back as the recorder reads its segments: the same decode times and offsets.
        let reader = try MediaFileReader(path: fragmented)
        var read: [MediaFileReader.Packet] = []
        while let packet = try reader.next() { read.append(packet) }
        #expect(read.map { $0.decodeNanoseconds } == frames.map { Optional($0.captureTime.nanoseconds(since: start)) })
        #expect(read.map(\.compositionOffset) == frames.map(\.compositionOffset))
    }

    @Test func aFileIsPacedByDecodeTimeWithoutBursts() throws {
        let directory = TestSupport.temporaryDirectory("xt-bframes-paced")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let clip = (directory as NSString).appendingPathComponent("bf.ts")
        #expect(TestSupport.h264Clip(clip, size: "320x180", seconds: 2, gop: 50, extra: ["-bf", "2"]))
        let source = try FileVideoSource(location: clip)
        var arrivals: [Int64] = []
        var captures: [CaptureTime] = []
        for _ in 0..<30 {
            guard case .encoded(let frame) = try source.next() else { Issue.record("H.264 passes through"); return }
            arrivals.append(CaptureTime.monotonicNow)
            captures.append(frame.captureTime)
        }
        // Paced by presentation time, B-frames would come in bursts (two at once, then a pause).
        for (earlier, later) in zip(captures, captures.dropFirst()) {
            #expect(later.nanoseconds(since: earlier) == 40_000_000)
        }
        let spacing = zip(arrivals, arrivals.dropFirst()).map { $1 - $0 }
        #expect(spacing.filter { $0 < 20_000_000 }.count <= 2, "arrivals \(spacing.map { $0 / 1_000_000 }) ms apart")
        #expect(arrivals.last! - arrivals.first! >= 29 * 40_000_000 - 50_000_000)
    }
}
