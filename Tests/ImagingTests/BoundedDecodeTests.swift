import Testing
import TestSupport
@testable import Imaging

/// Decoding in bounded memory: rows are box-reduced as they arrive (the integer factor keeps both
/// sides >= 2 x `minimumSide`), so a decompression bomb under the pixel limit costs the reduced
/// image, not width x height x 3 bytes. The reduced pixels must equal the box mean of the exact
/// decode, and images too small to reduce must decode exactly as before.
@Suite("Bounded-memory decoding")
struct BoundedDecodeTests {
    /// The box mean Pillow's `Image.reduce(factor)` computes, from an exact decode: each output
    /// pixel is the rounded mean of its factor x factor block (smaller at the right and bottom edges).
    static func boxReduced(_ image: RGBImage, factor: Int) -> RGBImage {
        let outWidth = (image.width + factor - 1) / factor, outHeight = (image.height + factor - 1) / factor
        var pixels = [UInt8](repeating: 0, count: outWidth * outHeight * 3)
        for oy in 0..<outHeight {
            for ox in 0..<outWidth {
                let xs = (ox * factor)..<min((ox + 1) * factor, image.width)
                let ys = (oy * factor)..<min((oy + 1) * factor, image.height)
                var sums = [0, 0, 0]
                for y in ys { for x in xs { for c in 0..<3 { sums[c] += Int(image.pixels[(y * image.width + x) * 3 + c]) } } }
                let area = xs.count * ys.count
                for c in 0..<3 { pixels[(oy * outWidth + ox) * 3 + c] = UInt8((sums[c] + area / 2) / area) }
            }
        }
        return RGBImage(width: outWidth, height: outHeight, pixels: pixels)
    }

    /// A deterministic image with detail at every scale (so a wrong block boundary shows).
    static func patterned(width: Int, height: Int) -> RGBImage {
        var pixels = [UInt8](repeating: 0, count: width * height * 3)
        for y in 0..<height {
            for x in 0..<width {
                let i = (y * width + x) * 3
                pixels[i] = UInt8(truncatingIfNeeded: x &* 7 &+ y &* 3)
                pixels[i + 1] = UInt8(truncatingIfNeeded: (x ^ y) &* 13)
                pixels[i + 2] = UInt8(truncatingIfNeeded: (x &* y) >> 4)
            }
        }
        return RGBImage(width: width, height: height, pixels: pixels)
    }

    @Test("a 9,999 x 9,999 PNG bomb decodes reduced, holding a few MB instead of 300 MB")
    func pngBombIsReduced() throws {
        let bomb = ZeroPNG.make(width: 9_999, height: 9_999, colorType: .rgb, interlaced: false)
        #expect(bomb.count < 3_000_000)
        let decoded = try ImageDecoder.decodeDetailed(bytes: bomb, name: "bomb.png", options: DecodeOptions(minimumSide: 256))
        #expect(decoded.sourceWidth == 9_999 && decoded.sourceHeight == 9_999)
        // floor(9999 / 512) = 19; ceil(9999 / 19) = 527 >= 512.
        #expect(decoded.reductionFactor == 19)
        #expect(decoded.image.width == 527 && decoded.image.height == 527)
        #expect(decoded.image.pixels.allSatisfy { $0 == 0 })
        let fullSize = 9_999 * 9_999 * 3
        // Reduction sums (527^2 x 12 B = 3.3 MB), the output, two rows and libpng's zlib state.
        #expect(decoded.peakDecodeBytes < 6_000_000, "peak \(decoded.peakDecodeBytes) bytes")
        #expect(decoded.peakDecodeBytes < fullSize / 50)
    }

    @Test("an interlaced RGBA bomb is reduced too: Adam7 passes never need the full image")
    func interlacedBombIsReduced() throws {
        let bomb = ZeroPNG.make(width: 4_000, height: 3_000, colorType: .rgba, interlaced: true)
        let decoded = try ImageDecoder.decodeDetailed(bytes: bomb, name: "bomb.png", options: DecodeOptions(minimumSide: 224))
        #expect(decoded.reductionFactor == 6)  // floor(3000 / 448)
        #expect(decoded.image.width == 667 && decoded.image.height == 500)
        // Alpha 0 everywhere: composited on white.
        #expect(decoded.image.pixels.allSatisfy { $0 == 255 })
        // Full size would be 36 MB of RGB plus 48 MB of RGBA rows.
        #expect(decoded.peakDecodeBytes < 6_000_000, "peak \(decoded.peakDecodeBytes) bytes")
    }

    @Test("the exact path holds one RGB image and rows, also for interlaced RGBA (no RGBA copy)")
    func exactInterlacedHoldsOneImage() throws {
        let png = ZeroPNG.make(width: 1_000, height: 800, colorType: .rgba, interlaced: true)
        let decoded = try ImageDecoder.decodeDetailed(bytes: png, name: "a.png")
        #expect(decoded.reductionFactor == 1 && decoded.image.width == 1_000)
        let rgb = 1_000 * 800 * 3
        #expect(decoded.peakDecodeBytes >= rgb)
        #expect(decoded.peakDecodeBytes < rgb + 1_000_000, "peak \(decoded.peakDecodeBytes) bytes")
    }

    @Test("reduced PNG pixels are the box mean of the exact decode, partial edge blocks included",
          arguments: [(1_100, 1_000), (1_103, 1_001)])
    func pngReductionIsTheBoxMean(size: (Int, Int)) throws {
        let source = Self.patterned(width: size.0, height: size.1)
        let png = PNGEncoder.encode(source)
        let reduced = try ImageDecoder.decodeDetailed(bytes: png, name: "p.png", options: DecodeOptions(minimumSide: 100))
        #expect(reduced.reductionFactor == 5)
        #expect(reduced.image == Self.boxReduced(source, factor: 5))
    }

    @Test("interlaced and 16-bit fixtures reduce to the box mean of their exact decode",
          arguments: ["png_rgba8_interlaced.png", "png_rgb16_interlaced.png", "png_gray2_interlaced.png",
                      "png_palette8_trns_interlaced.png", "png_rgba16.png", "png_gray16.png"])
    func fixtureReductionIsTheBoxMean(file: String) throws {
        let path = TestFiles.fixture(file)
        let exact = try ImageDecoder.decode(fileAt: path)
        // minimumSide 1: the factor is floor(shorter side / 2).
        let reduced = try ImageDecoder.decodeDetailed(fileAt: path, options: DecodeOptions(minimumSide: 1))
        let factor = min(exact.width, exact.height) / 2
        #expect(factor >= 2 && reduced.reductionFactor == factor)
        #expect(reduced.image == Self.boxReduced(exact, factor: factor))
    }

    @Test("JPEG rows are reduced after DCT scaling, to the box mean of the DCT-scaled decode")
    func jpegReductionAfterDCTScaling() throws {
        let path = TestFiles.fixture("jpeg_643x481.jpg")
        // minimumSide 12: the 1/8 scale gives 81 x 61, then factor floor(61 / 24) = 2 gives 41 x 31.
        let options = DecodeOptions(minimumSide: 12)
        let reduced = try ImageDecoder.decodeDetailed(fileAt: path, options: options)
        var exactOptions = options
        exactOptions.boxReduction = false
        let scaled = try ImageDecoder.decodeDetailed(fileAt: path, options: exactOptions)
        #expect(reduced.scaleDenominator == 8 && scaled.scaleDenominator == 8)
        #expect(scaled.reductionFactor == 1 && reduced.reductionFactor == 2)
        #expect(reduced.image == Self.boxReduced(scaled.image, factor: 2))
    }

    @Test("images whose shorter side is under 4 x minimumSide take the exact path",
          arguments: ["png_rgb8_interlaced.png", "jpeg_643x481.jpg", "jpeg_cmyk_adobe.jpg"])
    func smallImagesAreExact(file: String) throws {
        let path = TestFiles.fixture(file)
        let exact = try ImageDecoder.decodeDetailed(fileAt: path, options: DecodeOptions(minimumSide: 256, boxReduction: false))
        let plain = try ImageDecoder.decodeDetailed(fileAt: path, options: DecodeOptions(minimumSide: 256))
        #expect(plain.reductionFactor == 1)
        #expect(plain.image == exact.image)
    }

    @Test("a moderately large photo's network input stays close to the exact path (mean |diff| < 0.5, max <= 8 levels)")
    func networkInputCloseToExact() throws {
        // astronaut.png (512 x 512) enlarged 3x to 1536 x 1536, stored as PNG: factor floor(1536 / 512) = 3.
        let photo = try ImageDecoder.decode(fileAt: TestFiles.sample("astronaut.png"))
        let large = photo.resized(width: 1_536, height: 1_536)
        let png = PNGEncoder.encode(large)
        for spec in [PreprocessingSpec(inputSize: 224, centerCrop: .fraction(margin: 32),
                                       normalization: .scaleOffset(offset: 127, scale: 128), defaultPolicy: .centerCrop)] {
            for policy in CropPolicy.allCases {
                let preprocessor = Preprocessor(spec, policy: policy)
                var options = preprocessor.decodeOptions
                let reduced = try ImageDecoder.decodeDetailed(bytes: png, name: "large.png", options: options)
                #expect(reduced.reductionFactor == 3)
                options.boxReduction = false
                let exact = try ImageDecoder.decode(bytes: png, name: "large.png", options: options)
                let a = preprocessor.inputPixels(reduced.image).pixels, b = preprocessor.inputPixels(exact).pixels
                let differences = zip(a, b).map { abs(Int($0) - Int($1)) }
                let mean = Double(differences.reduce(0, +)) / Double(differences.count)
                #expect(mean < 0.5, "\(policy): mean difference \(mean), max \(differences.max()!)")
                #expect(differences.max()! <= 8, "\(policy): max difference \(differences.max()!)")
            }
        }
    }

    @Test("a progressive JPEG over the working-memory limit is refused by name; baseline needs no such memory")
    func progressiveJPEGWorkingMemoryLimit() throws {
        let limit = DecodeOptions(maxWorkingBytes: 2_048)
        let progressive = TestFiles.fixture("jpeg_progressive.jpg")
        #expect {
            _ = try ImageDecoder.decode(fileAt: progressive, options: limit)
        } throws: { error in
            guard case .outOfMemory(let path, let reason) = error as? ImagingError else { return false }
            return path == progressive && reason.contains("progressive JPEG of 32x24 keeps") && reason.contains("limit of 2048 bytes")
        }
        let baseline = try ImageDecoder.decode(fileAt: TestFiles.fixture("jpeg_baseline.jpg"), options: limit)
        #expect(baseline == (try ImageDecoder.decode(fileAt: TestFiles.fixture("jpeg_baseline.jpg"))))
        // The default limit decodes it.
        _ = try ImageDecoder.decode(fileAt: progressive)
    }
}
