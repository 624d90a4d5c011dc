import Kernels

/// The trainable part on top of the frozen backbone.
public enum HeadKind: String, Codable, Sendable, CaseIterable {
    /// Multinomial logistic regression: logits = x W^T + b.
    case linear
    /// One hidden ReLU layer with dropout: logits = relu(x W1^T + b1) W2^T + b2.
    case mlp
}

/// Shapes of a head. Parameters live in one flat vector (what the optimizers update), laid out as
/// the tensors of `tensors` in order.
public struct HeadArchitecture: Codable, Sendable, Equatable {
    public var kind: HeadKind
    public var inputs: Int
    /// Hidden units (mlp only; 0 for linear).
    public var hidden: Int
    public var classes: Int

    public init(kind: HeadKind, inputs: Int, hidden: Int = 0, classes: Int) {
        self.kind = kind
        self.inputs = inputs
        self.hidden = kind == .mlp ? hidden : 0
        self.classes = classes
    }

    /// A named tensor inside the flat parameter vector.
    public struct Tensor: Sendable, Equatable {
        public var name: String
        public var shape: [Int]
        public var offset: Int
        public var count: Int { shape.reduce(1, *) }
        /// Weights get L2 / weight decay; biases do not (as in scikit-learn and AdamW practice).
        public var isDecayed: Bool { shape.count == 2 }
    }

    /// The tensors' names and shapes, computed without multiplying (sizes read from a file are checked
    /// against its tensors before any count is taken).
    public var tensorShapes: [(name: String, shape: [Int])] {
        switch kind {
        case .linear: [("weight", [classes, inputs]), ("bias", [classes])]
        case .mlp: [("hidden.weight", [hidden, inputs]), ("hidden.bias", [hidden]),
                    ("output.weight", [classes, hidden]), ("output.bias", [classes])]
        }
    }

    public var tensors: [Tensor] {
        var offset = 0
        return tensorShapes.map { name, shape in
            defer { offset += shape.reduce(1, *) }
            return Tensor(name: name, shape: shape, offset: offset)
        }
    }

    public var parameterCount: Int { tensors.reduce(0) { $0 + $1.count } }
}

/// A head with its parameters.
public struct ClassificationHead: Sendable, Equatable {
    public var architecture: HeadArchitecture
    /// Flat parameters, laid out as `architecture.tensors`.
    public var parameters: [Float]

    public init(architecture: HeadArchitecture, parameters: [Float]) {
        precondition(parameters.count == architecture.parameterCount, "\(parameters.count) parameters for \(architecture)")
        self.architecture = architecture
        self.parameters = parameters
    }

    /// Linear: zeros (the problem is convex, so the start does not matter and zeros are exact).
    /// MLP: He-normal hidden weights, small output weights, zero biases, drawn from `generator`.
    public init(initializing architecture: HeadArchitecture, generator: inout SeededGenerator) {
        var parameters = [Float](repeating: 0, count: architecture.parameterCount)
        if architecture.kind == .mlp {
            for tensor in architecture.tensors where tensor.isDecayed {
                let scale = (2 / Float(tensor.shape[1])).squareRoot() * (tensor.name == "output.weight" ? 0.1 : 1)
                for i in tensor.offset..<(tensor.offset + tensor.count) { parameters[i] = scale * generator.gaussian() }
            }
        }
        self.init(architecture: architecture, parameters: parameters)
    }

    /// Logits [rows, classes] for standardized features (inference: no dropout).
    public func logits(_ features: FeatureMatrix) -> [Float] {
        precondition(features.columns == architecture.inputs, "\(features.columns) features, head expects \(architecture.inputs)")
        var out = [Float](repeating: 0, count: features.rows * architecture.classes)
        guard features.rows > 0 else { return out }
        features.values.withUnsafeBufferPointer { x in
            parameters.withUnsafeBufferPointer { p in
                out.withUnsafeMutableBufferPointer { z in
                    var pass = HeadPass(architecture: architecture, rows: features.rows)
                    pass.forward(x.baseAddress!, p.baseAddress!, logits: z.baseAddress!, dropout: 0, generator: nil)
                }
            }
        }
        return out
    }

    /// Softmax probabilities [rows, classes].
    public func probabilities(_ features: FeatureMatrix) -> [Float] {
        var z = logits(features)
        if features.rows > 0 {
            z.withUnsafeMutableBufferPointer { softmaxRows($0.baseAddress!, rows: features.rows, columns: architecture.classes) }
        }
        return z
    }
}

extension ClassificationHead {
    /// One minibatch of fine-tuning through the head: the loss on standardized rows `x` (weighted,
    /// smoothed cross-entropy, dropout on an mlp's hidden layer, plus (l2 / 2)·||weights||²), its
    /// gradient for the head's parameters, and for the rows themselves (what the tail below is trained by).
    public func trainingGradients(_ x: FeatureMatrix, labels: [Int], rowWeights: [Float]?, smoothing: Float, l2: Float,
                                  dropout: Float, generator: inout SeededGenerator)
        -> (loss: Double, parameters: [Float], inputs: [Float])
    {
        let a = architecture
        var pass = HeadPass(architecture: a, rows: x.rows)
        var logits = [Float](repeating: 0, count: x.rows * a.classes), logitGradient = logits
        var gradient = [Float](repeating: 0, count: parameters.count), inputs = [Float](repeating: 0, count: x.values.count)
        var loss = x.values.withUnsafeBufferPointer { xp in
            parameters.withUnsafeBufferPointer { p in
                logits.withUnsafeMutableBufferPointer { z in
                    withUnsafeMutablePointer(to: &generator) { g in
                        pass.forward(xp.baseAddress!, p.baseAddress!, logits: z.baseAddress!, dropout: dropout, generator: g)
                    }
                    return logitGradient.withUnsafeMutableBufferPointer { dz in
                        let loss = CrossEntropy.loss(logits: z.baseAddress!, rows: x.rows, classes: a.classes, labels: labels,
                                                     weights: rowWeights, smoothing: smoothing, gradient: dz.baseAddress!)
                        gradient.withUnsafeMutableBufferPointer { g in
                            inputs.withUnsafeMutableBufferPointer { dx in
                                pass.backward(xp.baseAddress!, p.baseAddress!, logitGradient: dz.baseAddress!, gradient: g.baseAddress!,
                                              inputGradient: dx.baseAddress!)
                            }
                        }
                        return loss
                    }
                }
            }
        }
        if l2 > 0 {
            var penalty = 0.0
            for tensor in a.tensors where tensor.isDecayed {
                for i in tensor.offset..<(tensor.offset + tensor.count) {
                    penalty += Double(parameters[i]) * Double(parameters[i])
                    gradient[i] += l2 * parameters[i]
                }
            }
            loss += 0.5 * Double(l2) * penalty
        }
        return (loss, gradient, inputs)
    }
}

/// Forward and backward of one head over one batch of rows, keeping the activations the backward
/// pass needs. All products go through BLAS.sgemm.
struct HeadPass {
    let architecture: HeadArchitecture
    let rows: Int
    /// [rows, hidden] post-ReLU, post-dropout activations (mlp).
    var hidden: [Float] = []
    /// [rows, hidden] dropout scale per unit: 0 or 1 / (1 - p) (mlp).
    var mask: [Float] = []

    init(architecture: HeadArchitecture, rows: Int) {
        self.architecture = architecture
        self.rows = rows
    }

    /// x [rows, inputs], parameters flat -> logits [rows, classes].
    mutating func forward(_ x: UnsafePointer<Float>, _ p: UnsafePointer<Float>, logits: UnsafeMutablePointer<Float>,
                          dropout: Float, generator: UnsafeMutablePointer<SeededGenerator>?) {
        let a = architecture, t = a.tensors
        switch a.kind {
        case .linear:
            Self.affine(x, rows: rows, inputs: a.inputs, weight: p + t[0].offset, bias: p + t[1].offset, outputs: a.classes, out: logits)
        case .mlp:
            hidden = [Float](repeating: 0, count: rows * a.hidden)
            mask = [Float](repeating: 1, count: dropout > 0 ? rows * a.hidden : 0)
            hidden.withUnsafeMutableBufferPointer { h in
                Self.affine(x, rows: rows, inputs: a.inputs, weight: p + t[0].offset, bias: p + t[1].offset, outputs: a.hidden,
                            out: h.baseAddress!)
                if dropout > 0, let generator {
                    // Inverted dropout (Srivastava et al. 2014): kept units are scaled by 1 / (1 - p) so
                    // inference needs no rescaling.
                    let keep = 1 / (1 - dropout)
                    for i in 0..<h.count { mask[i] = generator.pointee.unitFloat() < dropout ? 0 : keep }
                }
                for i in 0..<h.count { h[i] = max(h[i], 0) * (mask.isEmpty ? 1 : mask[i]) }
                Self.affine(UnsafePointer(h.baseAddress!), rows: rows, inputs: a.hidden, weight: p + t[2].offset,
                            bias: p + t[3].offset, outputs: a.classes, out: logits)
            }
        }
    }

    /// Given dLoss/dlogits [rows, classes], writes dLoss/dparameters (overwriting `gradient`), and
    /// dLoss/dx [rows, inputs] into `inputGradient` when given (training what feeds the head).
    /// `forward` must have run on the same x and parameters.
    func backward(_ x: UnsafePointer<Float>, _ p: UnsafePointer<Float>, logitGradient: UnsafeMutablePointer<Float>,
                  gradient: UnsafeMutablePointer<Float>, inputGradient: UnsafeMutablePointer<Float>? = nil) {
        let a = architecture, t = a.tensors
        switch a.kind {
        case .linear:
            Self.affineBackward(x, rows: rows, inputs: a.inputs, outputs: a.classes, outGradient: logitGradient,
                                weightGradient: gradient + t[0].offset, biasGradient: gradient + t[1].offset)
            if let inputGradient {
                // dX [rows, inputs] = dZ [rows, classes] W [classes, inputs]
                BLAS.sgemm(m: rows, n: a.inputs, k: a.classes, a: logitGradient, lda: a.classes, b: p + t[0].offset, ldb: a.inputs,
                           c: inputGradient, ldc: a.inputs)
            }
        case .mlp:
            hidden.withUnsafeBufferPointer { h in
                Self.affineBackward(h.baseAddress!, rows: rows, inputs: a.hidden, outputs: a.classes, outGradient: logitGradient,
                                    weightGradient: gradient + t[2].offset, biasGradient: gradient + t[3].offset)
            }
            // dH [rows, hidden] = dZ [rows, classes] W2 [classes, hidden], then through dropout and ReLU.
            var dHidden = [Float](repeating: 0, count: rows * a.hidden)
            dHidden.withUnsafeMutableBufferPointer { dh in
                BLAS.sgemm(m: rows, n: a.hidden, k: a.classes, a: logitGradient, lda: a.classes, b: p + t[2].offset,
                           ldb: a.hidden, c: dh.baseAddress!, ldc: a.hidden)
                for i in 0..<dh.count where hidden[i] <= 0 { dh[i] = 0 }
                if !mask.isEmpty { for i in 0..<dh.count { dh[i] *= mask[i] } }
                Self.affineBackward(x, rows: rows, inputs: a.inputs, outputs: a.hidden, outGradient: dh.baseAddress!,
                                    weightGradient: gradient + t[0].offset, biasGradient: gradient + t[1].offset)
                if let inputGradient {
                    BLAS.sgemm(m: rows, n: a.inputs, k: a.hidden, a: dh.baseAddress!, lda: a.hidden, b: p + t[0].offset,
                               ldb: a.inputs, c: inputGradient, ldc: a.inputs)
                }
            }
        }
    }

    /// out [rows, outputs] = x [rows, inputs] W^T + b, W stored [outputs, inputs].
    static func affine(_ x: UnsafePointer<Float>, rows: Int, inputs: Int, weight: UnsafePointer<Float>, bias: UnsafePointer<Float>,
                       outputs: Int, out: UnsafeMutablePointer<Float>) {
        for r in 0..<rows { (out + r * outputs).update(from: bias, count: outputs) }
        BLAS.sgemm(transposeB: true, m: rows, n: outputs, k: inputs, a: x, lda: inputs, b: weight, ldb: inputs,
                   beta: 1, c: out, ldc: outputs)
    }

    /// dW [outputs, inputs] = dOut^T x, db = column sums of dOut.
    static func affineBackward(_ x: UnsafePointer<Float>, rows: Int, inputs: Int, outputs: Int, outGradient: UnsafePointer<Float>,
                               weightGradient: UnsafeMutablePointer<Float>, biasGradient: UnsafeMutablePointer<Float>) {
        BLAS.sgemm(transposeA: true, m: outputs, n: inputs, k: rows, a: outGradient, lda: outputs, b: x, ldb: inputs,
                   c: weightGradient, ldc: inputs)
        for o in 0..<outputs { biasGradient[o] = 0 }
        for r in 0..<rows {
            let row = outGradient + r * outputs
            for o in 0..<outputs { biasGradient[o] += row[o] }
        }
    }
}
