import Testing
@testable import Imaging

/// Every PNG colour type and bit depth, with and without Adam7 interlacing and transparency.
/// Expected pixels come from scripts/make_imaging_fixtures.py (computed from the written sample
/// values; 8-bit and low-bit files also cross-checked against Pillow there).
@Suite("PNG decoding")
struct PNGDecodingTests {
    static let fixtures = FixtureManifest.shared.png

    @Test("decodes to the expected RGB", arguments: fixtures)
    func decodesExactly(fixture: FixtureManifest.Image) throws {
        let decoded = try fixture.decodeAndCompare(format: .png)
        #expect(decoded.scaleDenominator == 1)
    }

    @Test("the fixtures cover every colour type and bit depth")
    func coverage() {
        let combos = Set(Self.fixtures.compactMap { f in f.colorType.flatMap { t in f.bitDepth.map { "\(t)/\($0)" } } })
        // colour type / bit depth pairs allowed by the PNG spec
        let required = ["0/1", "0/2", "0/4", "0/8", "0/16", "2/8", "2/16", "3/1", "3/2", "3/4", "3/8",
                        "4/8", "4/16", "6/8", "6/16"]
        for pair in required { #expect(combos.contains(pair), "no fixture for colour type/bit depth \(pair)") }
        #expect(Self.fixtures.contains { $0.interlaced == true && $0.colorType == 6 })
        #expect(Self.fixtures.contains { $0.file.contains("trns") && $0.colorType == 3 })
    }

    @Test("16-bit samples are scaled with rounding, (v * 255 + 32895) >> 16")
    func sixteenBitScaling() throws {
        // png_gray16: sample (0,0) is 0 and (1,0) is 65535 by construction.
        let image = try ImageDecoder.decode(fileAt: TestFiles.fixture("png_gray16.png"))
        #expect(image.pixel(x: 0, y: 0) == (0, 0, 0))
        #expect(image.pixel(x: 1, y: 0) == (255, 255, 255))
        // 1-bit grey: 0 -> 0, 1 -> 255; 2-bit: multiples of 85.
        let bits1 = try ImageDecoder.decode(fileAt: TestFiles.fixture("png_gray1.png"))
        #expect(bits1.pixels.allSatisfy { $0 == 0 || $0 == 255 })
        let bits2 = try ImageDecoder.decode(fileAt: TestFiles.fixture("png_gray2.png"))
        #expect(bits2.pixels.allSatisfy { $0 % 85 == 0 })
        #expect(bits2.pixel(x: 1, y: 0) == (255, 255, 255))
    }

    @Test("alpha is composited on white")
    func alphaOnWhite() throws {
        // png_rgba8/16: pixel (0,0) has alpha 0, pixel (1,0) alpha max.
        for file in ["png_rgba8.png", "png_rgba16.png", "png_rgba8_interlaced.png", "png_graya8.png"] {
            let image = try ImageDecoder.decode(fileAt: TestFiles.fixture(file))
            #expect(image.pixel(x: 0, y: 0) == (255, 255, 255), "\(file): transparent pixel is not white")
        }
        // Palette entry 0 has alpha 0 in the tRNS fixtures; pixel (0,0) uses it.
        for file in ["png_palette8_trns.png", "png_palette4_trns.png", "png_palette8_trns_interlaced.png"] {
            let image = try ImageDecoder.decode(fileAt: TestFiles.fixture(file))
            #expect(image.pixel(x: 0, y: 0) == (255, 255, 255), "\(file)")
        }
    }

    @Test("PNG eXIf orientation is applied")
    func exifOrientation() throws {
        try expectRotatedClockwise("png_exif_orientation6.png", storedWidth: 6, storedHeight: 4)
    }

    @Test("minimumSide reduces a PNG only when both sides stay >= 2 x minimumSide")
    func minimumSideReducesOnlyLargeImages() throws {
        let path = TestFiles.fixture("png_rgb8.png")  // 13 x 9
        let exact = try ImageDecoder.decodeDetailed(fileAt: path, options: DecodeOptions(minimumSide: 3))
        #expect(exact.image.width == 13 && exact.image.height == 9 && exact.reductionFactor == 1 && exact.scaleDenominator == 1)
        let reduced = try ImageDecoder.decodeDetailed(fileAt: path, options: DecodeOptions(minimumSide: 2))
        #expect(reduced.image.width == 7 && reduced.image.height == 5 && reduced.reductionFactor == 2)
    }

    @Test("bytes and file decoding agree")
    func bytesEqualFile() throws {
        let path = TestFiles.fixture("png_rgb16_interlaced.png")
        let fromFile = try ImageDecoder.decode(fileAt: path)
        let fromBytes = try ImageDecoder.decode(bytes: TestFiles.bytes(path), name: "body")
        #expect(fromFile == fromBytes)
    }
}
