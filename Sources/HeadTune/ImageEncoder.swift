import Foundation
import Imaging
import Kernels
import Models
import Training
import Weights

/// An encoder output (features, stage features, logits, embedding), named as the models name them.
public typealias ImageOutput = ImageOutputName

/// A frozen pretrained image network with its exact preprocessing: image bytes -> network input ->
/// named outputs. Built by the model registry from a name or a folder; everything above `Models`
/// (training, classification, the text space, the service) sees networks only through this type.
public final class ImageEncoder: Sendable {
    /// Stable id of network + weights, for caches, heads and index files.
    public let identifier: String
    /// sha256 of the checkpoint the weights were converted from (heads record it and refuse others).
    public let weightsSHA256: String
    /// The input the network's own outputs are computed on (its default geometry).
    public let preprocessor: Preprocessor
    /// Refuse images whose header declares more pixels than this.
    public let maxPixels: Int
    /// The text encoder trained with this network (a CLIP folder), nil for an image-only network.
    public let pairedTextModel: String?
    let model: any ImageEncoderModel

    init(model: any ImageEncoderModel, identifier: String, weightsSHA256: String, maxPixels: Int, pairedTextModel: String? = nil) {
        self.model = model
        self.pairedTextModel = pairedTextModel
        self.identifier = identifier
        self.weightsSHA256 = weightsSHA256
        self.maxPixels = maxPixels
        preprocessor = Preprocessor(model.preprocessing)
    }

    /// Loads an image encoder through the model registry.
    /// - model: a bundled model's name (nil: efficientnet-lite0) or a model folder
    /// - weightsDirectory: nil searches the usual places (HEADTUNE_WEIGHTS, ./weights, ...)
    public static func load(model: String? = nil, weightsDirectory: URL? = nil,
                            maxPixels: Int = DecodeOptions().maxPixels) throws -> ImageEncoder {
        try BLAS.load()
        let loaded = try ModelRegistry.imageEncoder(model, weightsDirectory: weightsDirectory)
        return ImageEncoder(model: loaded.model, identifier: loaded.identifier, weightsSHA256: loaded.weightsSHA256,
                            maxPixels: maxPixels, pairedTextModel: loaded.pairedTextModel)
    }

    /// The same network with another pixel limit.
    public func withMaxPixels(_ maxPixels: Int) -> ImageEncoder {
        ImageEncoder(model: model, identifier: identifier, weightsSHA256: weightsSHA256, maxPixels: maxPixels,
                     pairedTextModel: pairedTextModel)
    }

    /// The same network claiming other weights (tests of the head/weights check).
    func withWeightsSHA256(_ hash: String) -> ImageEncoder {
        ImageEncoder(model: model, identifier: identifier, weightsSHA256: hash, maxPixels: maxPixels, pairedTextModel: pairedTextModel)
    }

    public var preprocessing: PreprocessingSpec { model.preprocessing }
    public var inputSize: Int { model.preprocessing.inputSize }
    /// Floats in one network input, [size, size, 3].
    public var inputFloats: Int { inputSize * inputSize * 3 }

    /// Width of `output`, nil when this network does not have it.
    public func width(of output: ImageOutput) -> Int? { model.outputWidths[output] }
    public var availableOutputs: [ImageOutput] { model.outputWidths.keys.sorted() }

    /// The pooled features' width (1280 for Lite0).
    public var featureCount: Int { width(of: .features) ?? 0 }
    /// The pretrained classifier's classes (1000 for Lite0), 0 without one.
    public var classCount: Int { width(of: .logits) ?? 0 }

    /// The outputs a feature set is made of, in order.
    public func outputs(for featureSet: FeatureSet) -> [ImageOutput] {
        switch featureSet {
        case .head: return [.features]
        case .headAndStages: return [.features, .stages]
        }
    }

    /// Values per image under `featureSet` (1280 or 2064 for Lite0); nil when the network lacks an output.
    public func featureCount(for featureSet: FeatureSet) -> Int? {
        let widths = outputs(for: featureSet).map { width(of: $0) }
        return widths.contains(nil) ? nil : widths.reduce(0) { $0 + $1! }
    }

    /// What `headtune embed` prints for an image: the joint embedding where the network has one
    /// (CLIP: projected, then L2-normalized as CLIP compares images with texts), else the pooled features.
    public var embeddingOutput: ImageOutput { width(of: .embedding) != nil ? .embedding : .features }

    public func embeddingVector(_ image: EncodedImage) -> [Float] {
        guard embeddingOutput == .embedding, var vector = image[.embedding] else { return image.features }
        vector.withUnsafeMutableBufferPointer { normalizeRows($0.baseAddress!, rows: 1, columns: $0.count) }
        return vector
    }

    /// The feature-cache key of this network: its id and the full sha256 of its weights.
    public var cacheIdentity: String { "\(identifier)/\(weightsSHA256)" }

    /// The one view the network's own outputs (ImageNet classifier, embeddings, text space) use.
    public var plainView: ImageView { ImageView(policy: preprocessor.policy) }

    /// Decodes `source` and writes one network input per view, consecutively (see `Preprocessor.prepare`).
    public func prepare(_ source: ImageSource, views: [ImageView], into destination: UnsafeMutablePointer<Float>) throws(ImagingError) {
        try preprocessor.prepare(source, views: views, maxPixels: maxPixels, into: destination)
    }

    /// A session that runs batches on `threads` threads; one per thread that runs the network.
    public func makeSession(threads: Int) -> EncoderSession {
        EncoderSession(encoder: self, session: model.makeSession(threads: max(1, threads)))
    }
}

/// What `headtune models` lists (the registry's catalogue, seen from the library).
public enum ModelCatalogue {
    public typealias Listing = ModelRegistry.Listing
    public static var modelsEnvironmentVariable: String { ModelRegistry.modelsEnvironmentVariable }

    public static func list(weightsDirectory: URL?, modelsDirectory: URL?) -> [Listing] {
        ModelRegistry.catalogue(weightsDirectory: weightsDirectory, modelsDirectory: modelsDirectory)
    }
}
