/// The training loss of a head on a fixed set of standardized features: weighted, smoothed
/// cross-entropy plus (l2 / 2) * ||weights - anchor||^2 (biases are not penalized; the anchor is zero
/// unless a prior head is given, as in L2-SP: Li et al., "Explicit Inductive Bias for Transfer Learning
/// with Convolutional Networks", ICML 2018).
public struct HeadObjective: Sendable {
    public var architecture: HeadArchitecture
    public var features: FeatureMatrix
    public var labels: [Int]
    /// Per-row weights (class weights looked up per row); nil: all 1.
    public var rowWeights: [Float]?
    public var smoothing: Float
    public var l2: Float
    /// Parameters the weights are pulled towards (same layout as the head's); nil: zero.
    public var anchor: [Float]?

    public init(architecture: HeadArchitecture, features: FeatureMatrix, labels: [Int], rowWeights: [Float]? = nil,
                smoothing: Float = 0, l2: Float = 0, anchor: [Float]? = nil) {
        precondition(anchor.map { $0.count == architecture.parameterCount } ?? true, "anchor of another head shape")
        precondition(features.rows == labels.count, "\(features.rows) rows, \(labels.count) labels")
        self.architecture = architecture
        self.features = features
        self.labels = labels
        self.rowWeights = rowWeights
        self.smoothing = smoothing
        self.l2 = l2
        self.anchor = anchor
    }

    /// Loss at `parameters` over all rows (no dropout); writes the gradient when asked.
    public func evaluate(_ parameters: [Float], gradient: inout [Float]) -> Double {
        evaluate(parameters, rows: nil, gradient: &gradient, dropout: 0, generator: nil)
    }

    /// Loss without the gradient.
    public func value(_ parameters: [Float]) -> Double {
        var none: [Float] = []
        return evaluate(parameters, rows: nil, gradient: &none, dropout: 0, generator: nil, wantGradient: false)
    }

    /// Loss over a subset of rows (a minibatch; nil = all), with dropout drawn from `generator`.
    /// `gradient` is resized to the parameter count and overwritten.
    public func evaluate(_ parameters: [Float], rows subset: [Int]?, gradient: inout [Float], dropout: Float,
                         generator: UnsafeMutablePointer<SeededGenerator>?, wantGradient: Bool = true) -> Double {
        let batch = subset.map { features.selecting($0) } ?? features
        let batchLabels = subset.map { $0.map { labels[$0] } } ?? labels
        let batchWeights = rowWeights.map { w in subset.map { $0.map { w[$0] } } ?? w }
        let classes = architecture.classes
        var pass = HeadPass(architecture: architecture, rows: batch.rows)
        var logits = [Float](repeating: 0, count: batch.rows * classes)
        var logitGradient = [Float](repeating: 0, count: wantGradient ? logits.count : 0)
        if wantGradient { gradient = [Float](repeating: 0, count: parameters.count) }
        var loss = batch.values.withUnsafeBufferPointer { x in
            parameters.withUnsafeBufferPointer { p in
                logits.withUnsafeMutableBufferPointer { z in
                    pass.forward(x.baseAddress!, p.baseAddress!, logits: z.baseAddress!, dropout: dropout, generator: generator)
                    return logitGradient.withUnsafeMutableBufferPointer { dz in
                        let loss = CrossEntropy.loss(logits: z.baseAddress!, rows: batch.rows, classes: classes, labels: batchLabels,
                                                     weights: batchWeights, smoothing: smoothing,
                                                     gradient: wantGradient ? dz.baseAddress! : nil)
                        if wantGradient {
                            gradient.withUnsafeMutableBufferPointer { g in
                                pass.backward(x.baseAddress!, p.baseAddress!, logitGradient: dz.baseAddress!, gradient: g.baseAddress!)
                            }
                        }
                        return loss
                    }
                }
            }
        }
        if l2 > 0 {
            var penalty = 0.0
            for tensor in architecture.tensors where tensor.isDecayed {
                for i in tensor.offset..<(tensor.offset + tensor.count) {
                    let delta = parameters[i] - (anchor?[i] ?? 0)
                    penalty += Double(delta) * Double(delta)
                    if wantGradient { gradient[i] += l2 * delta }
                }
            }
            loss += 0.5 * Double(l2) * penalty
        }
        return loss
    }
}
