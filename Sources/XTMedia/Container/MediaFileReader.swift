// Reads the packets of a container file back through libavformat, with their timestamps:
// checks of exported recordings (do timestamps rise, do audio and video line up), and the
// recorder's re-indexing of files.
internal import CFFmpeg

/// A container file opened for reading.
public final class MediaFileReader {
    /// One track of the file.
    public struct Track: Sendable, Equatable {
        public var kind: MediaKind?
        public var codec: String
        public var width: Int
        public var height: Int
        public var sampleRate: Int
        public var channels: Int
        /// Codec configuration (avcC or Annex B SPS/PPS; OpusHead).
        public var configuration: [UInt8]
    }

    /// One packet and where it sits in time.
    public struct Packet: Sendable {
        public var track: Int
        public var data: [UInt8]
        /// Presentation time in seconds (nil when the file has none).
        public var time: Double?
        /// Presentation time in nanoseconds (nil when the file has none).
        public var nanoseconds: Int64?
        /// Decode time in nanoseconds (the presentation time when the file has no decode time).
        public var decodeNanoseconds: Int64?
        /// Presentation less decode time, in nanoseconds (B-frames; 0 otherwise).
        public var compositionOffset: Int64 {
            let (difference, overflow) = (nanoseconds ?? 0).subtractingReportingOverflow(decodeNanoseconds ?? nanoseconds ?? 0)
            return overflow ? 0 : min(max(difference, 0), EncodedFrame.maximumCompositionOffset)
        }
        /// How long it plays, in nanoseconds (0 when the file does not say).
        public var duration: Int64
        public var isKeyframe: Bool
    }

    private var context: UnsafeMutablePointer<AVFormatContext>?
    private let packet: UnsafeMutablePointer<AVPacket>
    public let tracks: [Track]
    public let path: String
    /// The file's tags (title, creation time, and those a writer added).
    public let metadata: [String: String]

    /// - Throws: ``MediaError`` when the file cannot be opened or read.
    public init(path: String) throws(MediaError) {
        MediaLibrary.initialize()
        self.path = path
        var opened: UnsafeMutablePointer<AVFormatContext>?
        let status = avformat_open_input(&opened, path, nil, nil)
        guard status >= 0, let opened else { throw .ffmpeg(.io, status, "opening \(path)") }
        context = opened
        let info = avformat_find_stream_info(opened, nil)
        guard info >= 0, let packet = av_packet_alloc() else {
            avformat_close_input(&context)
            throw .ffmpeg(.malformed, info, "reading the tracks of \(path)")
        }
        self.packet = packet
        var tracks: [Track] = []
        for index in 0..<Int(opened.pointee.nb_streams) {
            let parameters = opened.pointee.streams[index]!.pointee.codecpar!.pointee
            let kind: MediaKind? = parameters.codec_type == AVMEDIA_TYPE_VIDEO ? .video : parameters.codec_type == AVMEDIA_TYPE_AUDIO ? .audio : nil
            let configuration = parameters.extradata.map { [UInt8](UnsafeBufferPointer(start: $0, count: Int(parameters.extradata_size))) } ?? []
            tracks.append(Track(kind: kind, codec: String(cString: avcodec_get_name(parameters.codec_id)), width: Int(parameters.width),
                                height: Int(parameters.height), sampleRate: Int(parameters.sample_rate),
                                channels: Int(parameters.ch_layout.nb_channels), configuration: configuration))
        }
        self.tracks = tracks
        var tags: [String: String] = [:]
        var entry: UnsafeMutablePointer<AVDictionaryEntry>?
        while let next = av_dict_get(opened.pointee.metadata, "", entry, AV_DICT_IGNORE_SUFFIX) {
            tags[String(cString: next.pointee.key)] = String(cString: next.pointee.value)
            entry = next
        }
        metadata = tags
    }

    deinit {
        var owned: UnsafeMutablePointer<AVPacket>? = packet
        av_packet_free(&owned)
        avformat_close_input(&context)
    }

    /// The next packet, or nil at the end of the file.
    /// - Throws: ``MediaError`` when the file is corrupt.
    public func next() throws(MediaError) -> Packet? {
        let status = av_read_frame(context, packet)
        if status == xt_averror_eof() { return nil }
        if status < 0 { throw .ffmpeg(.malformed, status, "reading \(path)") }
        defer { av_packet_unref(packet) }
        let stream = context!.pointee.streams[Int(packet.pointee.stream_index)]!
        let timestamp = packet.pointee.pts != xt_av_nopts_value() ? packet.pointee.pts : packet.pointee.dts
        let base = stream.pointee.time_base
        let nanoseconds = timestamp == xt_av_nopts_value() ? nil : av_rescale_q(timestamp, base, AVRational(num: 1, den: 1_000_000_000))
        let decode = packet.pointee.dts == xt_av_nopts_value() ? nanoseconds : av_rescale_q(packet.pointee.dts, base, AVRational(num: 1, den: 1_000_000_000))
        return Packet(track: Int(packet.pointee.stream_index),
                      data: [UInt8](UnsafeBufferPointer(start: packet.pointee.data, count: Int(packet.pointee.size))),
                      time: timestamp == xt_av_nopts_value() ? nil : Double(timestamp) * av_q2d(base), nanoseconds: nanoseconds,
                      decodeNanoseconds: decode,
                      duration: av_rescale_q(packet.pointee.duration, base, AVRational(num: 1, den: 1_000_000_000)),
                      isKeyframe: packet.pointee.flags & AV_PKT_FLAG_KEY != 0)
    }
}
