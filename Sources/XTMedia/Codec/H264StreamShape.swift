// What an H.264 stream's parameter sets say about its pictures — size, profile, chroma and bit
// depth — read by FFmpeg's own H.264 parser and decoder headers rather than a parser of ours.
// A camera passing H.264 through can change any of these mid-stream (a user changes its
// settings, it reboots into another mode); the agent notices at the next keyframe.
internal import CFFmpeg

/// The shape of an H.264 stream, from its SPS.
public struct H264StreamShape: Hashable, Sendable, CustomStringConvertible {
    public var width: Int
    public var height: Int
    /// `profile_idc` (66 Baseline, 77 Main, 100 High, 110 High 10, 122 High 4:2:2, 244 High 4:4:4).
    public var profile: Int
    /// Bits per luma sample (8 for what browsers play).
    public var bitDepth: Int
    /// Chroma subsampling: 1 = 4:2:0, 2 = 4:2:2, 3 = 4:4:4 (0 = monochrome).
    public var chromaFormat: Int

    /// Whether browsers' decoders commonly play it: 8-bit 4:2:0 in Baseline, Main or High.
    public var isBrowserPlayable: Bool { bitDepth == 8 && chromaFormat == 1 && Self.browserProfiles.contains(profile) }

    /// `profile_idc` values whose streams are always 8-bit 4:2:0, which browsers play.
    public static let browserProfiles: Set<Int> = [66, 77, 88, 100]

    /// A profile's name ("High 4:2:2"), or "profile N".
    public static func profileName(_ profile: Int) -> String {
        [66: "Baseline", 77: "Main", 88: "Extended", 100: "High", 110: "High 10", 122: "High 4:2:2", 244: "High 4:4:4"][profile] ?? "profile \(profile)"
    }

    public var description: String {
        let profileName = Self.profileName(profile)
        let chroma = [0: "4:0:0", 1: "4:2:0", 2: "4:2:2", 3: "4:4:4"][chromaFormat] ?? "chroma \(chromaFormat)"
        return "\(width)x\(height) \(profileName) (\(chroma), \(bitDepth)-bit)"
    }

    /// Reads the shape from a keyframe's access unit in Annex B (SPS, PPS and the IDR slice,
    /// as every keyframe in the system carries them), through FFmpeg's H.264 parser.
    /// - Returns: nil when the access unit holds no SPS and slice that the parser accepts.
    public static func read(keyframe accessUnit: [UInt8]) -> H264StreamShape? {
        guard let sps = H264Bitstream.nalUnits(accessUnit).first(where: { H264Bitstream.type($0) == H264Bitstream.sequenceParameterSet }),
              sps.count >= 4, let codec = avcodec_find_decoder(AV_CODEC_ID_H264) else { return nil }
        var context = avcodec_alloc_context3(codec)
        defer { avcodec_free_context(&context) }
        guard let context, let parser = av_parser_init(Int32(AV_CODEC_ID_H264.rawValue)) else { return nil }
        defer { av_parser_close(parser) }
        parser.pointee.flags |= PARSER_FLAG_COMPLETE_FRAMES
        // The parser reads the SPS, then the slice header: size and pixel format come out.
        let padded = accessUnit + [UInt8](repeating: 0, count: Int(AV_INPUT_BUFFER_PADDING_SIZE))
        var output: UnsafeMutablePointer<UInt8>?
        var outputSize: Int32 = 0
        _ = padded.withUnsafeBufferPointer { bytes in
            av_parser_parse2(parser, context, &output, &outputSize, bytes.baseAddress, Int32(accessUnit.count), xt_av_nopts_value(), xt_av_nopts_value(), 0)
        }
        let width = Int(parser.pointee.width), height = Int(parser.pointee.height)
        guard width > 0, height > 0, parser.pointee.format >= 0, let descriptor = av_pix_fmt_desc_get(AVPixelFormat(rawValue: parser.pointee.format)) else {
            return nil
        }
        let chroma: Int
        if descriptor.pointee.nb_components == 1 {
            chroma = 0
        } else {
            chroma = descriptor.pointee.log2_chroma_w == 1 ? (descriptor.pointee.log2_chroma_h == 1 ? 1 : 2) : 3
        }
        // profile_idc is the SPS's first byte after its NAL header.
        return H264StreamShape(width: width, height: height, profile: Int(sps[sps.startIndex + 1]),
                               bitDepth: Int(descriptor.pointee.comp.0.depth), chromaFormat: chroma)
    }
}

extension StreamDescription {
    /// For H.264: the SPS's `profile_idc` (from the configuration), or nil when unknown.
    public var h264Profile: Int? {
        guard codec == .h264, let bytes = H264Bitstream.profileBytes(of: configuration) else { return nil }
        return Int(bytes[0])
    }

    /// Whether browsers play it as it is (H.264 in Baseline, Main or High; Opus). An unknown
    /// profile counts as playable.
    public var isBrowserPlayable: Bool { h264Profile.map { H264StreamShape.browserProfiles.contains($0) } ?? true }
}
