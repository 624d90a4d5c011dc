import Foundation
import Testing
@testable import Imaging

/// The EfficientNet-Lite0 input of the six reference photos must equal the Python reference
/// (Pillow 13: convert('RGB'), centre crop box, resize(BICUBIC, box)) byte for byte.
/// Reference arrays: shared/reference/effnet/<name>_input_u8_hwc.npy, kept in Tests/Golden/efficientnet-lite0.
@Suite("Golden preprocessing against Pillow")
struct GoldenPreprocessingTests {
    struct Sample: CustomTestStringConvertible, Sendable {
        let file: String
        let width: Int
        let height: Int
        /// crop_box_xyxy from golden_effnet_lite0.json.
        let box: [Int]
        /// input_f32.first8 (NCHW: the red channel of the first 8 pixels of row 0).
        let firstRed: [Float]
        var stem: String { String(file.split(separator: ".")[0]) }
        var testDescription: String { file }
    }

    static let samples = [
        Sample(file: "chelsea.png", width: 451, height: 300, box: [95, 19, 357, 281],
               firstRed: [0.328125, 0.328125, 0.226562, 0.195312, 0.226562, 0.296875, 0.328125, 0.3125]),
        Sample(file: "coffee.png", width: 600, height: 400, box: [125, 25, 475, 375],
               firstRed: [0.257812, 0.234375, 0.15625, 0.226562, 0.3125, 0.335938, 0.359375, 0.398438]),
        Sample(file: "rocket.jpg", width: 640, height: 427, box: [134, 27, 507, 400],
               firstRed: [-0.796875, -0.796875, -0.789062, -0.789062, -0.789062, -0.796875, -0.789062, -0.789062]),
        Sample(file: "motorcycle_left.png", width: 741, height: 500, box: [152, 32, 589, 469],
               firstRed: [0.351562, 0.40625, 0.265625, 0.34375, 0.570312, 0.375, 0.367188, 0.3125]),
        Sample(file: "astronaut.png", width: 512, height: 512, box: [32, 32, 480, 480],
               firstRed: [-0.8125, -0.804688, -0.804688, -0.820312, -0.804688, -0.8125, -0.828125, -0.851562]),
        Sample(file: "hubble_deep_field.jpg", width: 1000, height: 872, box: [119, 55, 882, 818],
               firstRed: [-0.921875, -0.890625, -0.914062, -0.90625, -0.90625, -0.890625, -0.921875, -0.890625]),
    ]

    static func reference(_ sample: Sample) throws -> [UInt8] {
        let array = try NumpyFile.loadUInt8(try TestFiles.golden("\(sample.stem)_input_u8_hwc.npy"))
        try #require(array.shape == [224, 224, 3])
        return array.values
    }

    @Test("centre crop + bicubic equals Pillow exactly (full-size decode)", arguments: samples)
    func centerCropEqualsReference(sample: Sample) throws {
        let path = try TestFiles.sample(sample.file)
        // The reference decoded JPEGs at full size (no draft mode).
        let decoded = try ImageDecoder.decodeDetailed(fileAt: path, options: DecodeOptions(minimumSide: nil))
        #expect(decoded.image.width == sample.width && decoded.image.height == sample.height)
        #expect(decoded.scaleDenominator == 1)

        let preprocessor = Preprocessor(.tensorFlowEval(size: 224), policy: .centerCrop)
        let box = preprocessor.centerCropBox(width: sample.width, height: sample.height)
        #expect([box.x0, box.y0, box.x1, box.y1] == sample.box)

        let input = preprocessor.inputPixels(decoded.image)
        #expect(input.width == 224 && input.height == 224)
        let difference = PixelDifference(input.pixels, try Self.reference(sample))
        // Measured: identical for all six photos.
        #expect(difference.maxAbs == 0, "\(sample.file): \(difference)")
        #expect(difference.differing == 0, "\(sample.file): \(difference)")

        // Normalised NHWC input: the red values of row 0 are every third float.
        var tensor = [Float](repeating: .nan, count: 224 * 224 * 3)
        tensor.withUnsafeMutableBufferPointer { preprocessor.preprocess(decoded.image, into: $0.baseAddress!) }
        let firstRed = (0..<8).map { tensor[$0 * 3] }
        for (ours, theirs) in zip(firstRed, sample.firstRed) {
            #expect(abs(ours - theirs) <= 1e-6, "\(sample.file): \(firstRed) vs \(sample.firstRed)")
        }
        #expect(!tensor.contains { $0.isNaN })
    }

    @Test("DCT-scaled hubble decode (1/2, 500x436) stays close to the full-size golden")
    func draftDecodedHubbleIsClose() throws {
        let sample = Self.samples[5]
        let path = try TestFiles.sample(sample.file)
        let preprocessor = Preprocessor(.tensorFlowEval())
        #expect(preprocessor.minimumDecodeSide == 256)
        let decoded = try ImageDecoder.decodeDetailed(fileAt: path, options: preprocessor.decodeOptions)
        #expect(decoded.scaleDenominator == 2)
        #expect(decoded.image.width == 500 && decoded.image.height == 436)
        #expect(decoded.sourceWidth == 1000 && decoded.sourceHeight == 872)

        let difference = PixelDifference(preprocessor.inputPixels(decoded.image).pixels, try Self.reference(sample))
        // Different pixels go in (the DCT-domain downscale, then a 381->224 resize instead of
        // 763->224), so equality is not expected; the mean must stay within 3 levels.
        #expect(difference.meanAbs < 3, "\(difference)")
        #expect(difference.maxAbs < 128, "\(difference)")
    }
}
