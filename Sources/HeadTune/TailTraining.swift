import Foundation
import Imaging
import Models
import Training

// `headtune train --unfreeze K`: the last K blocks of the encoder trained with the head.
//
// The frozen prefix runs once per image view and its output at the cut is cached (the feature cache,
// under the prefix's own identity), so each epoch runs only the tail. The recipe is fixed across
// datasets, not tuned on a validation split: a linear probe on the pretrained tail's features (the
// usual head, L2 chosen by cross-validation), then tail and head fine-tuned together with AdamW,
// one epoch of warm-up and cosine decay (LP-FT, Kumar et al., ICLR 2022). The epoch with the lowest
// validation loss is kept, the probe itself (epoch 0) included, so fine-tuning never makes the
// validation loss worse than the frozen features did.

extension Augmentation {
    /// `count` random views of one image: a crop of 60-100% of each side (36-100% of the area) at a
    /// random place, mirrored half the time. Drawn from `seed` and the path, so a run with the same
    /// seed asks for the same views (and finds them cached), and adding images does not move others'.
    public static func randomViews(count: Int, policy: CropPolicy, seed: UInt64, path: String) -> [ImageView] {
        var generator = SeededGenerator(seed: seed ^ FNV1a.hash(Array(path.utf8)))
        func rounded(_ x: Float) -> Float { (x * 100).rounded() / 100 }
        return (0..<count).map { _ in
            let scale = rounded(0.6 + 0.4 * generator.unitFloat())
            let x = rounded(generator.unitFloat()), y = rounded(generator.unitFloat())
            let mirrored = generator.unitFloat() < 0.5
            return ImageView(policy: policy, crop: scale < 1 ? .init(anchorX: x, anchorY: y, scale: scale) : nil, mirrored: mirrored)
        }
    }
}

extension HeadTraining {
    /// Cut activations (floats per row) held for a run: at most this many bytes, so a big `--views`
    /// or a deep cut is refused up front instead of swapping. `HEADTUNE_TAIL_MEMORY_GB` raises it.
    static var tailMemoryLimit: Int {
        let gigabytes = ProcessInfo.processInfo.environment["HEADTUNE_TAIL_MEMORY_GB"].flatMap(Double.init) ?? 8
        return Int(gigabytes * 1_073_741_824)
    }

    /// The rows the tail is trained and validated on: cut activations [rows, tail.inputWidth].
    struct CutRows {
        var train: FeatureMatrix
        var trainLabels: [Int] = []
        var trainImages: [Int] = []
        /// Per training image, its rows under the prediction views (for the detector's bank).
        var trainPredictionRows: [[Int]] = []
        /// Validation images' rows, `views` consecutive rows per image.
        var validation: FeatureMatrix
        var validationLabels: [Int] = []
    }

    static func runWithTail(_ request: HeadTrainingRequest, encoder: ImageEncoder, extractor: FeatureExtractor,
                            events: HeadTrainingEvents, now: Date) throws -> HeadTrainingOutcome {
        let c = request.configuration
        guard let outputWidth = encoder.featureCount(for: request.featureSet) else {
            throw HeadTuneError.unsupportedFeatures(featureSet: request.featureSet.rawValue, encoder: encoder.identifier)
        }
        // Refuse an impossible cut before any image is read.
        let prefix = try encoder.frozenPrefix(unfreeze: c.unfreeze)
        let tail = try encoder.trainableTail(unfreeze: c.unfreeze, loraRank: c.loraRank, seed: c.seed)
        let includeStages = request.featureSet == .headAndStages
        precondition(tail.outputWidth(includeStages: includeStages) == outputWidth)
        var prefixExtractor = extractor
        prefixExtractor.encoder = prefix

        let (labels, samples) = try loadSamples(request)
        var statistics = HeadTrainingOutcome.Statistics()
        let start = Date()
        let predictionViews = HeadTune.predictionViews(policy: request.policy, testTimeFlip: request.testTimeFlip)
        // Every row this run would hold, counted before any image is read (a deep cut holds large maps).
        let fixedExtraCount = Augmentation.trainingViews(policy: request.policy, augment: request.augment)
            .filter { !predictionViews.contains($0) }.count
        let rowBound = samples.count * (predictionViews.count + fixedExtraCount + c.randomViews)
        let bytes = rowBound * tail.inputWidth * MemoryLayout<Float>.size
        guard bytes <= tailMemoryLimit else {
            throw HeadTuneError.fineTuningUnsupported(reason: String(
                format: "%d images x %d views of %d cut values need up to %.2f GB, over the %.2f GB limit; ask for fewer --views or a "
                    + "smaller --unfreeze (deeper cuts hold larger maps), or raise HEADTUNE_TAIL_MEMORY_GB",
                samples.count, predictionViews.count + fixedExtraCount + c.randomViews, tail.inputWidth,
                Double(bytes) / 1_073_741_824, Double(tailMemoryLimit) / 1_073_741_824))
        }
        // Step 1: every image under the prediction views, at the cut; unreadable files are dropped here.
        let outcome = try prefixExtractor.extract(requests(paths: samples.map(\.path), views: predictionViews), featureSet: .head) {
            events.extraction("cut activations", $0, $1)
        }
        statistics.add(outcome)
        var usable: [(sample: LabeledSample, features: [Float])] = [], usableViews: [[[Float]]] = []
        for (n, sample) in samples.enumerated() {
            var views: [[Float]] = []
            for v in predictionViews.indices {
                switch outcome.results[n * predictionViews.count + v] {
                case .success(let row): views.append(row)
                case .failure(let error):
                    if views.count == v { events.skipped(sample.path, error); statistics.skippedFiles += 1 }
                }
            }
            guard views.count == predictionViews.count else { continue }
            usable.append((sample, []))
            usableViews.append(views)
        }
        let (trainIndices, validationIndices) = try split(usable, labels: labels, request: request, statistics: &statistics)
        guard trainIndices.count >= 2 else {
            throw HeadTuneError.fineTuningUnsupported(reason: "\(trainIndices.count) training image; fine-tuning needs at least 2")
        }

        // Step 2: the training views beyond the prediction ones (--augment, --views), at the cut.
        let fixedExtra = Augmentation.trainingViews(policy: request.policy, augment: request.augment).filter { !predictionViews.contains($0) }
        let extraViews = trainIndices.map { i in
            fixedExtra + Augmentation.randomViews(count: c.randomViews, policy: request.policy, seed: c.seed, path: usable[i].sample.path)
                .filter { !predictionViews.contains($0) && !fixedExtra.contains($0) }
        }
        var rows = CutRows(train: FeatureMatrix(columns: tail.inputWidth), validation: FeatureMatrix(columns: tail.inputWidth))
        for (n, i) in trainIndices.enumerated() {
            var own: [Int] = []
            for view in usableViews[i] {
                own.append(rows.train.rows)
                rows.train.append(row: view)
                rows.trainLabels.append(usable[i].sample.label)
                rows.trainImages.append(n)
            }
            rows.trainPredictionRows.append(own)
        }
        let extraRequests = zip(trainIndices, extraViews).flatMap { i, views in views.map { FeatureRequest(path: usable[i].sample.path, view: $0) } }
        if !extraRequests.isEmpty {
            let extra = try prefixExtractor.extract(extraRequests, featureSet: .head) { events.extraction("augmented views", $0, $1) }
            statistics.add(extra)
            var position = 0
            for (n, views) in extraViews.enumerated() {
                for _ in views {
                    defer { position += 1 }
                    // A view that fails where the plain one worked only loses that row.
                    guard case .success(let row) = extra.results[position] else { continue }
                    rows.train.append(row: row)
                    rows.trainLabels.append(usable[trainIndices[n]].sample.label)
                    rows.trainImages.append(n)
                }
            }
        }
        for i in validationIndices {
            for view in usableViews[i] { rows.validation.append(row: view) }
            rows.validationLabels.append(usable[i].sample.label)
        }
        usableViews = []
        statistics.extractionSeconds = Date().timeIntervalSince(start)

        // Step 3: the probe, then fine-tuning.
        let trainingStart = Date()
        let tuned = try fineTune(tail: tail, rows: rows, classes: labels.count, views: predictionViews.count,
                                 includeStages: includeStages, threads: extractor.threads, request: request, events: events, statistics: &statistics)
        statistics.trainingSeconds = Date().timeIntervalSince(trainingStart)

        // Step 4: report, detector, file, from the kept epoch's tail and head.
        let validationFeatures = tailFeatures(tail, rows.validation, views: predictionViews.count, includeStages: includeStages,
                                              threads: extractor.threads)
        let trainImageRows = rows.trainPredictionRows.flatMap { $0 }
        let trainFeatures = tailFeatures(tail, rows.train.selecting(trainImageRows), views: predictionViews.count,
                                         includeStages: includeStages, threads: extractor.threads)
        let result = tuned.result
        var featureRows = TrainingRows(train: trainFeatures, validation: validationFeatures)
        featureRows.trainLabels = rows.trainPredictionRows.map { rows.trainLabels[$0[0]] }
        featureRows.trainImages = Array(0..<trainFeatures.rows)
        featureRows.validationLabels = rows.validationLabels
        var configuration = c
        configuration.l2 = result.l2
        let report = validationReport(result, rows: featureRows, paths: validationIndices.map { usable[$0].sample.path }, labels: labels)
        let detector = outOfDistributionDetector(result, rows: featureRows, trainImages: trainFeatures.rows,
                                                options: outOfDistributionOptions(request, encoder: encoder))
        let metadata = headMetadata(request, encoder: encoder, labels: labels, featureCount: outputWidth, result: result,
                                    configuration: configuration, statistics: statistics,
                                    images: (trainIndices.count, validationIndices.count, rows.train.rows), report: report, now: now)
        let file = HeadFile(metadata: metadata, head: result.head, standardization: result.standardization, outOfDistribution: detector,
                            tail: tail.tunedTail())
        return HeadTrainingOutcome(headFile: file, statistics: statistics,
                                   data: .init(train: trainFeatures, trainLabels: featureRows.trainLabels,
                                               trainImages: featureRows.trainImages, validation: validationFeatures,
                                               validationLabels: rows.validationLabels,
                                               cut: .init(train: rows.train, trainLabels: rows.trainLabels, trainImages: rows.trainImages,
                                                          validation: rows.validation, views: predictionViews.count,
                                                          probe: tuned.probe.head, standardization: tuned.probe.standardization,
                                                          l2: tuned.probe.l2),
                                               trainPaths: trainIndices.map { usable[$0].sample.path },
                                               validationPaths: validationIndices.map { usable[$0].sample.path }))
    }

    /// The tail's output for cut rows, in minibatches; with `views` > 1, consecutive rows are one
    /// image's views and are averaged (as prediction averages them).
    static func tailFeatures(_ tail: any TrainableTail, _ rows: FeatureMatrix, views: Int, includeStages: Bool, threads: Int,
                             batch: Int = 64) -> FeatureMatrix {
        let width = tail.outputWidth(includeStages: includeStages)
        var out = FeatureMatrix(columns: width)
        let step = max(views, batch / views * views)
        for first in stride(from: 0, to: rows.rows, by: step) {
            let count = min(step, rows.rows - first)
            let pass = rows.values.withUnsafeBufferPointer {
                tail.forward($0.baseAddress! + first * rows.columns, count: count, includeStages: includeStages, threads: threads)
            }
            for image in 0..<(count / views) {
                var mean = [Float](repeating: 0, count: width)
                for v in 0..<views {
                    let base = (image * views + v) * width
                    for j in 0..<width { mean[j] += pass.output[base + j] }
                }
                if views > 1 { for j in 0..<width { mean[j] /= Float(views) } }
                out.append(row: mean)
            }
        }
        return out
    }

    /// AdamW or SGD with momentum, behind one step.
    enum FineTuneOptimizer {
        case adamw(AdamW)
        case sgd(SGDMomentum)

        init(_ kind: OptimizerKind, learningRate: Float, weightDecay: Float) {
            self = kind == .sgd ? .sgd(SGDMomentum(learningRate: learningRate, weightDecay: weightDecay))
                : .adamw(AdamW(learningRate: learningRate, weightDecay: weightDecay))
        }

        var learningRate: Float {
            get { switch self { case .adamw(let o): o.learningRate; case .sgd(let o): o.learningRate } }
            set {
                switch self {
                case .adamw(var o): o.learningRate = newValue; self = .adamw(o)
                case .sgd(var o): o.learningRate = newValue; self = .sgd(o)
                }
            }
        }

        mutating func step(_ parameters: inout [Float], gradient: [Float], decayed: [Bool]) {
            switch self {
            case .adamw(var o): o.step(&parameters, gradient: gradient, decayed: decayed); self = .adamw(o)
            case .sgd(var o): o.step(&parameters, gradient: gradient, decayed: decayed); self = .sgd(o)
            }
        }
    }

    struct TunedResult {
        var result: TrainingResult
        var probe: TrainingResult
    }

    /// The linear probe on the pretrained tail, then AdamW on tail and head; leaves the kept epoch's
    /// parameters in `tail` and returns the kept head.
    static func fineTune(tail: any TrainableTail, rows: CutRows, classes: Int, views: Int, includeStages: Bool, threads: Int,
                         request: HeadTrainingRequest, events: HeadTrainingEvents,
                         statistics: inout HeadTrainingOutcome.Statistics) throws -> TunedResult {
        let c = request.configuration
        let validationFeatures = { tailFeatures(tail, rows.validation, views: views, includeStages: includeStages, threads: threads) }
        // The probe: the usual head on the pretrained tail's features of every training row.
        let probeFeatures = tailFeatures(tail, rows.train, views: 1, includeStages: includeStages, threads: threads)
        let probeValidation = validationFeatures()
        var probeConfiguration = c
        probeConfiguration.unfreeze = 0
        probeConfiguration.loraRank = nil
        let probe = try HeadTrainer.train(configuration: probeConfiguration, classes: classes, train: probeFeatures,
                                          trainLabels: rows.trainLabels, trainGroups: rows.trainImages,
                                          validation: probeValidation.rows > 0 ? probeValidation : nil,
                                          validationLabels: rows.validationLabels)
        statistics.l2Selection = probe.l2Selection
        let standardization = probe.standardization
        var head = probe.head
        let l2 = c.resolvedOptimizer == .lbfgs ? probe.l2 : 0
        let rowWeights = c.classWeights == .balanced ? balancedClassWeights(labels: rows.trainLabels, classes: classes) : nil

        /// - features: the validation images' tail features when already computed (the probe's)
        func validate(_ features: FeatureMatrix? = nil) -> (loss: Double, accuracy: Double)? {
            guard rows.validation.rows > 0 else { return nil }
            var x = features ?? validationFeatures()
            standardization.apply(to: &x)
            return HeadTrainer.evaluate(head, x, rows.validationLabels)
        }
        var history: [EpochRecord] = []
        var best = (loss: Double.infinity, tail: tail.parameters, head: head.parameters, epoch: 0)
        let probeValidated = validate(probeValidation)
        if let probeValidated { best.loss = probeValidated.loss }
        // Epoch 0 is the probe.
        events.epoch(EpochRecord(epoch: 0, trainLoss: probe.history.last?.trainLoss ?? .nan,
                                 trainAccuracy: probe.history.last?.trainAccuracy ?? .nan,
                                 validationLoss: probeValidated?.loss, validationAccuracy: probeValidated?.accuracy))

        let batchSize = min(c.fineTuneBatchSize, rows.train.rows)
        let stepsPerEpoch = (rows.train.rows + batchSize - 1) / batchSize
        let tailSchedule = WarmupCosineSchedule(peak: c.resolvedTailLearningRate, warmupSteps: stepsPerEpoch,
                                                totalSteps: stepsPerEpoch * c.fineTuneEpochs)
        let headSchedule = WarmupCosineSchedule(peak: c.fineTuneHeadLearningRate, warmupSteps: stepsPerEpoch,
                                                totalSteps: stepsPerEpoch * c.fineTuneEpochs)
        var tailOptimizer = FineTuneOptimizer(c.fineTuneOptimizer, learningRate: tailSchedule.peak, weightDecay: c.tailWeightDecay)
        // The head's L2 is in its loss (as the probe fitted it), not decoupled.
        var headOptimizer = FineTuneOptimizer(c.fineTuneOptimizer, learningRate: headSchedule.peak, weightDecay: 0)
        var tailDecayed = [Bool](repeating: false, count: tail.parameters.count)
        for t in tail.tensors where t.isDecayed { for i in t.offset..<(t.offset + t.count) { tailDecayed[i] = true } }
        let headDecayed = [Bool](repeating: false, count: head.parameters.count)
        var generator = SeededGenerator(seed: c.seed &+ 0x7A11)
        var order = Array(0..<rows.train.rows)
        var step = 0, sinceBest = 0, stoppedEarly = false
        let dropout = c.head == .mlp ? c.dropout : 0
        let totalSteps = stepsPerEpoch * c.fineTuneEpochs
        events.extraction("fine-tuning steps", 0, totalSteps)
        let fineTuningStart = Date()
        defer { statistics.fineTuningSeconds = Date().timeIntervalSince(fineTuningStart) }
        for epoch in 1...c.fineTuneEpochs {
            generator.shuffle(&order)
            var lossSum = 0.0, correct = 0
            for first in stride(from: 0, to: order.count, by: batchSize) {
                let batch = Array(order[first..<min(first + batchSize, order.count)])
                let input = rows.train.selecting(batch)
                let pass = input.values.withUnsafeBufferPointer {
                    tail.forward($0.baseAddress!, count: batch.count, includeStages: includeStages, threads: threads)
                }
                var x = FeatureMatrix(rows: batch.count, columns: pass.output.count / batch.count, values: pass.output)
                standardization.apply(to: &x)
                let labels = batch.map { rows.trainLabels[$0] }
                let (loss, headGradient, inputGradient) = head.trainingGradients(
                    x, labels: labels, rowWeights: rowWeights.map { w in batch.map { w[$0] } }, smoothing: c.labelSmoothing, l2: l2,
                    dropout: dropout, generator: &generator)
                lossSum += loss * Double(batch.count)
                let logits = head.logits(x)
                for (r, label) in labels.enumerated() {
                    let row = logits[(r * classes)..<((r + 1) * classes)]
                    if row.indices.max(by: { row[$0] < row[$1] })! - r * classes == label { correct += 1 }
                }
                // Through the fixed standardization: d(raw) = d(standardized) · inverse std.
                var rawGradient = inputGradient
                let width = x.columns
                for r in 0..<batch.count { for j in 0..<width { rawGradient[r * width + j] *= standardization.inverseStd[j] } }
                var tailGradient = [Float](repeating: 0, count: tail.parameters.count)
                rawGradient.withUnsafeBufferPointer { g in
                    tailGradient.withUnsafeMutableBufferPointer {
                        tail.backward(pass, outputGradient: g.baseAddress!, parameterGradient: $0.baseAddress!, threads: threads)
                    }
                }
                tailOptimizer.learningRate = tailSchedule.learningRate(at: step)
                headOptimizer.learningRate = headSchedule.learningRate(at: step)
                tailOptimizer.step(&tail.parameters, gradient: tailGradient, decayed: tailDecayed)
                headOptimizer.step(&head.parameters, gradient: headGradient, decayed: headDecayed)
                step += 1
                events.extraction("fine-tuning steps", step, totalSteps)
            }
            var record = EpochRecord(epoch: epoch, trainLoss: lossSum / Double(order.count),
                                     trainAccuracy: Double(correct) / Double(order.count))
            if let v = validate() {
                record.validationLoss = v.loss
                record.validationAccuracy = v.accuracy
                if v.loss < best.loss - 1e-6 {
                    best = (v.loss, tail.parameters, head.parameters, epoch)
                    sinceBest = 0
                } else {
                    sinceBest += 1
                }
            }
            history.append(record)
            events.epoch(record)
            if rows.validation.rows > 0 && c.patience > 0 && sinceBest >= c.patience {
                stoppedEarly = true
                break
            }
        }
        if rows.validation.rows > 0 {
            tail.parameters = best.tail
            head.parameters = best.head
        }
        statistics.epochs = history.count
        statistics.stoppedEarly = stoppedEarly
        statistics.bestEpoch = rows.validation.rows > 0 ? best.epoch : history.count
        return TunedResult(result: TrainingResult(head: head, standardization: standardization, history: history,
                                                  bestEpoch: statistics.bestEpoch, stoppedEarly: stoppedEarly, l2: probe.l2,
                                                  l2Selection: probe.l2Selection),
                           probe: probe)
    }
}
