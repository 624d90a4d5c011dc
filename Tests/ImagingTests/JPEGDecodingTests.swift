import Testing
@testable import Imaging

/// JPEG decoding against Pillow's decode of the same files (both use libjpeg-turbo's default
/// islow IDCT and fancy upsampling, so equality is expected and tolerance 0 is used).
@Suite("JPEG decoding")
struct JPEGDecodingTests {
    static let plain = FixtureManifest.shared.jpeg.filter { $0.orientation == nil && $0.scaleDenominator == nil }
    static let oriented = FixtureManifest.shared.jpeg.filter { $0.orientation != nil }

    @Test("baseline, progressive, grey, CMYK and YCCK equal Pillow", arguments: plain)
    func equalsPillow(fixture: FixtureManifest.Image) throws {
        let decoded = try fixture.decodeAndCompare(format: .jpeg)
        #expect(decoded.scaleDenominator == 1 && decoded.orientation == 1)
    }

    @Test("the JPEG fixtures include every required kind")
    func coverage() {
        let files = Set(FixtureManifest.shared.jpeg.map(\.file))
        for file in ["jpeg_baseline.jpg", "jpeg_progressive.jpg", "jpeg_gray.jpg", "jpeg_cmyk_adobe.jpg",
                     "jpeg_ycck_adobe.jpg", "jpeg_643x481.jpg"] {
            #expect(files.contains(file), "\(file) missing: rerun scripts/make_imaging_fixtures.py")
        }
        #expect(Self.oriented.count == 16)
    }

    @Test("greyscale is replicated into R, G and B")
    func greyReplicated() throws {
        let image = try ImageDecoder.decode(fileAt: TestFiles.fixture("jpeg_gray.jpg"))
        for i in stride(from: 0, to: image.pixels.count, by: 3) {
            #expect(image.pixels[i] == image.pixels[i + 1] && image.pixels[i] == image.pixels[i + 2])
        }
        #expect(Set(image.pixels).count > 20)  // a real gradient, not a flat fill
    }

    @Test("Adobe CMYK and YCCK inks convert like Pillow's convert('RGB')", arguments: ["jpeg_cmyk_adobe.jpg", "jpeg_ycck_adobe.jpg"])
    func cmykInks(file: String) throws {
        let fixture = try FixtureManifest.shared.jpeg(file)
        let inks = try #require(fixture.inks)
        // rgb = (255 - k) * (255 - ink) / 255; 3 levels of slack for the lossy round trip.
        func expectInks(_ image: RGBImage, blockSide: Int, _ label: String) {
            for (block, ink) in inks.enumerated() {
                let want = ink[0..<3].map { (255 - ink[3]) * (255 - $0) / 255 }
                let got = image.pixel(x: block * blockSide + blockSide / 2, y: image.height / 2)
                let diffs = zip([got.r, got.g, got.b].map(Int.init), want).map { abs($0 - $1) }
                #expect(diffs.max()! <= 3, "\(label) ink \(ink): got \(got), want \(want)")
            }
        }
        let image = try ImageDecoder.decode(fileAt: TestFiles.fixture(file))
        #expect(image.width == 64 && image.height == 8)
        expectInks(image, blockSide: 8, file)
        // The 4-channel path also works DCT-scaled: at 1/8 every 8x8 ink block is one pixel.
        let scaled = try ImageDecoder.decodeDetailed(fileAt: TestFiles.fixture(file), options: DecodeOptions(minimumSide: 1))
        #expect(scaled.scaleDenominator == 8 && scaled.image.width == 8 && scaled.image.height == 1)
        expectInks(scaled.image, blockSide: 1, "\(file) at 1/8")
    }

    @Test("all 8 EXIF orientations, both byte orders", arguments: oriented)
    func orientation(fixture: FixtureManifest.Image) throws {
        let value = try #require(fixture.orientation)
        let path = TestFiles.fixture(fixture.file)
        // Equal to Pillow's ImageOps.exif_transpose of its own decode.
        let decoded = try fixture.decodeAndCompare(format: .jpeg)
        #expect(decoded.orientation == value)
        #expect(decoded.orientationApplied == (value != 1))
        let swapped = value >= 5
        #expect(decoded.image.width == (swapped ? 2 : 3) && decoded.image.height == (swapped ? 3 : 2))

        // Where the stored top-left (red) and bottom-right (cyan) pixels must end up.
        let redAt: [Int: (Int, Int)] = [1: (0, 0), 2: (2, 0), 3: (2, 1), 4: (0, 1),
                                        5: (0, 0), 6: (1, 0), 7: (1, 2), 8: (0, 2)]
        let cyanAt: [Int: (Int, Int)] = [1: (2, 1), 2: (0, 1), 3: (0, 0), 4: (2, 0),
                                         5: (1, 2), 6: (0, 2), 7: (0, 0), 8: (1, 0)]
        func near(_ p: (r: UInt8, g: UInt8, b: UInt8), _ q: (Int, Int, Int)) -> Bool {
            abs(Int(p.r) - q.0) <= 8 && abs(Int(p.g) - q.1) <= 8 && abs(Int(p.b) - q.2) <= 8
        }
        let red = redAt[value]!, cyan = cyanAt[value]!
        #expect(near(decoded.image.pixel(x: red.0, y: red.1), (255, 0, 0)), "\(fixture.file): red corner misplaced")
        #expect(near(decoded.image.pixel(x: cyan.0, y: cyan.1), (0, 255, 255)), "\(fixture.file): cyan corner misplaced")

        // Opting out keeps the stored layout.
        let raw = try ImageDecoder.decodeDetailed(fileAt: path, options: DecodeOptions(applyExifOrientation: false))
        #expect(raw.image.width == 3 && raw.image.height == 2 && raw.orientation == value && !raw.orientationApplied)
        #expect(near(raw.image.pixel(x: 0, y: 0), (255, 0, 0)))
    }

    @Test("DCT scaling picks the smallest scale keeping both sides >= minimumSide",
          arguments: [(nil, 1, 643, 481), (0, 1, 643, 481), (1, 8, 81, 61), (60, 8, 81, 61), (61, 8, 81, 61),
                      (62, 4, 161, 121), (121, 4, 161, 121), (122, 2, 322, 241), (241, 2, 322, 241),
                      (242, 1, 643, 481), (5000, 1, 643, 481)] as [(Int?, Int, Int, Int)])
    func dctScale(minimumSide: Int?, denominator: Int, width: Int, height: Int) throws {
        let decoded = try ImageDecoder.decodeDetailed(fileAt: TestFiles.fixture("jpeg_643x481.jpg"),
                                                      options: DecodeOptions(minimumSide: minimumSide, boxReduction: false))
        #expect(decoded.scaleDenominator == denominator)
        #expect(decoded.image.width == width && decoded.image.height == height)
        #expect(decoded.sourceWidth == 643 && decoded.sourceHeight == 481)
    }

    @Test("the 1/8 DCT-scaled decode equals Pillow's draft mode")
    func draftEqualsPillow() throws {
        let fixture = try FixtureManifest.shared.jpeg("jpeg_643x481.jpg")
        let decoded = try fixture.decodeAndCompare(format: .jpeg, options: DecodeOptions(minimumSide: 61))
        #expect(decoded.scaleDenominator == fixture.scaleDenominator)
    }

    @Test("a centre-crop preprocessor decodes large JPEGs at reduced scale")
    func preprocessorDecodeOptions() throws {
        // 643x481 with minimum side 256: 1/2 gives 322x241 (< 256), so full size is needed.
        let decoded = try ImageDecoder.decodeDetailed(fileAt: TestFiles.fixture("jpeg_643x481.jpg"),
                                                      options: Preprocessor(.tensorFlowEval(size: 224)).decodeOptions)
        #expect(decoded.scaleDenominator == 1)
        // For a 112 input the minimum side is 144, and 1/2 (322x241) suffices.
        let small = try ImageDecoder.decodeDetailed(fileAt: TestFiles.fixture("jpeg_643x481.jpg"),
                                                    options: Preprocessor(.tensorFlowEval(size: 112)).decodeOptions)
        #expect(small.scaleDenominator == 2)
    }
}
