import HeadTune
import Imaging

/// What a head says about one image: the same numbers `/v1/classify` and `/v2/.../infer` answer with.
struct HeadScore: Sendable {
    /// [classes] softmax (per-class sigmoid for a multi-label head).
    var probabilities: [Float]
    /// The k-NN out-of-distribution score and verdict, when the head stores training features.
    var oodScore: Float?
    var unknown: Bool?
}

extension LoadedHead {
    /// The views each image runs under: the head's (the plain view, and its mirror with test-time
    /// flip), or the encoder's plain view for the ImageNet classifier.
    func views(on encoder: ImageEncoder) -> [ImageView] { predictor?.views ?? [encoder.plainView] }

    /// The encoder outputs the head reads (the ImageNet classifier reads the encoder's own logits).
    func requiredOutputs(on encoder: ImageEncoder) -> [ImageOutput] {
        predictor.map { encoder.outputs(for: $0.featureSet) } ?? [.logits]
    }

    /// Whether answers carry an out-of-distribution score and verdict.
    var hasOutOfDistributionDetector: Bool { predictor?.head.outOfDistribution != nil }

    /// Per image, what the head says about it from what the encoder computed under `views(on:)`.
    func score(_ encoded: [[EncodedImage]], encoder: ImageEncoder) -> [HeadScore] {
        guard let predictor else {
            return encoded.map { HeadScore(probabilities: probabilities(fromLogits: $0[0].logits ?? [])) }
        }
        let viewFeatures = encoded.flatMap { $0.map { $0.features(predictor.featureSet, of: encoder) } }
        return predictor.outputs(viewFeatures: viewFeatures).map {
            HeadScore(probabilities: $0.probabilities, oodScore: $0.outOfDistributionScore, unknown: $0.isUnknown)
        }
    }
}
