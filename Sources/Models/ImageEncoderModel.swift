import Foundation
import Imaging
import Kernels

/// A named per-image output an image network can compute, [width] floats per image.
public enum ImageOutputName: String, Sendable, Hashable, CaseIterable, Comparable {
    /// The pooled representation a head reads (EfficientNet: the 1280 pooled head-convolution
    /// features; a ViT: the pooled class token before the projection).
    case features
    /// Mid-level features: the global average of every stage's output (EfficientNet: 784 values).
    case stages
    /// The pretrained classifier's logits (EfficientNet: 1000 ImageNet classes).
    case logits
    /// The image embedding in a jointly trained image-text space (CLIP: projected, not normalized).
    case embedding

    public static func < (a: ImageOutputName, b: ImageOutputName) -> Bool {
        allCases.firstIndex(of: a)! < allCases.firstIndex(of: b)!
    }
}

/// A frozen image network, as the rest of headtune sees it: how it wants its input made, which
/// outputs it can produce, and sessions that run batches. One model file conforms per architecture.
public protocol ImageEncoderModel: Sendable {
    /// Input size, centre-crop rule and normalization the network was trained with.
    var preprocessing: PreprocessingSpec { get }
    /// Width of every output this network can compute, e.g. [.features: 1280, .stages: 784, .logits: 1000].
    var outputWidths: [ImageOutputName: Int] { get }
    /// The pretrained classifier behind `.logits` as [classes, features] row-major (what a DeViSE-style
    /// bridge regresses class names onto); nil for a network without one.
    func classifierWeights() -> [Float]?
    /// Buffers and thread settings for running batches; a session serves one thread at a time.
    func makeSession(threads: Int) -> any ImageEncoderSession
}

// MARK: - Quantization

/// A network `headtune quantize` can make an int8 form of.
public protocol QuantizableImageModel: ImageEncoderModel {
    /// A fresh calibration over this network's fp32 layers.
    func makeCalibration() -> any ImageModelCalibration
}

/// Statistics of every quantized layer's input over calibration images, in two passes over the same
/// images (`observe` all, `beginHistogramPass`, `observe` all again), then the int8 network they give.
public protocol ImageModelCalibration: AnyObject {
    /// - input: [count, size, size, 3] preprocessed images
    func observe(_ input: UnsafePointer<Float>, count: Int, threads: Int)
    func beginHistogramPass()
    /// Images seen in the range pass and in the histogram pass.
    var imagesObserved: [Int] { get }
    /// Name and chosen input range of each quantized layer under `method`.
    func layerRanges(method: CalibrationMethod) -> [(name: String, quantization: QuantizationParameters)]
    /// The int8 network under `method`, carrying `metadata` into the file it writes.
    func quantizedModel(method: CalibrationMethod, metadata: [String: String]) -> any QuantizedImageModel
}

/// An int8 network made by calibration: runs like any encoder and writes its own int8 file.
public protocol QuantizedImageModel: ImageEncoderModel {
    func fileContents() -> Data
}

// MARK: - Partial fine-tuning

/// A network whose last blocks can be trained with a head (`headtune train --unfreeze K`): it splits
/// into a frozen prefix, run once per image view (its output is what the feature cache stores), and a
/// trainable tail run every epoch on those cached activations.
public protocol PartiallyTrainableImageModel: ImageEncoderModel {
    /// The most blocks `unfreeze` can count, from the end; the last one is the head convolution
    /// (EfficientNet-Lite0: 16 MBConv blocks + the head convolution = 17).
    var unfreezableBlockCount: Int { get }
    /// The network up to the cut, as an encoder whose `.features` are the tail's input per image.
    func frozenPrefix(unfreeze: Int) throws(ModelsError) -> any ImageEncoderModel
    /// The last `unfreeze` blocks with the pretrained weights, trained in full or (with `loraRank`)
    /// through low-rank adapters on their 1x1 convolutions, whose random start is drawn from `seed`.
    func trainableTail(unfreeze: Int, loraRank: Int?, seed: UInt64) throws(ModelsError) -> any TrainableTail
    /// A tail with the parameters a head file stores (strict: every tensor, exact shapes, no others).
    func trainableTail(unfreeze: Int, loraRank: Int?, tensors: some TensorSource) throws(ModelsError) -> any TrainableTail
    /// The whole network with the tail's weights in place of the pretrained ones (adapters merged),
    /// running at the frozen network's speed.
    func applying(_ tail: any TrainableTail) throws(ModelsError) -> any ImageEncoderModel
}

extension PartiallyTrainableImageModel {
    public func trainableTail(unfreeze: Int, loraRank: Int?) throws(ModelsError) -> any TrainableTail {
        try trainableTail(unfreeze: unfreeze, loraRank: loraRank, seed: 0)
    }
}

/// One named tensor inside a tail's flat parameter vector.
public struct TailTensor: Sendable, Equatable {
    public var name: String
    public var shape: [Int]
    public var offset: Int
    /// Weights get weight decay; biases do not.
    public var isDecayed: Bool
    public var count: Int { shape.reduce(1, *) }
}

/// The trainable last blocks of a network: forward and backward over a batch of prefix outputs.
/// The output per image is laid out like the frozen network's `.features` then (when asked) `.stages`,
/// so a head on `head` or `head+stages` features reads it unchanged.
public protocol TrainableTail: AnyObject {
    var unfreeze: Int { get }
    var loraRank: Int? { get }
    /// Floats per image in (the frozen prefix's `.features`).
    var inputWidth: Int { get }
    /// Floats per image out: `.features`, plus `.stages` with `includeStages`.
    func outputWidth(includeStages: Bool) -> Int
    var tensors: [TailTensor] { get }
    /// Flat, laid out as `tensors`.
    var parameters: [Float] { get set }
    /// - input: [count, inputWidth]; the result holds [count, outputWidth] and what backward needs
    func forward(_ input: UnsafePointer<Float>, count: Int, includeStages: Bool, threads: Int) -> TailPass
    /// Accumulates dLoss/dparameters into `parameterGradient` [parameters.count] for `pass`'s batch,
    /// given dLoss/doutput [count, outputWidth].
    func backward(_ pass: TailPass, outputGradient: UnsafePointer<Float>, parameterGradient: UnsafeMutablePointer<Float>,
                  threads: Int)
}

/// One forward pass of a tail: its output, and the activations its backward pass reads.
public final class TailPass {
    /// [count, outputWidth]
    public internal(set) var output: [Float]
    public let count: Int
    public let includeStages: Bool
    /// The model's saved activations and the weights they were computed with.
    let storage: Any

    init(output: [Float], count: Int, includeStages: Bool, storage: Any) {
        self.output = output
        self.count = count
        self.includeStages = includeStages
        self.storage = storage
    }
}

/// Runs an `ImageEncoderModel` on batches of prepared inputs, reusing its workspaces. Not safe for
/// concurrent calls: each thread that runs the network owns a session.
public protocol ImageEncoderSession: AnyObject {
    /// - input: [count, size, size, 3] normalized pixels, channels-last
    /// - outputs: for each requested output, a buffer of [count, width] floats to fill; an output the
    ///   model does not have is a programming error
    func encode(_ input: UnsafePointer<Float>, count: Int, outputs: [ImageOutputName: UnsafeMutablePointer<Float>])
}
