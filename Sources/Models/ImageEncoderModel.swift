import Imaging

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

extension ImageEncoderModel {
}

/// Runs an `ImageEncoderModel` on batches of prepared inputs, reusing its workspaces. Not safe for
/// concurrent calls: each thread that runs the network owns a session.
public protocol ImageEncoderSession: AnyObject {
    /// - input: [count, size, size, 3] normalized pixels, channels-last
    /// - outputs: for each requested output, a buffer of [count, width] floats to fill; an output the
    ///   model does not have is a programming error
    func encode(_ input: UnsafePointer<Float>, count: Int, outputs: [ImageOutputName: UnsafeMutablePointer<Float>])
}
