import Foundation
import Training

/// What a head's out-of-distribution flag does on the user's data: the evaluation images (in
/// distribution) against a folder of images the user knows to be out of scope, per score the
/// detector computes (`headtune evaluate --ood DIR`).
public struct OutOfDistributionReport: Codable, Sendable, Equatable {
    public struct Row: Codable, Sendable, Equatable {
        public var score: String
        /// This score gives records their `unknown` and `ood_score`.
        public var isDefault: Bool
        /// The head's stored threshold for this score.
        public var threshold: Float
        /// Probability that an out-of-scope image scores above an evaluation image (ties count half).
        public var auroc: Double
        /// Share of evaluation images above the threshold (the head was calibrated for `percentile`).
        public var falseAlarmRate: Double
        /// Share of out-of-scope images above the threshold.
        public var catchRate: Double

        enum CodingKeys: String, CodingKey {
            case score, isDefault = "default", threshold, auroc, falseAlarmRate = "false_alarm_rate", catchRate = "catch_rate"
        }
    }

    public var directory: String
    public var inDistributionImages: Int
    public var outOfDistributionImages: Int
    /// The false-alarm rate the thresholds were set for (0.05 for the 95th percentile).
    public var calibratedFalseAlarmRate: Double
    public var rows: [Row]

    enum CodingKeys: String, CodingKey {
        case directory, inDistributionImages = "in_distribution_images", outOfDistributionImages = "out_of_distribution_images"
        case calibratedFalseAlarmRate = "calibrated_false_alarm_rate", rows = "scores"
    }

    /// - inside / outside: per image, every score the detector gave it.
    public init(detector: OutOfDistributionDetector, inside: [[OutOfDistributionScore: Float]],
                outside: [[OutOfDistributionScore: Float]], directory: String) {
        self.directory = directory
        inDistributionImages = inside.count
        outOfDistributionImages = outside.count
        calibratedFalseAlarmRate = (100 - detector.settings.percentile) / 100
        rows = detector.availableScores.compactMap { score in
            guard let threshold = detector.threshold(of: score) else { return nil }
            let negatives = inside.compactMap { $0[score] }, positives = outside.compactMap { $0[score] }
            func share(_ values: [Float]) -> Double {
                values.isEmpty ? 0 : Double(values.filter { $0 > threshold }.count) / Double(values.count)
            }
            return Row(score: score.rawValue, isDefault: score == detector.settings.score, threshold: threshold,
                       auroc: areaUnderROC(negatives: negatives, positives: positives),
                       falseAlarmRate: share(negatives), catchRate: share(positives))
        }
    }

    /// The longest score name and its default mark: "relative-mahalanobis *".
    static let nameWidth = 22

    /// The table `evaluate` prints after the classification report.
    public func text() -> String {
        var lines = ["", "Out-of-distribution flag: \(inDistributionImages) evaluation images against \(outOfDistributionImages) in \(directory)",
                     String(format: "  thresholds set for %.1f%% false alarms on the head's validation images", calibratedFalseAlarmRate * 100),
                     "  " + "score".padding(toLength: Self.nameWidth + 1, withPad: " ", startingAt: 0) + "threshold   AUROC  false alarms  caught"]
        for row in rows {
            lines.append(String(format: "  %@ %9.4f  %6.4f  %11.1f%%  %5.1f%%", (row.score + (row.isDefault ? " *" : ""))
                                    .padding(toLength: Self.nameWidth, withPad: " ", startingAt: 0), row.threshold, row.auroc,
                                row.falseAlarmRate * 100, row.catchRate * 100))
        }
        lines.append("  * the score behind \"unknown\" and \"ood_score\"")
        return lines.joined(separator: "\n") + "\n"
    }
}

/// Probability that a random positive scores above a random negative, ties counting half (the
/// Mann-Whitney statistic); NaN when either side is empty.
public func areaUnderROC(negatives: [Float], positives: [Float]) -> Double {
    guard !negatives.isEmpty, !positives.isEmpty else { return .nan }
    let ranked = (negatives.map { ($0, false) } + positives.map { ($0, true) }).sorted { $0.0 < $1.0 }
    var rankSum = 0.0, i = 0
    while i < ranked.count {
        var j = i
        while j < ranked.count && ranked[j].0 == ranked[i].0 { j += 1 }
        let averageRank = Double(i + 1 + j) / 2
        rankSum += averageRank * Double(ranked[i..<j].filter(\.1).count)
        i = j
    }
    let p = Double(positives.count), n = Double(negatives.count)
    return (rankSum - p * (p + 1) / 2) / (p * n)
}
