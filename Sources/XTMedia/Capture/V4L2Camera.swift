// A V4L2 camera through libv4l2: the formats it offers are enumerated, one of MJPEG, YUYV or
// the camera's own H.264 is chosen for the configured size, and frames are streamed through
// mmap'd buffers. Each frame carries the driver's capture timestamp, moved onto the wall clock.
// An unplugged camera makes `next()` throw `.deviceLost`; the pipeline reopens it.
internal import CV4L2
import Foundation

/// A format a camera offers, with its sizes and frame rates.
public struct V4L2Format: Hashable, Sendable {
    public var fourcc: UInt32
    public var description: String
    /// Sizes, each with the frame rates offered at it.
    public var sizes: [V4L2FrameSize]

    public var name: String { V4L2Format.name(of: fourcc) }

    /// "MJPG", "YUYV", "H264"...
    public static func name(of fourcc: UInt32) -> String {
        String(decoding: (0..<4).map { UInt8((fourcc >> ($0 * 8)) & 0xFF) }, as: UTF8.self)
    }
}

/// A frame size and its frame rates.
public struct V4L2FrameSize: Hashable, Sendable {
    public var width: Int
    public var height: Int
    public var frameRates: [Double]
}

/// What a V4L2 device is and offers.
public struct V4L2DeviceInfo: Hashable, Sendable {
    public var path: String
    public var card: String
    public var driver: String
    public var formats: [V4L2Format]

    /// Lines for `xt agent --list-devices`.
    public var summary: String {
        var lines = ["\(path): \(card) (\(driver))"]
        for format in formats {
            let sizes = format.sizes.map { size in
                let rates = size.frameRates.map { $0 == $0.rounded() ? String(Int($0)) : String(format: "%.1f", $0) }
                return "\(size.width)x\(size.height)" + (rates.isEmpty ? "" : "@" + rates.joined(separator: "/"))
            }
            lines.append("  \(format.name) (\(format.description)): \(sizes.joined(separator: " "))")
        }
        return lines.joined(separator: "\n")
    }
}

/// Which of the camera's formats to use.
public enum V4L2FormatChoice: String, Hashable, Sendable, CaseIterable {
    case auto, h264, mjpeg, yuyv

    var fourcc: UInt32? {
        switch self {
        case .auto: nil
        case .h264: xt_v4l2_pix_fmt_h264()
        case .mjpeg: xt_v4l2_pix_fmt_mjpeg()
        case .yuyv: xt_v4l2_pix_fmt_yuyv()
        }
    }
}

/// An open, streaming V4L2 camera.
public final class V4L2Camera: VideoSource {
    public let path: String
    public private(set) var width = 0
    public private(set) var height = 0
    public private(set) var frameRate = 0
    /// The format streaming now.
    public private(set) var format: UInt32 = 0
    private let descriptor: Int32
    private var buffers: [(start: UnsafeMutableRawPointer, length: Int)] = []
    private var decoder: VideoDecoder?
    private var parameterSets: [UInt8] = []
    private var streaming = false

    /// Opens `path` and starts streaming the best of its formats for `width`×`height` at `fps`.
    /// - Throws: ``MediaError``: `.deviceMissing` when there is no such camera,
    ///   `.unsupportedFormat` when it offers none of MJPEG, YUYV or H.264.
    public init(path: String, width: Int, height: Int, fps: Int, choice: V4L2FormatChoice = .auto) throws(MediaError) {
        self.path = path
        let raw = xt_open_read_write_nonblocking(path)
        guard raw >= 0 else {
            throw .posix(.deviceMissing, "camera \(path) cannot be opened",
                         hint: "check it is plugged in and that this user may use it (group video); `xt agent --list-devices` lists cameras")
        }
        let descriptor = v4l2_fd_open(raw, xt_v4l2_disable_conversion())
        guard descriptor >= 0 else {
            close(raw)
            throw .posix(.deviceMissing, "\(path) is not a V4L2 camera", hint: "`xt agent --list-devices` lists cameras")
        }
        self.descriptor = descriptor
        do {
            let info = try Self.describe(descriptor: descriptor, path: path)
            let (format, size) = try Self.choose(info, width: width, height: height, choice: choice)
            self.format = format.fourcc
            try configure(format: format.fourcc, size: size, fps: fps)
            if format.fourcc == xt_v4l2_pix_fmt_mjpeg() || format.fourcc == xt_v4l2_pix_fmt_jpeg() {
                decoder = try VideoDecoder(codec: .mjpeg)
            }
            try startStreaming()
        } catch {
            stopStreaming()
            v4l2_close(descriptor)
            throw error
        }
    }

    deinit {
        stopStreaming()
        v4l2_close(descriptor)
    }

    public var summary: String { "\(path) (\(V4L2Format.name(of: format)) \(width)x\(height) at \(frameRate) fps)" }

    public var encodedDescription: StreamDescription? {
        guard format == xt_v4l2_pix_fmt_h264() else { return nil }
        return StreamDescription(codec: .h264, width: width, height: height, frameRate: frameRate, configuration: parameterSets)
    }

    public func requestKeyframe() {
        var control = v4l2_control(id: xt_v4l2_cid_force_key_frame(), value: 1)
        _ = xt_v4l2_ioctl(descriptor, xt_vidioc_s_ctrl(), &control)  // cameras without it just wait for their next GOP
    }

    // MARK: - Capture

    public func next() throws(MediaError) -> VideoSourceOutput {
        while true {
            var poller = pollfd(fd: descriptor, events: Int16(POLLIN), revents: 0)
            let ready = poll(&poller, 1, 2000)
            if ready < 0 && errno == EINTR { continue }
            if ready == 0 { throw .deviceLost("camera \(path) gave no frame for 2 s") }
            if poller.revents & Int16(POLLERR | POLLHUP | POLLNVAL) != 0 && poller.revents & Int16(POLLIN) == 0 {
                throw .deviceLost("camera \(path) disconnected")
            }
            var buffer = v4l2_buffer()
            buffer.type = V4L2_BUF_TYPE_VIDEO_CAPTURE.rawValue
            buffer.memory = V4L2_MEMORY_MMAP.rawValue
            if xt_v4l2_ioctl(descriptor, xt_vidioc_dqbuf(), &buffer) < 0 {
                if errno == EAGAIN { continue }
                throw .posix(.deviceLost, "camera \(path) disconnected", hint: "plug it back in: the agent reopens it every second")
            }
            let index = Int(buffer.index)
            defer { _ = xt_v4l2_ioctl(descriptor, xt_vidioc_qbuf(), &buffer) }
            guard index < buffers.count, buffer.bytesused > 0, Int(buffer.bytesused) <= buffers[index].length,
                  buffer.flags & UInt32(V4L2_BUF_FLAG_ERROR) == 0 else { continue }  // a corrupt frame: skip it
            let monotonic = Int64(buffer.timestamp.tv_sec) * 1_000_000_000 + Int64(buffer.timestamp.tv_usec) * 1000
            let captureTime = monotonic > 0 ? CaptureTime.fromMonotonic(monotonic) : CaptureTime.now
            let bytes = UnsafeRawBufferPointer(start: buffers[index].start, count: Int(buffer.bytesused))
            if let output = try convert(bytes, captureTime: captureTime, flags: buffer.flags) { return output }
        }
    }

    private func convert(_ bytes: UnsafeRawBufferPointer, captureTime: CaptureTime, flags: UInt32) throws(MediaError) -> VideoSourceOutput? {
        if format == xt_v4l2_pix_fmt_h264() {
            let data = [UInt8](bytes)
            let isKeyframe = flags & UInt32(V4L2_BUF_FLAG_KEYFRAME) != 0 || H264Bitstream.isKeyframe(data)
            if isKeyframe { let sets = H264Bitstream.parameterSets(data); if !sets.isEmpty { parameterSets = sets } }
            return .encoded(EncodedFrame(codec: .h264, data: data, captureTime: captureTime, duration: 1_000_000_000 / Int64(max(frameRate, 1)),
                                         isKeyframe: isKeyframe))
        }
        if let decoder {
            // MJPEG: a frame that does not decode (a torn USB transfer) is skipped.
            return decoder.decode([UInt8](bytes), captureTime: captureTime).last.map { .raw($0) }
        }
        // YUYV: copy the packed rows into a picture the encoder's converter takes.
        let frame = try VideoFrame(width: width, height: height, format: .yuyv422, captureTime: captureTime)
        let rowBytes = width * 2
        guard bytes.count >= rowBytes * height else { return nil }
        frame.withPlane(0) { plane, stride in
            for row in 0..<height {
                (plane.baseAddress! + row * stride).update(from: bytes.baseAddress!.assumingMemoryBound(to: UInt8.self) + row * rowBytes,
                                                          count: rowBytes)
            }
        }
        return .raw(frame)
    }

    // MARK: - Set-up

    private func configure(format fourcc: UInt32, size: V4L2FrameSize, fps: Int) throws(MediaError) {
        var requested = v4l2_format()
        requested.type = V4L2_BUF_TYPE_VIDEO_CAPTURE.rawValue
        requested.fmt.pix.width = UInt32(size.width)
        requested.fmt.pix.height = UInt32(size.height)
        requested.fmt.pix.pixelformat = fourcc
        requested.fmt.pix.field = V4L2_FIELD_ANY.rawValue
        guard xt_v4l2_ioctl(descriptor, xt_vidioc_s_fmt(), &requested) == 0 else {
            throw .posix(.unsupportedFormat, "camera \(path) refused \(V4L2Format.name(of: fourcc)) \(size.width)x\(size.height)")
        }
        guard requested.fmt.pix.pixelformat == fourcc else {
            throw .unsupportedFormat("camera \(path) gave \(V4L2Format.name(of: requested.fmt.pix.pixelformat)) instead of \(V4L2Format.name(of: fourcc))")
        }
        width = Int(requested.fmt.pix.width)
        height = Int(requested.fmt.pix.height)
        var parameters = v4l2_streamparm()
        parameters.type = V4L2_BUF_TYPE_VIDEO_CAPTURE.rawValue
        parameters.parm.capture.timeperframe = v4l2_fract(numerator: 1, denominator: UInt32(fps))
        frameRate = fps
        if xt_v4l2_ioctl(descriptor, xt_vidioc_s_parm(), &parameters) == 0, parameters.parm.capture.timeperframe.numerator > 0 {
            frameRate = max(1, Int((Double(parameters.parm.capture.timeperframe.denominator) / Double(parameters.parm.capture.timeperframe.numerator)).rounded()))
        }
    }

    private func startStreaming() throws(MediaError) {
        var request = v4l2_requestbuffers()
        request.count = 4
        request.type = V4L2_BUF_TYPE_VIDEO_CAPTURE.rawValue
        request.memory = V4L2_MEMORY_MMAP.rawValue
        guard xt_v4l2_ioctl(descriptor, xt_vidioc_reqbufs(), &request) == 0, request.count >= 2 else {
            throw .posix(.unsupportedFormat, "camera \(path) cannot stream through mmap buffers")
        }
        for index in 0..<request.count {
            var buffer = v4l2_buffer()
            buffer.type = V4L2_BUF_TYPE_VIDEO_CAPTURE.rawValue
            buffer.memory = V4L2_MEMORY_MMAP.rawValue
            buffer.index = index
            guard xt_v4l2_ioctl(descriptor, xt_vidioc_querybuf(), &buffer) == 0 else {
                throw .posix(.io, "camera \(path): querying buffer \(index) failed")
            }
            guard let start = v4l2_mmap(nil, Int(buffer.length), PROT_READ | PROT_WRITE, MAP_SHARED, descriptor, Int64(buffer.m.offset)),
                  start != xt_map_failed() else {
                throw .posix(.io, "camera \(path): mapping buffer \(index) failed")
            }
            buffers.append((start, Int(buffer.length)))
            guard xt_v4l2_ioctl(descriptor, xt_vidioc_qbuf(), &buffer) == 0 else { throw .posix(.io, "camera \(path): queueing buffer \(index) failed") }
        }
        var type = Int32(V4L2_BUF_TYPE_VIDEO_CAPTURE.rawValue)
        guard xt_v4l2_ioctl(descriptor, xt_vidioc_streamon(), &type) == 0 else { throw .posix(.io, "camera \(path) did not start streaming") }
        streaming = true
    }

    private func stopStreaming() {
        if streaming {
            var type = Int32(V4L2_BUF_TYPE_VIDEO_CAPTURE.rawValue)
            _ = xt_v4l2_ioctl(descriptor, xt_vidioc_streamoff(), &type)
            streaming = false
        }
        for buffer in buffers { v4l2_munmap(buffer.start, buffer.length) }
        buffers.removeAll()
    }

    // MARK: - Enumeration

    /// The best format and size for the request: the camera's H.264 (no encoding at all), then
    /// MJPEG, then YUYV, at the requested size if offered, else the nearest size.
    static func choose(_ info: V4L2DeviceInfo, width: Int, height: Int,
                       choice: V4L2FormatChoice) throws(MediaError) -> (V4L2Format, V4L2FrameSize) {
        let usable = [xt_v4l2_pix_fmt_h264(), xt_v4l2_pix_fmt_mjpeg(), xt_v4l2_pix_fmt_jpeg(), xt_v4l2_pix_fmt_yuyv()]
        let offered = info.formats.filter { usable.contains($0.fourcc) && (choice.fourcc == nil || $0.fourcc == choice.fourcc) }
            .sorted { usable.firstIndex(of: $0.fourcc)! < usable.firstIndex(of: $1.fourcc)! }
        guard !offered.isEmpty else {
            let names = info.formats.map(\.name).joined(separator: ", ")
            if let wanted = choice.fourcc {
                throw .unsupportedFormat("camera \(info.path) does not offer \(V4L2Format.name(of: wanted)) (it offers \(names.isEmpty ? "nothing" : names)): set video-format = auto")
            }
            throw .unsupportedFormat("camera \(info.path) offers no format the agent can use (it offers \(names.isEmpty ? "nothing" : names)); supported are MJPEG, YUYV and H.264")
        }
        let wanted = width * height
        for format in offered {
            if let exact = format.sizes.first(where: { $0.width == width && $0.height == height }) { return (format, exact) }
        }
        // No format has the size: take the format whose nearest size is nearest.
        var best: (V4L2Format, V4L2FrameSize)?
        for format in offered {
            for size in format.sizes where best == nil || abs(size.width * size.height - wanted) < abs(best!.1.width * best!.1.height - wanted) {
                best = (format, size)
            }
        }
        return best ?? (offered[0], V4L2FrameSize(width: width, height: height, frameRates: []))
    }

    /// Reads what the open device offers.
    static func describe(descriptor: Int32, path: String) throws(MediaError) -> V4L2DeviceInfo {
        var capability = v4l2_capability()
        guard xt_v4l2_ioctl(descriptor, xt_vidioc_querycap(), &capability) == 0 else {
            throw .posix(.deviceMissing, "\(path) is not a V4L2 device")
        }
        let capabilities = capability.capabilities & UInt32(V4L2_CAP_DEVICE_CAPS) != 0 ? capability.device_caps : capability.capabilities
        guard capabilities & UInt32(V4L2_CAP_VIDEO_CAPTURE) != 0 else {
            throw .unsupportedFormat("\(path) is not a capture device (an encoder or output?): choose another /dev/video")
        }
        guard capabilities & UInt32(V4L2_CAP_STREAMING) != 0 else {
            throw .unsupportedFormat("camera \(path) cannot stream (no mmap streaming)")
        }
        func text<T>(_ value: T) -> String {
            withUnsafeBytes(of: value) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
        }
        var formats: [V4L2Format] = []
        var formatIndex: UInt32 = 0
        while formatIndex < 64 {
            var description = v4l2_fmtdesc()
            description.index = formatIndex
            description.type = V4L2_BUF_TYPE_VIDEO_CAPTURE.rawValue
            guard xt_v4l2_ioctl(descriptor, xt_vidioc_enum_fmt(), &description) == 0 else { break }
            formatIndex += 1
            if description.flags & UInt32(V4L2_FMT_FLAG_EMULATED) != 0 { continue }
            var sizes: [V4L2FrameSize] = []
            var sizeIndex: UInt32 = 0
            while sizeIndex < 64 {
                var size = v4l2_frmsizeenum()
                size.index = sizeIndex
                size.pixel_format = description.pixelformat
                guard xt_v4l2_ioctl(descriptor, xt_vidioc_enum_framesizes(), &size) == 0 else { break }
                sizeIndex += 1
                let (w, h) = size.type == V4L2_FRMSIZE_TYPE_DISCRETE.rawValue
                    ? (Int(size.discrete.width), Int(size.discrete.height))
                    : (Int(size.stepwise.max_width), Int(size.stepwise.max_height))
                sizes.append(V4L2FrameSize(width: w, height: h,
                                           frameRates: frameRates(descriptor: descriptor, format: description.pixelformat, width: w, height: h)))
                if size.type != V4L2_FRMSIZE_TYPE_DISCRETE.rawValue { break }
            }
            formats.append(V4L2Format(fourcc: description.pixelformat, description: text(description.description), sizes: sizes))
        }
        return V4L2DeviceInfo(path: path, card: text(capability.card), driver: text(capability.driver), formats: formats)
    }

    private static func frameRates(descriptor: Int32, format: UInt32, width: Int, height: Int) -> [Double] {
        var rates: [Double] = []
        var index: UInt32 = 0
        while index < 32 {
            var interval = v4l2_frmivalenum()
            interval.index = index
            interval.pixel_format = format
            interval.width = UInt32(width)
            interval.height = UInt32(height)
            guard xt_v4l2_ioctl(descriptor, xt_vidioc_enum_frameintervals(), &interval) == 0 else { break }
            index += 1
            let fraction = interval.type == V4L2_FRMIVAL_TYPE_DISCRETE.rawValue ? interval.discrete : interval.stepwise.min
            if fraction.numerator > 0 { rates.append(Double(fraction.denominator) / Double(fraction.numerator)) }
            if interval.type != V4L2_FRMIVAL_TYPE_DISCRETE.rawValue { break }
        }
        return rates
    }

    /// The V4L2 capture devices on this machine (/dev/video*), and any extra paths given.
    public static func listDevices(extra: [String] = []) -> [V4L2DeviceInfo] {
        let found = ((try? FileManager.default.contentsOfDirectory(atPath: "/dev")) ?? [])
            .filter { $0.hasPrefix("video") }.sorted { $0.count == $1.count ? $0 < $1 : $0.count < $1.count }.map { "/dev/" + $0 }
        return (found + extra).compactMap { path in try? describe(path: path) }
    }

    /// What the device at `path` offers.
    /// - Throws: ``MediaError`` when it cannot be opened or is no capture device.
    public static func describe(path: String) throws(MediaError) -> V4L2DeviceInfo {
        let raw = xt_open_read_write_nonblocking(path)
        guard raw >= 0 else { throw .posix(.deviceMissing, "camera \(path) cannot be opened") }
        let descriptor = v4l2_fd_open(raw, xt_v4l2_disable_conversion())
        guard descriptor >= 0 else {
            close(raw)
            throw .posix(.deviceMissing, "\(path) is not a V4L2 device")
        }
        defer { v4l2_close(descriptor) }
        return try describe(descriptor: descriptor, path: path)
    }
}
