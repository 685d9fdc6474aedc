// The SQLite index on its own: WAL mode, gaps between segments kept up to date as segments
// come, are replaced and go, rewrites' file moves remembered until confirmed, streams'
// received ranges round-tripped, and a file that is not an index refused with advice.
import Foundation
import Testing
@testable import XTRecorder

@Suite struct SQLiteIndexTests {
    func segment(_ camera: String, _ start: Int64, _ end: Int64, open: Bool = false) -> SegmentRecord {
        SegmentRecord(path: "\(camera)/\(start).mp4", camera: camera, start: start * 1_000_000_000, end: end * 1_000_000_000, bytes: 100,
                      videoFrames: 30, audioFrames: 50, isOpen: open)
    }

    @Test func gapsFollowTheSegments() async throws {
        let root = Fixtures.temporaryDirectory("index")
        defer { try? FileManager.default.removeItem(atPath: root) }
        let index = try SQLiteIndex(path: "\(root)/index.sqlite")
        for (start, end) in [(0, 10), (10, 20), (25, 35), (35, 45)] { try await index.saveSegment(segment("cam", Int64(start), Int64(end))) }
        try await index.saveSegment(segment("other", 100, 110))
        var gaps = try await index.gaps(camera: "cam", from: nil, to: nil)
        #expect(gaps == [GapRecord(camera: "cam", start: 20_000_000_000, end: 25_000_000_000)])
        // Backfill fills the hole: two segments become three.
        try await index.replaceSegments(["cam/10.mp4"], with: [segment("cam", 10, 20), segment("cam", 20, 25)], moves: [])
        gaps = try await index.gaps(camera: "cam", from: nil, to: nil)
        #expect(gaps.isEmpty)
        // Retention takes the oldest: what was before the first segment is no gap.
        try await index.deleteSegments(["cam/0.mp4", "cam/20.mp4"])
        gaps = try await index.gaps(camera: "cam", from: nil, to: nil)
        #expect(gaps == [GapRecord(camera: "cam", start: 20_000_000_000, end: 25_000_000_000)])
        try await index.deleteSegments(["cam/10.mp4"])
        #expect(try await index.gaps(camera: "cam", from: nil, to: nil).isEmpty)
        // Queries by time and age.
        #expect(try await index.segments(camera: "cam", from: 30_000_000_000, to: 36_000_000_000).map(\.path) == ["cam/25.mp4", "cam/35.mp4"])
        #expect(try await index.oldestSegments(camera: nil, limit: 2).map(\.path) == ["cam/25.mp4", "cam/35.mp4"])
        let use = try await index.storageUse()
        #expect(use.map(\.camera) == ["cam", "other"] && use.map(\.segments) == [2, 1])
    }

    @Test func walModeMovesAndStreams() async throws {
        let root = Fixtures.temporaryDirectory("index")
        defer { try? FileManager.default.removeItem(atPath: root) }
        let index = try SQLiteIndex(path: "\(root)/index.sqlite")
        try await index.saveSegment(segment("cam", 0, 10, open: true))
        #expect(try await index.openSegments().count == 1)
        let moves = [FileMove(from: ".tmp/1.mp4", to: "cam/0.mp4")]
        try await index.replaceSegments(["cam/0.mp4"], with: [segment("cam", 0, 10)], moves: moves)
        #expect(try await index.openSegments().isEmpty)
        // A second connection (another process) sees the same.
        let again = try SQLiteIndex(path: "\(root)/index.sqlite")
        #expect(try await again.pendingMoves() == moves)
        try await again.completeMoves(moves)
        #expect(try await index.pendingMoves().isEmpty)
        let stream = StreamRecord(stream: .max - 3, camera: "cam", kind: "video", header: [1, 2, 3], received: [0...99, 120...130])
        try await index.saveStreams([stream])
        #expect(try await again.streams() == [stream])
        let mode = try String(contentsOfFile: "\(root)/index.sqlite", encoding: .isoLatin1).prefix(20)
        #expect(mode.hasPrefix("SQLite format 3"))
        #expect(FileManager.default.fileExists(atPath: "\(root)/index.sqlite-wal"))
    }

    @Test func aFileThatIsNotAnIndexIsRefused() throws {
        let root = Fixtures.temporaryDirectory("index")
        defer { try? FileManager.default.removeItem(atPath: root) }
        try Data(repeating: 0x41, count: 4096).write(to: URL(fileURLWithPath: "\(root)/index.sqlite"))
        #expect {
            _ = try SQLiteIndex(path: "\(root)/index.sqlite")
        } throws: { ($0 as? StorageError)?.code == .index && "\($0)".contains("--reindex") }
    }
}
