import Foundation
import Kernels

/// One class with its probability, as every classifier output reports it.
public struct Prediction: Codable, Sendable, Equatable {
    public var label: String
    public var index: Int
    public var score: Float

    public init(label: String, index: Int, score: Float) {
        self.label = label
        self.index = index
        self.score = score
    }
}

/// The JSON-lines contract: one record per input, in input order, `path` exactly as given;
/// either `predictions` or `error` is present. The optional fields appear only when asked for
/// (`embedding`, `logits`) or when the head can tell (`unknown`, `ood_score`).
public struct ClassificationRecord: Codable, Sendable, Equatable {
    public var path: String
    public var predictions: [Prediction]?
    /// The image looks like none of the head's training images (out-of-distribution score above
    /// the head's threshold).
    public var unknown: Bool?
    /// The out-of-distribution score of the head's detector (its `method`: the combined score by
    /// default; larger = less like the training images), compared with its stored threshold.
    public var oodScore: Float?
    /// Every score the detector computes, in `OutOfDistributionScore` order, when asked for
    /// (`classify --ood-scores`).
    public var oodScores: [NamedScore]?
    /// [1280] pooled backbone features.
    public var embedding: [Float]?
    /// Raw classifier outputs before softmax/sigmoid, one per class.
    public var logits: [Float]?
    public var error: String?

    public init(path: String, predictions: [Prediction]? = nil, error: String? = nil) {
        self.path = path
        self.predictions = predictions
        self.error = error
    }

    /// One out-of-distribution score by name (`ood_scores` in JSON: an object in this order).
    public struct NamedScore: Codable, Sendable, Equatable {
        public var name: String
        public var score: Float

        public init(name: String, score: Float) {
            self.name = name
            self.score = score
        }
    }

    enum CodingKeys: String, CodingKey {
        case path, predictions, unknown, oodScore = "ood_score", oodScores = "ood_scores", embedding, logits, error
    }

}

/// The `k` highest entries of `probabilities`, highest first (ties: lower index first).
public func largestEntries(_ probabilities: UnsafeBufferPointer<Float>, k: Int) -> [(index: Int, score: Float)] {
    let k = min(k, probabilities.count)
    var best: [(index: Int, score: Float)] = []
    best.reserveCapacity(k + 1)
    for (i, p) in probabilities.enumerated() {
        if best.count == k, let last = best.last, !(p > last.score) { continue }
        let position = best.firstIndex { p > $0.score } ?? best.count
        best.insert((i, p), at: position)
        if best.count > k { best.removeLast() }
    }
    return best
}

/// Softmax of one row of logits.
public func probabilities(fromLogits logits: [Float]) -> [Float] {
    var result = logits
    result.withUnsafeMutableBufferPointer { softmaxRows($0.baseAddress!, rows: 1, columns: $0.count) }
    return result
}

// MARK: - CSV

extension ClassificationRecord {
    /// The CSV columns: one row per prediction (rank 1 first), the out-of-distribution columns when the
    /// classifier has a detector, the error last.
    public static func csvHeader(outOfDistribution: Bool) -> String {
        "path,rank,index,label,score" + (outOfDistribution ? ",unknown,ood_score" : "") + ",error\n"
    }

    /// This record's CSV rows (a failed input: one row with only the path and the error).
    public func csvRows(outOfDistribution: Bool) -> String {
        let path = csvField(self.path), empty = outOfDistribution ? ",,,,,," : ",,,,"
        if let error { return "\(path)\(empty),\(csvField(error))\n" }
        let ood = outOfDistribution
            ? "," + (unknown.map { String($0) } ?? "") + "," + (oodScore.map { String($0) } ?? "") : ""
        return (predictions ?? []).enumerated().map { rank, p in
            "\(path),\(rank + 1),\(p.index),\(csvField(p.label)),\(String(format: "%.6f", p.score))\(ood),\n"
        }.joined()
    }
}

/// RFC 4180 quoting where needed.
public func csvField(_ value: String) -> String {
    guard value.contains(where: { $0 == "," || $0 == "\"" || $0 == "\n" || $0 == "\r" }) else { return value }
    return "\"" + value.replacingOccurrences(of: "\"", with: "\"\"") + "\""
}
