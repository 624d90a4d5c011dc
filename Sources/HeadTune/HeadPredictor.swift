import Foundation
import Imaging
import Kernels
import Training

/// Extra views of each training image (`--augment`).
public enum Augmentation: String, CaseIterable, Sendable, Codable {
    /// The mirror image.
    case flip
    /// Two crops of 85% of each side, anchored at the top-left and bottom-right corners.
    case crop

    /// The views this augmentation adds to `base`.
    func views(of base: ImageView) -> [ImageView] {
        switch self {
        case .flip: return [ImageView(policy: base.policy, mirrored: true)]
        case .crop:
            return [ImageView(policy: base.policy, crop: .init(anchorX: 0, anchorY: 0, scale: 0.85)),
                    ImageView(policy: base.policy, crop: .init(anchorX: 1, anchorY: 1, scale: 0.85))]
        }
    }

    /// The plain view followed by every augmentation's views, without repeats.
    public static func trainingViews(policy: CropPolicy, augment: [Augmentation]) -> [ImageView] {
        let base = ImageView(policy: policy)
        var views = [base]
        for augmentation in augment { for view in augmentation.views(of: base) where !views.contains(view) { views.append(view) } }
        return views
    }
}

/// The views whose features are averaged for one prediction: the plain view, and its mirror with
/// test-time flip.
public func predictionViews(policy: CropPolicy, testTimeFlip: Bool) -> [ImageView] {
    let base = ImageView(policy: policy)
    return testTimeFlip ? [base, ImageView(policy: policy, mirrored: true)] : [base]
}

/// Per path, the mean of its features over `views` (requests laid out path-major, as
/// `requests(paths:views:)` makes them); a failure in any view fails the path.
func averagedFeatures(_ results: [Result<[Float], Error>], paths: Int, views: Int) -> [Result<[Float], Error>] {
    (0..<paths).map { p in
        var rows: [[Float]] = []
        for v in 0..<views {
            switch results[p * views + v] {
            case .failure(let error): return .failure(error)
            case .success(let features): rows.append(features)
            }
        }
        return .success(meanOfVectors(rows))
    }
}

/// Path-major requests: every view of the first path, then of the second, ...
func requests(paths: [String], views: [ImageView]) -> [FeatureRequest] {
    paths.flatMap { path in views.map { FeatureRequest(path: path, view: $0) } }
}

/// A trained head on top of the encoder it was trained on: image files -> class probabilities.
public struct HeadPredictor: Sendable {
    public let head: HeadFile
    public let policy: CropPolicy
    public let views: [ImageView]
    /// The network this head's features come from: the given encoder, or for a head trained with
    /// `--unfreeze`, that encoder with the head's tuned tail in place.
    public let encoder: ImageEncoder

    /// Refuses a head trained on other encoder weights (its features would mean something else).
    public init(head: HeadFile, path: String, encoder: ImageEncoder) throws {
        try head.requireBackbone(id: encoder.identifier, weightsSHA256: encoder.weightsSHA256, path: path)
        do {
            self.encoder = try head.tail.map { try encoder.tuned(with: $0) } ?? encoder
        } catch {
            throw TrainingError.invalidHeadFile(path: path, reason: "its tuned tail does not fit \(encoder.identifier): "
                                                + ((error as? LocalizedError)?.errorDescription ?? "\(error)"))
        }
        let preprocessing = head.metadata.preprocessing
        guard preprocessing.inputSize == encoder.inputSize else {
            throw TrainingError.invalidHeadFile(path: path, reason: "preprocessing \(preprocessing.policy.rawValue) at "
                                                + "\(preprocessing.inputSize) px is not supported by this encoder")
        }
        let featureSet = head.metadata.backbone.featureSet
        let available = encoder.featureCount(for: featureSet)
        guard head.metadata.backbone.featureCount == available else {
            throw TrainingError.invalidHeadFile(path: path, reason: "\(head.metadata.backbone.featureCount) \(featureSet.rawValue) features; "
                                                + "this encoder gives \(available.map(String.init) ?? "none")")
        }
        self.head = head
        policy = preprocessing.policy
        views = predictionViews(policy: policy, testTimeFlip: preprocessing.testTimeFlip)
    }

    /// The encoder outputs this head reads (what it was trained on).
    public var featureSet: FeatureSet { head.metadata.backbone.featureSet }

    public static func load(path: String, encoder: ImageEncoder) throws -> HeadPredictor {
        try HeadPredictor(head: HeadFile.read(path: path), path: path, encoder: encoder)
    }

    public var labels: [String] { head.metadata.labels }

    /// Class probabilities [labels.count] per path, in input order, or the reason a file failed.
    public func predict(paths: [String], extractor: FeatureExtractor, progress: (Int, Int) -> Void = { _, _ in })
        throws -> [Result<[Float], Error>]
    {
        try predictOutputs(paths: paths, extractor: extractor, progress: progress).map { $0.map(\.probabilities) }
    }

    /// Everything the head says about each path (probabilities, logits, out-of-distribution scores),
    /// in input order, or the reason a file failed.
    public func predictOutputs(paths: [String], extractor: FeatureExtractor, progress: (Int, Int) -> Void = { _, _ in })
        throws -> [Result<Output, Error>]
    {
        var extractor = extractor
        extractor.encoder = encoder
        let outcome = try extractor.extract(requests(paths: paths, views: views), featureSet: featureSet, progress: progress)
        return outputs(for: averagedFeatures(outcome.results, paths: paths.count, views: views.count))
    }

    /// Whether classes are independent (sigmoid per class) rather than exclusive (softmax). Heads
    /// say so in their metadata; `headtune train` makes single-label heads only.
    public var isMultiLabel: Bool { head.metadata.multiLabel ?? false }

    /// What the head says about one image.
    public struct Output: Sendable {
        /// [classes] before softmax/sigmoid.
        public var logits: [Float]
        /// [classes] softmax, or per-class sigmoid for a multi-label head.
        public var probabilities: [Float]
        /// The detector's score (its `method`) and verdict, when the head has a detector.
        public var outOfDistributionScore: Float?
        public var isUnknown: Bool?
        /// Every score the detector computes (k-NN alone for heads from before format 5).
        public var outOfDistributionScores: [OutOfDistributionScore: Float] = [:]
    }

    /// Standardizes raw encoder features [features of `featureSet`] per image, runs the head and the
    /// out-of-distribution detector on all successful rows at once (one GEMM each).
    public func outputs(for features: [Result<[Float], Error>]) -> [Result<Output, Error>] {
        var matrix = FeatureMatrix(columns: head.head.architecture.inputs)
        for case .success(let row) in features { matrix.append(row: row) }
        head.standardization.apply(to: &matrix)
        let logits = head.head.logits(matrix)
        var probabilities = logits
        if isMultiLabel {
            for i in probabilities.indices { probabilities[i] = 1 / (1 + exp(-probabilities[i])) }
        } else if matrix.rows > 0 {
            probabilities.withUnsafeMutableBufferPointer { softmaxRows($0.baseAddress!, rows: matrix.rows, columns: labels.count) }
        }
        let detector = head.outOfDistribution
        let table = detector?.scores(matrix, logits: logits) ?? [:]
        let method = detector?.settings.score
        let k = labels.count
        var row = 0
        return features.map { result in
            result.map { _ in
                defer { row += 1 }
                let score = method.flatMap { table[$0]?[row] }
                return Output(logits: Array(logits[(row * k)..<((row + 1) * k)]),
                              probabilities: Array(probabilities[(row * k)..<((row + 1) * k)]),
                              outOfDistributionScore: score, isUnknown: score.map { detector!.isUnknown($0) },
                              outOfDistributionScores: table.mapValues { $0[row] })
            }
        }
    }

    /// What the head says about each image from its features under each of `views`, laid out
    /// image-major (every view of the first image, then of the second, ...) and averaged over the
    /// views as `predict(paths:extractor:)` does (the service's path: images held in memory).
    public func outputs(viewFeatures: [[Float]]) -> [Output] {
        precondition(viewFeatures.count % views.count == 0, "features for \(viewFeatures.count) views, \(views.count) per image")
        let images = viewFeatures.count / views.count
        let averaged = averagedFeatures(viewFeatures.map { .success($0) }, paths: images, views: views.count)
        return outputs(for: averaged).compactMap { try? $0.get() }
    }
}
