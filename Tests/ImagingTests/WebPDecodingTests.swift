import Testing
@testable import Imaging

/// WebP through libwebp: lossy, lossless, alpha, animations (first frame, also one inside a larger
/// canvas), EXIF orientation, decoding straight at a reduced size, and the refusals. Expected pixels
/// come from scripts/make_imaging_fixtures.py (written pixels for lossless files, Pillow's decode for
/// lossy ones).
@Suite("WebP decoding")
struct WebPDecodingTests {
    static let fixtures = FixtureManifest.shared.webp

    @Test("decodes to the expected RGB", arguments: fixtures)
    func decodesAsExpected(fixture: FixtureManifest.Image) throws {
        if fixture.lossless == true { #expect(fixture.tolerance == 0) }
        let decoded = try fixture.decodeAndCompare(format: .webp, options: DecodeOptions(minimumSide: fixture.minimumSide))
        #expect(decoded.scaleDenominator == (fixture.scaleDenominator ?? 1))
        #expect(decoded.reductionFactor == 1)
        if fixture.minimumSide != nil {
            // Scaled in YUV by libwebp against Pillow's RGB reduce(): far apart only at sharp edges.
            let difference = PixelDifference(decoded.image.pixels, try fixture.expected().pixels)
            #expect(difference.meanAbs < 2, "\(difference)")
        }
    }

    @Test("the fixtures cover lossy, lossless, alpha, animation and orientation")
    func coverage() {
        let files = Set(Self.fixtures.map(\.file))
        for name in ["webp_lossy.webp", "webp_lossless.webp", "webp_lossless_alpha.webp", "webp_lossy_alpha.webp",
                     "webp_animated.webp", "webp_animated_offset_frame.webp", "webp_exif_orientation6.webp"] {
            #expect(files.contains(name), "no fixture \(name)")
        }
    }

    @Test("EXIF orientation from the RIFF EXIF chunk is applied")
    func exifOrientation() throws {
        try expectRotatedClockwise("webp_exif_orientation6.webp", storedWidth: 6, storedHeight: 4)
    }

    @Test("a 4000 x 3000 WebP is decoded straight at 1/6, never at full size, and the estimate agrees")
    func scaledDecodeIsBounded() throws {
        let path = TestFiles.fixture("webp_flat_4000x3000.webp")
        let options = DecodeOptions(minimumSide: 224)
        let decoded = try ImageDecoder.decodeDetailed(fileAt: path, options: options)
        // floor(3000 / 448) = 6: ceil(4000 / 6) x ceil(3000 / 6), both sides >= 2 x 224.
        #expect(decoded.scaleDenominator == 6 && decoded.reductionFactor == 1)
        #expect(decoded.image.width == 667 && decoded.image.height == 500)
        #expect(decoded.sourceWidth == 4000 && decoded.sourceHeight == 3000)
        // libwebp's scaler averages like the box reduction of the full-size decode (in YUV, so not exactly).
        let exact = try ImageDecoder.decodeDetailed(fileAt: path, options: DecodeOptions(minimumSide: 224, boxReduction: false))
        #expect(exact.image.width == 4000 && exact.scaleDenominator == 1)
        let difference = PixelDifference(decoded.image.pixels, BoundedDecodeTests.boxReduced(exact.image, factor: 6).pixels)
        #expect(difference.maxAbs <= 8 && difference.meanAbs < 1, "\(difference)")
        // Only the scaled output is ours: 1 MB instead of 36 MB of full-size RGB.
        #expect(decoded.peakDecodeBytes == 667 * 500 * 3, "peak \(decoded.peakDecodeBytes)")
        let bytes = try TestFiles.bytes(path)
        let estimate = try bytes.withUnsafeBytes { try ImageDecoder.estimate(bytes: $0, name: path, options: options) }
        #expect(estimate.width == 667 && estimate.height == 500 && estimate.sourceWidth == 4000)
        #expect(estimate.decoderBytes >= decoded.peakDecodeBytes)
        #expect(estimate.decoderBytes < 3_000_000, "estimate \(estimate.decoderBytes)")
    }

    @Test("a declared 16383 x 16383 canvas is refused from the header, by decode and estimate alike")
    func bombRefused() throws {
        let path = TestFiles.fixture("webp_bomb_16383x16383.webp")
        let expected = ImagingError.tooLarge(path: path, width: 16383, height: 16383, limit: DecodeOptions.defaultMaxPixels)
        expectError(expected) { _ = try ImageDecoder.decode(fileAt: path) }
        let bytes = try TestFiles.bytes(path)
        expectError(expected) { _ = try bytes.withUnsafeBytes { try ImageDecoder.estimate(bytes: $0, name: path) } }
    }

    @Test("a lossless WebP whose ARGB pixels exceed the decoder memory limit is refused before decoding")
    func losslessOverWorkingLimit() throws {
        let path = TestFiles.fixture("webp_lossless.webp")
        let error = thrownError { _ = try ImageDecoder.decode(fileAt: path, options: DecodeOptions(maxWorkingBytes: 1 << 20)) }
        guard case .outOfMemory(let errorPath, let reason) = error else { Issue.record("got \(String(describing: error))"); return }
        #expect(errorPath == path)
        #expect(reason.contains("lossless WebP of 13x9") && reason.contains("decoder memory limit of 1048576 bytes"), "\(reason)")
    }

    @Test("truncated and damaged files are refused with the reason", arguments: [
        ("webp_truncated.webp", "unexpected end of data"),
        ("webp_partition_overflow.webp", ""),
        ("webp_lossless_damaged.webp", ""),
    ])
    func corruptRefused(file: String, reason: String) throws {
        let path = TestFiles.fixture(file)
        let error = thrownError { _ = try ImageDecoder.decode(fileAt: path) }
        guard case .corrupt(let errorPath, .webp, let message) = error else { Issue.record("\(file): got \(String(describing: error))"); return }
        #expect(errorPath == path && !message.isEmpty)
        if !reason.isEmpty { #expect(message.contains(reason), "\(message)") }
        #expect(error?.errorDescription?.hasPrefix("\(path): truncated or corrupt WebP (") == true)
    }
}
