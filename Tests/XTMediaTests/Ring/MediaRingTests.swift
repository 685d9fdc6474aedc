// The ring buffer: it keeps the configured stream time and no more, gives back exactly what
// was stored, survives an agent restart on disk, and reports a full disk as an error.
import Foundation
import Testing
@testable import XTMedia

@Suite struct MediaRingTests {
    static let stream = MediaStreamID(1)
    static let header = MediaStreamHeader(stream: stream, camera: "porch", description: StreamDescription(codec: .opus, sampleRate: 48_000, channels: 1))

    static func frame(_ sequence: UInt64, size: Int = 100) -> MediaFrame {
        MediaFrame(stream: stream, sequence: sequence,
                   frame: EncodedFrame(codec: .opus, data: [UInt8](repeating: UInt8(sequence & 0xFF), count: size),
                                       captureTime: CaptureTime(nanoseconds: Int64(sequence) * 20_000_000), duration: 20_000_000,
                                       isKeyframe: true))
    }

    @Test func keepsItsDurationAndGivesBackWhatItStored() throws {
        let ring = try MediaRing(retention: .seconds(30))
        try ring.begin(Self.header)
        for sequence in 0..<5000 as Range<UInt64> { try ring.append(Self.frame(sequence)) }  // 100 s of 20 ms frames
        let range = try #require(ring.range(of: Self.stream))
        #expect(range.upperBound == 4999)
        // 30 s kept, plus at most one segment's span (10 s) not yet dropped.
        let keptSeconds = Double(range.count) * 0.02
        #expect(keptSeconds >= 30 && keptSeconds <= 41)
        #expect(ring.frame(Self.stream, range.lowerBound) == Self.frame(range.lowerBound))
        #expect(ring.frame(Self.stream, 4321) == Self.frame(4321))
        #expect(ring.frame(Self.stream, range.lowerBound - 1) == nil)
        #expect(ring.evictedFrames == Int(range.lowerBound))
        #expect(ring.inventory == [InventoryEntry(header: Self.header, first: range.lowerBound, last: 4999)])
    }

    @Test func aDiskRingReadsBackAfterARestart() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("xt-ring-\(UInt32.random(in: 0...UInt32.max))").path
        defer { try? FileManager.default.removeItem(atPath: directory) }
        do {
            let ring = try MediaRing(retention: .seconds(300), directory: directory)
            try ring.begin(Self.header)
            for sequence in 0..<3000 as Range<UInt64> { try ring.append(Self.frame(sequence, size: 2000)) }
        }
        // A torn last record (a crash mid-write) is ignored.
        let files = try FileManager.default.contentsOfDirectory(atPath: directory).sorted()
        let last = try FileHandle(forWritingTo: URL(fileURLWithPath: directory).appendingPathComponent(files.last!))
        try last.seekToEnd()
        try last.write(contentsOf: [0, 0, 9, 9, 1, 2])
        try last.close()
        let reopened = try MediaRing(retention: .seconds(300), directory: directory)
        #expect(reopened.range(of: Self.stream) == 0...2999)
        #expect(reopened.frame(Self.stream, 1234) == Self.frame(1234, size: 2000))
        #expect(reopened.header(of: Self.stream) == Self.header)
        #expect(files.count > 1)
    }

    @Test(.enabled(if: getuid() == 0, "mounting a small tmpfs needs root"))
    func aFullDiskIsAnErrorAndWhatWasKeptStays() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("xt-ring-full-\(UInt32.random(in: 0...UInt32.max))").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        #expect(run("/bin/mount", ["-t", "tmpfs", "-o", "size=256k", "tmpfs", directory]) == 0)
        defer {
            _ = run("/bin/umount", [directory])
            try? FileManager.default.removeItem(atPath: directory)
        }
        let ring = try MediaRing(directory: directory)
        try ring.begin(Self.header)
        var kept: UInt64 = 0
        var failure: MediaError?
        for sequence in 0..<1000 as Range<UInt64> {
            do throws(MediaError) {
                try ring.append(Self.frame(sequence, size: 2000))
                kept = sequence
            } catch {
                failure = error
                break
            }
        }
        let error = try #require(failure)
        #expect(error.code == .io)
        #expect(error.reason.contains("No space left on device") && error.reason.contains("free disk space"))
        #expect(kept > 50)
        #expect(ring.frame(Self.stream, kept) == Self.frame(kept, size: 2000))
        // A missing or unusable directory is a clear error too.
        let missing = #expect(throws: MediaError.self) { try MediaRing(directory: "/proc/xt-ring-cannot-exist") }
        #expect(missing?.reason.contains("ring") == true)
    }

    private func run(_ tool: String, _ arguments: [String]) -> Int32 {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: tool)
        process.arguments = arguments
        guard (try? process.run()) != nil else { return -1 }
        process.waitUntilExit()
        return process.terminationStatus
    }
}
