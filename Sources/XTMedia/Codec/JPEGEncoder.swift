// Still pictures as JPEG through libavcodec's MJPEG encoder: the recorder's event snapshots.
// Pictures are converted to full-range 4:2:0 (what JPEG expects) and scaled down to at most
// `maximumWidth`.
internal import CFFmpeg

/// A JPEG encoder, owning its codec context (opened for one picture size at a time).
public final class JPEGEncoder {
    private var context: UnsafeMutablePointer<AVCodecContext>?
    private let packet: UnsafeMutablePointer<AVPacket>
    private var converter: PixelConverter?
    /// Wider pictures are scaled down to this width.
    public let maximumWidth: Int
    /// 2 (best) … 31 (smallest).
    public let quality: Int

    /// - Throws: ``MediaError`` when this FFmpeg has no MJPEG encoder.
    public init(maximumWidth: Int = 1280, quality: Int = 4) throws(MediaError) {
        MediaLibrary.initialize()
        guard avcodec_find_encoder(AV_CODEC_ID_MJPEG) != nil else { throw .codecUnavailable("this FFmpeg has no MJPEG encoder") }
        guard let packet = av_packet_alloc() else { throw .codecFailed("out of memory allocating a packet") }
        self.packet = packet
        self.maximumWidth = maximumWidth
        self.quality = min(max(quality, 2), 31)
    }

    deinit {
        avcodec_free_context(&context)
        var owned: UnsafeMutablePointer<AVPacket>? = packet
        av_packet_free(&owned)
    }

    /// The picture as JPEG bytes.
    /// - Throws: ``MediaError`` when the picture cannot be converted or encoded.
    public func encode(_ frame: VideoFrame) throws(MediaError) -> [UInt8] {
        var width = frame.width, height = frame.height
        if width > maximumWidth {
            height = (height * maximumWidth / width) & ~1
            width = maximumWidth
        }
        if converter == nil || converter!.width != width || converter!.height != height {
            converter = PixelConverter(width: width, height: height, format: .yuvj420p)
            avcodec_free_context(&context)
        }
        let picture = try converter!.convert(frame)
        if context == nil { try open(width: width, height: height) }
        picture.frame.pointee.pts = 0
        picture.frame.pointee.quality = Int32(quality) * FF_QP2LAMBDA
        try check(avcodec_send_frame(context, picture.frame), .codecFailed, "encoding a JPEG")
        let status = avcodec_receive_packet(context, packet)
        try check(status, .codecFailed, "encoding a JPEG")
        defer { av_packet_unref(packet) }
        let bytes = [UInt8](UnsafeBufferPointer(start: packet.pointee.data, count: Int(packet.pointee.size)))
        // One picture per context: MJPEG keeps no state worth keeping, and flushing would end it.
        avcodec_free_context(&context)
        return bytes
    }

    private func open(width: Int, height: Int) throws(MediaError) {
        guard let codec = avcodec_find_encoder(AV_CODEC_ID_MJPEG), let context = avcodec_alloc_context3(codec) else {
            throw .codecUnavailable("this FFmpeg has no MJPEG encoder")
        }
        context.pointee.width = Int32(width)
        context.pointee.height = Int32(height)
        context.pointee.pix_fmt = AV_PIX_FMT_YUVJ420P
        context.pointee.time_base = AVRational(num: 1, den: 25)
        context.pointee.flags |= AV_CODEC_FLAG_QSCALE
        context.pointee.global_quality = Int32(quality) * FF_QP2LAMBDA
        let status = avcodec_open2(context, codec, nil)
        self.context = context
        if status < 0 {
            avcodec_free_context(&self.context)
            throw .ffmpeg(.codecUnavailable, status, "opening the MJPEG encoder")
        }
    }
}
