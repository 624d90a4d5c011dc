/// EXIF orientation (TIFF tag 0x0112): how the stored pixels must be transformed for display.
/// The transforms match Pillow's `ImageOps.exif_transpose`.
enum ExifOrientation: Int, Sendable, CaseIterable {
    case identity = 1
    case flipLeftRight = 2
    case rotate180 = 3
    case flipTopBottom = 4
    case transpose = 5         // mirror about the main diagonal
    case rotateClockwise = 6   // Pillow ROTATE_270
    case transverse = 7        // mirror about the anti-diagonal
    case rotateCounterClockwise = 8  // Pillow ROTATE_90

    /// Whether width and height swap.
    var swapsAxes: Bool { rawValue >= 5 }

    /// Reads the orientation from TIFF-structured EXIF data (what follows "Exif\0\0" in a JPEG
    /// APP1 segment, or a PNG eXIf chunk). Returns nil when the data or tag is missing or
    /// malformed; every read is bounds-checked because the bytes come from the file.
    static func parse(tiff bytes: UnsafeRawBufferPointer) -> ExifOrientation? {
        guard bytes.count >= 8 else { return nil }
        let littleEndian: Bool
        switch (bytes[0], bytes[1]) {
        case (0x49, 0x49): littleEndian = true   // "II"
        case (0x4D, 0x4D): littleEndian = false  // "MM"
        default: return nil
        }
        func u16(_ at: Int) -> Int? {
            guard at >= 0, at + 2 <= bytes.count else { return nil }
            let a = Int(bytes[at]), b = Int(bytes[at + 1])
            return littleEndian ? a | b << 8 : a << 8 | b
        }
        func u32(_ at: Int) -> Int? {
            guard let first = u16(at), let second = u16(at + 2) else { return nil }
            return littleEndian ? first | second << 16 : first << 16 | second
        }
        guard u16(2) == 42, let ifd = u32(4), let entries = u16(ifd) else { return nil }
        for index in 0..<entries {
            let entry = ifd + 2 + index * 12
            guard let tag = u16(entry) else { return nil }
            guard tag == 0x0112 else { continue }
            // SHORT (3), count 1: the value sits in the first two bytes of the value field.
            guard u16(entry + 2) == 3, let value = u16(entry + 8) else { return nil }
            return ExifOrientation(rawValue: value)
        }
        return nil
    }

    /// Copies `source` (width x height RGB) into `destination` with this transform applied.
    /// `destination` must hold width * height * 3 bytes; its size is (height, width) when
    /// `swapsAxes`.
    func apply(source: UnsafePointer<UInt8>, width: Int, height: Int,
               destination: UnsafeMutablePointer<UInt8>) {
        if self == .identity {
            destination.update(from: source, count: width * height * 3)
            return
        }
        let outWidth = swapsAxes ? height : width
        // Destination pixel index of source (sx, sy) = origin + sx * stepX + sy * stepY.
        let origin: Int, stepX: Int, stepY: Int
        switch self {
        case .identity: (origin, stepX, stepY) = (0, 1, width)
        case .flipLeftRight: (origin, stepX, stepY) = (width - 1, -1, width)
        case .rotate180: (origin, stepX, stepY) = (width * height - 1, -1, -width)
        case .flipTopBottom: (origin, stepX, stepY) = ((height - 1) * width, 1, -width)
        case .transpose: (origin, stepX, stepY) = (0, outWidth, 1)
        case .rotateClockwise: (origin, stepX, stepY) = (height - 1, outWidth, -1)
        case .transverse: (origin, stepX, stepY) = ((width - 1) * outWidth + height - 1, -outWidth, -1)
        case .rotateCounterClockwise: (origin, stepX, stepY) = ((width - 1) * outWidth, -outWidth, 1)
        }
        var src = source
        for sy in 0..<height {
            var d = origin + sy * stepY
            for _ in 0..<width {
                let out = destination + d * 3
                out[0] = src[0]
                out[1] = src[1]
                out[2] = src[2]
                src += 3
                d += stepX
            }
        }
    }
}
