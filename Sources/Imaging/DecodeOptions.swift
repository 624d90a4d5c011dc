/// Limits and choices for decoding.
public struct DecodeOptions: Sendable, Equatable {
    /// Refuse images whose header declares more pixels than this (decompression bombs). The
    /// check runs on the header, before any pixel buffer is allocated, and applies to the
    /// declared size even when DCT scaling would decode fewer pixels.
    public var maxPixels: Int = DecodeOptions.defaultMaxPixels
    /// JPEG draft mode: decode at the smallest DCT scale (1/8, 1/4, 1/2, 1/1) that keeps both
    /// output sides >= this. nil or 0 decodes at full size. Ignored for PNG.
    public var minimumSide: Int? = nil
    /// Rotate/flip according to the EXIF orientation tag (JPEG APP1 Exif, PNG eXIf).
    public var applyExifOrientation = true
    /// Refuse files larger than this many bytes before reading them into memory.
    public var maxFileBytes: Int = DecodeOptions.defaultMaxFileBytes

    /// 100 megapixels: larger than any camera photo in common use, small enough that the RGB
    /// buffer (300 MB) cannot take the machine down.
    public static let defaultMaxPixels = 100_000_000
    /// 256 MiB.
    public static let defaultMaxFileBytes = 256 << 20

    public init(maxPixels: Int = DecodeOptions.defaultMaxPixels, minimumSide: Int? = nil,
                applyExifOrientation: Bool = true, maxFileBytes: Int = DecodeOptions.defaultMaxFileBytes) {
        self.maxPixels = maxPixels
        self.minimumSide = minimumSide
        self.applyExifOrientation = applyExifOrientation
        self.maxFileBytes = maxFileBytes
    }
}
