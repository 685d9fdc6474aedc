// Re-encoding for viewers whose decoders cannot take a camera's H.264 (High 4:2:2, High 10,
// 4:4:4 — common on IP cameras, played by no browser): decode with libavcodec, encode again as
// 8-bit 4:2:0 at the same size and rate. The recording keeps the original; this serves the
// live view and clips (`transcode = auto` on the recorder).

/// H.264 in, browser-playable H.264 out.
public final class VideoTranscoder {
    private let decoder: VideoDecoder
    private let encoder: H264Encoder
    /// What the output stream is.
    public var description: StreamDescription { encoder.description }

    /// A transcoder for a stream described by `input`.
    /// - Parameter bitrate: the output's bits per second (default: 0.1 bit per pixel per frame,
    ///   at least 500 kbit/s).
    /// - Throws: ``MediaError`` when the decoder or encoder cannot be opened (a size no encoder
    ///   takes, say).
    public init(input: StreamDescription, bitrate: Int? = nil) throws(MediaError) {
        decoder = try VideoDecoder(codec: .h264, threads: 2)
        let width = max(input.width & ~1, 16), height = max(input.height & ~1, 16)
        let rate = (1...120).contains(input.frameRate) ? input.frameRate : 30
        let bits = bitrate ?? min(max(width * height * rate / 10, 500_000), 20_000_000)
        encoder = try H264Encoder(settings: H264Settings(width: width, height: height, frameRate: rate, bitrate: bits, gop: 600,
                                                         profile: "high", implementation: .libx264))
        self.input = input
    }

    private let input: StreamDescription

    /// Re-encodes one coded picture (in decode order); returns the pictures ready, in order.
    /// A keyframe in gives a keyframe out, so viewers can start where the camera's GOP starts.
    /// Pictures that do not decode are skipped (counted in ``decodeErrors``).
    public func convert(_ frame: EncodedFrame) throws(MediaError) -> [EncodedFrame] {
        let data = frame.isKeyframe && H264Bitstream.parameterSets(frame.data).isEmpty ? input.configuration + frame.data : frame.data
        // The keyframe's picture may leave the decoder later (B-frames): it is known by its time.
        if frame.isKeyframe { keyframeTimes.insert(frame.presentationTime) }
        var output: [EncodedFrame] = []
        for picture in decoder.decode(data, captureTime: frame.presentationTime) {
            if keyframeTimes.remove(picture.captureTime) != nil { picture.forceKeyframe = true }
            output += try encoder.encode(picture)
        }
        if keyframeTimes.count > 16 { keyframeTimes.removeAll() }
        return output
    }

    private var keyframeTimes: Set<CaptureTime> = []

    /// The pictures still inside the decoder and encoder (the end of a clip).
    public func finish() throws(MediaError) -> [EncodedFrame] {
        var output: [EncodedFrame] = []
        for picture in decoder.flush() { output += try encoder.encode(picture) }
        return output + (try encoder.flush())
    }

    /// Pictures the decoder could not decode.
    public var decodeErrors: Int { decoder.errors }
}
