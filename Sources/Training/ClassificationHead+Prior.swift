import Foundation

extension ClassificationHead {
    /// A linear head whose logits are `scale * (direction_c · x)` on raw features x, written for
    /// standardized inputs z = (x - mean) * inverseStd: W[c, j] = scale * direction[c, j] / inverseStd[j],
    /// b[c] = scale * direction_c · mean. `scale` is the value from a log grid (1e-4 ... 1e4) that
    /// minimizes the cross-entropy on the (standardized) training rows, so a prior that does not fit
    /// the data shrinks towards the zero head.
    public init(prior directions: FeatureMatrix, standardization: Standardization, fitting x: FeatureMatrix, labels: [Int]) {
        let classes = directions.rows, d = directions.columns
        let architecture = HeadArchitecture(kind: .linear, inputs: d, classes: classes)
        var unit = [Float](repeating: 0, count: architecture.parameterCount)
        let biasOffset = classes * d
        for c in 0..<classes {
            var bias = 0.0
            for j in 0..<d {
                let w = directions.values[c * d + j]
                unit[c * d + j] = w / standardization.inverseStd[j]
                bias += Double(w) * Double(standardization.mean[j])
            }
            unit[biasOffset + c] = Float(bias)
        }
        var best = (loss: Double.infinity, parameters: unit.map { _ in Float(0) })
        for step in -16...16 {
            let scale = Float(pow(10, Double(step) / 4))
            let candidate = ClassificationHead(architecture: architecture, parameters: unit.map { $0 * scale })
            let loss = HeadTrainer.evaluate(candidate, x, labels).loss
            if loss < best.loss { best = (loss, candidate.parameters) }
        }
        self.init(architecture: architecture, parameters: best.parameters)
    }
}
