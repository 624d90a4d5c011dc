import Foundation

/// Common file kinds told apart by their first bytes, so a wrong file given as a head is named for
/// what it is ("photo.jpg is a JPEG image") rather than failing deep in the safetensors parser.
enum KnownFileKind: String, CaseIterable {
    case jpeg = "a JPEG image", png = "a PNG image", gif = "a GIF image", webp = "a WebP image", tiff = "a TIFF image"
    case heif = "a HEIC/HEIF image", bmp = "a BMP image", pdf = "a PDF document", zip = "a ZIP archive", gzip = "a gzip file"
    case json = "a JSON or text file"

    var description: String { rawValue }

    /// The kind `path` starts like, nil when it is none of these (or unreadable: the caller reports that).
    static func sniff(path: String) -> KnownFileKind? {
        guard let handle = FileHandle(forReadingAtPath: path) else { return nil }
        defer { try? handle.close() }
        guard let head = try? handle.read(upToCount: 16), let size = try? handle.seekToEnd() else { return nil }
        return sniff([UInt8](head), fileSize: size)
    }

    static func sniff(_ b: [UInt8], fileSize: UInt64) -> KnownFileKind? {
        // A safetensors file: an 8-byte little-endian header length that fits the file, then "{". Some
        // magic numbers (BMP's "BM", gzip's 1F 8B) could also be the low bytes of such a length.
        if b.count >= 9, b[8] == UInt8(ascii: "{") {
            let declared = b[0..<8].reversed().reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
            if declared <= fileSize - 8 { return nil }
        }
        func starts(_ prefix: [UInt8], at offset: Int = 0) -> Bool {
            b.count >= offset + prefix.count && Array(b[offset..<(offset + prefix.count)]) == prefix
        }
        if starts([0xFF, 0xD8, 0xFF]) { return .jpeg }
        if starts([0x89, 0x50, 0x4E, 0x47]) { return .png }
        if starts(Array("GIF8".utf8)) { return .gif }
        if starts(Array("RIFF".utf8)), starts(Array("WEBP".utf8), at: 8) { return .webp }
        if starts([0x49, 0x49, 0x2A, 0x00]) || starts([0x4D, 0x4D, 0x00, 0x2A]) { return .tiff }
        if starts(Array("ftyp".utf8), at: 4) { return .heif }
        if starts(Array("BM".utf8)) { return .bmp }
        if starts(Array("%PDF".utf8)) { return .pdf }
        if starts([0x50, 0x4B, 0x03, 0x04]) { return .zip }
        if starts([0x1F, 0x8B]) { return .gzip }
        if let first = b.first, first == UInt8(ascii: "{") || first == UInt8(ascii: "[") { return .json }
        return nil
    }
}
