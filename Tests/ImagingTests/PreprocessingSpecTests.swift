import Testing
@testable import Imaging

/// The preprocessing a model declares: normalization tables, the neutral letterbox pixel, and the
/// shortest-side centre crop (Hugging Face image processors, CLIP).
@Suite struct PreprocessingSpecTests {
    static let clipMean: [Float] = [0.48145466, 0.4578275, 0.40821073]
    static let clipStd: [Float] = [0.26862954, 0.26130258, 0.27577711]
    static func clip(size: Int = 224) -> PreprocessingSpec {
        PreprocessingSpec(inputSize: size, centerCrop: .shortestSide,
                          normalization: .meanStd(mean: clipMean, std: clipStd), defaultPolicy: .centerCrop)
    }

    @Test func scaleOffsetTableIsTheFloat32Reference() {
        let tables = PreprocessingSpec.tensorFlowEval().normalizationTables
        #expect(tables.count == 3 && tables[0] == tables[2])
        #expect(tables[0][0] == -127 / 128 && tables[0][127] == 0 && tables[0][255] == 1)
        #expect(PreprocessingSpec.tensorFlowEval().neutralPixel == (127, 127, 127))
    }

    @Test func meanStdTablesPerChannel() {
        let tables = Self.clip().normalizationTables
        for c in 0..<3 {
            for v in [0, 1, 128, 254, 255] {
                let expected = (Double(v) / 255 - Double(Self.clipMean[c])) / Double(Self.clipStd[c])
                #expect(abs(Double(tables[c][v]) - expected) < 1e-6, "channel \(c) value \(v)")
            }
        }
        // The neutral pixel is the byte nearest each channel's mean: it normalizes to about 0.
        let neutral = Self.clip().neutralPixel
        #expect(neutral == (123, 117, 104))
        #expect(abs(tables[0][Int(neutral.0)]) < 0.01 && abs(tables[2][Int(neutral.2)]) < 0.01)
    }

    @Test func normalizeAppliesEachChannelsTable() {
        let image = RGBImage(width: 2, height: 1, pixels: [0, 128, 255, 10, 20, 30])
        var out = [Float](repeating: .nan, count: 6)
        let p = Preprocessor(Self.clip(size: 2))
        out.withUnsafeMutableBufferPointer { p.normalize(image, into: $0.baseAddress!) }
        let tables = Self.clip().normalizationTables
        #expect(out == [tables[0][0], tables[1][128], tables[2][255], tables[0][10], tables[1][20], tables[2][30]])
    }

    @Test func shortestSideResizeThenCentreCrop() {
        let p = Preprocessor(Self.clip())
        // The short side becomes 224, the long one truncated: 224 * 640 / 480 = 298.67 -> 298.
        #expect(p.shortestSideSize(width: 640, height: 480) == (298, 224))
        #expect(p.shortestSideSize(width: 480, height: 640) == (224, 298))
        #expect(p.shortestSideSize(width: 100, height: 100) == (224, 224))
        // It never needs more than the output side decoded, whatever the policy.
        for policy in CropPolicy.allCases { #expect(Self.clip().minimumDecodeSide(policy: policy) == 224) }

        // A left half red, right half blue image: the centre crop of the resized image keeps the
        // middle, so its left and right columns are pure red and pure blue, and the result is the
        // resize followed by the cut, pixel for pixel.
        var pixels: [UInt8] = []
        for _ in 0..<480 { for x in 0..<640 { pixels += x < 320 ? [255, 0, 0] : [0, 0, 255] } }
        let image = RGBImage(width: 640, height: 480, pixels: pixels)
        let cropped = p.inputPixels(image)
        #expect(cropped.width == 224 && cropped.height == 224)
        #expect(cropped.pixel(x: 0, y: 100) == (255, 0, 0) && cropped.pixel(x: 223, y: 100) == (0, 0, 255))
        let resized = BicubicResampler.resample(image, width: 298, height: 224, box: (0, 0, 640, 480))
        #expect(cropped == resized.cropped(x: 37, y: 0, width: 224, height: 224))
    }

    @Test func letterboxBordersUseTheNeutralPixel() {
        let p = Preprocessor(Self.clip(size: 8), policy: .letterbox)
        let out = p.inputPixels(RGBImage(width: 16, height: 4, filledWith: (9, 9, 9)))
        #expect(out.pixel(x: 0, y: 0) == (123, 117, 104))
        #expect(out.pixel(x: 4, y: 4) == (9, 9, 9))
    }

    @Test func prepareDecodesOnceAndMatchesPreprocess() throws {
        let png = PNGEncoder.encode(ResamplerTests.randomImage(width: 300, height: 200, seed: 4))
        let p = Preprocessor(.tensorFlowEval(size: 32))
        let views = [ImageView(policy: .centerCrop), ImageView(policy: .centerCrop, mirrored: true), ImageView(policy: .resize)]
        var prepared = [Float](repeating: .nan, count: 3 * 32 * 32 * 3)
        try prepared.withUnsafeMutableBufferPointer {
            try p.prepare(.bytes(png, name: "x.png"), views: views, maxPixels: 1 << 20, into: $0.baseAddress!)
        }
        for (v, view) in views.enumerated() {
            let decoded = try ImageDecoder.decode(bytes: png, name: "x.png",
                                                  options: DecodeOptions(minimumSide: view.minimumDecodeSide(p.spec)))
            let input = Preprocessor(p.spec, policy: view.policy).inputPixels(view.window(decoded))
            var expected = [Float](repeating: .nan, count: 3072)
            expected.withUnsafeMutableBufferPointer { p.normalize(view.mirrored ? input.mirrored() : input, into: $0.baseAddress!) }
            #expect(Array(prepared[(v * 3072)..<((v + 1) * 3072)]) == expected, "view \(view.name)")
        }
        #expect(throws: ImagingError.self) {
            try prepared.withUnsafeMutableBufferPointer {
                try p.prepare(.bytes([1, 2, 3], name: "junk.png"), views: views, maxPixels: 1 << 20, into: $0.baseAddress!)
            }
        }
    }
}
