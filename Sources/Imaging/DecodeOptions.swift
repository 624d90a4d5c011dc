/// Limits and choices for decoding.
public struct DecodeOptions: Sendable, Equatable {
    /// Refuse images whose header declares more pixels than this (decompression bombs). The
    /// check runs on the header, before any pixel buffer is allocated, and applies to the
    /// declared size even when DCT scaling would decode fewer pixels.
    public var maxPixels: Int = DecodeOptions.defaultMaxPixels
    /// The smallest side the caller needs. JPEG draft mode: decode at the smallest DCT scale (1/8,
    /// 1/4, 1/2, 1/1) that keeps both output sides >= this. Then, JPEG and PNG alike, rows are
    /// box-reduced as they are decoded by the largest integer factor that keeps both sides >= 2x
    /// this (Pillow's `reducing_gap = 2`), so a large image is never held at full size; the exact
    /// resampler does the rest. WebP is decoded by libwebp's scaler straight to that reduced size;
    /// HEIF is decoded at full size by libheif (bounded by `maxWorkingBytes`), then reduced. Images whose shorter side (after DCT scaling) is below 4x this are
    /// not reduced. nil or 0 decodes at full size.
    public var minimumSide: Int? = nil
    /// false: never box-reduce, whatever the size (JPEG DCT scaling still follows `minimumSide`);
    /// the decode then holds the whole image. For comparisons, not for untrusted input.
    public var boxReduction = true
    /// Rotate/flip according to the EXIF orientation tag (JPEG APP1 Exif, PNG eXIf, WebP EXIF chunk)
    /// or TIFF's own Orientation tag (274). HEIF's rotation and mirroring boxes are always applied.
    public var applyExifOrientation = true
    /// Refuse files larger than this many bytes before reading them into memory.
    public var maxFileBytes: Int = DecodeOptions.defaultMaxFileBytes
    /// The most the library may allocate for its own buffers, checked from the header. A baseline
    /// JPEG needs a few rows; a progressive one keeps every DCT coefficient until the last scan (2
    /// bytes per sample, about 3 bytes per pixel at 4:2:0), so this bounds progressive files to
    /// roughly a third of it in pixels. A lossless WebP keeps its ARGB pixels (4 bytes each); a TIFF
    /// needs one strip or row of tiles decoded plus its RGBA band (a page written as one strip: about
    /// 7 bytes per pixel); HEIF its full-size planes and RGB (about 6 bytes per pixel). Past it the
    /// decode fails with `.outOfMemory` before allocating.
    public var maxWorkingBytes: Int = DecodeOptions.defaultMaxWorkingBytes

    /// 100 megapixels: larger than any camera photo in common use, small enough that the RGB
    /// buffer (300 MB) cannot take the machine down.
    public static let defaultMaxPixels = 100_000_000
    /// 256 MiB.
    public static let defaultMaxFileBytes = 256 << 20
    /// 160 MiB: a progressive 4:2:0 JPEG of about 55 megapixels.
    public static let defaultMaxWorkingBytes = 160 << 20

    public init(maxPixels: Int = DecodeOptions.defaultMaxPixels, minimumSide: Int? = nil, boxReduction: Bool = true,
                applyExifOrientation: Bool = true, maxFileBytes: Int = DecodeOptions.defaultMaxFileBytes,
                maxWorkingBytes: Int = DecodeOptions.defaultMaxWorkingBytes) {
        self.maxPixels = maxPixels
        self.minimumSide = minimumSide
        self.boxReduction = boxReduction
        self.applyExifOrientation = applyExifOrientation
        self.maxFileBytes = maxFileBytes
        self.maxWorkingBytes = maxWorkingBytes
    }
}
