/// A decoded image with what the file declared and how it was decoded.
public struct DecodedImage: Sendable, Equatable {
    /// The pixels, EXIF orientation applied when requested.
    public let image: RGBImage
    public let format: ImageFormat
    /// Size declared in the file header, before DCT scaling and orientation.
    public let sourceWidth: Int
    public let sourceHeight: Int
    /// The library decoded at 1/scaleDenominator of the size: JPEG DCT scaling (1, 2, 4 or 8), WebP
    /// libwebp's scaler (any integer, to ceil(side / scaleDenominator)); always 1 for PNG, TIFF, HEIF.
    public let scaleDenominator: Int
    /// The decoded rows were box-reduced by this integer factor (after DCT scaling; 1 = not
    /// reduced): see `DecodeOptions.minimumSide`.
    public let reductionFactor: Int
    /// Peak bytes the decode held at once: its own buffers and, for PNG, every libpng allocation
    /// (HEIF: libheif's at their estimate). libjpeg's, libwebp's and libtiff's internals are not
    /// counted (they are bounded by `DecodeOptions.maxWorkingBytes`).
    public let peakDecodeBytes: Int
    /// EXIF orientation tag found in the file, or TIFF's Orientation tag (1...8; 1 when absent or
    /// invalid, and for HEIF, whose rotation libheif applies itself).
    public let orientation: Int
    /// Whether `image` was rotated/flipped according to `orientation`.
    public let orientationApplied: Bool
}

/// What a decode will produce and hold, known from the header (`ImageDecoder.estimate`).
public struct DecodeEstimate: Sendable, Equatable {
    /// Size declared in the header: what the decode has to read through, hence its time.
    public let sourceWidth: Int
    public let sourceHeight: Int
    /// Size of the decoded pixels (after DCT scaling and box reduction, before orientation).
    public let width: Int
    public let height: Int
    public let reductionFactor: Int
    /// Peak of the decoder's own buffers (libjpeg's and libpng's included), its output among them.
    public let decoderBytes: Int
    /// The decoded RGB image handed back (width x height x 3), held beside the decoder's output while copied.
    public var imageBytes: Int { width * height * 3 }
    /// The whole decode's peak: the decoder's buffers and the copy.
    public var peakBytes: Int { decoderBytes + imageBytes }
}
