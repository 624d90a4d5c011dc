import Testing
@testable import Imaging

@Suite("Bicubic resampler")
struct ResamplerTests {
    static func randomImage(width: Int, height: Int, seed: UInt64) -> RGBImage {
        var generator = SplitMix(seed: seed)
        let pixels = (0..<width * height * 3).map { _ in UInt8(truncatingIfNeeded: generator.next()) }
        return RGBImage(width: width, height: height, pixels: pixels)
    }

    @Test("equals Pillow's resize(BICUBIC, box) exactly", arguments: FixtureManifest.shared.resize)
    func equalsPillow(resize: FixtureManifest.ResizeCase) throws {
        let source = RGBImage(width: resize.sourceWidth, height: resize.sourceHeight,
                              pixels: try TestFiles.bytes(TestFiles.fixture(resize.source)))
        let expected = try TestFiles.bytes(TestFiles.fixture(resize.expected))
        let box = (resize.box[0], resize.box[1], resize.box[2], resize.box[3])
        let output = BicubicResampler.resample(source, width: resize.width, height: resize.height, box: box)
        #expect(output.width == resize.width && output.height == resize.height)
        let difference = PixelDifference(output.pixels, expected)
        #expect(difference.maxAbs == 0, "\(resize.testDescription): \(difference)")
        // The public entry point is the same computation.
        #expect(source.resized(width: resize.width, height: resize.height, box: box) == output)
    }

    /// Straightforward double-precision evaluation of the same filter: every input sample
    /// weighted by the Keys kernel (a = -0.5) at its distance from the output sample centre,
    /// stretched by the scale when downscaling, weights normalised; the horizontal result is
    /// rounded to 8 bits like Pillow's intermediate image. Only weight quantisation differs.
    static func naiveResample(_ image: RGBImage, width: Int, height: Int, box: (Double, Double, Double, Double)) -> [UInt8] {
        func kernel(_ x: Double) -> Double {
            let x = abs(x)
            if x < 1 { return 1.5 * x * x * x - 2.5 * x * x + 1 }
            if x < 2 { return -0.5 * x * x * x + 2.5 * x * x - 4 * x + 2 }
            return 0
        }
        func weights(inSize: Int, start: Double, end: Double, outSize: Int) -> [[Double]] {
            let scale = (end - start) / Double(outSize)
            let stretch = max(scale, 1)
            return (0..<outSize).map { i in
                let center = start + (Double(i) + 0.5) * scale
                let w = (0..<inSize).map { kernel((Double($0) + 0.5 - center) / stretch) }
                let total = w.reduce(0, +)
                return w.map { $0 / total }
            }
        }
        func round8(_ v: Double) -> UInt8 { UInt8(max(0, min(255, (v + 0.5).rounded(.down)))) }
        let wx = weights(inSize: image.width, start: box.0, end: box.2, outSize: width)
        let wy = weights(inSize: image.height, start: box.1, end: box.3, outSize: height)
        var temp = [UInt8](repeating: 0, count: width * image.height * 3)
        for y in 0..<image.height {
            for x in 0..<width {
                for c in 0..<3 {
                    var s = 0.0
                    for j in 0..<image.width { s += wx[x][j] * Double(image.pixels[(y * image.width + j) * 3 + c]) }
                    temp[(y * width + x) * 3 + c] = round8(s)
                }
            }
        }
        var out = [UInt8](repeating: 0, count: width * height * 3)
        for y in 0..<height {
            for x in 0..<width {
                for c in 0..<3 {
                    var s = 0.0
                    for j in 0..<image.height { s += wy[y][j] * Double(temp[(j * width + x) * 3 + c]) }
                    out[(y * width + x) * 3 + c] = round8(s)
                }
            }
        }
        return out
    }

    @Test("agrees with a naive double-precision evaluation within 1 level",
          arguments: [(40, 30, 17, 11, 0.0, 0.0, 40.0, 30.0), (40, 30, 90, 70, 0.0, 0.0, 40.0, 30.0),
                      (50, 50, 12, 12, 6.0, 6.0, 44.0, 44.0), (31, 47, 20, 9, 2.5, 3.25, 29.0, 41.5),
                      (64, 9, 7, 9, 0.0, 0.0, 64.0, 9.0)])
    func agreesWithNaive(w: Int, h: Int, ow: Int, oh: Int, x0: Double, y0: Double, x1: Double, y1: Double) {
        let image = Self.randomImage(width: w, height: h, seed: UInt64(w * 1000 + h))
        let fast = BicubicResampler.resample(image, width: ow, height: oh,
                                             box: (Float(x0), Float(y0), Float(x1), Float(y1)))
        let naive = Self.naiveResample(image, width: ow, height: oh, box: (x0, y0, x1, y1))
        let difference = PixelDifference(fast.pixels, naive)
        // Fixed-point weights (22 fraction bits) can flip a rounding at most by one level.
        #expect(difference.maxAbs <= 1, "\(difference)")
        #expect(Double(difference.differing) < 0.02 * Double(difference.count), "\(difference)")
    }

    @Test("identity resize returns the input exactly")
    func identity() {
        let image = Self.randomImage(width: 224, height: 224, seed: 1)
        #expect(Preprocessor(.tensorFlowEval(), policy: .resize).inputPixels(image) == image)
        #expect(BicubicResampler.resample(image, width: 224, height: 224, box: (0, 0, 224, 224)) == image)
        // A 256x256 centre crop has scale 1 and integer offsets: it is the plain 224x224 crop,
        // even though both passes run.
        let big = Self.randomImage(width: 256, height: 256, seed: 2)
        let cropped = Preprocessor(.tensorFlowEval(), policy: .centerCrop).inputPixels(big)
        var plain: [UInt8] = []
        for y in 16..<240 { plain += big.pixels[(y * 256 + 16) * 3 ..< (y * 256 + 240) * 3] }
        #expect(cropped.pixels == plain)
    }

    @Test("constant images stay constant under every policy, including 1x1", arguments: CropPolicy.allCases)
    func constant(policy: CropPolicy) {
        for (w, h) in [(1, 1), (1, 5), (300, 7), (28, 28)] {
            let image = RGBImage(width: w, height: h, filledWith: (200, 10, 77))
            let out = Preprocessor(.tensorFlowEval(), policy: policy).inputPixels(image)
            #expect(out.width == 224 && out.height == 224)
            let fitted = Preprocessor(.tensorFlowEval(), policy: policy).letterboxSize(width: w, height: h)
            let columns = policy == .letterbox ? (224 - fitted.width) / 2 ..< (224 - fitted.width) / 2 + fitted.width : 0..<224
            let rows = policy == .letterbox ? (224 - fitted.height) / 2 ..< (224 - fitted.height) / 2 + fitted.height : 0..<224
            for y in 0..<224 {
                for x in 0..<224 {
                    let p = out.pixel(x: x, y: y)
                    let inside = columns.contains(x) && rows.contains(y)
                    let want: (UInt8, UInt8, UInt8) = inside ? (200, 10, 77) : (127, 127, 127)
                    if p != want { Issue.record("\(policy) \(w)x\(h): (\(x), \(y)) is \(p), want \(want)"); return }
                }
            }
        }
    }

    @Test("a 28x28 grey image upscales to 224x224 grey", arguments: CropPolicy.allCases)
    func upscaleGrey(policy: CropPolicy) {
        let grey = Self.randomImage(width: 28, height: 28, seed: 3).pixels.enumerated().map { i, _ in
            UInt8(truncatingIfNeeded: (i / 3) * 7)  // same value in R, G and B
        }
        let image = RGBImage(width: 28, height: 28, pixels: grey)
        let out = Preprocessor(.tensorFlowEval(), policy: policy).inputPixels(image)
        #expect(out.width == 224 && out.height == 224)
        for i in stride(from: 0, to: out.pixels.count, by: 3) {
            if out.pixels[i] != out.pixels[i + 1] || out.pixels[i] != out.pixels[i + 2] {
                Issue.record("\(policy): colour appeared at pixel \(i / 3)")
                return
            }
        }
        #expect(Set(out.pixels).count > 100)  // real interpolation, not a flat fill
    }
}

/// Small deterministic generator for test data (SplitMix64).
struct SplitMix: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
