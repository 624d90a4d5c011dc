/// A decoded image with what the file declared and how it was decoded.
public struct DecodedImage: Sendable, Equatable {
    /// The pixels, EXIF orientation applied when requested.
    public let image: RGBImage
    public let format: ImageFormat
    /// Size declared in the file header, before DCT scaling and orientation.
    public let sourceWidth: Int
    public let sourceHeight: Int
    /// The JPEG was decoded at 1/scaleDenominator of its size (1, 2, 4 or 8; always 1 for PNG).
    public let scaleDenominator: Int
    /// The decoded rows were box-reduced by this integer factor (after DCT scaling; 1 = not
    /// reduced): see `DecodeOptions.minimumSide`.
    public let reductionFactor: Int
    /// Peak bytes the decode held at once: its own buffers and, for PNG, every libpng allocation.
    /// libjpeg's internals are not counted (they are bounded by `DecodeOptions.maxWorkingBytes`).
    public let peakDecodeBytes: Int
    /// EXIF orientation tag found in the file (1...8; 1 when absent or invalid).
    public let orientation: Int
    /// Whether `image` was rotated/flipped according to `orientation`.
    public let orientationApplied: Bool
}
