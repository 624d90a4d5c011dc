import Foundation

/// Metrics of predicted probabilities against true labels: what `evaluate` prints and the head file
/// keeps for its validation set. JSON keys are snake_case (`--format json`).
public struct ClassificationReport: Codable, Sendable, Equatable {
    public struct ClassMetrics: Codable, Sendable, Equatable {
        public var label: String
        public var precision: Double
        public var recall: Double
        public var f1: Double
        public var support: Int
    }

    /// A wrong prediction, most confident first in `misclassified`.
    public struct Misclassification: Codable, Sendable, Equatable {
        public var path: String
        public var truth: String
        public var predicted: String
        /// Probability given to `predicted`.
        public var confidence: Double
    }

    public var labels: [String]
    public var count: Int
    public var accuracy: Double
    /// Mean of per-class recalls.
    public var balancedAccuracy: Double
    /// Mean of per-class F1 over classes with support or predictions.
    public var macroF1: Double
    /// Mean -log p(true class), probabilities clipped at 1e-15 (as scikit-learn).
    public var logLoss: Double
    /// Expected calibration error of the top-1 confidence over 15 equal-width bins (Guo et al. 2017).
    public var ece: Double
    public var perClass: [ClassMetrics]
    /// counts[truth][predicted].
    public var confusionMatrix: [[Int]]
    public var misclassified: [Misclassification]

    enum CodingKeys: String, CodingKey {
        case labels, count, accuracy
        case balancedAccuracy = "balanced_accuracy"
        case macroF1 = "macro_f1"
        case logLoss = "log_loss"
        case ece
        case perClass = "per_class"
        case confusionMatrix = "confusion_matrix"
        case misclassified
    }

    /// - probabilities: [truth.count, labels.count] rows summing to 1
    /// - paths: one per row, for the misclassified list
    public init(probabilities: [Float], truth: [Int], paths: [String], labels: [String], misclassifiedLimit: Int = 10,
                calibrationBins: Int = 15) {
        let n = truth.count, k = labels.count
        precondition(probabilities.count == n * k && paths.count == n, "report of \(n) rows x \(k) classes")
        self.labels = labels
        count = n
        var confusion = [[Int]](repeating: [Int](repeating: 0, count: k), count: k)
        var logLoss = 0.0
        var binCount = [Int](repeating: 0, count: calibrationBins)
        var binConfidence = [Double](repeating: 0, count: calibrationBins), binCorrect = [Double](repeating: 0, count: calibrationBins)
        var wrong: [Misclassification] = []
        for r in 0..<n {
            let row = probabilities[(r * k)..<((r + 1) * k)]
            var predicted = 0
            for c in 1..<k where row[row.startIndex + c] > row[row.startIndex + predicted] { predicted = c }
            let confidence = Double(row[row.startIndex + predicted])
            confusion[truth[r]][predicted] += 1
            logLoss -= Foundation.log(min(max(Double(row[row.startIndex + truth[r]]), 1e-15), 1))
            let bin = min(calibrationBins - 1, Int(confidence * Double(calibrationBins)))
            binCount[bin] += 1
            binConfidence[bin] += confidence
            binCorrect[bin] += predicted == truth[r] ? 1 : 0
            if predicted != truth[r] {
                wrong.append(Misclassification(path: paths[r], truth: labels[truth[r]], predicted: labels[predicted], confidence: confidence))
            }
        }
        confusionMatrix = confusion
        self.logLoss = n > 0 ? logLoss / Double(n) : 0
        ece = n > 0 ? (0..<calibrationBins).reduce(0) { $0 + abs(binCorrect[$1] - binConfidence[$1]) } / Double(n) : 0
        misclassified = Array(wrong.enumerated().sorted {
            $0.element.confidence != $1.element.confidence ? $0.element.confidence > $1.element.confidence : $0.offset < $1.offset
        }.map(\.element).prefix(misclassifiedLimit))

        var correct = 0
        var perClass: [ClassMetrics] = []
        var recalls: [Double] = [], f1s: [Double] = []
        for c in 0..<k {
            let tp = confusion[c][c], support = confusion[c].reduce(0, +)
            let predictedCount = (0..<k).reduce(0) { $0 + confusion[$1][c] }
            correct += tp
            let precision = predictedCount > 0 ? Double(tp) / Double(predictedCount) : 0
            let recall = support > 0 ? Double(tp) / Double(support) : 0
            let f1 = precision + recall > 0 ? 2 * precision * recall / (precision + recall) : 0
            perClass.append(ClassMetrics(label: labels[c], precision: precision, recall: recall, f1: f1, support: support))
            if support > 0 { recalls.append(recall) }
            if support > 0 || predictedCount > 0 { f1s.append(f1) }
        }
        self.perClass = perClass
        accuracy = n > 0 ? Double(correct) / Double(n) : 0
        balancedAccuracy = recalls.isEmpty ? 0 : recalls.reduce(0, +) / Double(recalls.count)
        macroF1 = f1s.isEmpty ? 0 : f1s.reduce(0, +) / Double(f1s.count)
    }
}
