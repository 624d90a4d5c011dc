import Testing
@testable import Imaging

@Suite("Preprocessor")
struct PreprocessorTests {
    @Test("policy names")
    func policyNames() {
        #expect(CropPolicy.allCases.map(\.rawValue) == ["center-crop", "resize", "letterbox"])
        #expect(CropPolicy(rawValue: "center-crop") == .centerCrop)
        #expect(Preprocessor(.tensorFlowEval()).policy == .centerCrop && Preprocessor(.tensorFlowEval()).size == 224)
    }

    @Test("minimum decode side per policy")
    func minimumDecodeSide() {
        #expect(PreprocessingSpec.tensorFlowEval().minimumDecodeSide(policy: .centerCrop) == 256)
        #expect(PreprocessingSpec.tensorFlowEval().minimumDecodeSide(policy: .resize) == 224)
        #expect(PreprocessingSpec.tensorFlowEval().minimumDecodeSide(policy: .letterbox) == 224)
        #expect(Preprocessor(.tensorFlowEval()).decodeOptions.minimumSide == 256)
        // For any size, the returned side is the smallest whose centre crop is >= the output.
        for size in 1...600 {
            let side = PreprocessingSpec.tensorFlowEval(size: size).minimumDecodeSide(policy: .centerCrop)
            #expect(PreprocessingSpec.fractionCropSide(forMinimumSide: side, output: size, margin: 32) >= size, "size \(size)")
            #expect(PreprocessingSpec.fractionCropSide(forMinimumSide: side - 1, output: size, margin: 32) < size, "size \(size)")
        }
    }

    @Test("centre crop boxes")
    func centerCropBoxes() {
        let p = Preprocessor(.tensorFlowEval())
        #expect(p.centerCropBox(width: 28, height: 28) == (2, 2, 26, 26))   // c = 24
        #expect(p.centerCropBox(width: 256, height: 256) == (16, 16, 240, 240))
        #expect(p.centerCropBox(width: 300, height: 451) == (19, 95, 281, 357))  // chelsea, portrait
        #expect(p.centerCropBox(width: 1, height: 1) == (0, 0, 1, 1))  // c would be 0
        #expect(p.centerCropBox(width: 1, height: 9) == (0, 4, 1, 5))
    }

    @Test("letterbox keeps the aspect ratio, centres and pads with 127",
          arguments: [(448, 224, 224, 112), (100, 300, 75, 224), (301, 300, 224, 223), (224, 224, 224, 224)])
    func letterbox(w: Int, h: Int, fw: Int, fh: Int) {
        let image = ResamplerTests.randomImage(width: w, height: h, seed: UInt64(w + h))
        let p = Preprocessor(.tensorFlowEval(), policy: .letterbox)
        #expect(p.letterboxSize(width: w, height: h) == (fw, fh))
        let out = p.inputPixels(image)
        #expect(out.width == 224 && out.height == 224)
        let scaled = BicubicResampler.resample(image, width: fw, height: fh, box: (0, 0, Float(w), Float(h)))
        let left = (224 - fw) / 2, top = (224 - fh) / 2
        var padding = 0
        for y in 0..<224 {
            for x in 0..<224 {
                let p = out.pixel(x: x, y: y)
                if x >= left && x < left + fw && y >= top && y < top + fh {
                    #expect(p == scaled.pixel(x: x - left, y: y - top))
                } else {
                    #expect(p == (127, 127, 127))
                    padding += 1
                }
            }
        }
        #expect(padding == 224 * 224 - fw * fh)
    }

    @Test("normalisation is (v - 127) / 128 in HWC order")
    func normalization() {
        let pixels = (0..<256).flatMap { v -> [UInt8] in [UInt8(v), UInt8(255 - v), 127] }
        let image = RGBImage(width: 16, height: 16, pixels: pixels)
        var out = [Float](repeating: .nan, count: pixels.count)
        out.withUnsafeMutableBufferPointer { Preprocessor(.tensorFlowEval(size: 16)).normalize(image, into: $0.baseAddress!) }
        for v in 0..<256 {
            #expect(out[v * 3] == (Float(v) - 127) / 128)
            #expect(out[v * 3 + 1] == (Float(255 - v) - 127) / 128)
            #expect(out[v * 3 + 2] == 0)
        }
        #expect(out[0] == -0.9921875 && out[255 * 3] == 1.0)
    }

    @Test("preprocess = normalize(inputPixels), for every policy", arguments: CropPolicy.allCases)
    func preprocessComposes(policy: CropPolicy) {
        let image = ResamplerTests.randomImage(width: 97, height: 61, seed: 9)
        let p = Preprocessor(.tensorFlowEval(size: 32), policy: policy)
        let u8 = p.inputPixels(image)
        #expect(u8.width == 32 && u8.height == 32)
        var viaPointer = [Float](repeating: .nan, count: 32 * 32 * 3)
        viaPointer.withUnsafeMutableBufferPointer { p.preprocess(image, into: $0.baseAddress!) }
        #expect(viaPointer == u8.pixels.map { (Float($0) - 127) / 128 })
        #expect(p.tensor(image) == viaPointer)
    }
}
