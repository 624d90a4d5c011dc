import Foundation
import Kernels

/// How the image -> text map is fitted on image-caption pairs. Defaults: the recipe chosen on held-out
/// Flickr8k *training* pairs (BENCHMARKS.md, "Image-text bridge fitted on pairs"); never on the dev set.
public struct ContrastiveMapConfiguration: Codable, Sendable, Equatable {
    /// AdamW learning rate and decoupled weight decay (on the map's weights, not its bias or scale).
    public var learningRate: Float = 1e-3
    public var weightDecay: Float = 0.5
    /// Epochs at most, and the epochs without a lower held-out loss before stopping (0: never stop early).
    public var maxEpochs = 300
    public var patience = 20
    /// Images per minibatch (all their captions come with them; the rest of the batch are the negatives).
    public var batchImages = 100
    /// Start of the learned log temperature s (logits = e^s · cosine): CLIP's log(1/0.07).
    public var initialLogScale: Float = logf(1 / 0.07)
    /// CLIP clamps e^s at 100 so training stays stable.
    public var maxLogScale: Float = logf(100)
    public var seed: UInt64 = 0

    public init() {}

    public func validate() throws {
        func check(_ ok: Bool, _ message: String) throws { if !ok { throw TrainingError.invalidConfiguration(message) } }
        try check(learningRate > 0, "learning rate must be positive")
        try check(weightDecay >= 0 && learningRate * weightDecay < 1, "weight decay must be in [0, 1 / learning rate)")
        try check(maxEpochs >= 1 && batchImages >= 2, "epochs must be at least 1 and a batch at least 2 images")
        try check(patience >= 0, "patience must not be negative")
        try check(initialLogScale.isFinite && initialLogScale <= maxLogScale, "the initial log scale must be at most the maximum")
    }
}

/// A fitted map from raw image features into a text space: u = base + P·x + b, then u / ‖u‖. `base` is an
/// embedding the map corrects (ConSE's class-name mixture), or zero.
public struct ContrastiveMap: Sendable, Equatable {
    /// [dimension, features]
    public var projection: [Float]
    /// [dimension]
    public var bias: [Float]
    /// The learned log temperature (logits = e^s · cosine).
    public var logScale: Float
    public var features: Int
    public var dimension: Int

    public init(projection: [Float], bias: [Float], logScale: Float, features: Int, dimension: Int) {
        precondition(projection.count == dimension * features && bias.count == dimension, "map of \(dimension)x\(features)")
        self.projection = projection
        self.bias = bias
        self.logScale = logScale
        self.features = features
        self.dimension = dimension
    }

    /// Unit rows [rows, dimension] for raw features x [rows, features] and optional base [rows, dimension].
    public func embed(_ x: FeatureMatrix, base: FeatureMatrix?) -> FeatureMatrix {
        precondition(x.columns == features && (base.map { $0.columns == dimension && $0.rows == x.rows } ?? true), "inputs of the map")
        var u = base?.values ?? [Float](repeating: 0, count: x.rows * dimension)
        for r in 0..<x.rows { for j in 0..<dimension { u[r * dimension + j] += bias[j] } }
        guard x.rows > 0 else { return FeatureMatrix(columns: dimension) }
        x.values.withUnsafeBufferPointer { xs in
            projection.withUnsafeBufferPointer { p in
                u.withUnsafeMutableBufferPointer { out in
                    BLAS.sgemm(transposeB: true, m: x.rows, n: dimension, k: features, a: xs.baseAddress!, lda: features,
                               b: p.baseAddress!, ldb: features, beta: 1, c: out.baseAddress!, ldc: dimension)
                    normalizeRows(out.baseAddress!, rows: x.rows, columns: dimension)
                }
            }
        }
        return FeatureMatrix(rows: x.rows, columns: dimension, values: u)
    }
}

/// The training loss of the map on fixed inputs: symmetric InfoNCE between the mapped, normalized images
/// and their (frozen, unit) caption embeddings. Parameters: W [dimension, features], b [dimension], s.
public struct ContrastiveObjective: Sendable {
    /// [images, features], already scaled as training sees them.
    public var features: FeatureMatrix
    /// [images, dimension] or nil.
    public var base: FeatureMatrix?
    /// [captions, dimension], unit rows.
    public var texts: FeatureMatrix
    public var owner: [Int]
    let captionsOf: [[Int]]

    public init(features: FeatureMatrix, base: FeatureMatrix?, texts: FeatureMatrix, owner: [Int]) {
        precondition(owner.count == texts.rows && (base?.rows ?? features.rows) == features.rows, "objective inputs")
        self.features = features
        self.base = base
        self.texts = texts
        self.owner = owner
        var captionsOf = [[Int]](repeating: [], count: features.rows)
        for (c, i) in owner.enumerated() { captionsOf[i].append(c) }
        self.captionsOf = captionsOf
    }

    public var dimension: Int { texts.columns }
    public var parameterCount: Int { dimension * features.columns + dimension + 1 }

    /// Loss over the images `subset` (nil: all) and all their captions; writes the gradient when asked.
    public func evaluate(_ parameters: [Float], images subset: [Int]? = nil, gradient: UnsafeMutablePointer<Float>?) -> Double {
        let d = dimension, f = features.columns
        let images = subset ?? Array(0..<features.rows)
        let b = images.count
        let x = features.selecting(images)
        var captions: [Int] = [], batchOwner: [Int] = []
        for (n, i) in images.enumerated() {
            captions += captionsOf[i]
            batchOwner += [Int](repeating: n, count: captionsOf[i].count)
        }
        let t = texts.selecting(captions)
        let m = captions.count
        let logScale = parameters[d * f + d]
        // U = base + X Wᵀ + bias: [b, d]; Û = U / ‖U‖.
        var u = base?.selecting(images).values ?? [Float](repeating: 0, count: b * d)
        for r in 0..<b { for j in 0..<d { u[r * d + j] += parameters[d * f + j] } }
        var s = [Float](repeating: 0, count: b * m)
        var norms = [Float](repeating: 0, count: b)
        parameters.withUnsafeBufferPointer { p in
            x.values.withUnsafeBufferPointer { xs in
                u.withUnsafeMutableBufferPointer { uu in
                    BLAS.sgemm(transposeB: true, m: b, n: d, k: f, a: xs.baseAddress!, lda: f, b: p.baseAddress!, ldb: f,
                               beta: 1, c: uu.baseAddress!, ldc: d)
                }
            }
        }
        for r in 0..<b {
            var sum: Float = 0
            for j in 0..<d { sum += u[r * d + j] * u[r * d + j] }
            norms[r] = max(sum.squareRoot(), 1e-12)
            for j in 0..<d { u[r * d + j] /= norms[r] }
        }
        // S = Û Tᵀ: [b, m].
        u.withUnsafeBufferPointer { uu in
            t.values.withUnsafeBufferPointer { tt in
                s.withUnsafeMutableBufferPointer { ss in
                    BLAS.sgemm(transposeB: true, m: b, n: m, k: d, a: uu.baseAddress!, lda: d, b: tt.baseAddress!, ldb: d,
                               c: ss.baseAddress!, ldc: m)
                }
            }
        }
        guard let gradient else {
            return s.withUnsafeBufferPointer {
                InfoNCE.loss(similarities: $0.baseAddress!, images: b, captions: m, owner: batchOwner, logScale: logScale,
                             similarityGradient: nil).loss
            }
        }
        var dS = [Float](repeating: 0, count: b * m)
        let (loss, dLogScale) = s.withUnsafeBufferPointer { ss in
            dS.withUnsafeMutableBufferPointer {
                InfoNCE.loss(similarities: ss.baseAddress!, images: b, captions: m, owner: batchOwner, logScale: logScale,
                             similarityGradient: $0.baseAddress!)
            }
        }
        // dÛ = dS T: [b, d]; through the normalization dU = (dÛ - û (û·dÛ)) / ‖u‖.
        var dU = [Float](repeating: 0, count: b * d)
        dS.withUnsafeBufferPointer { g in
            t.values.withUnsafeBufferPointer { tt in
                dU.withUnsafeMutableBufferPointer { out in
                    BLAS.sgemm(m: b, n: d, k: m, a: g.baseAddress!, lda: m, b: tt.baseAddress!, ldb: d, c: out.baseAddress!, ldc: d)
                }
            }
        }
        for r in 0..<b {
            var along: Float = 0
            for j in 0..<d { along += u[r * d + j] * dU[r * d + j] }
            for j in 0..<d { dU[r * d + j] = (dU[r * d + j] - u[r * d + j] * along) / norms[r] }
        }
        // dW = dUᵀ X: [d, f]; db = Σ_r dU_r; ds.
        dU.withUnsafeBufferPointer { g in
            x.values.withUnsafeBufferPointer { xs in
                BLAS.sgemm(transposeA: true, m: d, n: f, k: b, a: g.baseAddress!, lda: d, b: xs.baseAddress!, ldb: f,
                           c: gradient, ldc: f)
            }
        }
        for j in 0..<d {
            var sum: Float = 0
            for r in 0..<b { sum += dU[r * d + j] }
            gradient[d * f + j] = sum
        }
        gradient[d * f + d] = Float(dLogScale)
        return loss
    }
}

/// One epoch of the contrastive fit.
public struct ContrastiveEpoch: Codable, Sendable, Equatable {
    public var epoch: Int
    public var trainLoss: Double
    public var validationLoss: Double?
    public var temperature: Float
}

/// Fits a `ContrastiveMap` with AdamW on minibatches of images (seeded shuffle), early stopping on the
/// held-out pairs' loss. The map's input is standardized per feature and divided by √features, so a
/// step moves P·x by about the learning rate whatever the feature width; both are folded into the
/// returned map, which takes raw features.
public enum ContrastiveMapTrainer {
    public struct Pairs: Sendable {
        /// [images, features] raw
        public var features: FeatureMatrix
        /// [images, dimension] or nil (the map starts at and corrects this embedding)
        public var base: FeatureMatrix?
        /// [captions, dimension] unit rows
        public var texts: FeatureMatrix
        public var owner: [Int]

        public init(features: FeatureMatrix, base: FeatureMatrix?, texts: FeatureMatrix, owner: [Int]) {
            self.features = features
            self.base = base
            self.texts = texts
            self.owner = owner
        }
    }

    public struct Result: Sendable {
        public var map: ContrastiveMap
        public var history: [ContrastiveEpoch]
        /// The epoch kept (lowest held-out loss, or the last without held-out pairs).
        public var bestEpoch: Int
        public var stoppedEarly: Bool
    }

    /// - validation: held-out pairs for early stopping (nil: run `epochs` or maxEpochs epochs, keep the last)
    public static func train(configuration c: ContrastiveMapConfiguration, train: Pairs, validation: Pairs? = nil,
                             epochs: Int? = nil, onEpoch: (ContrastiveEpoch) -> Void = { _ in }) throws -> Result {
        try c.validate()
        try BLAS.load()
        let f = train.features.columns, d = train.texts.columns
        guard train.features.rows >= 2 else { throw TrainingError.invalidConfiguration("a contrastive fit needs at least 2 images") }
        var standardization = Standardization(fitting: train.features)
        let shrink = 1 / Float(f).squareRoot()
        standardization.inverseStd = standardization.inverseStd.map { $0 * shrink }
        func prepared(_ pairs: Pairs) -> ContrastiveObjective {
            var x = pairs.features
            standardization.apply(to: &x)
            return ContrastiveObjective(features: x, base: pairs.base, texts: pairs.texts, owner: pairs.owner)
        }
        let objective = prepared(train)
        let held = validation.map(prepared)
        var generator = SeededGenerator(seed: c.seed)
        // With a base embedding the map starts at zero: the fit begins exactly at that embedding and
        // weight decay pulls back towards it. Without one, small seeded weights.
        var parameters = [Float](repeating: 0, count: objective.parameterCount)
        if train.base == nil {
            for i in 0..<(d * f) { parameters[i] = generator.gaussian() }
        }
        parameters[d * f + d] = c.initialLogScale
        var decayed = [Bool](repeating: false, count: parameters.count)
        for i in 0..<(d * f) { decayed[i] = true }
        var optimizer = AdamW(learningRate: c.learningRate, weightDecay: c.weightDecay)
        var gradient = [Float](repeating: 0, count: parameters.count)
        var order = Array(0..<train.features.rows)
        var history: [ContrastiveEpoch] = []
        var best = (loss: Double.infinity, parameters: parameters, epoch: 0)
        var sinceBest = 0, stoppedEarly = false
        let useValidation = held != nil && epochs == nil
        for epoch in 1...(epochs ?? c.maxEpochs) {
            generator.shuffle(&order)
            var lossSum = 0.0, batches = 0
            for start in stride(from: 0, to: order.count, by: c.batchImages) {
                var batch = Array(order[start..<min(start + c.batchImages, order.count)])
                // A last batch of one image has no negatives: it joins the batch before.
                if batch.count < 2 { batch = Array(order[max(0, order.count - c.batchImages)...]) }
                lossSum += gradient.withUnsafeMutableBufferPointer { objective.evaluate(parameters, images: batch, gradient: $0.baseAddress!) }
                batches += 1
                optimizer.step(&parameters, gradient: gradient, decayed: decayed)
                parameters[d * f + d] = min(max(parameters[d * f + d], 0), c.maxLogScale)
            }
            let entry = ContrastiveEpoch(epoch: epoch, trainLoss: lossSum / Double(batches),
                                         validationLoss: useValidation ? held!.evaluate(parameters, gradient: nil) : nil,
                                         temperature: 1 / expf(parameters[d * f + d]))
            history.append(entry)
            onEpoch(entry)
            if let loss = entry.validationLoss {
                if loss < best.loss - 1e-6 {
                    best = (loss, parameters, epoch)
                    sinceBest = 0
                } else {
                    sinceBest += 1
                    if c.patience > 0 && sinceBest >= c.patience { stoppedEarly = true; break }
                }
            }
        }
        let kept = useValidation ? best.parameters : parameters
        // Fold the input scaling in: P = W diag(σ⁻¹/√f), b' = b - P μ.
        var projection = [Float](repeating: 0, count: d * f), bias = Array(kept[(d * f)..<(d * f + d)])
        for j in 0..<d {
            var shift: Float = 0
            for k in 0..<f {
                let p = kept[j * f + k] * standardization.inverseStd[k]
                projection[j * f + k] = p
                shift += p * standardization.mean[k]
            }
            bias[j] -= shift
        }
        return Result(map: ContrastiveMap(projection: projection, bias: bias, logScale: kept[d * f + d], features: f, dimension: d),
                      history: history, bestEpoch: useValidation ? best.epoch : history.count, stoppedEarly: stoppedEarly)
    }
}
