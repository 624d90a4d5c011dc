import CImageCodecs

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// JPEG (libjpeg-turbo), PNG (libpng), WebP (libwebp), TIFF (libtiff) and HEIF/HEIC (libheif) decoding
/// to 8-bit RGB. The format is recognised by its magic bytes, never by the file extension.
///
/// Conversions: greyscale is replicated to RGB; CMYK/YCCK JPEGs are read as Adobe-inverted CMYK
/// and converted like Pillow's `convert('RGB')`; 16-bit PNG samples are scaled to 8 bits with
/// rounding, `(v * 255 + 32895) >> 16`; alpha (RGBA, grey+alpha, tRNS, WebP and TIFF alpha) is
/// composited on white, `(a * c + (255 - a) * 255) / 255` rounded. TIFF goes through libtiff's RGBA
/// conversion (palette, grey of any depth, 16-bit, CMYK, YCbCr), first page only. WebP animations
/// give their first frame. HEIF gives its primary image with the container's rotation, mirroring and
/// crop applied by libheif (HEIF does not use EXIF orientation). Truncated data is an error, never grey padding.
public enum ImageDecoder {
    /// Decodes the file at `path` to RGB.
    public static func decode(fileAt path: String, options: DecodeOptions = .init()) throws(ImagingError) -> RGBImage {
        try decodeDetailed(fileAt: path, options: options).image
    }

    /// Decodes in-memory bytes (e.g. a request body); `name` only appears in error messages.
    public static func decode(bytes: [UInt8], name: String, options: DecodeOptions = .init()) throws(ImagingError) -> RGBImage {
        try decodeDetailed(bytes: bytes, name: name, options: options).image
    }

    /// Like `decode(fileAt:options:)`, also reporting the declared size, the DCT scale and reduction used.
    public static func decodeDetailed(fileAt path: String, options: DecodeOptions = .init()) throws(ImagingError) -> DecodedImage {
        let bytes = try readFile(path, maxBytes: options.maxFileBytes)
        return try decodeDetailed(bytes: bytes, name: path, options: options)
    }

    /// Like `decode(bytes:name:options:)`, also reporting the declared size, the DCT scale and reduction used.
    public static func decodeDetailed(bytes: [UInt8], name: String, options: DecodeOptions = .init()) throws(ImagingError) -> DecodedImage {
        try bytes.withUnsafeBufferPointer { (buffer) throws(ImagingError) in
            try decodeDetailed(bytes: UnsafeRawBufferPointer(buffer), name: name, options: options)
        }
    }

    /// Decodes bytes the caller keeps alive for the duration of the call (no copy is made).
    public static func decodeDetailed(bytes: UnsafeRawBufferPointer, name: String, options: DecodeOptions = .init()) throws(ImagingError) -> DecodedImage {
        var result = hc_image()
        defer { hc_image_release(&result) }
        let format = try run(bytes: bytes, name: name, options: options, probeOnly: false, into: &result)
        return finish(result, format: format, options: options)
    }

    /// What decoding `bytes` with `options` would cost, from the header alone: every check a decode
    /// runs on the header runs here too (a bomb over the pixel limit throws the same error), nothing
    /// is decompressed.
    public static func estimate(bytes: UnsafeRawBufferPointer, name: String, options: DecodeOptions = .init()) throws(ImagingError) -> DecodeEstimate {
        var result = hc_image()
        defer { hc_image_release(&result) }
        _ = try run(bytes: bytes, name: name, options: options, probeOnly: true, into: &result)
        return DecodeEstimate(sourceWidth: Int(result.source_width), sourceHeight: Int(result.source_height),
                              width: Int(result.width), height: Int(result.height),
                              reductionFactor: Int(result.reduction_factor),
                              decoderBytes: Int(clamping: result.estimated_bytes))
    }

    private static func run(bytes: UnsafeRawBufferPointer, name: String, options: DecodeOptions, probeOnly: Bool,
                            into result: inout hc_image) throws(ImagingError) -> ImageFormat {
        if bytes.isEmpty { throw .emptyFile(path: name) }
        if bytes.count > options.maxFileBytes {
            throw .fileTooLarge(path: name, bytes: bytes.count, limit: options.maxFileBytes)
        }
        guard let format = ImageFormat.detect(bytes) else {
            throw .unsupportedFormat(path: name, leadingBytes: Array(bytes.prefix(4)))
        }
        var cOptions = hc_decode_options()
        // At least 1: the C side reads values <= 0 as "no limit", which no caller should get by accident.
        cOptions.max_pixels = Int64(clamping: max(options.maxPixels, 1))
        cOptions.minimum_side = Int32(clamping: max(options.minimumSide ?? 0, 0))
        cOptions.max_working_bytes = Int64(clamping: max(options.maxWorkingBytes, 1))
        cOptions.exact_size = options.boxReduction ? 0 : 1
        cOptions.probe_only = probeOnly ? 1 : 0
        switch format {
        case .jpeg: hc_decode_jpeg(bytes.baseAddress, bytes.count, cOptions, &result)
        case .png: hc_decode_png(bytes.baseAddress, bytes.count, cOptions, &result)
        case .webp: hc_decode_webp(bytes.baseAddress, bytes.count, cOptions, &result)
        case .tiff: hc_decode_tiff(bytes.baseAddress, bytes.count, cOptions, &result)
        case .heif: hc_decode_heif(bytes.baseAddress, bytes.count, cOptions, &result)
        }
        if probeOnly && result.status == HC_OK { return format }
        try check(result, format: format, name: name, options: options)
        return format
    }

    private static func check(_ result: hc_image, format: ImageFormat, name: String,
                              options: DecodeOptions) throws(ImagingError) {
        let reason = message(of: result)
        switch result.status {
        case HC_OK where result.pixels == nil:
            throw .corrupt(path: name, format: format, reason: "decoder returned no pixels")
        case HC_OK:
            return
        case HC_TOO_LARGE:
            throw .tooLarge(path: name, width: Int(result.source_width),
                            height: Int(result.source_height), limit: options.maxPixels)
        case HC_ZERO_SIZE:
            throw .zeroSize(path: name, format: format, width: Int(result.source_width),
                            height: Int(result.source_height))
        case HC_UNSUPPORTED:
            throw .unsupportedImage(path: name, format: format, reason: reason)
        case HC_OUT_OF_MEMORY:
            throw .outOfMemory(path: name, reason: reason)
        default:
            throw .corrupt(path: name, format: format, reason: reason)
        }
    }

    private static func message(of result: hc_image) -> String {
        withUnsafeBytes(of: result.message) { raw in
            let bytes = raw.prefix { $0 != 0 }
            return String(decoding: bytes, as: UTF8.self)
        }
    }

    /// Copies the C buffer into a Swift array, applying the orientation in the same pass.
    private static func finish(_ result: hc_image, format: ImageFormat, options: DecodeOptions) -> DecodedImage {
        let width = Int(result.width), height = Int(result.height)
        var orientation = ExifOrientation.identity
        if result.orientation != 0 {
            // The container's own tag (TIFF 274), which EXIF copies.
            orientation = ExifOrientation(rawValue: Int(result.orientation)) ?? .identity
        } else if let exif = result.exif, result.exif_size > 0 {
            orientation = ExifOrientation.parse(tiff: UnsafeRawBufferPointer(start: exif, count: result.exif_size)) ?? .identity
        }
        let transform = options.applyExifOrientation ? orientation : .identity
        let count = width * height * 3
        // `check` guarantees pixels != nil; width and height are >= 1 for a decoded image.
        let pixels = [UInt8](unsafeUninitializedCapacity: count) { buffer, initialized in
            transform.apply(source: result.pixels!, width: width, height: height, destination: buffer.baseAddress!)
            initialized = count
        }
        let image = transform.swapsAxes
            ? RGBImage(width: height, height: width, pixels: pixels)
            : RGBImage(width: width, height: height, pixels: pixels)
        return DecodedImage(image: image, format: format,
                            sourceWidth: Int(result.source_width), sourceHeight: Int(result.source_height),
                            scaleDenominator: Int(result.scale_denominator),
                            reductionFactor: Int(result.reduction_factor),
                            peakDecodeBytes: Int(result.peak_bytes),
                            orientation: orientation.rawValue,
                            orientationApplied: transform != .identity)
    }

    /// Reads a whole regular file, turning every failure into `.unreadable` with the system's
    /// reason (missing, a directory, no permission, ...).
    static func readFile(_ path: String, maxBytes: Int) throws(ImagingError) -> [UInt8] {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        if fd < 0 { throw .unreadable(path: path, reason: systemError()) }
        defer { close(fd) }
        var info = stat()
        if fstat(fd, &info) != 0 { throw .unreadable(path: path, reason: systemError()) }
        if (info.st_mode & S_IFMT) == S_IFDIR { throw .unreadable(path: path, reason: "is a directory") }
        if (info.st_mode & S_IFMT) != S_IFREG { throw .unreadable(path: path, reason: "not a regular file") }
        let size = Int(info.st_size)
        if size == 0 { throw .emptyFile(path: path) }
        if size > maxBytes { throw .fileTooLarge(path: path, bytes: size, limit: maxBytes) }

        var failure: String?
        let bytes = [UInt8](unsafeUninitializedCapacity: size) { buffer, initialized in
            var offset = 0
            while offset < size {
                let n = read(fd, buffer.baseAddress! + offset, size - offset)
                if n < 0 {
                    if errno == EINTR { continue }
                    failure = systemError()
                    break
                }
                if n == 0 { break }  // the file shrank while we read it
                offset += n
            }
            initialized = offset
        }
        if let failure { throw .unreadable(path: path, reason: failure) }
        if bytes.isEmpty { throw .emptyFile(path: path) }
        return bytes
    }

    private static func systemError() -> String {
        String(cString: strerror(errno))
    }
}
