// Fragmented MP4 written a fragment at a time: each flush adds one whole moof+mdat pair; a
// torn tail (a crash mid-write) is found and cut off, and what remains plays.
import Foundation
import Testing
@testable import XTMedia

@Suite struct FragmentedMP4Tests {
    static let start = CaptureTime(nanoseconds: 1_700_000_000_000_000_000)

    /// `count` pictures of the synthetic camera, 160x120, coded with a keyframe every second.
    static func coded(_ count: Int) throws -> (frames: [EncodedFrame], description: StreamDescription) {
        let source = try SyntheticVideoSource(width: 160, height: 120, frameRate: 30, pacing: .virtual(start: start))
        let encoder = try H264Encoder(settings: H264Settings(width: 160, height: 120, frameRate: 30, bitrate: 200_000, gop: 30, implementation: .libx264))
        var frames: [EncodedFrame] = []
        for _ in 0..<count {
            guard case .raw(let picture) = try source.next() else { throw MediaError.malformed("expected pictures") }
            frames += try encoder.encode(picture)
        }
        return (frames, encoder.description)
    }

    @Test func flushedFragmentsSurviveATornTail() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("xt-fmp4-\(UInt32.random(in: 0...UInt32.max))").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let path = "\(directory)/segment.mp4"
        let start = Self.start
        let (frames, description) = try Self.coded(90)
        let writer = try MediaFileWriter(path: path, format: "mp4", streams: [description], origin: start, fragmented: true,
                                         metadata: ["xt_camera": "test"])
        var sizes: [Int] = []
        for (number, frame) in frames.enumerated() {
            try writer.write(frame, stream: 0)
            if number % 30 == 29 { sizes.append(try writer.flushFragment()) }
        }
        #expect(sizes == sizes.sorted() && Set(sizes).count == 3)
        var structure = try FragmentedMP4.structure(of: path)
        #expect(structure.hasHeader && structure.fragments == 3 && structure.completeLength == sizes.last, "\(structure) \(sizes)")

        // Half a fragment more, then the process dies.
        let handle = FileHandle(forWritingAtPath: path)!
        try handle.seekToEnd()
        try handle.write(contentsOf: [0, 0, 0x10, 0, 0x6D, 0x6F, 0x6F, 0x66] + [UInt8](repeating: 1, count: 100))
        try handle.close()
        structure = try FragmentedMP4.structure(of: path)
        #expect(structure.completeLength == sizes.last && structure.fileLength > structure.completeLength)
        try FragmentedMP4.repair(path)
        let reader = try MediaFileReader(path: path)
        #expect(reader.metadata["xt_camera"] == "test")
        var count = 0
        var last: Int64 = -1
        while let packet = try reader.next() {
            count += 1
            #expect((packet.nanoseconds ?? -1) > last)
            last = packet.nanoseconds ?? last
        }
        #expect(count == 90)
        // Each fragment starts where its first frame was captured.
        #expect(abs(last - frames.last!.captureTime.nanoseconds(since: start)) < 100_000)
    }

    /// The live view's stream: a header at once, then one moof+mdat per flush, which read back
    /// (joined as a browser's Media Source joins them) as every frame at its capture time.
    @Test func inMemoryFragmentsJoinIntoAPlayableStream() throws {
        let (pictures, coded) = try Self.coded(45)
        // The header comes before any frame, so it carries the SPS and PPS (from the first keyframe).
        var description = coded
        if description.configuration.isEmpty { description.configuration = H264Bitstream.parameterSets(pictures[0].data) }
        let writer = try MediaFileWriter(path: "live", format: "mp4", streams: [description], origin: Self.start, inMemory: true)
        let header = writer.takeOutput()
        #expect(String(decoding: header[4..<8], as: UTF8.self) == "ftyp" && header.count > 100)
        var stream = header
        var fragments = 0
        for frame in pictures {
            try writer.write(frame, stream: 0)
            try writer.flushFragment()
            let fragment = writer.takeOutput()
            #expect(String(decoding: fragment[4..<8], as: UTF8.self) == "moof")
            stream += fragment
            fragments += 1
        }
        try writer.finish()
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("xt-live-\(UInt32.random(in: 0...UInt32.max)).mp4").path
        defer { unlink(path) }
        try Data(stream).write(to: URL(fileURLWithPath: path))
        #expect(try FragmentedMP4.structure(of: path).fragments == fragments)
        let reader = try MediaFileReader(path: path)
        var count = 0
        var last: Int64 = -1
        while let packet = try reader.next() {
            count += 1
            #expect((packet.nanoseconds ?? -1) > last)
            last = packet.nanoseconds ?? last
        }
        #expect(count == fragments && fragments >= 40)
    }

    @Test func aFileWithoutHeaderHasNothingWhole() throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("xt-fmp4-\(UInt32.random(in: 0...UInt32.max)).mp4").path
        defer { unlink(path) }
        try Data([0, 0, 0, 0x20, 0x66, 0x74, 0x79, 0x70, 9, 9]).write(to: URL(fileURLWithPath: path))
        let structure = try FragmentedMP4.structure(of: path)
        #expect(!structure.hasHeader && structure.completeLength == 0 && structure.fragments == 0)
    }
}
