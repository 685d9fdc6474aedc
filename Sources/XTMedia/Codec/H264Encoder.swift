// H.264 encoding through libavcodec: libx264 tuned for live (zerolatency: no B-frames, no
// lookahead, sliced threads), or the Raspberry Pi's hardware encoder (h264_v4l2m2m) when it is
// there. SPS and PPS ride in front of every keyframe, so a viewer can start at any of them.
internal import CFFmpeg
import Foundation

/// Encoder settings.
public struct H264Settings: Hashable, Sendable {
    /// Which encoder: `auto` takes the hardware encoder when present, else libx264.
    public enum Implementation: String, Hashable, Sendable, CaseIterable {
        case auto
        case libx264
        case v4l2m2m = "h264_v4l2m2m"
    }

    public var width: Int
    public var height: Int
    public var frameRate: Int
    /// Target bits per second.
    public var bitrate: Int
    /// Frames from one keyframe to the next.
    public var gop: Int
    /// "baseline", "main" or "high"; nil leaves the encoder's default.
    public var profile: String?
    /// libx264's speed preset.
    public var preset: String
    public var implementation: Implementation
    /// Encoder threads; 0 lets the encoder choose.
    public var threads: Int

    public init(width: Int, height: Int, frameRate: Int, bitrate: Int = 2_000_000, gop: Int? = nil, profile: String? = nil,
                preset: String = "ultrafast", implementation: Implementation = .auto, threads: Int = 0) {
        self.width = width
        self.height = height
        self.frameRate = frameRate
        self.bitrate = bitrate
        self.gop = gop ?? frameRate * 2
        self.profile = profile
        self.preset = preset
        self.implementation = implementation
        self.threads = threads
    }

    /// Checks the settings before an encoder is opened.
    /// - Throws: ``MediaError/invalidConfiguration(_:file:line:)`` naming the bad setting.
    public func validate() throws(MediaError) {
        if width < 16 || height < 16 || width > 7680 || height > 4320 || width % 2 != 0 || height % 2 != 0 {
            throw .invalidConfiguration("video size \(width)x\(height) cannot be encoded: use even sizes from 16x16 to 7680x4320")
        }
        if !(1...120).contains(frameRate) { throw .invalidConfiguration("fps \(frameRate) is out of range: use 1 to 120") }
        if !(16_000...100_000_000).contains(bitrate) {
            throw .invalidConfiguration("video bitrate \(bitrate) bit/s is out of range: use 16k to 100M")
        }
        if !(1...3600).contains(gop) { throw .invalidConfiguration("GOP \(gop) is out of range: use 1 to 3600 frames") }
        if let profile, !["baseline", "main", "high"].contains(profile) {
            throw .invalidConfiguration("H.264 profile '\(profile)' is not supported: use baseline, main or high")
        }
    }
}

/// An open H.264 encoder.
public final class H264Encoder {
    private var context: UnsafeMutablePointer<AVCodecContext>?
    private let packet: UnsafeMutablePointer<AVPacket>
    private let converter: PixelConverter
    public let settings: H264Settings
    /// The libavcodec encoder in use ("libx264", "h264_v4l2m2m").
    public let name: String
    private var frameIndex: Int64 = 0
    /// Capture times of frames inside the encoder, by pts.
    private var pending: [Int64: CaptureTime] = [:]
    /// SPS and PPS, once the first keyframe came out.
    public private(set) var parameterSets: [UInt8] = []

    /// Opens the encoder the settings ask for.
    /// - Throws: ``MediaError`` when the settings are bad or no H.264 encoder can be opened.
    public init(settings: H264Settings) throws(MediaError) {
        try settings.validate()
        MediaLibrary.initialize()
        self.settings = settings
        guard let packet = av_packet_alloc() else { throw .codecFailed("out of memory allocating a packet") }
        self.packet = packet
        let candidates: [String] = switch settings.implementation {
        case .auto: Self.hardwareEncoderPresent ? ["h264_v4l2m2m", "libx264"] : ["libx264"]
        case .libx264: ["libx264"]
        case .v4l2m2m: ["h264_v4l2m2m"]
        }
        var failures: [String] = []
        var opened: (UnsafeMutablePointer<AVCodecContext>, String)?
        for candidate in candidates {
            do throws(MediaError) {
                opened = (try Self.open(candidate, settings), candidate)
                break
            } catch {
                failures.append(error.reason)
            }
        }
        guard let opened else {
            var owned: UnsafeMutablePointer<AVPacket>? = packet
            av_packet_free(&owned)
            throw .codecUnavailable(failures.joined(separator: "; "))
        }
        context = opened.0
        name = opened.1
        // h264_v4l2m2m takes NV12 or YUV420P; both take YUV420P.
        converter = PixelConverter(width: settings.width, height: settings.height, format: .yuv420p)
    }

    deinit {
        avcodec_free_context(&context)
        var owned: UnsafeMutablePointer<AVPacket>? = packet
        av_packet_free(&owned)
    }

    /// Whether a V4L2 memory-to-memory H.264 encoder (the Pi's) is present.
    static var hardwareEncoderPresent: Bool {
        FileManager.default.fileExists(atPath: "/dev/video11") && avcodec_find_encoder_by_name("h264_v4l2m2m") != nil
    }

    private static func open(_ name: String, _ settings: H264Settings) throws(MediaError) -> UnsafeMutablePointer<AVCodecContext> {
        guard let codec = avcodec_find_encoder_by_name(name) else {
            throw .codecUnavailable("this FFmpeg has no \(name) encoder: install an FFmpeg built with it (Debian's libavcodec59 has libx264)")
        }
        guard let allocated = avcodec_alloc_context3(codec) else { throw .codecFailed("out of memory allocating the \(name) encoder") }
        var context: UnsafeMutablePointer<AVCodecContext>? = allocated
        allocated.pointee.width = Int32(settings.width)
        allocated.pointee.height = Int32(settings.height)
        allocated.pointee.time_base = AVRational(num: 1, den: Int32(settings.frameRate))
        allocated.pointee.framerate = AVRational(num: Int32(settings.frameRate), den: 1)
        allocated.pointee.pix_fmt = AV_PIX_FMT_YUV420P
        allocated.pointee.bit_rate = Int64(settings.bitrate)
        // A one-second VBV: the bitrate holds over any second, as a live link needs.
        allocated.pointee.rc_max_rate = Int64(settings.bitrate)
        allocated.pointee.rc_buffer_size = Int32(clamping: settings.bitrate)
        allocated.pointee.gop_size = Int32(settings.gop)
        allocated.pointee.max_b_frames = 0
        allocated.pointee.thread_count = Int32(settings.threads)
        if name == "libx264" {
            av_opt_set(allocated.pointee.priv_data, "preset", settings.preset, 0)
            av_opt_set(allocated.pointee.priv_data, "tune", "zerolatency", 0)
            av_opt_set(allocated.pointee.priv_data, "forced-idr", "1", 0)
        }
        if let profile = settings.profile { av_opt_set(allocated.pointee.priv_data, "profile", profile, 0) }
        let status = avcodec_open2(allocated, codec, nil)
        if status < 0 {
            avcodec_free_context(&context)
            throw MediaError.ffmpeg(.codecUnavailable, status, "opening the \(name) encoder (\(settings.width)x\(settings.height), \(settings.bitrate) bit/s)",
                          hint: name == "h264_v4l2m2m" ? "no hardware encoder device" : "check the video settings")
        }
        return allocated
    }

    /// The stream's description (SPS and PPS once the first keyframe was encoded).
    public var description: StreamDescription {
        StreamDescription(codec: .h264, width: settings.width, height: settings.height, frameRate: settings.frameRate,
                          configuration: parameterSets)
    }

    /// Encodes one picture (converted to the encoder's size and layout if it differs).
    /// - Returns: the coded pictures ready now (with zerolatency, this one).
    /// - Throws: ``MediaError`` when the encoder fails.
    public func encode(_ frame: VideoFrame) throws(MediaError) -> [EncodedFrame] {
        let input = try converter.convert(frame)
        input.frame.pointee.pts = frameIndex
        input.frame.pointee.pict_type = frame.forceKeyframe ? AV_PICTURE_TYPE_I : AV_PICTURE_TYPE_NONE
        pending[frameIndex] = frame.captureTime
        frameIndex += 1
        try check(avcodec_send_frame(context, input.frame), .codecFailed, "encoding a picture with \(name)")
        return try drain()
    }

    /// The target bitrate now, bits per second (``setBitrate(_:)`` changes it).
    public var bitrate: Int { Int(context?.pointee.bit_rate ?? 0) }

    /// Changes the target bitrate (and the one-second VBV with it) from the next picture on:
    /// libx264 reconfigures itself in place when it sees the rate change (libavcodec's
    /// `reconfig_encoder`); a hardware encoder keeps the rate it was opened with.
    public func setBitrate(_ bitsPerSecond: Int) {
        guard let context, bitsPerSecond > 0 else { return }
        context.pointee.bit_rate = Int64(bitsPerSecond)
        context.pointee.rc_max_rate = Int64(bitsPerSecond)
        context.pointee.rc_buffer_size = Int32(clamping: bitsPerSecond)
    }

    /// Flushes the frames still inside the encoder (at the end of a stream).
    public func flush() throws(MediaError) -> [EncodedFrame] {
        let status = avcodec_send_frame(context, nil)
        if status < 0 && status != xt_averror_eof() { try check(status, .codecFailed, "flushing \(name)") }
        return try drain()
    }

    private func drain() throws(MediaError) -> [EncodedFrame] {
        var output: [EncodedFrame] = []
        let interval = 1_000_000_000 / Int64(settings.frameRate)
        while true {
            let status = avcodec_receive_packet(context, packet)
            if status == xt_averror_eagain() || status == xt_averror_eof() { break }
            try check(status, .codecFailed, "encoding with \(name)")
            defer { av_packet_unref(packet) }
            let data = [UInt8](UnsafeBufferPointer(start: packet.pointee.data, count: Int(packet.pointee.size)))
            let pts = packet.pointee.pts
            let captureTime = pending.removeValue(forKey: pts) ?? .now
            let isKeyframe = packet.pointee.flags & AV_PKT_FLAG_KEY != 0
            if isKeyframe, parameterSets.isEmpty { parameterSets = H264Bitstream.parameterSets(data) }
            output.append(EncodedFrame(codec: .h264, data: data, captureTime: captureTime, duration: interval, isKeyframe: isKeyframe))
        }
        return output
    }
}
