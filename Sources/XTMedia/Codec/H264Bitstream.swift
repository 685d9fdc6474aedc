// Just enough of H.264's Annex B byte stream to find NAL units: which access units hold a
// keyframe, and the SPS and PPS a decoder needs first.

/// Annex B helpers.
public enum H264Bitstream {
    /// NAL unit types that matter here.
    public static let idrSlice: UInt8 = 5
    public static let sequenceParameterSet: UInt8 = 7
    public static let pictureParameterSet: UInt8 = 8

    /// The NAL units in an Annex B buffer, without their start codes.
    public static func nalUnits(_ data: [UInt8]) -> [ArraySlice<UInt8>] {
        var units: [ArraySlice<UInt8>] = []
        var starts: [(payload: Int, code: Int)] = []
        var index = 0
        while index + 2 < data.count {
            if data[index] == 0, data[index + 1] == 0, data[index + 2] == 1 {
                let code = index > 0 && data[index - 1] == 0 ? index - 1 : index
                starts.append((index + 3, code))
                index += 3
            } else {
                index += 1
            }
        }
        for (position, start) in starts.enumerated() {
            let end = position + 1 < starts.count ? starts[position + 1].code : data.count
            if end > start.payload { units.append(data[start.payload..<end]) }
        }
        return units
    }

    /// The type (low five bits of the first byte) of a NAL unit.
    public static func type(_ unit: ArraySlice<UInt8>) -> UInt8 { (unit.first ?? 0) & 0x1F }

    /// Whether an access unit holds an IDR slice.
    public static func isKeyframe(_ accessUnit: [UInt8]) -> Bool {
        nalUnits(accessUnit).contains { type($0) == idrSlice }
    }

    /// The SPS and PPS of an access unit, in Annex B; empty when it has none.
    public static func parameterSets(_ accessUnit: [UInt8]) -> [UInt8] {
        var result: [UInt8] = []
        for unit in nalUnits(accessUnit) where type(unit) == sequenceParameterSet || type(unit) == pictureParameterSet {
            result += [0, 0, 0, 1] + unit
        }
        return result
    }

    /// The SPS's profile, constraint flags and level (the three bytes after its NAL header, as
    /// a browser's `avc1.PPCCLL` codec string names them), from an avcC record or Annex B
    /// parameter sets; nil when there is no SPS.
    public static func profileBytes(of configuration: [UInt8]) -> [UInt8]? {
        if configuration.count >= 4, configuration[0] == 1 { return Array(configuration[1...3]) }
        guard let sps = nalUnits(configuration).first(where: { type($0) == sequenceParameterSet }), sps.count >= 4 else { return nil }
        return Array(sps.dropFirst().prefix(3))
    }

    /// An access unit as MP4 stores it (each NAL unit after a 4-byte big-endian length) in
    /// Annex B (each after a start code), the form the rest of the system carries.
    public static func annexB(lengthPrefixed data: [UInt8]) -> [UInt8] {
        var result: [UInt8] = []
        result.reserveCapacity(data.count + 16)
        var index = 0
        while index + 4 <= data.count {
            let length = Int(data[index]) << 24 | Int(data[index + 1]) << 16 | Int(data[index + 2]) << 8 | Int(data[index + 3])
            index += 4
            guard length > 0, index + length <= data.count else { break }
            result += [0, 0, 0, 1]
            result += data[index..<(index + length)]
            index += length
        }
        return result
    }
}
