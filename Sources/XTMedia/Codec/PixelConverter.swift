// Scales and converts pictures with libswscale (YUYV or MJPEG's full-range 4:2:2 to the
// encoder's 4:2:0, or a camera's size to the configured one). The context is kept while the
// input stays the same shape.
internal import CFFmpeg

/// A swscale context, owned.
public final class PixelConverter {
    private var context: OpaquePointer?
    private var inputShape: (width: Int, height: Int, format: Int32) = (0, 0, -1)
    public let width: Int
    public let height: Int
    public let format: PixelFormat

    /// A converter to pictures of `width`×`height` in `format`.
    public init(width: Int, height: Int, format: PixelFormat = .yuv420p) {
        self.width = width
        self.height = height
        self.format = format
    }

    deinit { sws_freeContext(context) }

    /// Whether `frame` already has the output shape.
    public func matches(_ frame: VideoFrame) -> Bool {
        frame.width == width && frame.height == height && frame.format == format
    }

    /// `frame` converted to the output shape (or `frame` itself when it already has it).
    /// - Throws: ``MediaError`` when the conversion cannot be set up.
    public func convert(_ frame: VideoFrame) throws(MediaError) -> VideoFrame {
        if matches(frame) { return frame }
        let source = frame.frame
        let shape = (Int(source.pointee.width), Int(source.pointee.height), source.pointee.format)
        if context == nil || shape != inputShape {
            sws_freeContext(context)
            context = sws_getContext(Int32(shape.0), Int32(shape.1), AVPixelFormat(rawValue: shape.2), Int32(width), Int32(height),
                                     format.av, SWS_BILINEAR, nil, nil, nil)
            inputShape = shape
            guard context != nil else {
                throw .unsupportedFormat("cannot convert \(shape.0)x\(shape.1) pictures (pixel format \(shape.2)) to \(width)x\(height) \(format.rawValue)")
            }
        }
        let output = try VideoFrame(width: width, height: height, format: format, captureTime: frame.captureTime)
        output.forceKeyframe = frame.forceKeyframe
        let status = withUnsafePointer(to: &source.pointee.data) { sourceData in
            withUnsafePointer(to: &source.pointee.linesize) { sourceStrides in
                withUnsafePointer(to: &output.frame.pointee.data) { outputData in
                    withUnsafePointer(to: &output.frame.pointee.linesize) { outputStrides in
                        sws_scale(context,
                                  UnsafeRawPointer(sourceData).assumingMemoryBound(to: UnsafePointer<UInt8>?.self),
                                  UnsafeRawPointer(sourceStrides).assumingMemoryBound(to: Int32.self),
                                  0, Int32(shape.1),
                                  UnsafeRawPointer(outputData).assumingMemoryBound(to: UnsafeMutablePointer<UInt8>?.self),
                                  UnsafeRawPointer(outputStrides).assumingMemoryBound(to: Int32.self))
                    }
                }
            }
        }
        try check(status, .codecFailed, "converting a \(shape.0)x\(shape.1) picture")
        return output
    }
}
