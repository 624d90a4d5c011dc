import Dispatch
import Foundation
import Imaging
import Kernels
import Models
import Weights

/// The frozen pretrained image backbone with its exact preprocessing: image file -> features (and
/// ImageNet logits).
public final class Backbone: Sendable {
    /// Stable id of network + weights, for caches and index files.
    public let identifier: String
    /// sha256 of the checkpoint the weights were converted from (heads record it and refuse others).
    public let weightsSHA256: String
    public let model: EfficientNetLite
    public let preprocessor: Preprocessor
    public let maxPixels: Int

    public var inputSize: Int { preprocessor.size }
    public var featureCount: Int { model.featureCount }
    public var classCount: Int { model.classCount }

    public init(model: EfficientNetLite, identifier: String, policy: CropPolicy = .centerCrop,
                maxPixels: Int = DecodeOptions().maxPixels, weightsSHA256: String = "unknown") {
        self.model = model
        self.identifier = identifier
        self.weightsSHA256 = weightsSHA256
        self.preprocessor = Preprocessor(size: model.configuration.inputSize, policy: policy)
        self.maxPixels = maxPixels
    }

    /// Loads EfficientNet-Lite0 from the converted weights (see `weights/README.md`).
    /// - weightsDirectory: nil searches the usual places (HEADTUNE_WEIGHTS, ./weights, ...).
    public static func efficientNetLite0(weightsDirectory: URL? = nil, policy: CropPolicy = .centerCrop,
                                         maxPixels: Int = DecodeOptions().maxPixels) throws -> Backbone {
        try BLAS.load()
        let fileName = "efficientnet-lite0.safetensors"
        let directory = try weightsDirectory ?? WeightsLocator.directory(containing: fileName)
        let file = try SafeTensors(contentsOf: directory.appendingPathComponent(fileName))
        let model = try EfficientNetLite(configuration: .lite0, weights: file)
        let hash = file.metadata["source_member_sha256"] ?? "unknown"
        return Backbone(model: model, identifier: "efficientnet-lite0@\(hash.prefix(12))", policy: policy,
                        maxPixels: maxPixels, weightsSHA256: hash)
    }

    /// Decodes the file at `path` (DCT-scaled where the geometry allows) and writes the normalized
    /// [size, size, 3] input to `destination`.
    public func prepare(path: String, into destination: UnsafeMutablePointer<Float>) throws(ImagingError) {
        preprocessor.preprocess(try ImageDecoder.decode(fileAt: path, options: decodeOptions), into: destination)
    }

    /// Decodes in-memory image bytes (the service's request bodies). `name` only labels errors.
    public func prepare(bytes: [UInt8], name: String, into destination: UnsafeMutablePointer<Float>) throws(ImagingError) {
        preprocessor.preprocess(try ImageDecoder.decode(bytes: bytes, name: name, options: decodeOptions), into: destination)
    }

    /// DCT-scaled decoding where the geometry allows, with this backbone's pixel limit.
    public var decodeOptions: DecodeOptions {
        var options = preprocessor.decodeOptions
        options.maxPixels = maxPixels
        return options
    }
}

/// What the backbone computed for one input.
public struct BackboneOutput: Sendable {
    /// [featureCount] pooled features, followed by the [stagePooledFeatureCount] stage-pooled ones when
    /// the run asked for `FeatureSet.headAndStages`.
    public var features: [Float]
    /// [classCount] ImageNet logits, when requested.
    public var logits: [Float]?
}
