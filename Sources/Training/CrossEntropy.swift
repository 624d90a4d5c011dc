import Foundation

/// Softmax cross-entropy with label smoothing (Szegedy et al. 2016, "Rethinking the Inception
/// Architecture", section 7) and per-sample weights:
/// target q = (1 - ε) onehot(y) + ε / C, loss = Σ_i w_i (-Σ_c q_ic log p_ic) / Σ_i w_i.
public enum CrossEntropy {
    /// - logits: [rows, classes]
    /// - weights: per-row weights (nil: all 1)
    /// - gradient: when non-nil receives dLoss/dlogits [rows, classes] = w_i (p_i - q_i) / Σ w
    /// Returns the weighted mean loss (Double accumulation).
    public static func loss(
        logits: UnsafePointer<Float>, rows: Int, classes: Int, labels: [Int],
        weights: [Float]?, smoothing: Float, gradient: UnsafeMutablePointer<Float>?
    ) -> Double {
        precondition(labels.count == rows && (weights?.count ?? rows) == rows, "labels/weights for \(rows) rows")
        var totalWeight = 0.0
        for r in 0..<rows { totalWeight += Double(weights?[r] ?? 1) }
        guard rows > 0, totalWeight > 0 else { return 0 }
        let off = smoothing / Float(classes), on = 1 - smoothing + off
        var total = 0.0
        for r in 0..<rows {
            let z = logits + r * classes
            var maximum = -Float.infinity
            for c in 0..<classes { maximum = max(maximum, z[c]) }
            var sum: Float = 0
            for c in 0..<classes { sum += expf(z[c] - maximum) }
            let logSumExp = maximum + logf(sum)
            var rowLoss: Float = 0
            for c in 0..<classes { rowLoss += (c == labels[r] ? on : off) * (logSumExp - z[c]) }
            let w = Double(weights?[r] ?? 1)
            total += w * Double(rowLoss)
            if let gradient {
                let g = gradient + r * classes, scale = Float(w / totalWeight)
                for c in 0..<classes { g[c] = scale * (expf(z[c] - logSumExp) - (c == labels[r] ? on : off)) }
            }
        }
        return total / totalWeight
    }
}

/// Per-class weights n / (classes * count_c) (scikit-learn's `class_weight="balanced"`), so every
/// class contributes equally to the loss however many images it has. Absent classes get 0.
public func balancedClassWeights(labels: [Int], classes: Int) -> [Float] {
    var counts = [Int](repeating: 0, count: classes)
    for label in labels { counts[label] += 1 }
    let present = counts.filter { $0 > 0 }.count
    return counts.map { $0 == 0 ? 0 : Float(Double(labels.count) / Double(present * $0)) }
}
