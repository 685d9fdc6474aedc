// Decoding through libavcodec: MJPEG from webcams (before re-encoding), and H.264 where the
// recorder or a test needs pictures back (motion detection, checks that streams decode).
internal import CFFmpeg

/// Codecs pictures can be decoded from.
public enum VideoDecoderCodec: String, Sendable {
    case h264
    case mjpeg

    var id: AVCodecID { self == .h264 ? AV_CODEC_ID_H264 : AV_CODEC_ID_MJPEG }
}

/// An open video decoder.
public final class VideoDecoder {
    private var context: UnsafeMutablePointer<AVCodecContext>?
    private let packet: UnsafeMutablePointer<AVPacket>
    public let codec: VideoDecoderCodec
    private var pending: [Int64: CaptureTime] = [:]
    private var packetIndex: Int64 = 0
    /// Pictures that failed to decode (corrupt input), counted and skipped.
    public private(set) var errors = 0

    /// - Parameters:
    ///   - configuration: the stream's codec configuration when its packets need it
    ///     (an MP4's avcC with length-prefixed NAL units); Annex B streams carry it in-band.
    ///   - fast: skip the loop filter and take the decoder's shortcuts (pictures for analysis,
    ///     not for viewing).
    /// - Throws: ``MediaError`` when this FFmpeg lacks the decoder.
    public init(codec: VideoDecoderCodec, threads: Int = 1, configuration: [UInt8] = [], fast: Bool = false) throws(MediaError) {
        MediaLibrary.initialize()
        self.codec = codec
        guard let decoder = avcodec_find_decoder(codec.id) else { throw .codecUnavailable("this FFmpeg has no \(codec.rawValue) decoder") }
        guard let packet = av_packet_alloc() else { throw .codecFailed("out of memory allocating a packet") }
        self.packet = packet
        context = avcodec_alloc_context3(decoder)
        context?.pointee.thread_count = Int32(threads)
        if fast {
            context?.pointee.skip_loop_filter = AVDISCARD_ALL
            context?.pointee.flags2 |= AV_CODEC_FLAG2_FAST
        }
        if !configuration.isEmpty, let extradata = av_mallocz(configuration.count + Int(AV_INPUT_BUFFER_PADDING_SIZE)) {
            extradata.copyMemory(from: configuration, byteCount: configuration.count)
            context?.pointee.extradata = extradata.assumingMemoryBound(to: UInt8.self)
            context?.pointee.extradata_size = Int32(configuration.count)
        }
        let status = avcodec_open2(context, decoder, nil)
        if status < 0 {
            avcodec_free_context(&context)
            var owned: UnsafeMutablePointer<AVPacket>? = packet
            av_packet_free(&owned)
            throw .ffmpeg(.codecUnavailable, status, "opening the \(codec.rawValue) decoder")
        }
    }

    deinit {
        avcodec_free_context(&context)
        var owned: UnsafeMutablePointer<AVPacket>? = packet
        av_packet_free(&owned)
    }

    /// Decodes one coded picture.
    /// - Returns: the pictures ready now, each stamped with its coded picture's capture time.
    ///   A picture that does not decode is counted in ``errors`` and skipped.
    public func decode(_ data: [UInt8], captureTime: CaptureTime) -> [VideoFrame] {
        guard !data.isEmpty else { return [] }
        let status: Int32 = data.withUnsafeBufferPointer { bytes in
            // The decoder reads up to 64 bytes past the end: give it a padded copy.
            guard av_new_packet(packet, Int32(bytes.count)) >= 0 else { return -1 }
            packet.pointee.data.update(from: bytes.baseAddress!, count: bytes.count)
            packet.pointee.pts = packetIndex
            return avcodec_send_packet(context, packet)
        }
        av_packet_unref(packet)
        pending[packetIndex] = captureTime
        packetIndex += 1
        if status < 0 && status != xt_averror_eagain() {
            errors += 1
            return []
        }
        return receive()
    }

    /// The pictures still inside the decoder.
    public func flush() -> [VideoFrame] {
        avcodec_send_packet(context, nil)
        return receive()
    }

    private func receive() -> [VideoFrame] {
        var frames: [VideoFrame] = []
        while true {
            guard let frame = av_frame_alloc() else { break }
            let status = avcodec_receive_frame(context, frame)
            if status < 0 {
                var owned: UnsafeMutablePointer<AVFrame>? = frame
                av_frame_free(&owned)
                if status != xt_averror_eagain() && status != xt_averror_eof() { errors += 1 }
                break
            }
            let time = pending.removeValue(forKey: frame.pointee.best_effort_timestamp) ?? .now
            frames.append(VideoFrame(owning: frame, captureTime: time))
        }
        if pending.count > 64 { pending = pending.filter { $0.key > packetIndex - 64 } }
        return frames
    }
}
