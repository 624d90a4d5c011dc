import Foundation
import Imaging
import Kernels
import Models
import Weights

/// The arithmetic of a network's dense layers (fp32, or int8 from `headtune quantize`).
public typealias Precision = Models.Precision
/// How calibration picks each quantized layer's input range.
public typealias CalibrationMethod = Models.CalibrationMethod

/// `headtune quantize`: runs calibration images through the fp32 network twice (each quantized
/// layer's input range, then its histogram over that range), picks each layer's uint8 grid by
/// `method`, and writes the int8 network's file atomically (a failed run leaves an earlier file as it
/// was). Images that do not decode are reported and skipped; the rest go on.
public enum Quantization {
    /// What a run did, as `headtune quantize` prints it.
    public struct Report: Encodable, Sendable {
        public struct Layer: Encodable, Sendable {
            public var name: String
            public var low: Float
            public var high: Float
            public var scale: Float
            public var zeroPoint: Int

            enum CodingKeys: String, CodingKey { case name, low, high, scale, zeroPoint = "zero_point" }
        }

        public var file: String
        public var method: String
        public var images: Int
        public var skipped: Int
        public var weightsSHA256: String
        public var bytes: Int
        public var seconds: Double
        public var layers: [Layer]

        enum CodingKeys: String, CodingKey {
            case file, method, images, skipped, bytes, seconds, layers
            case weightsSHA256 = "weights_sha256"
        }
    }

    /// Where the int8 file of `model` goes by default, and where `--precision int8` looks: beside its weights.
    public static func defaultFile(model: String?, weightsDirectory: URL?) throws -> String {
        let name = model ?? ModelRegistry.defaultImageModel
        let directory = try weightsDirectory ?? WeightsLocator.directory(containing: "\(name).safetensors")
        return ModelRegistry.int8File(for: name, in: directory).path
    }

    /// Whether this CPU runs the int8 network (AVX-512 VNNI).
    public static var int8Available: Bool { QuantizedEfficientNetLite.isSupported }

    /// Fewest calibration images a run accepts: fewer cannot show a layer's range.
    public static let minimumImages = 8

    /// - images: calibration image paths (every one is used, in order)
    /// - progress: (pass 1 or 2, images done in the pass, images in the pass)
    /// - skipped: an image that did not decode, with the reason (reported once)
    public static func run(encoder: ImageEncoder, images: [String], method: CalibrationMethod, output: String,
                           calibrationSource: String, threads: Int, batchSize: Int = 16,
                           progress: ((Int, Int, Int) -> Void)? = nil,
                           skipped: ((String, Error) -> Void)? = nil) throws -> Report {
        let started = Date()
        guard encoder.precision == .fp32 else {
            throw HeadTuneError.quantizationFailed(reason: "calibration runs the fp32 network; load it without --precision int8")
        }
        guard let model = encoder.model as? any QuantizableImageModel else {
            throw HeadTuneError.quantizationFailed(reason: "\(encoder.identifier) has no int8 form (only \(ModelRegistry.defaultImageModel) has)")
        }
        try AtomicFile.checkWritable(output)
        let calibration = model.makeCalibration()
        let views = [encoder.plainView]
        let batch = max(1, batchSize)
        let input = ScratchBuffer(count: batch * encoder.inputFloats)
        var usable = images
        for pass in 1...2 {
            var kept: [String] = []
            var done = 0
            progress?(pass, 0, usable.count)
            for first in stride(from: 0, to: usable.count, by: batch) {
                var filled = 0
                for path in usable[first..<min(first + batch, usable.count)] {
                    do {
                        try encoder.prepare(.file(path: path), views: views, into: input.pointer + filled * encoder.inputFloats)
                        filled += 1
                        kept.append(path)
                    } catch {
                        if pass == 1 { skipped?(path, error) }
                    }
                }
                if filled > 0 { calibration.observe(input.pointer, count: filled, threads: threads) }
                done = min(first + batch, usable.count)
                progress?(pass, done, usable.count)
            }
            if pass == 1 {
                guard kept.count >= minimumImages else {
                    throw HeadTuneError.quantizationFailed(reason: "\(kept.count) of \(images.count) calibration images decoded; at least \(minimumImages) are needed")
                }
                usable = kept
                calibration.beginHistogramPass()
            }
        }
        let metadata = [
            "model": encoder.identifier,
            "weights_sha256": encoder.weightsSHA256,
            "calibration_source": calibrationSource,
            "created": ISO8601DateFormatter().string(from: Date()),
        ]
        let quantized = calibration.quantizedModel(method: method, metadata: metadata)
        let contents = quantized.fileContents()
        try AtomicFile.write(contents, to: output)
        let layers = calibration.layerRanges(method: method).map { layer in
            Report.Layer(name: layer.name, low: layer.quantization.low, high: layer.quantization.high,
                         scale: layer.quantization.scale, zeroPoint: layer.quantization.zeroPoint)
        }
        return Report(file: output, method: method.rawValue, images: usable.count, skipped: images.count - usable.count,
                      weightsSHA256: encoder.weightsSHA256, bytes: contents.count,
                      seconds: Date().timeIntervalSince(started), layers: layers)
    }
}
