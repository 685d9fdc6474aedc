// Recorded clips and IP cameras through libavformat: a file path or a URL (rtsp://, http://).
// H.264 video passes through untouched (converted to Annex B), B-frames and all: each frame
// keeps its composition offset (pts − dts). Other video is decoded and re-encoded by the agent;
// audio is decoded and resampled to the configured rate and channels. Timestamps go through a
// shared `FileClock`: files play at their own pace (in decode order, as a camera sends them)
// and start again at the end; network streams arrive at theirs; a clock that steps is re-based.
internal import CFFmpeg
import Foundation

/// An open input: its demuxer and, for one stream, the decoder or bitstream filter.
final class MediaInput {
    let location: String
    private var context: UnsafeMutablePointer<AVFormatContext>?
    let packet: UnsafeMutablePointer<AVPacket>
    let streamIndex: Int32
    let isLive: Bool
    let kind: MediaKind
    let clock: FileClock
    /// Source time (ns) where the next packet without a timestamp is placed.
    private var nextUntimed: Int64 = 0
    /// Lines for the log (a clock that stepped), taken by the pipeline.
    var notices: [String] = []

    init(location: String, kind: AVMediaType, clock: FileClock) throws(MediaError) {
        MediaLibrary.initialize()
        self.location = location
        self.kind = kind == AVMEDIA_TYPE_VIDEO ? .video : .audio
        self.clock = clock
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
        // Opened again after its end (or a failure): it continues the timeline where it stopped.
        clock.restart(self.kind)
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

    /// A timestamp of this stream in nanoseconds (nil: none).
    func nanoseconds(_ timestamp: Int64) -> Int64? {
        guard timestamp != xt_av_nopts_value() else { return nil }
        return av_rescale_q(timestamp, stream.pointee.time_base, AVRational(num: 1, den: 1_000_000_000))
    }

    /// Places a packet or picture whose time on the source's clock is `timestamp` (this
    /// stream's time base; none: right after the previous one) on the shared clock; for files,
    /// first waits until it is due, as if it were captured now.
    func schedule(timestamp: Int64, duration: Int64) -> CaptureTime {
        let source = nanoseconds(timestamp) ?? nextUntimed
        nextUntimed = CaptureTime.saturating(source, plus: duration)
        let placement = clock.place(kind, source: source, duration: duration, paced: !isLive)
        if let jump = placement.jump {
            let seconds = String(format: "%.3f", Double(jump) / 1e9)
            notices.append("the timestamps of \(location) jumped \(jump > 0 ? "forward" : "back") by \(seconds.replacingOccurrences(of: "-", with: "")) s "
                           + "(a cut, a camera reboot or its clock set): playing on without a pause")
        }
        if placement.wait > 0 { Thread.sleep(forTimeInterval: Double(placement.wait) / 1e9) }
        return placement.captureTime
    }

    func takeNotices() -> [String] {
        defer { notices.removeAll() }
        return notices
    }
}

/// Video from a file or network camera.
public final class FileVideoSource: VideoSource {
    private let input: MediaInput
    private var filter: OpaquePointer?
    private var decoder: UnsafeMutablePointer<AVCodecContext>?
    private var parameterSets: [UInt8] = []
    private var pending: [VideoSourceOutput] = []
    public private(set) var width: Int
    public private(set) var height: Int
    public let frameRate: Int
    /// For H.264 passed through: what its current parameter sets say (size, profile, chroma,
    /// bit depth); nil until the first keyframe, or for decoded inputs.
    public private(set) var shape: H264StreamShape?

    /// Opens `location`.
    /// - Parameter clock: shared with the same location's ``FileAudioSource``, so that audio
    ///   and video keep in step (and continue across reopening).
    /// - Throws: ``MediaError`` when it cannot be opened or has no video this FFmpeg decodes.
    public init(location: String, clock: FileClock = FileClock()) throws(MediaError) {
        input = try MediaInput(location: location, kind: AVMEDIA_TYPE_VIDEO, clock: clock)
        let parameters = input.parameters
        width = Int(parameters.pointee.width)
        height = Int(parameters.pointee.height)
        guard (1...16384).contains(width), (1...16384).contains(height) else {
            throw .unsupportedFormat("\(location) says its pictures are \(width)x\(height): no camera sends that; check the stream")
        }
        let average = input.stream.pointee.avg_frame_rate, real = input.stream.pointee.r_frame_rate
        let rate = average.den > 0 && average.num > 0 ? average : real
        let fps = rate.den > 0 && rate.num > 0 ? Double(rate.num) / Double(rate.den) : 0
        frameRate = fps >= 1 && fps <= 240 ? Int(fps.rounded()) : 30
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
            decoder!.pointee.pkt_timebase = input.stream.pointee.time_base
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

    public func takeNotices() -> [String] { input.takeNotices() }

    /// A keyframe's SPS and PPS: when they differ from the stream's (the camera's settings
    /// changed, or it rebooted into another mode), the description changes with them here, and
    /// the agent starts a new stream at this keyframe.
    private func noteParameterSets(of keyframe: [UInt8]) {
        let sets = H264Bitstream.parameterSets(keyframe)
        guard !sets.isEmpty, sets != parameterSets else { return }
        let before = shape
        parameterSets = sets
        shape = H264StreamShape.read(keyframe: keyframe)
        if let shape {
            width = shape.width
            height = shape.height
        }
        if let before {
            input.notices.append("the stream from \(input.location) changed from \(before) to \(shape.map(String.init(describing:)) ?? "new parameter sets"): a new stream starts at this keyframe")
        }
    }

    private var frameDuration: Int64 { 1_000_000_000 / Int64(frameRate) }

    public func next() throws(MediaError) -> VideoSourceOutput {
        while pending.isEmpty {
            try input.read()
            if let filter {
                // Passed through in decode order, paced by decode time; B-frames keep their offset.
                let bsf = UnsafeMutablePointer<AVBSFContext>(filter)
                guard av_bsf_send_packet(bsf, input.packet) >= 0 else {
                    av_packet_unref(input.packet)
                    continue
                }
                while av_bsf_receive_packet(bsf, input.packet) >= 0 {
                    let coded = input.packet.pointee
                    let data = [UInt8](UnsafeBufferPointer(start: coded.data, count: Int(coded.size)))
                    let isKeyframe = coded.flags & AV_PKT_FLAG_KEY != 0 || H264Bitstream.isKeyframe(data)
                    if isKeyframe { noteParameterSets(of: data) }
                    let decodeTime = coded.dts != xt_av_nopts_value() ? coded.dts : coded.pts
                    var offset: Int64 = 0
                    if let pts = input.nanoseconds(coded.pts), let dts = input.nanoseconds(coded.dts) {
                        offset = min(max(pts &- dts, 0), EncodedFrame.maximumCompositionOffset)
                    }
                    let duration = input.nanoseconds(coded.duration).flatMap { $0 > 0 && $0 < 1_000_000_000 ? $0 : nil } ?? frameDuration
                    av_packet_unref(input.packet)
                    let captureTime = input.schedule(timestamp: decodeTime, duration: duration)
                    pending.append(.encoded(EncodedFrame(codec: .h264, data: data, captureTime: captureTime, duration: duration,
                                                         isKeyframe: isKeyframe, compositionOffset: offset)))
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
                    // Pictures leave the decoder in display order, sometimes several at once:
                    // each waits for its own moment, so the encoder gets the source's cadence.
                    let captureTime = input.schedule(timestamp: frame.pointee.best_effort_timestamp, duration: frameDuration)
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
    /// - Parameter clock: shared with the same location's ``FileVideoSource``.
    public init(location: String, sampleRate: Int = 48_000, channels: Int = 1, clock: FileClock = FileClock()) throws(MediaError) {
        input = try MediaInput(location: location, kind: AVMEDIA_TYPE_AUDIO, clock: clock)
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
        // Frame times in the stream's time base, with the priming samples the decoder drops taken off.
        decoder!.pointee.pkt_timebase = input.stream.pointee.time_base
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

    public func takeNotices() -> [String] { input.takeNotices() }

    public func next() throws(MediaError) -> AudioFrame {
        let wanted = blockFrames * channels
        while buffered.count < wanted {
            try input.read()
            let sent = avcodec_send_packet(decoder, input.packet)
            av_packet_unref(input.packet)
            if sent < 0 && sent != xt_averror_eagain() { continue }
            while avcodec_receive_frame(decoder, frame) >= 0 {
                let rate = Int64(frame.pointee.sample_rate > 0 ? frame.pointee.sample_rate : decoder!.pointee.sample_rate)
                let duration = rate > 0 ? Int64(frame.pointee.nb_samples) * 1_000_000_000 / rate : 20_000_000
                // Paced and stamped by the decoded sound's own time, which leaves out the
                // priming samples a decoder drops (AAC's first 1024), less what the resampler
                // still holds back.
                let frameTime = input.schedule(timestamp: frame.pointee.best_effort_timestamp, duration: duration)
                let held = swr_get_delay(resampler, Int64(sampleRate))
                let start = frameTime.adding(nanoseconds: -held * 1_000_000_000 / Int64(sampleRate))
                let capacity = Int(swr_get_out_samples(resampler, frame.pointee.nb_samples))
                var output = [Int16](repeating: 0, count: max(capacity, 0) * channels)
                let converted = output.withUnsafeMutableBufferPointer { samples -> Int32 in
                    var target: UnsafeMutablePointer<UInt8>? = UnsafeMutableRawPointer(samples.baseAddress!).assumingMemoryBound(to: UInt8.self)
                    let source = UnsafeMutableRawPointer(frame.pointee.extended_data!).assumingMemoryBound(to: UnsafePointer<UInt8>?.self)
                    return swr_convert(resampler, &target, Int32(capacity), source, frame.pointee.nb_samples)
                }
                av_frame_unref(frame)
                if converted > 0 { append(output[0..<(Int(converted) * channels)], at: start) }
            }
        }
        let block = Array(buffered[0..<wanted])
        buffered.removeFirst(wanted)
        let time = bufferedTime ?? .now
        bufferedTime = time.adding(nanoseconds: Int64(blockFrames) * 1_000_000_000 / Int64(sampleRate))
        return AudioFrame(samples: block, sampleRate: sampleRate, channels: channels, captureTime: time)
    }

    /// Most the sound's own times may stray from its sample count before it is re-aligned
    /// (audio stays within this of the picture).
    static let alignmentTolerance: Int64 = 30_000_000

    /// Adds decoded samples that start at `start`. They follow on from what is buffered, sample
    /// for sample; when the source's times say otherwise by more than the tolerance, a hole
    /// starts a new run and an overlap is cut off, so sound stays where the picture is.
    private func append(_ samples: ArraySlice<Int16>, at start: CaptureTime) {
        guard let bufferedTime else {
            buffered += samples
            self.bufferedTime = start
            return
        }
        let end = bufferedTime.adding(nanoseconds: Int64(buffered.count / channels) * 1_000_000_000 / Int64(sampleRate))
        let drift = start.nanoseconds(since: end)
        if drift > Self.alignmentTolerance {
            buffered.removeAll(keepingCapacity: true)
            buffered += samples
            self.bufferedTime = start
        } else if drift < -Self.alignmentTolerance {
            let overlap = Int(min(-drift, 10_000_000_000) * Int64(sampleRate) / 1_000_000_000) * channels
            if overlap < samples.count { buffered += samples.dropFirst(overlap) }
        } else {
            buffered += samples
        }
    }
}
