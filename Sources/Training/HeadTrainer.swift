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
    /// SGD with momentum 0.9 (fine-tuning only).
    case sgd
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
    /// L2 penalty (l2 / 2) * ||W||^2 added to the mean loss (L-BFGS). nil: chosen from `l2Grid` by
    /// k-fold cross-validation on the training rows (`L2Selection`), as a tuned C is in scikit-learn.
    public var l2: Float? = nil
    /// Candidate L2 strengths for the cross-validated choice. The top end matters: on busi scikit-learn's
    /// tuned C (0.0032 on 500 images) is an l2 of about 0.6 in this parameterization (l2 = 1 / (C n)).
    public var l2Grid: [Float] = [1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2, 1e-1, 3e-1, 1]
    /// Folds of that cross-validation (fewer when a class has fewer training images).
    public var crossValidationFolds = 5
    /// The head started from (and was pulled towards) the class names' text embeddings mapped into the
    /// image feature space (`headtune train --init-from-labels`; recorded here, the prior itself is
    /// passed to `HeadTrainer.train`).
    public var initFromLabels = false
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

    // Partial fine-tuning (`--unfreeze K`): a linear probe first (the head above, on the pretrained
    // tail's features), then the tail and head together with AdamW (LP-FT, Kumar et al. 2022: fine-tuning
    // from a fitted head distorts the pretrained features less than from a random one).
    /// Final blocks trained with the head (the head convolution counts as one); 0: frozen features.
    public var unfreeze = 0
    /// Low-rank adapters of this rank on the tail's 1x1 convolutions instead of training them in full.
    public var loraRank: Int? = nil
    /// Random views per training image (random resized crops and flips, seeded), beside the plain and
    /// mirrored ones; each is cached at the cut.
    public var randomViews = 0
    /// Fine-tuning epochs (warm-up of one epoch, then cosine decay), minibatch size, and peak learning
    /// rates of the tail and of the head; the head keeps the probe's L2.
    public var fineTuneEpochs = 10
    public var fineTuneBatchSize = 32
    /// nil: 1e-4 for a fully trained tail, 1e-3 for adapters (which start at zero effect).
    public var tailLearningRate: Float? = nil
    public var fineTuneHeadLearningRate: Float = 1e-5
    /// Decoupled weight decay on the tail's weights.
    public var tailWeightDecay: Float = 1e-2
    /// How tail and head are fine-tuned: adamw or sgd.
    public var fineTuneOptimizer: OptimizerKind = .adamw

    public var resolvedTailLearningRate: Float { tailLearningRate ?? (loraRank == nil ? 1e-4 : 1e-3) }

    public init() {}

    public var resolvedOptimizer: OptimizerKind { optimizer ?? (head == .linear ? .lbfgs : .adamw) }

    /// Reads every field that is present and keeps the default for the rest, so head files written
    /// before a field existed still load.
    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        func read<T: Decodable>(_ key: CodingKeys, _ value: inout T) throws {
            if let decoded = try c.decodeIfPresent(T.self, forKey: key) { value = decoded }
        }
        try read(.head, &head)
        try read(.hiddenUnits, &hiddenUnits)
        try read(.dropout, &dropout)
        optimizer = try c.decodeIfPresent(OptimizerKind.self, forKey: .optimizer)
        l2 = try c.decodeIfPresent(Float.self, forKey: .l2)
        try read(.l2Grid, &l2Grid)
        try read(.crossValidationFolds, &crossValidationFolds)
        try read(.initFromLabels, &initFromLabels)
        try read(.learningRate, &learningRate)
        try read(.weightDecay, &weightDecay)
        try read(.maxEpochs, &maxEpochs)
        try read(.batchSize, &batchSize)
        try read(.labelSmoothing, &labelSmoothing)
        try read(.classWeights, &classWeights)
        try read(.patience, &patience)
        try read(.seed, &seed)
        try read(.unfreeze, &unfreeze)
        loraRank = try c.decodeIfPresent(Int.self, forKey: .loraRank)
        try read(.randomViews, &randomViews)
        try read(.fineTuneEpochs, &fineTuneEpochs)
        try read(.fineTuneBatchSize, &fineTuneBatchSize)
        tailLearningRate = try c.decodeIfPresent(Float.self, forKey: .tailLearningRate)
        try read(.fineTuneHeadLearningRate, &fineTuneHeadLearningRate)
        try read(.tailWeightDecay, &tailWeightDecay)
        try read(.fineTuneOptimizer, &fineTuneOptimizer)
    }

    public func validate() throws {
        func check(_ ok: Bool, _ message: String) throws { if !ok { throw TrainingError.invalidConfiguration(message) } }
        try check(hiddenUnits >= 1, "hidden units must be at least 1")
        try check(dropout >= 0 && dropout < 1, "dropout must be in [0, 1)")
        try check((l2 ?? 0) >= 0 && weightDecay >= 0 && l2Grid.allSatisfy { $0 >= 0 }, "l2 and weight decay must not be negative")
        try check(!l2Grid.isEmpty, "the l2 grid must not be empty")
        try check(crossValidationFolds >= 2, "cross-validation needs at least 2 folds")
        try check(learningRate > 0, "learning rate must be positive")
        try check(maxEpochs >= 1 && batchSize >= 1, "epochs and batch size must be at least 1")
        try check(labelSmoothing >= 0 && labelSmoothing < 1, "label smoothing must be in [0, 1)")
        try check(patience >= 0, "patience must not be negative")
        try check(unfreeze >= 0, "--unfreeze must not be negative (0 trains the head on frozen features)")
        try check(loraRank.map { $0 >= 1 } ?? true, "--lora-rank must be at least 1")
        try check(loraRank == nil || unfreeze > 0, "--lora-rank adapts unfrozen blocks: give --unfreeze K (K >= 1) too")
        try check(randomViews >= 0 && randomViews <= 64, "--views must be between 0 and 64")
        try check(fineTuneEpochs >= 1 && fineTuneBatchSize >= 1, "fine-tuning epochs and batch size must be at least 1")
        try check((tailLearningRate ?? 1) > 0 && fineTuneHeadLearningRate > 0, "learning rates must be positive")
        try check(tailWeightDecay >= 0, "weight decay must not be negative")
        try check(fineTuneOptimizer != .lbfgs, "fine-tuning runs adamw or sgd")
        try check(optimizer != .sgd, "--optimizer sgd is for fine-tuning (--fine-tune-optimizer); heads use lbfgs or adamw")
    }
}

/// One line of training progress.
public struct EpochRecord: Codable, Sendable, Equatable {
    public var epoch: Int
    public var trainLoss: Double
    public var trainAccuracy: Double
    public var validationLoss: Double?
    public var validationAccuracy: Double?

    public init(epoch: Int, trainLoss: Double, trainAccuracy: Double, validationLoss: Double? = nil, validationAccuracy: Double? = nil) {
        self.epoch = epoch
        self.trainLoss = trainLoss
        self.trainAccuracy = trainAccuracy
        self.validationLoss = validationLoss
        self.validationAccuracy = validationAccuracy
    }
}

/// What training produced.
public struct TrainingResult: Sendable {
    /// The head at the epoch with the lowest validation loss (or the last one without early stopping).
    public var head: ClassificationHead
    public var standardization: Standardization
    public var history: [EpochRecord]
    public var bestEpoch: Int
    public var stoppedEarly: Bool
    /// The L2 strength used (L-BFGS): the configured one or the cross-validated choice.
    public var l2: Float
    /// The cross-validation behind a chosen L2 (nil when it was given or not needed).
    public var l2Selection: L2Selection?

    public init(head: ClassificationHead, standardization: Standardization, history: [EpochRecord], bestEpoch: Int,
                stoppedEarly: Bool, l2: Float, l2Selection: L2Selection?) {
        self.head = head
        self.standardization = standardization
        self.history = history
        self.bestEpoch = bestEpoch
        self.stoppedEarly = stoppedEarly
        self.l2 = l2
        self.l2Selection = l2Selection
    }
}

/// Fits a head on backbone features.
public enum HeadTrainer {
    /// - train: raw (unstandardized) features [n, d] with `trainLabels`
    /// - validation: optional held-out features for early stopping and progress
    /// - trainGroups: per training row, its image (augmented views share one); cross-validation keeps a
    ///   group in one fold. nil: every row is its own image.
    /// - prior: class directions [classes, d] in the raw feature space (e.g. from the class names' text
    ///   embeddings, `--init-from-labels`): a linear head starts from them (scaled to fit the training
    ///   rows) and its L2 penalty pulls towards them instead of towards zero (L2-SP).
    /// - onEpoch: called after every epoch / iteration
    public static func train(
        configuration c: TrainingConfiguration, classes: Int,
        train: FeatureMatrix, trainLabels: [Int], trainGroups: [Int]? = nil,
        validation: FeatureMatrix? = nil, validationLabels: [Int] = [],
        prior: FeatureMatrix? = nil,
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
        let rowWeights = classWeights.map { w in trainLabels.map { w[$0] } }
        var anchor: [Float]?
        if let prior {
            guard c.head == .linear, prior.rows == classes, prior.columns == train.columns else {
                throw TrainingError.invalidConfiguration("a prior needs a linear head and \(classes)x\(train.columns) class directions")
            }
            let start = ClassificationHead(prior: prior, standardization: standardization, fitting: x, labels: trainLabels)
            head = start
            anchor = start.parameters
        }
        var l2 = c.l2 ?? 1e-3, selection: L2Selection?
        if c.resolvedOptimizer == .lbfgs, c.l2 == nil {
            selection = L2Selection.crossValidate(
                grid: c.l2Grid, folds: c.crossValidationFolds, seed: c.seed, architecture: architecture, features: x,
                labels: trainLabels, groups: trainGroups, rowWeights: rowWeights, smoothing: c.labelSmoothing,
                anchor: anchor, maxIterations: c.maxEpochs)
            if let selection { l2 = selection.chosen }
        }
        let objective = HeadObjective(architecture: architecture, features: x, labels: trainLabels,
                                      rowWeights: rowWeights, smoothing: c.labelSmoothing,
                                      l2: c.resolvedOptimizer == .lbfgs ? l2 : 0, anchor: anchor)

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
        case .adamw, .sgd:
            // `validate` refuses sgd for heads; a decoded file that says so trains with AdamW.
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
                              bestEpoch: keepBest ? best.epoch : history.count, stoppedEarly: stoppedEarly,
                              l2: l2, l2Selection: selection)
    }

    /// Unsmoothed, unweighted log loss and accuracy of `head` on standardized features.
    public static func evaluate(_ head: ClassificationHead, _ x: FeatureMatrix, _ labels: [Int]) -> (loss: Double, accuracy: Double) {
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
