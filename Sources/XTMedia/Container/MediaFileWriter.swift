// Writes coded H.264 and Opus frames into a container file through libavformat (MP4, fMP4,
// Matroska, ...). Decode timestamps are the frames' capture times (presentation adds their
// composition offset), relative to the first frame the
// file was given, so audio and video stay aligned as they were captured. In fragmented mode
// (the recorder's segments) the caller decides when a fragment ends: `flushFragment()` puts
// everything written so far on disk as one moof+mdat pair, so a crash loses only what came
// after the last flush. In memory mode (the web UI's live view) nothing touches the disk: each
// fragment is taken as bytes, ready to send to a browser's Media Source Extensions.
internal import CFFmpeg
import Foundation

/// A container file being written.
public final class MediaFileWriter {
    private var context: UnsafeMutablePointer<AVFormatContext>?
    private let packet: UnsafeMutablePointer<AVPacket>
    public let path: String
    private var origin: CaptureTime?
    private var lastTimestamp: [Int64]
    private var timeBases: [AVRational] = []
    private var headerWritten = false
    private var finished = false
    /// Fragmented MP4: frames go straight to the muxer (no interleaving queue) and stay in
    /// memory until ``flushFragment()``.
    public let isFragmented: Bool
    /// Frames written since the last fragment was flushed.
    public private(set) var unflushed = 0
    private var headerFlushed = false
    /// Frames written per stream.
    public private(set) var written: [Int]
    /// Writes go to memory (``takeOutput()``), not to `path`.
    public let isInMemory: Bool

    /// Creates `path` with one track per description.
    /// - Parameters:
    ///   - format: libavformat's muxer name ("mp4", "matroska"); nil guesses from the extension.
    ///   - options: muxer options (for fragmented MP4: `movflags` = `frag_keyframe+empty_moov`).
    ///   - origin: the capture time at timestamp zero; the first frame's when nil.
    ///   - fragmented: write fragmented MP4 whose fragments end at ``flushFragment()``.
    ///   - metadata: tags stored in the file's header (read back by ``MediaFileReader/metadata``).
    ///   - inMemory: keep the bytes in memory for ``takeOutput()`` instead of writing `path`
    ///     (fragmented MP4 only; the header is ready at once, and each ``flushFragment()`` adds
    ///     one moof+mdat pair).
    ///   - inBandParameterSets: H.264 whose parameter sets change within the file (a camera that
    ///     changed size or profile): the track is marked `avc3`, so players take each keyframe's
    ///     own SPS and PPS (ISO/IEC 14496-15).
    /// - Throws: ``MediaError`` when the file or a track cannot be set up.
    public init(path: String, format: String? = nil, streams: [StreamDescription], options: [String: String] = [:],
                origin: CaptureTime? = nil, fragmented: Bool = false, metadata: [String: String] = [:], inMemory: Bool = false,
                inBandParameterSets: Bool = false) throws(MediaError) {
        MediaLibrary.initialize()
        self.path = path
        self.origin = origin
        isFragmented = fragmented || inMemory
        isInMemory = inMemory
        headerFlushed = inMemory
        guard let packet = av_packet_alloc() else { throw .codecFailed("out of memory allocating a packet") }
        self.packet = packet
        lastTimestamp = Array(repeating: .min, count: streams.count)
        written = Array(repeating: 0, count: streams.count)
        var allocated: UnsafeMutablePointer<AVFormatContext>?
        let status = avformat_alloc_output_context2(&allocated, nil, format, path)
        guard status >= 0, let allocated else {
            throw .ffmpeg(.invalidConfiguration, status, "choosing a container for \(path)", hint: "use a .mp4 or .mkv file name")
        }
        context = allocated
        for description in streams {
            guard let stream = avformat_new_stream(allocated, nil) else { throw .codecFailed("out of memory adding a track to \(path)") }
            let parameters = stream.pointee.codecpar!
            switch description.codec {
            case .h264:
                parameters.pointee.codec_type = AVMEDIA_TYPE_VIDEO
                parameters.pointee.codec_id = AV_CODEC_ID_H264
                // 'avc3' (as a little-endian fourcc) where the container has it; Matroska needs no mark.
                if inBandParameterSets, String(cString: allocated.pointee.oformat.pointee.name).contains("mp4") { parameters.pointee.codec_tag = 0x3363_7661 }
                parameters.pointee.width = Int32(description.width)
                parameters.pointee.height = Int32(description.height)
                stream.pointee.time_base = AVRational(num: 1, den: 90_000)
                if description.frameRate > 0 { stream.pointee.avg_frame_rate = AVRational(num: Int32(description.frameRate), den: 1) }
            case .opus:
                parameters.pointee.codec_type = AVMEDIA_TYPE_AUDIO
                parameters.pointee.codec_id = AV_CODEC_ID_OPUS
                parameters.pointee.sample_rate = 48_000
                av_channel_layout_default(&parameters.pointee.ch_layout, Int32(max(description.channels, 1)))
                stream.pointee.time_base = AVRational(num: 1, den: 48_000)
                if description.configuration.count >= 12 {
                    parameters.pointee.initial_padding = Int32(description.configuration[10]) | Int32(description.configuration[11]) << 8
                }
            }
            if !description.configuration.isEmpty {
                let size = description.configuration.count
                guard let extradata = av_mallocz(size + Int(AV_INPUT_BUFFER_PADDING_SIZE))?.assumingMemoryBound(to: UInt8.self) else {
                    throw .codecFailed("out of memory")
                }
                extradata.update(from: description.configuration, count: size)
                parameters.pointee.extradata = extradata
                parameters.pointee.extradata_size = Int32(size)
            }
        }
        if inMemory {
            let opened = avio_open_dyn_buf(&allocated.pointee.pb)
            if opened < 0 { throw .ffmpeg(.codecFailed, opened, "opening a memory buffer for \(path)") }
        } else if allocated.pointee.oformat.pointee.flags & AVFMT_NOFILE == 0 {
            let opened = avio_open(&allocated.pointee.pb, path, AVIO_FLAG_WRITE)
            if opened < 0 { throw .ffmpeg(.io, opened, "creating \(path)", hint: "check the directory exists and has free space") }
        }
        for (key, value) in metadata { av_dict_set(&allocated.pointee.metadata, key, value, 0) }
        var dictionary: OpaquePointer?
        var options = options
        // In memory the header goes out before any frame (a browser needs it first); in a file it
        // waits for the first fragment, so that it can say where each track starts.
        if inMemory {
            options["movflags"] = "frag_custom+empty_moov+default_base_moof"
            // Timestamps as given (not moved to start at zero, with no edit list an empty moov
            // could not hold anyway): each track's first fragment says its own start (see below).
            options["use_editlist"] = "0"
            allocated.pointee.avoid_negative_ts = AVFMT_AVOID_NEG_TS_MAKE_NON_NEGATIVE
        }
        else if fragmented { options["movflags"] = "frag_custom+delay_moov+default_base_moof" + (metadata.isEmpty ? "" : "+use_metadata_tags") }
        else if !metadata.isEmpty { options["movflags"] = (options["movflags"].map { $0 + "+" } ?? "") + "use_metadata_tags" }
        for (key, value) in options { av_dict_set(&dictionary, key, value, 0) }
        let header = avformat_write_header(allocated, &dictionary)
        av_dict_free(&dictionary)
        if header < 0 { throw .ffmpeg(.codecFailed, header, "writing the header of \(path)") }
        headerWritten = true
        // In memory each track's first fragment starts at its own time after the origin (its
        // tfdt: an empty moov has no edit list), so a feed started again later goes on in time.
        if inMemory { av_opt_set(allocated.pointee.priv_data, "movflags", "+frag_discont", 0) }
        for index in 0..<streams.count { timeBases.append(allocated.pointee.streams[index]!.pointee.time_base) }
    }

    deinit {
        if !finished { try? finish() }
        var owned: UnsafeMutablePointer<AVPacket>? = packet
        av_packet_free(&owned)
    }

    /// Writes one frame to track `stream` (the index of its description).
    /// - Throws: ``MediaError`` when the muxer fails (a full disk, for one).
    public func write(_ frame: EncodedFrame, stream index: Int) throws(MediaError) {
        guard let context, index < timeBases.count, !frame.data.isEmpty else { return }
        guard context.pointee.pb != nil else { throw .codecFailed("out of memory buffering \(path)") }
        if origin == nil { origin = frame.captureTime }
        let base = timeBases[index]
        let nanoseconds = frame.captureTime.nanoseconds(since: origin!)
        var timestamp = av_rescale_q(nanoseconds, AVRational(num: 1, den: 1_000_000_000), base)
        // Timestamps must rise within a track; a capture clock that stepped back is nudged.
        if timestamp <= lastTimestamp[index] { timestamp = lastTimestamp[index] + 1 }
        lastTimestamp[index] = timestamp
        guard av_new_packet(packet, Int32(frame.data.count)) >= 0 else { throw .codecFailed("out of memory") }
        frame.data.withUnsafeBufferPointer { packet.pointee.data.update(from: $0.baseAddress!, count: $0.count) }
        packet.pointee.stream_index = Int32(index)
        // B-frames: shown later than decoded, by the composition offset (an MP4 ctts/trun entry).
        let offset = frame.compositionOffset > 0
            ? av_rescale_q(min(frame.compositionOffset, EncodedFrame.maximumCompositionOffset), AVRational(num: 1, den: 1_000_000_000), base) : 0
        packet.pointee.pts = timestamp + offset
        packet.pointee.dts = timestamp
        packet.pointee.duration = av_rescale_q(frame.duration, AVRational(num: 1, den: 1_000_000_000), base)
        if frame.isKeyframe { packet.pointee.flags |= AV_PKT_FLAG_KEY }
        let status = isFragmented ? av_write_frame(context, packet) : av_interleaved_write_frame(context, packet)
        av_packet_unref(packet)
        if status < 0 { throw .ffmpeg(.io, status, "writing to \(path)", hint: "check free disk space") }
        written[index] += 1
        unflushed += 1
    }

    /// The capture time at timestamp zero (set by the first frame when not given).
    public var startTime: CaptureTime? { origin }

    /// Ends the current fragment and hands it to the operating system: once this returns, a
    /// crash of this process keeps it. Returns the file's size.
    /// - Throws: ``MediaError`` when the disk refuses the bytes (a full disk): the file then
    ///   ends with a torn fragment, which a reader cuts off (see ``FragmentedMP4``).
    @discardableResult
    public func flushFragment() throws(MediaError) -> Int {
        guard let context, isFragmented, !finished else { return 0 }
        if unflushed > 0 {
            // The first flush writes the header (delayed so that it can say where each track
            // starts); the second writes the fragment itself.
            for _ in 0..<(headerFlushed ? 1 : 2) {
                let status = av_write_frame(context, nil)
                if status < 0 { throw .ffmpeg(.io, status, "writing a fragment of \(path)", hint: "check free disk space") }
            }
            headerFlushed = true
            unflushed = 0
            // Each fragment's start time comes from its first frame, not from the end of the
            // fragment before: a camera that was away for a while resumes at its real time.
            av_opt_set(context.pointee.priv_data, "movflags", "+frag_discont", 0)
        }
        avio_flush(context.pointee.pb)
        if isInMemory { return 0 }
        if context.pointee.pb.pointee.error < 0 {
            let error = context.pointee.pb.pointee.error
            context.pointee.pb.pointee.error = 0
            throw .ffmpeg(.io, error, "writing a fragment of \(path)", hint: "check free disk space")
        }
        return Int(avio_seek(context.pointee.pb, 0, SEEK_CUR))
    }

    /// In memory mode: the bytes written since the last call (the header, then fragments).
    public func takeOutput() -> [UInt8] {
        guard isInMemory, let context, !finished else { return [] }
        avio_flush(context.pointee.pb)
        var buffer: UnsafeMutablePointer<UInt8>?
        let size = avio_close_dyn_buf(context.pointee.pb, &buffer)
        context.pointee.pb = nil
        let bytes = size > 0 && buffer != nil ? Array(UnsafeBufferPointer(start: buffer, count: Int(size))) : []
        av_free(buffer)
        if avio_open_dyn_buf(&context.pointee.pb) < 0 { context.pointee.pb = nil }
        return bytes
    }

    /// Writes the trailer and closes the file.
    public func finish() throws(MediaError) {
        guard !finished, let context else { return }
        finished = true
        defer {
            if isInMemory {
                if let pb = context.pointee.pb {
                    var buffer: UnsafeMutablePointer<UInt8>?
                    _ = avio_close_dyn_buf(pb, &buffer)
                    av_free(buffer)
                    context.pointee.pb = nil
                }
            } else if context.pointee.oformat.pointee.flags & AVFMT_NOFILE == 0 { avio_closep(&context.pointee.pb) }
            avformat_free_context(context)
            self.context = nil
        }
        if headerWritten, context.pointee.pb != nil {
            let status = av_write_trailer(context)
            if status < 0 { throw .ffmpeg(.io, status, "finishing \(path)", hint: "check free disk space") }
            if let pb = context.pointee.pb {
                avio_flush(pb)
                if pb.pointee.error < 0 { throw .ffmpeg(.io, pb.pointee.error, "finishing \(path)", hint: "check free disk space") }
            }
        }
    }
}
