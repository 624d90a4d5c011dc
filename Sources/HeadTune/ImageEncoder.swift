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
    /// Shared by every decode `prepare` runs (a batch run's decode threads): each waits for its
    /// estimated peak to fit. nil: no budget (the service reserves from its own, asynchronously).
    public let decodeBudget: MemoryBudget?
    let model: any ImageEncoderModel
    /// What distinguishes this network from the checkpoint's own (a frozen prefix, a tuned tail, the
    /// int8 form), in its cache identity; nil for the checkpoint's network.
    let variant: String?
    /// The arithmetic of its dense layers (heads record what they were trained with).
    public let precision: Precision
    /// What the registry said about meeting the request (int8 asked on a CPU without VNNI), for stderr.
    public let notes: [String]

    init(model: any ImageEncoderModel, identifier: String, weightsSHA256: String, maxPixels: Int, pairedTextModel: String? = nil,
         variant: String? = nil, decodeBudget: MemoryBudget? = nil, precision: Precision = .fp32, notes: [String] = []) {
        self.model = model
        self.precision = precision
        self.notes = notes
        self.decodeBudget = decodeBudget
        self.variant = variant
        self.pairedTextModel = pairedTextModel
        self.identifier = identifier
        self.weightsSHA256 = weightsSHA256
        self.maxPixels = maxPixels
        preprocessor = Preprocessor(model.preprocessing)
    }

    /// Loads an image encoder through the model registry.
    /// - model: a bundled model's name (nil: efficientnet-lite0) or a model folder
    /// - weightsDirectory: nil searches the usual places (HEADTUNE_WEIGHTS, ./weights, ...)
    /// - decodeBudget: shared by the decodes of every batch run with this encoder (nil: unbounded)
    /// - precision, quantizedFile: int8 runs the file `headtune quantize` wrote (default: beside the weights)
    public static func load(model: String? = nil, weightsDirectory: URL? = nil,
                            maxPixels: Int = DecodeOptions().maxPixels, decodeBudget: MemoryBudget? = nil,
                            precision: Precision = .fp32, quantizedFile: URL? = nil) throws -> ImageEncoder {
        try BLAS.load()
        let loaded = try ModelRegistry.imageEncoder(model, weightsDirectory: weightsDirectory, precision: precision,
                                                    quantizedFile: quantizedFile)
        return ImageEncoder(model: loaded.model, identifier: loaded.identifier, weightsSHA256: loaded.weightsSHA256,
                            maxPixels: maxPixels, pairedTextModel: loaded.pairedTextModel, variant: loaded.variant,
                            decodeBudget: decodeBudget, precision: loaded.precision, notes: loaded.notes)
    }

    /// The same network with another pixel limit.
    public func withMaxPixels(_ maxPixels: Int) -> ImageEncoder {
        ImageEncoder(model: model, identifier: identifier, weightsSHA256: weightsSHA256, maxPixels: maxPixels,
                     pairedTextModel: pairedTextModel, variant: variant, decodeBudget: decodeBudget, precision: precision, notes: notes)
    }

    /// The same network claiming other weights (tests of the head/weights check).
    func withWeightsSHA256(_ hash: String) -> ImageEncoder {
        ImageEncoder(model: model, identifier: identifier, weightsSHA256: hash, maxPixels: maxPixels, pairedTextModel: pairedTextModel,
                     variant: variant, decodeBudget: decodeBudget, precision: precision, notes: notes)
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
    public var cacheIdentity: String { "\(identifier)/\(weightsSHA256)" + (variant.map { "#\($0)" } ?? "") }

    /// The one view the network's own outputs (ImageNet classifier, embeddings, text space) use.
    public var plainView: ImageView { ImageView(policy: preprocessor.policy) }

    /// Decodes `source` and writes one network input per view, consecutively (see `Preprocessor.prepare`),
    /// under `decodeBudget` when there is one.
    public func prepare(_ source: ImageSource, views: [ImageView], into destination: UnsafeMutablePointer<Float>) throws(ImagingError) {
        try preprocessor.prepare(source, views: views, maxPixels: maxPixels, budget: decodeBudget, into: destination)
    }

    /// What `prepare` holds at its peak for `source` (see `Preprocessor.decodeCost`).
    public func decodeCost(_ source: ImageSource, views: [ImageView]) throws(ImagingError) -> DecodeCost {
        try preprocessor.decodeCost(source, views: views, maxPixels: maxPixels)
    }

    /// A session that runs batches on `threads` threads; one per thread that runs the network.
    public func makeSession(threads: Int) -> EncoderSession {
        EncoderSession(encoder: self, session: model.makeSession(threads: max(1, threads)))
    }
}

// MARK: - Partial fine-tuning

extension ImageEncoder {
    /// How many final blocks `--unfreeze` can train with a head; nil when this network cannot.
    public var unfreezableBlockCount: Int? { (model as? any PartiallyTrainableImageModel)?.unfreezableBlockCount }

    private func partiallyTrainable() throws -> any PartiallyTrainableImageModel {
        guard precision == .fp32 else {
            throw HeadTuneError.fineTuningUnsupported(reason: "tuned blocks run in fp32 (the int8 file holds the pretrained weights only); "
                                                      + "drop --precision int8 for heads trained with --unfreeze")
        }
        guard let model = model as? any PartiallyTrainableImageModel else {
            throw HeadTuneError.fineTuningUnsupported(reason: "\(identifier) cannot train its last blocks (only EfficientNet-Lite can); "
                                                      + "train without --unfreeze")
        }
        return model
    }

    /// The network up to the cut of `unfreeze`: its `.features` are the cut activations the tail
    /// trains on, cached under their own identity (the cut is part of it).
    public func frozenPrefix(unfreeze: Int) throws -> ImageEncoder {
        ImageEncoder(model: try partiallyTrainable().frozenPrefix(unfreeze: unfreeze), identifier: identifier,
                     weightsSHA256: weightsSHA256, maxPixels: maxPixels, variant: "prefix-unfreeze-\(unfreeze)",
                     decodeBudget: decodeBudget)
    }

    /// The last `unfreeze` blocks with the pretrained weights, to be trained (adapters drawn from `seed`).
    public func trainableTail(unfreeze: Int, loraRank: Int?, seed: UInt64 = 0) throws -> any TrainableTail {
        try partiallyTrainable().trainableTail(unfreeze: unfreeze, loraRank: loraRank, seed: seed)
    }

    /// The network with a head file's tuned tail in place (adapters merged): what every path that
    /// runs that head (evaluate, classify, embed, serve) extracts its features with.
    public func tuned(with tail: HeadFile.TunedTail) throws -> ImageEncoder {
        let model = try partiallyTrainable()
        let source = TailTensorSource(tensors: tail.tensors)
        let trainable = try model.trainableTail(unfreeze: tail.settings.unfreeze, loraRank: tail.settings.loraRank, tensors: source)
        return ImageEncoder(model: try model.applying(trainable), identifier: identifier, weightsSHA256: weightsSHA256,
                            maxPixels: maxPixels, pairedTextModel: pairedTextModel,
                            variant: "tail-\(tail.settings.sha256.prefix(16))", decodeBudget: decodeBudget)
    }
}

/// A head file's tail tensors as a checkpoint for the model's strict tail loader.
struct TailTensorSource: TensorSource {
    var tensors: [HeadFile.TunedTail.Tensor]
    var sourceName: String { "head file tail" }
    var tensorNames: [String] { tensors.map(\.name) }
    func shape(of name: String) throws -> [Int] { try tensor(name).shape }
    func floats(_ name: String) throws -> [Float] { try tensor(name).values }
    private func tensor(_ name: String) throws -> HeadFile.TunedTail.Tensor {
        guard let t = tensors.first(where: { $0.name == name }) else {
            throw ModelsError.keyMismatch(file: sourceName, missing: [name], unexpected: [])
        }
        return t
    }
}

extension TrainableTail {
    /// The tail's parameters as a head file stores them.
    public func tunedTail() -> HeadFile.TunedTail {
        HeadFile.TunedTail(unfreeze: unfreeze, loraRank: loraRank, tensors: tensors.map { t in
            HeadFile.TunedTail.Tensor(name: t.name, shape: t.shape, values: Array(parameters[t.offset..<(t.offset + t.count)]))
        })
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
