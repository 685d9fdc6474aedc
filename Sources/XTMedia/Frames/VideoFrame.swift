// A raw picture from a capture source, owned by Swift: the class holds one AVFrame and frees
// it when the last reference goes. Frames move from stage to stage (capture → encode); a stage
// that hands a frame on does not touch it again.
internal import CFFmpeg

/// Pixel layouts the capture sources produce and the encoders take.
public enum PixelFormat: String, Hashable, Sendable, CaseIterable {
    /// Planar 4:2:0, what H.264 encoders take.
    case yuv420p
    /// Full-range planar 4:2:0, what MJPEG decodes to.
    case yuvj420p
    /// Full-range planar 4:2:2 (MJPEG from many webcams).
    case yuvj422p
    /// Packed 4:2:2, the common uncompressed webcam format.
    case yuyv422
    /// Semi-planar 4:2:0 (hardware encoders and decoders).
    case nv12

    var av: AVPixelFormat {
        switch self {
        case .yuv420p: AV_PIX_FMT_YUV420P
        case .yuvj420p: AV_PIX_FMT_YUVJ420P
        case .yuvj422p: AV_PIX_FMT_YUVJ422P
        case .yuyv422: AV_PIX_FMT_YUYV422
        case .nv12: AV_PIX_FMT_NV12
        }
    }

    init?(_ format: AVPixelFormat) {
        guard let match = PixelFormat.allCases.first(where: { $0.av == format }) else { return nil }
        self = match
    }
}

/// One captured picture and when it was captured.
public final class VideoFrame: @unchecked Sendable {
    let frame: UnsafeMutablePointer<AVFrame>
    /// When the picture was captured, on the agent's wall clock.
    public var captureTime: CaptureTime
    /// Ask the encoder to make this frame a keyframe.
    public var forceKeyframe = false

    /// Allocates a picture of the given size and layout.
    /// - Throws: ``MediaError`` when memory runs out or the size is impossible.
    public init(width: Int, height: Int, format: PixelFormat = .yuv420p, captureTime: CaptureTime = .now) throws(MediaError) {
        guard width > 0, height > 0, width <= 16384, height <= 16384 else {
            throw .invalidConfiguration("a picture of \(width)x\(height) is impossible: give a size between 1x1 and 16384x16384")
        }
        guard let frame = av_frame_alloc() else { throw .codecFailed("out of memory allocating a \(width)x\(height) picture") }
        frame.pointee.width = Int32(width)
        frame.pointee.height = Int32(height)
        frame.pointee.format = format.av.rawValue
        let status = av_frame_get_buffer(frame, 0)
        if status < 0 {
            var owned: UnsafeMutablePointer<AVFrame>? = frame
            av_frame_free(&owned)
            throw .ffmpeg(.codecFailed, status, "allocating a \(width)x\(height) picture")
        }
        self.frame = frame
        self.captureTime = captureTime
    }

    /// Takes ownership of a frame a decoder or converter produced.
    init(owning frame: UnsafeMutablePointer<AVFrame>, captureTime: CaptureTime) {
        self.frame = frame
        self.captureTime = captureTime
    }

    deinit {
        var owned: UnsafeMutablePointer<AVFrame>? = frame
        av_frame_free(&owned)
    }

    public var width: Int { Int(frame.pointee.width) }
    public var height: Int { Int(frame.pointee.height) }
    public var format: PixelFormat? { PixelFormat(AVPixelFormat(rawValue: frame.pointee.format)) }

    /// Whether no one else (an encoder) holds this picture's buffers.
    public var isWritable: Bool { av_frame_is_writable(frame) != 0 }

    /// Makes the pixels writable (copying them if an encoder still holds this buffer).
    public func makeWritable() throws(MediaError) {
        try check(av_frame_make_writable(frame), .codecFailed, "making a picture writable")
    }

    /// Calls `body` with plane `index`'s bytes and its line stride.
    public func withPlane<R>(_ index: Int, _ body: (UnsafeMutableBufferPointer<UInt8>, Int) throws -> R) rethrows -> R {
        let stride = withUnsafeBytes(of: frame.pointee.linesize) { $0.load(fromByteOffset: index * 4, as: Int32.self) }
        let data = withUnsafeBytes(of: frame.pointee.data) { $0.load(fromByteOffset: index * 8, as: UnsafeMutablePointer<UInt8>?.self) }
        let rows = planeRows(index)
        guard let data else { return try body(UnsafeMutableBufferPointer(start: nil, count: 0), 0) }
        return try body(UnsafeMutableBufferPointer(start: data, count: Int(stride) * rows), Int(stride))
    }

    /// Rows in plane `index`.
    func planeRows(_ index: Int) -> Int {
        guard index > 0 else { return height }
        switch format {
        case .yuv420p, .yuvj420p, .nv12: return (height + 1) / 2
        default: return height
        }
    }

    /// The mean luma (0–255) of the picture, or of the rectangle given: cheap scene checks for
    /// tests and the motion detector.
    public func meanLuma(x: Int = 0, y: Int = 0, width w: Int? = nil, height h: Int? = nil) -> Double {
        let w = min(w ?? width, width - x), h = min(h ?? height, height - y)
        guard w > 0, h > 0, format != .yuyv422 else { return 0 }
        return withPlane(0) { plane, stride in
            var total = 0
            for row in y..<(y + h) {
                let start = row * stride + x
                for column in 0..<w { total += Int(plane[start + column]) }
            }
            return Double(total) / Double(w * h)
        }
    }
}
