// Live HLS cut from a feed's fragments: parts no longer than the part target, segments that
// start at keyframes, INDEPENDENT parts where a keyframe is, the joining viewer's kept GOP left
// out, blocking playlist reload and parts named before they exist, a stream that changes shape
// (discontinuity, new map), and the window; and signed links that hold only for their scope,
// user and time.
import Foundation
import Testing
import XTMedia
@testable import XTRecorder

@Suite("Live HLS")
struct LiveHLSTests {
    static let frame: Int64 = 33_333_333

    /// A packager fed the info, the header, the kept GOP (left out), then `frames` frames at
    /// 30 fps with a keyframe every `gop`.
    func packager(frames: Int, gop: Int = 30, settings: HLSSettings = HLSSettings()) -> HLSPackager {
        let packager = HLSPackager(camera: "yard", settings: settings)
        packager.take(.info(LiveHub.Info(camera: "yard", mime: "video/mp4; codecs=\"avc1.42c01f\"", width: 320, height: 180, audio: false,
                                         origin: 1_800_000_000_000)))
        packager.take(.header([1, 2, 3]))
        packager.take(.fragment(LiveFragment(bytes: [0xCC], time: 0, keyframe: true, catchUp: true)))
        feed(packager, from: 1, count: frames, gop: gop)
        return packager
    }

    func feed(_ packager: HLSPackager, from first: Int, count: Int, gop: Int) {
        for n in first..<(first + count) {
            packager.take(.fragment(LiveFragment(bytes: [UInt8(n % 251)], time: Int64(n) * Self.frame, keyframe: n % gop == 0)))
        }
    }

    struct Listed {
        var parts: [(uri: String, duration: Double, independent: Bool)] = []
        var segments: [(uri: String, duration: Double)] = []
        var maps: [String] = []
        var discontinuities = 0
        var hint: String?
        var tags: [String: String] = [:]
    }

    func parse(_ text: String) -> Listed {
        var listed = Listed()
        var duration = 0.0
        for line in text.split(separator: "\n").map(String.init) {
            func attribute(_ name: String) -> String? {
                guard let range = line.range(of: name + "=") else { return nil }
                let rest = line[range.upperBound...]
                if rest.hasPrefix("\"") { return String(rest.dropFirst().prefix { $0 != "\"" }) }
                return String(rest.prefix { $0 != "," })
            }
            if line.hasPrefix("#EXT-X-PART:") {
                listed.parts.append((attribute("URI")!, Double(attribute("DURATION")!)!, line.contains("INDEPENDENT=YES")))
            } else if line.hasPrefix("#EXTINF:") {
                duration = Double(line.dropFirst(8).dropLast())!
            } else if line.hasPrefix("seg-") {
                listed.segments.append((line, duration))
            } else if line.hasPrefix("#EXT-X-MAP:") {
                listed.maps.append(attribute("URI")!)
            } else if line == "#EXT-X-DISCONTINUITY" {
                listed.discontinuities += 1
            } else if line.hasPrefix("#EXT-X-PRELOAD-HINT:") {
                listed.hint = attribute("URI")
            } else if line.hasPrefix("#EXT-X-"), let colon = line.firstIndex(of: ":") {
                listed.tags[String(line[..<colon])] = String(line[line.index(after: colon)...])
            }
        }
        return listed
    }

    @Test("Parts stay within the part target, segments start at keyframes, and the kept GOP is left out")
    func cutsPartsAndSegments() async throws {
        let packager = packager(frames: 5 * 30 + 10)
        let text = try await packager.playlist()
        let listed = parse(text)
        #expect(listed.tags["#EXT-X-PART-INF"] == "PART-TARGET=0.200")
        #expect(listed.tags["#EXT-X-SERVER-CONTROL"] == "CAN-BLOCK-RELOAD=YES,PART-HOLD-BACK=0.600")
        #expect(listed.tags["#EXT-X-TARGETDURATION"] == "1")
        #expect(listed.maps == ["init-0.mp4"])
        // Four whole segments of one second (frames 30-149; 150-160 still open), none with the catch-up byte.
        #expect(listed.segments.count == 4, "\(text)")
        #expect(listed.segments.allSatisfy { abs($0.duration - 1) < 0.001 }, "\(text)")
        #expect(listed.parts.allSatisfy { $0.duration <= 0.2001 }, "\(text)")
        // Each segment's first part is independent, and only those.
        #expect(listed.parts.filter(\.independent).allSatisfy { $0.uri.hasSuffix(".0.m4s") })
        #expect(listed.parts.filter { $0.uri.hasSuffix(".0.m4s") }.allSatisfy { $0.independent })
        let first = try #require(listed.segments.first?.uri)
        let msn = try #require(Int(first.dropFirst(4).dropLast(4)))
        let bytes = try await packager.segment(msn)
        #expect(bytes == (30..<60).map { UInt8($0 % 251) })
        #expect(!bytes.contains(0xCC))
        // The parts of a segment join into it.
        var joined: [UInt8] = []
        var index = 0
        while let part = try? await packager.part(msn + 3, index) {
            joined += part
            index += 1
        }
        #expect(joined == (120..<150).map { UInt8($0 % 251) })
        // The preload hint names the next part of the open segment.
        #expect(listed.hint == "part-\(msn + 4).\(listed.parts.filter { $0.uri.hasPrefix("part-\(msn + 4).") }.count).m4s")
        #expect(try packager.initSegment(0) == [1, 2, 3])
        #expect(throws: HLSError.self) { try packager.initSegment(7) }
    }

    @Test("A blocking reload waits for the part; a request too far ahead is refused; a stalled camera times out")
    func blockingReload() async throws {
        // The first playlist waits for a whole segment (its target duration is then known).
        var quick = HLSSettings()
        quick.blockingTimeout = .milliseconds(200)
        await #expect(throws: HLSError.notYet("the first segment of yard")) { try await self.packager(frames: 40, settings: quick).playlist() }

        var settings = HLSSettings()
        settings.blockingTimeout = .milliseconds(300)
        let packager = packager(frames: 70, settings: settings)
        let listed = parse(try await packager.playlist())
        let hint = try #require(listed.hint)
        let numbers = hint.dropFirst(5).dropLast(4).split(separator: ".").compactMap { Int($0) }
        let waiting = Task { try await packager.playlist(msn: numbers[0], part: numbers[1]) }
        let part = Task { try await packager.part(numbers[0], numbers[1]) }
        try await Task.sleep(for: .milliseconds(50))
        feed(packager, from: 71, count: 10, gop: 30)
        let after = parse(try await waiting.value)
        #expect(after.parts.contains { $0.uri == hint })
        #expect(try await part.value.isEmpty == false)
        await #expect(throws: HLSError.tooFarAhead("segment \(numbers[0] + 3)")) { try await packager.playlist(msn: numbers[0] + 3) }
        await #expect(throws: HLSError.self) { try await packager.playlist(msn: numbers[0] + 1, part: 2) }
    }

    @Test("A stream that changes shape starts a new map after a discontinuity, and the window drops old segments")
    func shapeChangeAndWindow() async throws {
        var settings = HLSSettings()
        settings.windowSegments = 3
        let packager = packager(frames: 95)
        packager.take(.info(LiveHub.Info(camera: "yard", mime: "video/mp4; codecs=\"avc1.64001f\"", width: 640, height: 360, audio: false,
                                         origin: 1_800_000_000_000)))
        packager.take(.header([4, 5, 6]))
        feed(packager, from: 120, count: 70, gop: 30)
        let listed = parse(try await packager.playlist())
        #expect(listed.maps == ["init-0.mp4", "init-1.mp4"])
        #expect(listed.discontinuities == 1)
        #expect(try packager.initSegment(1) == [4, 5, 6])

        let small = self.packager(frames: 30 * 12, settings: settings)
        let window = parse(try await small.playlist())
        #expect(window.segments.count == 3)
        let oldest = try #require(Int(window.segments[0].uri.dropFirst(4).dropLast(4)))
        #expect(window.tags["#EXT-X-MEDIA-SEQUENCE"] == "\(oldest)")
        await #expect(throws: HLSError.notFound("segment \(oldest - 1)")) { try await small.segment(oldest - 1) }
    }

    @Test("A signed link holds for its scope and user until it expires, and not after any change")
    func signedLinks() {
        let links = SignedLinks(key: Array(repeating: 7, count: 32))
        let token = links.token(user: "ann", scope: "live/yard", expiry: 2_000)
        #expect(links.user(token: token, scope: "live/yard", now: 1_999) == "ann")
        #expect(links.user(token: token, scope: "live/yard", now: 2_000) == nil)
        #expect(links.user(token: token, scope: "live/porch", now: 1_000) == nil)
        #expect(SignedLinks(key: Array(repeating: 8, count: 32)).user(token: token, scope: "live/yard", now: 1_000) == nil)
        var tampered = Array(token)
        tampered[3] = tampered[3] == "A" ? "B" : "A"
        #expect(links.user(token: String(tampered), scope: "live/yard", now: 1_000) == nil)
        for junk in ["", ".", "a.b", "%%%.%%%", String(repeating: "A", count: 5000) + ".AAAA"] {
            #expect(links.user(token: junk, scope: "live/yard", now: 1_000) == nil)
        }
    }
}
