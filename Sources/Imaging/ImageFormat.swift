/// The container formats the decoder reads, recognised by their magic bytes.
public enum ImageFormat: String, Sendable, Equatable, CaseIterable {
    case jpeg = "JPEG"
    case png = "PNG"
    case webp = "WebP"
    case tiff = "TIFF"
    case heif = "HEIF"

    /// "JPEG, PNG, WebP, TIFF or HEIF", for messages about what is decoded.
    public static let decodedList: String = {
        let names = allCases.map(\.rawValue)
        return names.dropLast().joined(separator: ", ") + " or " + names.last!
    }()

    /// Recognises JPEG (FF D8 FF), PNG (its 8-byte signature), WebP ("RIFF", size, "WEBP") and TIFF
    /// ("II*\0" or "MM\0*"; BigTIFF, 43, is not read) and HEIF (an "ftyp" box whose major brand is
    /// HEVC-coded HEIF or the generic "mif1"/"msf1", which libheif then reads or refuses).
    static func detect(_ bytes: UnsafeRawBufferPointer) -> ImageFormat? {
        if bytes.starts(with: [0xFF, 0xD8, 0xFF]) { return .jpeg }
        if bytes.starts(with: [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]) { return .png }
        if bytes.count >= 12, bytes.starts(with: Array("RIFF".utf8)), bytes[8..<12].elementsEqual("WEBP".utf8) { return .webp }
        if bytes.starts(with: [0x49, 0x49, 0x2A, 0x00]) || bytes.starts(with: [0x4D, 0x4D, 0x00, 0x2A]) { return .tiff }
        if bytes.count >= 12, bytes[4..<8].elementsEqual("ftyp".utf8),
           heifBrands.contains(String(decoding: bytes[8..<12], as: UTF8.self)) { return .heif }
        return nil
    }

    /// Major brands of HEIF files with HEVC images (ISO/IEC 23008-12 Annex B) and the generic ones.
    static let heifBrands: Set<String> = ["heic", "heix", "heim", "heis", "hevc", "hevx", "hevm", "hevs", "mif1", "msf1"]
}
