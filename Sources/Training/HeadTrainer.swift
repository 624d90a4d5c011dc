import Kernels

/// How classes are weighted in the loss.
public enum ClassWeighting: String, Codable, Sendable, CaseIterable {
    case none
    /// n / (classes * count_c): each class counts equally (for imbalanced data).
    case balanced
}

public enum OptimizerKind: String, Codable, Sendable, CaseIterable {
    case lbfgs
    case adamw
}

/// Everything that decides how a head is trained. Stored in the head file. Defaults were chosen by
/// measurement on the development sets (BENCHMARKS.md, "Training heads").
public struct TrainingConfiguration: Codable, Sendable, Equatable {
    public var head: HeadKind = .linear
    /// Hidden units of the mlp head.
    public var hiddenUnits = 512
    /// Dropout on the mlp's hidden layer.
    public var dropout: Float = 0.5
    /// nil: L-BFGS for linear heads, AdamW for mlp heads.
    public var optimizer: OptimizerKind? = nil
    /// L2 penalty (l2 / 2) * ||W||^2 added to the mean loss (L-BFGS).
    public var l2: Float = 1e-3
    /// AdamW learning rate and decoupled weight decay.
    public var learningRate: Float = 1e-3
    public var weightDecay: Float = 1e-2
    /// Epochs (AdamW) or iterations (L-BFGS) at most.
    public var maxEpochs = 200
    /// Minibatch size (AdamW).
    public var batchSize = 64
    public var labelSmoothing: Float = 0
    public var classWeights: ClassWeighting = .none
    /// Stop when the validation loss has not improved for this many epochs (0: never stop early).
    public var patience = 20
    public var seed: UInt64 = 0

    public init() {}

    public var resolvedOptimizer: OptimizerKind { optimizer ?? (head == .linear ? .lbfgs : .adamw) }

    public func validate() throws {
        func check(_ ok: Bool, _ message: String) throws { if !ok { throw TrainingError.invalidConfiguration(message) } }
        try check(hiddenUnits >= 1, "hidden units must be at least 1")
        try check(dropout >= 0 && dropout < 1, "dropout must be in [0, 1)")
        try check(l2 >= 0 && weightDecay >= 0, "l2 and weight decay must not be negative")
        try check(learningRate > 0, "learning rate must be positive")
        try check(maxEpochs >= 1 && batchSize >= 1, "epochs and batch size must be at least 1")
        try check(labelSmoothing >= 0 && labelSmoothing < 1, "label smoothing must be in [0, 1)")
        try check(patience >= 0, "patience must not be negative")
    }
}

/// One line of training progress.
public struct EpochRecord: Codable, Sendable, Equatable {
    public var epoch: Int
    public var trainLoss: Double
    public var trainAccuracy: Double
    public var validationLoss: Double?
    public var validationAccuracy: Double?
}

/// What training produced.
public struct TrainingResult: Sendable {
    /// The head at the epoch with the lowest validation loss (or the last one without early stopping).
    public var head: ClassificationHead
    public var standardization: Standardization
    public var history: [EpochRecord]
    public var bestEpoch: Int
    public var stoppedEarly: Bool
}

/// Fits a head on backbone features.
public enum HeadTrainer {
    /// - train: raw (unstandardized) features [n, d] with `trainLabels`
    /// - validation: optional held-out features for early stopping and progress
    /// - onEpoch: called after every epoch / iteration
    public static func train(
        configuration c: TrainingConfiguration, classes: Int,
        train: FeatureMatrix, trainLabels: [Int],
        validation: FeatureMatrix? = nil, validationLabels: [Int] = [],
        onEpoch: (EpochRecord) -> Void = { _ in }
    ) throws -> TrainingResult {
        try c.validate()
        try BLAS.load()
        guard train.rows > 0 else { throw TrainingError.invalidConfiguration("no training images") }
        let standardization = Standardization(fitting: train)
        var x = train
        standardization.apply(to: &x)
        var validationX = validation
        if var v = validationX {
            standardization.apply(to: &v)
            validationX = v.rows > 0 ? v : nil
        }
        let architecture = HeadArchitecture(kind: c.head, inputs: train.columns, hidden: c.hiddenUnits, classes: classes)
        var generator = SeededGenerator(seed: c.seed)
        var head = ClassificationHead(initializing: architecture, generator: &generator)
        let classWeights = c.classWeights == .balanced ? balancedClassWeights(labels: trainLabels, classes: classes) : nil
        let objective = HeadObjective(architecture: architecture, features: x, labels: trainLabels,
                                      rowWeights: classWeights.map { w in trainLabels.map { w[$0] } },
                                      smoothing: c.labelSmoothing,
                                      l2: c.resolvedOptimizer == .lbfgs ? c.l2 : 0)

        var history: [EpochRecord] = []
        var best = (loss: Double.infinity, parameters: head.parameters, epoch: 0)
        var sinceBest = 0
        // Records an epoch; returns false when early stopping says to stop.
        func record(_ epoch: Int, _ parameters: [Float], trainLoss: Double) -> Bool {
            let trainEval = evaluate(ClassificationHead(architecture: architecture, parameters: parameters), x, trainLabels)
            var entry = EpochRecord(epoch: epoch, trainLoss: trainLoss, trainAccuracy: trainEval.accuracy)
            if let validationX {
                let v = evaluate(ClassificationHead(architecture: architecture, parameters: parameters), validationX, validationLabels)
                entry.validationLoss = v.loss
                entry.validationAccuracy = v.accuracy
            }
            history.append(entry)
            onEpoch(entry)
            let monitored = entry.validationLoss ?? trainLoss
            if monitored < best.loss - 1e-6 {
                best = (monitored, parameters, epoch)
                sinceBest = 0
            } else {
                sinceBest += 1
            }
            return !(validationX != nil && c.patience > 0 && sinceBest >= c.patience)
        }

        var stoppedEarly = false
        switch c.resolvedOptimizer {
        case .lbfgs:
            head.parameters = LBFGS(maxIterations: c.maxEpochs).minimize(
                from: head.parameters, objective: { objective.evaluate($0, gradient: &$1) },
                afterIteration: { iteration, parameters, loss in
                    let go = record(iteration, parameters, trainLoss: loss)
                    if !go { stoppedEarly = true }
                    return go
                })
        case .adamw:
            var optimizer = AdamW(learningRate: c.learningRate, weightDecay: c.weightDecay)
            var decayed = [Bool](repeating: false, count: architecture.parameterCount)
            for tensor in architecture.tensors where tensor.isDecayed {
                for i in tensor.offset..<(tensor.offset + tensor.count) { decayed[i] = true }
            }
            var order = Array(0..<x.rows), gradient: [Float] = []
            for epoch in 1...c.maxEpochs {
                generator.shuffle(&order)
                var lossSum = 0.0, batches = 0
                for start in stride(from: 0, to: order.count, by: c.batchSize) {
                    let rows = Array(order[start..<min(start + c.batchSize, order.count)])
                    lossSum += withUnsafeMutablePointer(to: &generator) { g in
                        objective.evaluate(head.parameters, rows: rows, gradient: &gradient, dropout: c.head == .mlp ? c.dropout : 0,
                                           generator: g)
                    }
                    batches += 1
                    optimizer.step(&head.parameters, gradient: gradient, decayed: decayed)
                }
                if !record(epoch, head.parameters, trainLoss: lossSum / Double(max(batches, 1))) {
                    stoppedEarly = true
                    break
                }
            }
        }
        // Early stopping keeps the epoch with the best validation loss; without it, the last epoch.
        let keepBest = validationX != nil && c.patience > 0
        if keepBest { head.parameters = best.parameters }
        return TrainingResult(head: head, standardization: standardization, history: history,
                              bestEpoch: keepBest ? best.epoch : history.count, stoppedEarly: stoppedEarly)
    }

    /// Unsmoothed, unweighted log loss and accuracy of `head` on standardized features.
    static func evaluate(_ head: ClassificationHead, _ x: FeatureMatrix, _ labels: [Int]) -> (loss: Double, accuracy: Double) {
        let logits = head.logits(x)
        let classes = head.architecture.classes
        let loss = logits.withUnsafeBufferPointer {
            CrossEntropy.loss(logits: $0.baseAddress!, rows: x.rows, classes: classes, labels: labels, weights: nil,
                              smoothing: 0, gradient: nil)
        }
        var correct = 0
        for r in 0..<x.rows {
            var bestClass = 0
            for k in 1..<classes where logits[r * classes + k] > logits[r * classes + bestClass] { bestClass = k }
            if bestClass == labels[r] { correct += 1 }
        }
        return (loss, Double(correct) / Double(max(x.rows, 1)))
    }
}
