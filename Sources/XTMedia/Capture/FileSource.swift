// Recorded clips and IP cameras through libavformat: a file path or a URL (rtsp://, http://).
// H.264 video passes through untouched (converted to Annex B); other video is decoded and
// re-encoded by the agent; audio is decoded and resampled to the configured rate and channels.
// Files play at their own pace (as a camera would deliver them) and start again at the end;
// network streams arrive at theirs. Frames are stamped with the wall clock as they are read.
internal import CFFmpeg
import Foundation

/// An open input: its demuxer and, for one stream, the decoder or bitstream filter.
final class MediaInput {
    let location: String
    private var context: UnsafeMutablePointer<AVFormatContext>?
    let packet: UnsafeMutablePointer<AVPacket>
    let streamIndex: Int32
    let isLive: Bool
    private var firstTimestamp: Int64?
    private var startMonotonic: Int64 = 0

    init(location: String, kind: AVMediaType) throws(MediaError) {
        MediaLibrary.initialize()
        self.location = location
        var options: OpaquePointer?
        if location.hasPrefix("rtsp://") {
            av_dict_set(&options, "rtsp_transport", "tcp", 0)
            av_dict_set(&options, "timeout", "5000000", 0)  // µs without data before the camera counts as lost
        } else if location.contains("://") {
            av_dict_set(&options, "rw_timeout", "5000000", 0)
        }
        var opened: UnsafeMutablePointer<AVFormatContext>?
        let status = avformat_open_input(&opened, location, nil, &options)
        av_dict_free(&options)
        guard status >= 0, let opened else {
            throw .ffmpeg(.deviceMissing, status, "opening \(location)", hint: "check the path or URL (and the camera's address and credentials)")
        }
        context = opened
        let info = avformat_find_stream_info(opened, nil)
        if info < 0 {
            avformat_close_input(&context)
            throw .ffmpeg(.unsupportedFormat, info, "reading the streams of \(location)")
        }
        let index = av_find_best_stream(opened, kind, -1, -1, nil, 0)
        guard index >= 0 else {
            avformat_close_input(&context)
            throw .unsupportedFormat("\(location) has no \(kind == AVMEDIA_TYPE_VIDEO ? "video" : "audio") stream")
        }
        streamIndex = index
        isLive = location.contains("://") && !location.hasPrefix("file://")
        guard let packet = av_packet_alloc() else {
            avformat_close_input(&context)
            throw .codecFailed("out of memory")
        }
        self.packet = packet
    }

    deinit {
        var owned: UnsafeMutablePointer<AVPacket>? = packet
        av_packet_free(&owned)
        avformat_close_input(&context)
    }

    var stream: UnsafeMutablePointer<AVStream> { context!.pointee.streams[Int(streamIndex)]! }
    var parameters: UnsafeMutablePointer<AVCodecParameters> { stream.pointee.codecpar }

    /// Reads the next packet of the chosen stream into `packet` (the caller unrefs it).
    /// - Throws: `.endOfStream` at the end of a file, `.deviceLost` when a network input fails.
    func read() throws(MediaError) {
        while true {
            let status = av_read_frame(context, packet)
            if status == xt_averror_eof() { throw .endOfStream }
            if status < 0 { throw .ffmpeg(.deviceLost, status, "reading \(location)") }
            if packet.pointee.stream_index == streamIndex { return }
            av_packet_unref(packet)
        }
    }

    /// For files: waits until the packet's moment, as if it were captured now.
    func pace(timestamp: Int64) {
        guard !isLive, timestamp != xt_av_nopts_value() else { return }
        let base = stream.pointee.time_base
        let nanoseconds = av_rescale_q(timestamp, base, AVRational(num: 1, den: 1_000_000_000))
        if firstTimestamp == nil {
            firstTimestamp = nanoseconds
            startMonotonic = CaptureTime.monotonicNow
        }
        let wait = startMonotonic + (nanoseconds - firstTimestamp!) - CaptureTime.monotonicNow
        if wait > 0 { Thread.sleep(forTimeInterval: min(Double(wait) / 1e9, 1)) }
    }
}

/// Video from a file or network camera.
public final class FileVideoSource: VideoSource {
    private let input: MediaInput
    private var filter: OpaquePointer?
    private var decoder: UnsafeMutablePointer<AVCodecContext>?
    private var parameterSets: [UInt8] = []
    private var pending: [VideoSourceOutput] = []
    public let width: Int
    public let height: Int
    public let frameRate: Int

    /// Opens `location`.
    /// - Throws: ``MediaError`` when it cannot be opened or has no video this FFmpeg decodes.
    public init(location: String) throws(MediaError) {
        input = try MediaInput(location: location, kind: AVMEDIA_TYPE_VIDEO)
        let parameters = input.parameters
        width = Int(parameters.pointee.width)
        height = Int(parameters.pointee.height)
        let rate = input.stream.pointee.avg_frame_rate
        frameRate = rate.den > 0 && rate.num > 0 ? max(1, Int((Double(rate.num) / Double(rate.den)).rounded())) : 30
        if parameters.pointee.codec_id == AV_CODEC_ID_H264 {
            // H.264 passes through: MP4's length-prefixed NAL units become Annex B.
            guard let bitstream = av_bsf_get_by_name("h264_mp4toannexb") else { throw .codecUnavailable("this FFmpeg lacks h264_mp4toannexb") }
            var created: UnsafeMutablePointer<AVBSFContext>?
            try check(av_bsf_alloc(bitstream, &created), .codecFailed, "setting up the H.264 filter")
            avcodec_parameters_copy(created!.pointee.par_in, parameters)
            created!.pointee.time_base_in = input.stream.pointee.time_base
            try check(av_bsf_init(created), .codecFailed, "starting the H.264 filter")
            filter = OpaquePointer(created)
        } else {
            guard let codec = avcodec_find_decoder(parameters.pointee.codec_id) else {
                throw .unsupportedFormat("\(location): no decoder for its video codec (\(String(cString: avcodec_get_name(parameters.pointee.codec_id))))")
            }
            decoder = avcodec_alloc_context3(codec)
            avcodec_parameters_to_context(decoder, parameters)
            try check(avcodec_open2(decoder, codec, nil), .codecUnavailable, "opening the decoder for \(location)")
        }
    }

    deinit {
        if let filter {
            var owned: UnsafeMutablePointer<AVBSFContext>? = UnsafeMutablePointer(filter)
            av_bsf_free(&owned)
        }
        avcodec_free_context(&decoder)
    }

    public var summary: String { "\(input.location) (\(filter != nil ? "H.264 passthrough" : "decoded") \(width)x\(height) at \(frameRate) fps)" }

    public var encodedDescription: StreamDescription? {
        filter == nil ? nil : StreamDescription(codec: .h264, width: width, height: height, frameRate: frameRate, configuration: parameterSets)
    }

    public func next() throws(MediaError) -> VideoSourceOutput {
        while pending.isEmpty {
            try input.read()
            input.pace(timestamp: input.packet.pointee.pts)
            let captureTime = CaptureTime.now
            if let filter {
                let bsf = UnsafeMutablePointer<AVBSFContext>(filter)
                guard av_bsf_send_packet(bsf, input.packet) >= 0 else {
                    av_packet_unref(input.packet)
                    continue
                }
                while av_bsf_receive_packet(bsf, input.packet) >= 0 {
                    let data = [UInt8](UnsafeBufferPointer(start: input.packet.pointee.data, count: Int(input.packet.pointee.size)))
                    let isKeyframe = input.packet.pointee.flags & AV_PKT_FLAG_KEY != 0 || H264Bitstream.isKeyframe(data)
                    if isKeyframe, parameterSets.isEmpty { parameterSets = H264Bitstream.parameterSets(data) }
                    pending.append(.encoded(EncodedFrame(codec: .h264, data: data, captureTime: captureTime,
                                                         duration: 1_000_000_000 / Int64(frameRate), isKeyframe: isKeyframe)))
                    av_packet_unref(input.packet)
                }
            } else {
                let sent = avcodec_send_packet(decoder, input.packet)
                av_packet_unref(input.packet)
                if sent < 0 && sent != xt_averror_eagain() { continue }  // a corrupt packet: skip it
                while true {
                    guard let frame = av_frame_alloc() else { break }
                    if avcodec_receive_frame(decoder, frame) < 0 {
                        var owned: UnsafeMutablePointer<AVFrame>? = frame
                        av_frame_free(&owned)
                        break
                    }
                    pending.append(.raw(VideoFrame(owning: frame, captureTime: captureTime)))
                }
            }
        }
        return pending.removeFirst()
    }
}

/// Audio from a file or network source, resampled to 16-bit at the configured rate.
public final class FileAudioSource: AudioSource {
    private let input: MediaInput
    private var decoder: UnsafeMutablePointer<AVCodecContext>?
    private var resampler: OpaquePointer?
    private let frame: UnsafeMutablePointer<AVFrame>
    public let sampleRate: Int
    public let channels: Int
    private var buffered: [Int16] = []
    private var bufferedTime: CaptureTime?
    private let blockFrames: Int

    /// Opens `location`'s audio, to be delivered at `sampleRate` × `channels`.
    /// - Throws: ``MediaError`` when it cannot be opened or has no decodable audio.
    public init(location: String, sampleRate: Int = 48_000, channels: Int = 1) throws(MediaError) {
        input = try MediaInput(location: location, kind: AVMEDIA_TYPE_AUDIO)
        self.sampleRate = sampleRate
        self.channels = channels
        blockFrames = sampleRate / 50
        guard let codec = avcodec_find_decoder(input.parameters.pointee.codec_id) else {
            throw .unsupportedFormat("\(location): no decoder for its audio codec")
        }
        guard let frame = av_frame_alloc() else { throw .codecFailed("out of memory") }
        self.frame = frame
        decoder = avcodec_alloc_context3(codec)
        avcodec_parameters_to_context(decoder, input.parameters)
        try check(avcodec_open2(decoder, codec, nil), .codecUnavailable, "opening the audio decoder for \(location)")
        var layout = AVChannelLayout()
        av_channel_layout_default(&layout, Int32(channels))
        var context: OpaquePointer?
        let status = swr_alloc_set_opts2(&context, &layout, AV_SAMPLE_FMT_S16, Int32(sampleRate),
                                         &decoder!.pointee.ch_layout, decoder!.pointee.sample_fmt, decoder!.pointee.sample_rate, 0, nil)
        guard status >= 0, swr_init(context) >= 0 else { throw .ffmpeg(.codecFailed, status, "setting up resampling for \(location)") }
        resampler = context
    }

    deinit {
        swr_free(&resampler)
        avcodec_free_context(&decoder)
        var owned: UnsafeMutablePointer<AVFrame>? = frame
        av_frame_free(&owned)
    }

    public var summary: String { "\(input.location) (audio → \(sampleRate) Hz × \(channels))" }

    public func next() throws(MediaError) -> AudioFrame {
        let wanted = blockFrames * channels
        while buffered.count < wanted {
            try input.read()
            input.pace(timestamp: input.packet.pointee.pts)
            if buffered.isEmpty { bufferedTime = .now }
            let sent = avcodec_send_packet(decoder, input.packet)
            av_packet_unref(input.packet)
            if sent < 0 && sent != xt_averror_eagain() { continue }
            while avcodec_receive_frame(decoder, frame) >= 0 {
                let capacity = Int(swr_get_out_samples(resampler, frame.pointee.nb_samples))
                var output = [Int16](repeating: 0, count: max(capacity, 0) * channels)
                let converted = output.withUnsafeMutableBufferPointer { samples -> Int32 in
                    var target: UnsafeMutablePointer<UInt8>? = UnsafeMutableRawPointer(samples.baseAddress!).assumingMemoryBound(to: UInt8.self)
                    let source = UnsafeMutableRawPointer(frame.pointee.extended_data!).assumingMemoryBound(to: UnsafePointer<UInt8>?.self)
                    return swr_convert(resampler, &target, Int32(capacity), source, frame.pointee.nb_samples)
                }
                av_frame_unref(frame)
                if converted > 0 { buffered += output[0..<(Int(converted) * channels)] }
            }
        }
        let block = Array(buffered[0..<wanted])
        buffered.removeFirst(wanted)
        let time = bufferedTime ?? .now
        bufferedTime = time.adding(nanoseconds: Int64(blockFrames) * 1_000_000_000 / Int64(sampleRate))
        return AudioFrame(samples: block, sampleRate: sampleRate, channels: channels, captureTime: time)
    }
}
