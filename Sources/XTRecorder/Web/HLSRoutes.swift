// The HLS routes, for players without Media Source Extensions (iPhone Safari, VLC, ffmpeg, Home
// Assistant). Every URL of a stream shares one folder, so that the playlist's relative URIs
// (players drop a playlist's query when they resolve them) keep its login:
//
//   /api/hls/ACCESS/live/CAMERA/index.m3u8        live, LL-HLS, with sound where the camera has it
//   /api/hls/ACCESS/live-video/CAMERA/index.m3u8  live, video only
//   /api/hls/ACCESS/recordings/CAMERA/FROM-TO/index.m3u8   a recorded range (ms since 1970), VOD
//
// and beside each playlist its `init-N.mp4`, `seg-N.m4s` and `part-N.M.m4s` (and, live,
// `info.json`: the stream's MIME type and size, for a page feeding a Media Source from the
// parts). ACCESS is `session` (the web UI's cookie) or a signed token from
// `GET /api/cameras/CAMERA/hls`.
import Foundation
import Hummingbird
import NIOCore
import XTMedia

extension API {
    /// A signed HLS link: `url` is a path on this server; `expires` ms since 1970.
    public struct HLSLink: Codable, Sendable {
        public var url: String
        public var expires: Int64
    }
}

extension RecorderWeb {
    func addHLSRoutes(to api: RouterGroup<WebRequestContext>) {
        api.get("cameras/:camera/hls") { request, context in
            let user = try context.requireUser()
            let camera = try context.parameters.decoded("camera")
            guard let links else { throw APIError(.serviceUnavailable, "signed links are not set up on this recorder") }
            let hours = try request.integer("hours", in: 1...Int(SignedLinks.longestLife / 3600)) ?? 24
            let expiry = Int64(Date().timeIntervalSince1970) + Int64(hours) * 3600
            let from = try request.time("from")
            let to = try request.time("to")
            let path: String
            switch (from, to) {
            case (nil, nil):
                path = "live/\(Self.pathElement(camera))"
            case (let from?, let to?):
                guard from < to else { throw APIError(.badRequest, "'from' must be before 'to'") }
                path = "recordings/\(Self.pathElement(camera))/\(from)-\(to)"
            default:
                throw APIError(.badRequest, "give both 'from' and 'to' for a recorded range, or neither for live")
            }
            let scope = from == nil ? "live/\(camera)" : "recordings/\(camera)/\(from!)-\(to!)"
            let token = links.token(user: user.name, scope: scope, expiry: expiry)
            return try JSON.response(API.HLSLink(url: "/api/hls/\(token)/\(path)/index.m3u8", expires: expiry * 1000))
        }
        api.get("hls/:access/:kind/:camera/:file") { request, context -> Response in
            let kind = try context.parameters.require("kind")
            let camera = try context.parameters.decoded("camera")
            guard kind == "live" || kind == "live-video" else { throw APIError(.notFound, "no such stream: use live or live-video") }
            try authorize(context, scope: "live/\(camera)")
            return try await liveHLS(request, camera: camera, audio: kind == "live", file: try context.parameters.require("file"))
        }
        api.get("hls/:access/recordings/:camera/:range/:file") { _, context -> Response in
            let camera = try context.parameters.decoded("camera")
            let range = try context.parameters.require("range")
            try authorize(context, scope: "recordings/\(camera)/\(range)")
            let bounds = range.split(separator: "-").compactMap { Int64($0) }
            guard bounds.count == 2, let from = CaptureTime(milliseconds: bounds[0]), let to = CaptureTime(milliseconds: bounds[1]),
                  from < to else {
                throw APIError(.badRequest, "'\(range)' is not a range FROM-TO in ms since 1970, FROM before TO, \(CaptureTime.validRangeDescription)")
            }
            return try await recordedHLS(camera: camera, from: from.nanoseconds, to: to.nanoseconds, file: try context.parameters.require("file"))
        }
    }

    /// A camera name as one path element.
    static func pathElement(_ camera: String) -> String {
        camera.addingPercentEncoding(withAllowedCharacters: .urlPathAllowed.subtracting(["/"])) ?? camera
    }

    /// The session's user, or a signed token for `scope`.
    private func authorize(_ context: WebRequestContext, scope: String) throws {
        let access = try context.parameters.require("access")
        if access == "session" {
            _ = try context.requireUser()
            return
        }
        guard let links, let name = links.user(token: access, scope: scope), accounts.users().contains(where: { $0.user.name == name }) else {
            throw APIError(.unauthorized, "this stream link is not valid (expired, for another stream, or its user was deleted): make a new one in the web UI, or log in")
        }
    }

    private func liveHLS(_ request: Request, camera: String, audio: Bool, file: String) async throws -> Response {
        let stream: HLSPackager
        do { stream = try hls.stream(camera: camera, audio: audio) } catch { throw Self.apiError(error) }
        do {
            if file == "index.m3u8" {
                let msn = try request.integer("_HLS_msn", in: 0...Int(Int32.max))
                let part = try request.integer("_HLS_part", in: 0...100_000)
                if part != nil, msn == nil { throw APIError(.badRequest, "_HLS_part needs _HLS_msn") }
                return Self.playlistResponse(try await stream.playlist(msn: msn, part: part))
            }
            if file == "info.json" { return try JSON.response(try await stream.info()) }
            if let map = Self.number(file, prefix: "init-", suffix: ".mp4") { return Self.mediaResponse(try stream.initSegment(map), cache: true) }
            if let msn = Self.number(file, prefix: "seg-", suffix: ".m4s") { return Self.mediaResponse(try await stream.segment(msn), cache: true) }
            if file.hasPrefix("part-"), file.hasSuffix(".m4s") {
                let numbers = file.dropFirst(5).dropLast(4).split(separator: ".").compactMap { Int($0) }
                if numbers.count == 2 { return Self.mediaResponse(try await stream.part(numbers[0], numbers[1]), cache: true) }
            }
        } catch let error as HLSError {
            throw Self.apiError(error)
        }
        throw APIError(.notFound, "no such HLS file: \(file)")
    }

    private func recordedHLS(camera: String, from: Int64, to: Int64, file: String) async throws -> Response {
        let recordings = RecordingHLS(root: root, index: index)
        if file == "index.m3u8" { return Self.playlistResponse(try await recordings.playlist(camera: camera, from: from, to: to)) }
        if let start = Self.number(file, prefix: "init-", suffix: ".mp4") {
            return Self.mediaResponse(try await recordings.bytes(camera: camera, start: Int64(start), header: true, from: from, to: to), cache: true)
        }
        if let start = Self.number(file, prefix: "seg-", suffix: ".m4s") {
            return Self.mediaResponse(try await recordings.bytes(camera: camera, start: Int64(start), header: false, from: from, to: to), cache: true)
        }
        throw APIError(.notFound, "no such HLS file: \(file)")
    }

    static func apiError(_ error: HLSError) -> APIError {
        switch error {
        case .notFound: APIError(.notFound, error.description)
        case .tooFarAhead: APIError(.badRequest, error.description)
        case .notYet: APIError(.serviceUnavailable, error.description)
        case .live(.noSuchCamera): APIError(.notFound, error.description)
        case .live: APIError(.serviceUnavailable, error.description)
        }
    }

    /// `PREFIX<number>SUFFIX` → number.
    static func number(_ file: String, prefix: String, suffix: String) -> Int? {
        guard file.hasPrefix(prefix), file.hasSuffix(suffix) else { return nil }
        return Int(file.dropFirst(prefix.count).dropLast(suffix.count))
    }

    static func playlistResponse(_ text: String) -> Response {
        Response(status: .ok, headers: [.contentType: "application/vnd.apple.mpegurl", .cacheControl: "no-cache"],
                 body: ResponseBody(byteBuffer: ByteBuffer(string: text)))
    }

    static func mediaResponse(_ bytes: [UInt8], cache: Bool) -> Response {
        Response(status: .ok, headers: [.contentType: "video/mp4", .cacheControl: cache ? "private, max-age=60" : "no-cache"],
                 body: ResponseBody(byteBuffer: ByteBuffer(bytes: bytes)))
    }
}
