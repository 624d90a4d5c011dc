import Testing
@testable import Imaging

/// HEIC through libheif (Debian's 1.15 with libde265): the primary image, alpha on white, the
/// container's rotation (irot) applied by libheif, box reduction after the full-size decode, the
/// memory bound and the refusals. Expected pixels: pillow-heif's decode (its own libheif and
/// libde265), see scripts/make_imaging_fixtures.py.
@Suite("HEIF decoding")
struct HEIFDecodingTests {
    static let fixtures = FixtureManifest.shared.heif

    @Test("decodes to the expected RGB", arguments: fixtures)
    func decodesAsExpected(fixture: FixtureManifest.Image) throws {
        let decoded = try fixture.decodeAndCompare(format: .heif)
        // The container's transforms are applied by libheif: nothing is left for the EXIF path.
        #expect(decoded.orientation == 1 && !decoded.orientationApplied)
        #expect(decoded.scaleDenominator == 1 && decoded.reductionFactor == 1)
    }

    @Test("the fixtures cover colour, alpha and a rotated image")
    func coverage() {
        #expect(Set(Self.fixtures.map(\.file)) == ["heic_rgb.heic", "heic_alpha.heic", "heic_irot.heic"])
    }

    @Test("irot turns the stored 48 x 32 quadrants clockwise")
    func rotationFromTheContainer() throws {
        let image = try ImageDecoder.decode(fileAt: TestFiles.fixture("heic_irot.heic"))
        #expect(image.width == 32 && image.height == 48)
        // Stored: red, green over yellow, magenta. Clockwise: yellow, red over magenta, green.
        func near(_ p: (UInt8, UInt8, UInt8), _ q: (Int, Int, Int)) -> Bool {
            abs(Int(p.0) - q.0) <= 6 && abs(Int(p.1) - q.1) <= 6 && abs(Int(p.2) - q.2) <= 6
        }
        #expect(near(image.pixel(x: 4, y: 4), (255, 255, 0)), "\(image.pixel(x: 4, y: 4))")
        #expect(near(image.pixel(x: 27, y: 4), (255, 0, 0)), "\(image.pixel(x: 27, y: 4))")
        #expect(near(image.pixel(x: 4, y: 43), (255, 0, 255)), "\(image.pixel(x: 4, y: 43))")
        #expect(near(image.pixel(x: 27, y: 43), (0, 255, 0)), "\(image.pixel(x: 27, y: 43))")
    }

    @Test("box reduction equals the box mean of the exact decode, and the estimate agrees")
    func boxReductionAndEstimate() throws {
        let path = TestFiles.fixture("heic_rgb.heic")  // 32 x 24
        let exact = try ImageDecoder.decode(fileAt: path)
        let options = DecodeOptions(minimumSide: 4)
        let reduced = try ImageDecoder.decodeDetailed(fileAt: path, options: options)
        #expect(reduced.reductionFactor == 3)  // floor(24 / 8)
        #expect(reduced.image == BoundedDecodeTests.boxReduced(exact, factor: 3))
        let bytes = try TestFiles.bytes(path)
        let estimate = try bytes.withUnsafeBytes { try ImageDecoder.estimate(bytes: $0, name: path, options: options) }
        #expect(estimate.width == 11 && estimate.height == 8 && estimate.reductionFactor == 3)
        #expect(estimate.decoderBytes >= reduced.peakDecodeBytes, "\(estimate) vs peak \(reduced.peakDecodeBytes)")
    }

    @Test("an image needing more than the decoder memory limit is refused before decoding, said in the error")
    func overWorkingLimit() throws {
        let path = TestFiles.fixture("heic_rgb.heic")
        let error = thrownError { _ = try ImageDecoder.decode(fileAt: path, options: DecodeOptions(maxWorkingBytes: 1 << 20)) }
        guard case .outOfMemory(let errorPath, let reason) = error else { Issue.record("got \(String(describing: error))"); return }
        #expect(errorPath == path)
        #expect(reason.contains("HEIF image of 32x24") && reason.contains("decoder memory limit of 1048576 bytes"), "\(reason)")
    }

    /// libheif 1.15 takes the size from the HEVC parameter sets, not from the ispe box, so a bomb
    /// cannot be made by patching a header field; the limit is shown to act on the header instead.
    @Test("the pixel limit is checked on the header, by decode and estimate alike")
    func pixelLimitOnTheHeader() throws {
        let path = TestFiles.fixture("heic_rgb.heic")
        let expected = ImagingError.tooLarge(path: path, width: 32, height: 24, limit: 700)
        expectError(expected) { _ = try ImageDecoder.decode(fileAt: path, options: DecodeOptions(maxPixels: 700)) }
        let bytes = try TestFiles.bytes(path)
        expectError(expected) {
            _ = try bytes.withUnsafeBytes { try ImageDecoder.estimate(bytes: $0, name: path, options: DecodeOptions(maxPixels: 700)) }
        }
        #expect(try ImageDecoder.decode(fileAt: path, options: DecodeOptions(maxPixels: 768)).width == 32)
    }

    @Test("a truncated file is refused with libheif's reason")
    func truncatedRefused() throws {
        let path = TestFiles.fixture("heic_truncated.heic")
        let error = thrownError { _ = try ImageDecoder.decode(fileAt: path) }
        guard case .corrupt(let errorPath, .heif, let reason) = error else { Issue.record("got \(String(describing: error))"); return }
        #expect(errorPath == path && !reason.isEmpty)
    }
}
