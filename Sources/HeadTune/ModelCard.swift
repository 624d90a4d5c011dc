import Foundation
import Training
import Weights

/// What `headtune train --report` describes beside the validation metrics: how the head was made
/// (settings, the L2 cross-validation curve), how training went (loss and accuracy per epoch, train
/// and validation), the unknown-flag threshold against the validation images' scores, the data per
/// class, an example training image per class (shown beside each mistake), and the head file's
/// name and hash. Encoded as the `model_card` object of `--format json` (snake_case keys).
public struct ModelCard: Encodable, Sendable {
    public struct Settings: Encodable, Sendable {
        public var encoder: String
        public var featureSet: String
        public var features: Int
        public var policy: String
        public var inputSize: Int
        public var testTimeFlip: Bool
        public var augment: [String]
        public var head: String
        public var optimizer: String
        /// The L2 strength used (L-BFGS), chosen or given.
        public var l2: Float?
        public var l2ChosenBy: String?
        public var learningRate: Float?
        public var seed: UInt64

        enum CodingKeys: String, CodingKey {
            case encoder, features, policy, augment, head, optimizer, l2, seed
            case featureSet = "feature_set", inputSize = "input_size", testTimeFlip = "test_time_flip"
            case l2ChosenBy = "l2_chosen_by", learningRate = "learning_rate"
        }
    }

    public struct L2Point: Encodable, Sendable {
        public var l2: Float
        public var accuracy: Double
        public var logLoss: Double
        enum CodingKeys: String, CodingKey { case l2, accuracy, logLoss = "log_loss" }
    }

    public struct Epoch: Encodable, Sendable {
        public var epoch: Int
        public var trainLoss: Double
        public var trainAccuracy: Double
        public var validationLoss: Double?
        public var validationAccuracy: Double?
        enum CodingKeys: String, CodingKey {
            case epoch, trainLoss = "train_loss", trainAccuracy = "train_accuracy"
            case validationLoss = "validation_loss", validationAccuracy = "validation_accuracy"
        }
    }

    public struct UnknownFlag: Encodable, Sendable {
        public var method: String
        public var k: Int
        public var threshold: Float
        public var percentile: Double
        public var calibration: String
        /// Equal-width bins of the validation images' scores: `edges` has one more entry than `counts`.
        public var histogramEdges: [Float]
        public var histogramCounts: [Int]
        public var validationFlagged: Int
        enum CodingKeys: String, CodingKey {
            case method, k, threshold, percentile, calibration
            case histogramEdges = "histogram_edges", histogramCounts = "histogram_counts", validationFlagged = "validation_flagged"
        }
    }

    public struct ClassData: Encodable, Sendable {
        public var label: String
        public var train: Int
        public var validation: Int
        /// A training image of the class (shown beside mistakes predicted as it).
        public var example: String?
    }

    public var headFile: String
    public var headSHA256: String
    public var headBytes: Int
    public var settings: Settings
    public var l2Curve: [L2Point]
    public var epochs: [Epoch]
    public var bestEpoch: Int
    public var unknownFlag: UnknownFlag?
    public var classes: [ClassData]
    public var skippedFiles: Int

    enum CodingKeys: String, CodingKey {
        case settings, epochs, classes
        case headFile = "head_file", headSHA256 = "head_sha256", headBytes = "head_bytes", l2Curve = "l2_curve"
        case bestEpoch = "best_epoch", unknownFlag = "unknown_flag", skippedFiles = "skipped_files"
    }

    /// - epochs: the records `HeadTrainingEvents.epoch` was given, in order
    /// - headPath: where the head file was written (read back for its size and sha256)
    public init(outcome: HeadTrainingOutcome, epochs: [EpochRecord], headPath: String) throws {
        let file = outcome.headFile, m = file.metadata, s = outcome.statistics
        headFile = (headPath as NSString).lastPathComponent
        headSHA256 = try SHA256.hex(fileAt: headPath)
        headBytes = (try FileManager.default.attributesOfItem(atPath: headPath)[.size] as? NSNumber)?.intValue ?? 0
        let lbfgs = m.training.resolvedOptimizer == .lbfgs
        settings = Settings(
            encoder: m.backbone.id, featureSet: m.backbone.featureSet.rawValue, features: m.backbone.featureCount,
            policy: m.preprocessing.policy.rawValue, inputSize: m.preprocessing.inputSize, testTimeFlip: m.preprocessing.testTimeFlip,
            augment: m.preprocessing.augment,
            head: m.architecture.kind == .mlp ? "mlp \(m.architecture.inputs)-\(m.architecture.hidden)-\(m.architecture.classes)"
                : "linear \(m.architecture.inputs)-\(m.architecture.classes)",
            optimizer: m.training.resolvedOptimizer.rawValue, l2: lbfgs ? m.training.l2 : nil,
            l2ChosenBy: lbfgs ? (s.l2Selection.map { "\($0.folds)-fold cross-validation" } ?? "--l2") : nil,
            learningRate: lbfgs ? nil : m.training.learningRate, seed: m.training.seed)
        l2Curve = s.l2Selection?.scores.map { L2Point(l2: $0.l2, accuracy: $0.accuracy, logLoss: $0.logLoss) } ?? []
        self.epochs = epochs.map {
            Epoch(epoch: $0.epoch, trainLoss: $0.trainLoss, trainAccuracy: $0.trainAccuracy, validationLoss: $0.validationLoss,
                  validationAccuracy: $0.validationAccuracy)
        }
        bestEpoch = m.bestEpoch
        skippedFiles = s.skippedFiles
        let data = outcome.data
        var example = [String?](repeating: nil, count: m.labels.count)
        for (row, label) in data.trainLabels.enumerated() where example[label] == nil {
            let image = data.trainImages[row]
            if image < data.trainPaths.count { example[label] = data.trainPaths[image] }
        }
        classes = m.labels.indices.map {
            ClassData(label: m.labels[$0], train: $0 < s.trainCounts.count ? s.trainCounts[$0] : 0,
                      validation: $0 < s.validationCounts.count ? s.validationCounts[$0] : 0, example: example[$0])
        }
        unknownFlag = nil
        if let detector = file.outOfDistribution, data.validation.rows > 0, data.validation.columns == detector.bank.columns {
            var validation = data.validation
            file.standardization.apply(to: &validation)
            let scores = detector.defaultScores(validation, logits: file.head.logits(validation))
            let (edges, histogramCounts) = Self.histogram(scores, bins: 20, splitAt: detector.settings.threshold)
            let d = detector.settings
            unknownFlag = UnknownFlag(method: d.method, k: d.k, threshold: d.threshold, percentile: d.percentile,
                                      calibration: d.calibration, histogramEdges: edges, histogramCounts: histogramCounts,
                                      validationFlagged: scores.filter(detector.isUnknown).count)
        }
    }

    /// Equal-width bins (about `bins` of them) over the values and `split`, with `split` on an edge, so
    /// that no bin holds images on both sides of it: with the threshold there, every bin is wholly
    /// known or wholly flagged. A value equal to `split` goes below it (unknown means above).
    static func histogram(_ values: [Float], bins: Int, splitAt split: Float) -> (edges: [Float], counts: [Int]) {
        guard let valuesLow = values.min(), let valuesHigh = values.max() else { return ([], []) }
        let low = min(valuesLow, split), high = max(valuesHigh, split)
        let width = high > low ? (high - low) / Float(bins) : 1
        let below = max(values.contains { $0 <= split } ? 1 : 0, Int(((split - low) / width).rounded(.up)))
        let above = max(1, Int(((high - split) / width).rounded(.up)))
        // Edges counted from the split, so that one of them is the split exactly; each value's bin is
        // counted from the split too, so rounding cannot put it on the wrong side.
        let edges = (0...(below + above)).map { split + Float($0 - below) * width }
        var counts = [Int](repeating: 0, count: below + above)
        for v in values {
            let b = v <= split ? below - 1 - min(below - 1, Int(((split - v) / width).rounded(.down)))
                : below + min(above - 1, Int(((v - split) / width).rounded(.down)))
            counts[b] += 1
        }
        return (edges, counts)
    }
}
