import Foundation
import Testing
@testable import Imaging

/// The CLIP preprocessing goldens (Resources/clip-preprocess, scripts/make_clip_preprocess.py: transformers'
/// CLIPImageProcessorPil at openai/clip-vit-base-patch32's settings) are reachable with the Pillow-exact
/// bicubic resampler and the integer formulas the goldens record: resize the short side to 224 and the long
/// side to floor(224 * long / short), crop at ((h - 224) / 2, (w - 224) / 2) rounded down. The CLIP
/// preprocessing itself belongs to the model's declared preprocessing; this only pins the references.
@Suite struct CLIPPreprocessGoldenTests {
    struct Golden: Decodable {
        struct Image: Decodable, Sendable, CustomTestStringConvertible {
            let name: String
            let sample: String
            let rotated_90_counter_clockwise: Bool
            let source_width: Int
            let source_height: Int
            let resize_width: Int
            let resize_height: Int
            let crop_top: Int
            let crop_left: Int
            let crop: String
            var testDescription: String { name }
        }
        let images: [Image]
    }

    static let directory = TestFiles.resources.appendingPathComponent("clip-preprocess")

    static let images: [Golden.Image] = {
        guard let data = try? Data(contentsOf: directory.appendingPathComponent("clip_preprocess.json")),
              let golden = try? JSONDecoder().decode(Golden.self, from: data) else { return [] }
        return golden.images
    }()

    @Test func goldensAreThere() {
        #expect(Self.images.map(\.name) == ["chelsea", "rocket", "rocket_rot90", "astronaut"])
    }

    @Test("resize + crop formulas reproduce the transformers crop exactly", arguments: images)
    func formulasReproduceTheCrop(image: Golden.Image) throws {
        var source = try ImageDecoder.decodeDetailed(fileAt: try TestFiles.sample(image.sample),
                                                     options: DecodeOptions(minimumSide: nil)).image
        if image.rotated_90_counter_clockwise { source = Self.rotatedCounterClockwise(source) }
        #expect((source.width, source.height) == (image.source_width, image.source_height))

        let short = min(source.width, source.height), long = max(source.width, source.height)
        let longSide = 224 * long / short  // integer division: transformers' int(224 * long / short)
        let (width, height) = source.width <= source.height ? (224, longSide) : (longSide, 224)
        #expect((width, height) == (image.resize_width, image.resize_height))
        #expect((image.crop_top, image.crop_left) == ((height - 224) / 2, (width - 224) / 2))

        let resized = source.resized(width: width, height: height)
        var crop: [UInt8] = []
        crop.reserveCapacity(224 * 224 * 3)
        for y in image.crop_top..<(image.crop_top + 224) {
            let row = (y * width + image.crop_left) * 3
            crop.append(contentsOf: resized.pixels[row..<(row + 224 * 3)])
        }
        let reference = try NumpyFile.loadUInt8(Self.directory.appendingPathComponent(image.crop).path)
        try #require(reference.shape == [224, 224, 3])
        let difference = PixelDifference(crop, reference.values)
        #expect(difference.maxAbs == 0, "\(image.name): \(difference)")
    }

    /// PIL's Image.transpose(ROTATE_90): the top row becomes the left column, read bottom to top.
    static func rotatedCounterClockwise(_ image: RGBImage) -> RGBImage {
        var pixels = [UInt8](repeating: 0, count: image.pixels.count)
        let width = image.height, height = image.width
        for y in 0..<height {
            for x in 0..<width {
                let source = (x * image.width + (image.width - 1 - y)) * 3
                let target = (y * width + x) * 3
                pixels[target..<(target + 3)] = image.pixels[source..<(source + 3)]
            }
        }
        return RGBImage(width: width, height: height, pixels: pixels)
    }
}
