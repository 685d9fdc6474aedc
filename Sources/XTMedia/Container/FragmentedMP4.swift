// Just enough of the ISO base media file format to tell how much of a fragmented MP4 is whole:
// a recorder killed mid-write leaves `ftyp moov (moof mdat)* <torn tail>`, and the tail must be
// cut off before the file is played or appended to. Only top-level box headers are read.
import Foundation

/// Top-level structure of fragmented MP4 files.
public enum FragmentedMP4 {
    /// What a file holds, whole.
    public struct Structure: Sendable, Equatable {
        /// Bytes up to the end of the last whole fragment (or of the header when no fragment is whole).
        public var completeLength: Int
        /// Whole moof+mdat pairs.
        public var fragments: Int
        /// The file's size: more than `completeLength` when it ends in a torn box.
        public var fileLength: Int
        /// `ftyp` and `moov` are both there and whole.
        public var hasHeader: Bool
        /// Bytes up to the end of `moov` (the init segment, `ftyp moov`); 0 without a header.
        public var headerLength = 0
    }

    /// Reads the top-level boxes of `path`.
    /// - Throws: ``MediaError`` when the file cannot be opened.
    public static func structure(of path: String) throws(MediaError) -> Structure {
        let descriptor = open(path, O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else { throw .posix(.io, "cannot open \(path)") }
        defer { close(descriptor) }
        let fileLength = Int(lseek(descriptor, 0, SEEK_END))
        var offset = 0
        var sawType = false, sawMovie = false, pendingFragment = false
        var complete = 0, fragments = 0, headerLength = 0
        var header = [UInt8](repeating: 0, count: 16)
        while offset + 8 <= fileLength {
            let count = header.withUnsafeMutableBytes { pread(descriptor, $0.baseAddress, 16, off_t(offset)) }
            guard count >= 8 else { break }
            var size = Int(header[0]) << 24 | Int(header[1]) << 16 | Int(header[2]) << 8 | Int(header[3])
            let type = String(decoding: header[4..<8], as: UTF8.self)
            if size == 1 {  // 64-bit size follows
                guard count >= 16 else { break }
                size = header[8..<16].reduce(0) { $0 << 8 | Int($1) }
            } else if size == 0 {
                size = fileLength - offset  // runs to the end of the file
            }
            guard size >= 8, size <= fileLength - offset else { break }  // the torn tail (or a size no file has)
            offset += size
            switch type {
            case "ftyp": sawType = true
            case "moov":
                sawMovie = true
                if sawType {
                    complete = offset
                    headerLength = offset
                }
            case "moof": pendingFragment = true
            case "mdat" where pendingFragment:
                pendingFragment = false
                fragments += 1
                complete = offset
            case "mfra", "free", "skip", "styp", "sidx", "udta", "meta":
                if !pendingFragment, sawMovie { complete = offset }
            default: continue
            }
        }
        return Structure(completeLength: sawType && sawMovie ? complete : 0, fragments: fragments, fileLength: fileLength,
                         hasHeader: sawType && sawMovie, headerLength: sawType && sawMovie ? headerLength : 0)
    }

    /// Cuts a torn tail off `path`; returns what remains.
    /// - Throws: ``MediaError`` when the file cannot be read or cut.
    @discardableResult
    public static func repair(_ path: String) throws(MediaError) -> Structure {
        var found = try structure(of: path)
        if found.completeLength < found.fileLength {
            guard truncate(path, off_t(found.completeLength)) == 0 else { throw .posix(.io, "cannot cut the torn end off \(path)") }
            found.fileLength = found.completeLength
        }
        return found
    }
}
