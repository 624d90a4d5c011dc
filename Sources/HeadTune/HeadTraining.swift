import Foundation
import Imaging
import Training

/// What `headtune train` does, as a library call: labelled images -> features (cached) -> head ->
/// validation report -> head file contents.
public struct HeadTrainingRequest: Sendable {
    /// Class-per-folder directory or CSV manifest.
    public var data: String
    /// A separate validation set (same layout); overrides `validationSplit`.
    public var validationData: String?
    /// Fraction held out per class (stratified, seeded with `configuration.seed`); 0 = none.
    /// Ignored when the manifest has a `split` column or `validationData` is given.
    public var validationSplit = 0.2
    public var policy: CropPolicy = .resize
    public var augment: [Augmentation] = []
    /// Features are the mean of the image's and its mirror image's, in training and prediction alike
    /// (so `augment: [.flip]` adds nothing on top). Measured: +2 to +5 points on cars49 and busi.
    public var testTimeFlip = true
    /// Backbone outputs the head reads (recorded in the head file, so prediction extracts the same).
    /// Measured with the default recipe: head+stages +8 images of 125 on busi, +15 of 314 on cars49,
    /// +5 of 524 on pneumoniamnist over the head features alone (BENCHMARKS.md, "Training heads").
    public var featureSet: FeatureSet = .headAndStages
    public var configuration = TrainingConfiguration()
    /// Class directions [labels, features] in the raw feature space for the labels in head order
    /// (`LabelPrior`), used as the linear head's start and L2 anchor; nil: none.
    public var labelPrior: (@Sendable ([String]) throws -> FeatureMatrix)?

    public init(data: String) { self.data = data }
}

/// Callbacks for what the CLI shows while training runs.
public struct HeadTrainingEvents {
    /// An image that cannot be used, with the reason.
    public var skipped: (String, Error) -> Void = { _, _ in }
    /// Feature extraction: phase name, done, total (only requests that need the network).
    public var extraction: (String, Int, Int) -> Void = { _, _, _ in }
    public var epoch: (EpochRecord) -> Void = { _ in }

    public init() {}
}

public struct HeadTrainingOutcome {
    public var headFile: HeadFile
    /// Validation metrics (nil without a validation set).
    public var report: ClassificationReport? { headFile.metadata.validation }
    public var statistics: Statistics
    /// The exact rows the head was trained and validated on (raw features), for comparisons with
    /// other learners (`headtune train --dump-features`).
    public var data: TrainingData

    public struct TrainingData {
        public var train: FeatureMatrix
        public var trainLabels: [Int]
        /// Per training row, the index of its image (augmented views share it): CV folds group by it.
        public var trainImages: [Int]
        public var validation: FeatureMatrix
        public var validationLabels: [Int]
    }

    public struct Statistics {
        /// Usable images per class, train and validation.
        public var trainCounts: [Int] = []
        public var validationCounts: [Int] = []
        public var cacheHits = 0
        public var extracted = 0
        public var damagedCacheEntries = 0
        public var skippedFiles = 0
        /// Seconds spent getting features, and training.
        public var extractionSeconds = 0.0
        public var trainingSeconds = 0.0
        public var epochs = 0
        public var bestEpoch = 0
        public var stoppedEarly = false
        /// The cross-validation that chose the L2 strength (nil when --l2 was given).
        public var l2Selection: L2Selection?
    }
}

public enum HeadTraining {
    public static func run(_ request: HeadTrainingRequest, backbone: Backbone, extractor: FeatureExtractor,
                           events: HeadTrainingEvents = HeadTrainingEvents(), now: Date = Date()) throws -> HeadTrainingOutcome {
        try request.configuration.validate()
        let dataset = try LabeledDataset.load(path: request.data, imageExtensions: InputCollector.imageExtensions)
        let labels = dataset.labels
        let validationSet = try request.validationData.map {
            try LabeledDataset.load(path: $0, imageExtensions: InputCollector.imageExtensions, labels: labels)
        }
        guard labels.count >= 2 else {
            throw TrainingError.invalidDataset(path: request.data, reason: "found \(labels.count) class; a classifier needs at least 2")
        }

        // Phase 1: the prediction views of every image; files that fail are dropped here.
        let predictionViews = HeadTune.predictionViews(policy: request.policy, testTimeFlip: request.testTimeFlip)
        var samples = dataset.samples
        let externalValidation = validationSet?.samples.map { LabeledSample(path: $0.path, label: $0.label, split: .validation) } ?? []
        samples += externalValidation
        let start = Date()
        let featureSet = request.featureSet, featureCount = backbone.featureCount(for: featureSet)
        let first = try extractor.extract(requests(paths: samples.map(\.path), views: predictionViews), featureSet: featureSet) {
            events.extraction("features", $0, $1)
        }
        var statistics = HeadTrainingOutcome.Statistics()
        statistics.cacheHits = first.cacheHits
        statistics.extracted = first.extracted
        statistics.damagedCacheEntries = first.damagedEntries
        let averaged = averagedFeatures(first.results, paths: samples.count, views: predictionViews.count)
        var usable: [(sample: LabeledSample, features: [Float])] = []
        for (sample, result) in zip(samples, averaged) {
            switch result {
            case .success(let features): usable.append((sample, features))
            case .failure(let error):
                events.skipped(sample.path, error)
                statistics.skippedFiles += 1
            }
        }

        // Split: the manifest's split column, else --validation-dir, else a stratified seeded split.
        var trainIndices: [Int], validationIndices: [Int]
        if usable.contains(where: { $0.sample.split != nil }) {
            trainIndices = usable.indices.filter { usable[$0].sample.split != .validation }
            validationIndices = usable.indices.filter { usable[$0].sample.split == .validation }
        } else if request.validationSplit > 0 {
            (trainIndices, validationIndices) = try DatasetSplitter.stratified(
                labels: usable.map(\.sample.label), classNames: labels, fraction: request.validationSplit,
                seed: request.configuration.seed)
        } else {
            trainIndices = Array(usable.indices)
            validationIndices = []
        }
        statistics.trainCounts = counts(trainIndices.map { usable[$0].sample.label }, classes: labels.count)
        statistics.validationCounts = counts(validationIndices.map { usable[$0].sample.label }, classes: labels.count)
        if let missing = statistics.trainCounts.firstIndex(of: 0) {
            throw TrainingError.tooFewImages(label: labels[missing], count: 0, needed: 1)
        }

        // Phase 2: the extra training views.
        var train = FeatureMatrix(columns: featureCount)
        var trainLabels: [Int] = [], trainImages: [Int] = []
        for (n, i) in trainIndices.enumerated() {
            train.append(row: usable[i].features)
            trainLabels.append(usable[i].sample.label)
            trainImages.append(n)
        }
        let extraViews = Augmentation.trainingViews(policy: request.policy, augment: request.augment)
            .filter { !predictionViews.contains($0) }
        if !extraViews.isEmpty {
            let paths = trainIndices.map { usable[$0].sample.path }
            let second = try extractor.extract(requests(paths: paths, views: extraViews), featureSet: featureSet) {
                events.extraction("augmented views", $0, $1)
            }
            statistics.cacheHits += second.cacheHits
            statistics.extracted += second.extracted
            statistics.damagedCacheEntries += second.damagedEntries
            for (n, i) in trainIndices.enumerated() {
                for v in extraViews.indices {
                    // A view that fails where the plain one worked (it cannot, in practice) only loses that row.
                    if case .success(let features) = second.results[n * extraViews.count + v] {
                        train.append(row: features)
                        trainLabels.append(usable[i].sample.label)
                        trainImages.append(n)
                    }
                }
            }
        }
        var validation = FeatureMatrix(columns: featureCount)
        for i in validationIndices { validation.append(row: usable[i].features) }
        let validationLabels = validationIndices.map { usable[$0].sample.label }
        statistics.extractionSeconds = Date().timeIntervalSince(start)

        let trainingStart = Date()
        // The class names say nothing about the stage-pooled features: their weights start at, and are
        // pulled towards, zero.
        let prior = try request.labelPrior?(labels).paddingColumns(to: featureCount)
        let result = try HeadTrainer.train(configuration: request.configuration, classes: labels.count, train: train,
                                           trainLabels: trainLabels, trainGroups: trainImages,
                                           validation: validation.rows > 0 ? validation : nil,
                                           validationLabels: validationLabels, prior: prior, onEpoch: events.epoch)
        statistics.l2Selection = result.l2Selection
        // The head file records the L2 strength that was used, chosen or given.
        var configuration = request.configuration
        if configuration.resolvedOptimizer == .lbfgs { configuration.l2 = result.l2 }
        statistics.trainingSeconds = Date().timeIntervalSince(trainingStart)
        statistics.epochs = result.history.count
        statistics.stoppedEarly = result.stoppedEarly
        statistics.bestEpoch = result.bestEpoch

        var report: ClassificationReport?
        if validation.rows > 0 {
            var standardized = validation
            result.standardization.apply(to: &standardized)
            report = ClassificationReport(probabilities: result.head.probabilities(standardized), truth: validationLabels,
                                          paths: validationIndices.map { usable[$0].sample.path }, labels: labels)
        }
        // Out-of-distribution detector: one row per training image (not its augmented views), in the
        // head's standardized space, threshold from the validation images.
        var bank = train.selecting(Array(trainIndices.indices))
        result.standardization.apply(to: &bank)
        var calibration = validation
        result.standardization.apply(to: &calibration)
        let detector = OutOfDistributionDetector.fit(train: bank, validation: calibration.rows > 0 ? calibration : nil)
        let metadata = HeadFile.Metadata(
            labels: labels,
            backbone: .init(id: backbone.identifier, weightsSHA256: backbone.weightsSHA256, featureCount: featureCount,
                            features: featureSet),
            preprocessing: .init(policy: request.policy.rawValue, inputSize: backbone.inputSize, testTimeFlip: request.testTimeFlip,
                                 augment: request.augment.map(\.rawValue)),
            architecture: result.head.architecture, training: configuration, bestEpoch: result.bestEpoch,
            dataset: .init(source: request.data, imagesPerClass: zip(statistics.trainCounts, statistics.validationCounts).map { $0 + $1 },
                           trainImages: trainIndices.count, validationImages: validationIndices.count, trainRows: train.rows,
                           skippedFiles: statistics.skippedFiles),
            validation: report, createdAt: ISO8601DateFormatter().string(from: now), headtuneVersion: HeadTuneVersion.current)
        return HeadTrainingOutcome(headFile: HeadFile(metadata: metadata, head: result.head, standardization: result.standardization,
                                                      outOfDistribution: detector),
                                   statistics: statistics,
                                   data: .init(train: train, trainLabels: trainLabels, trainImages: trainImages,
                                               validation: validation, validationLabels: validationLabels))
    }

    private static func counts(_ labels: [Int], classes: Int) -> [Int] {
        var counts = [Int](repeating: 0, count: classes)
        for label in labels { counts[label] += 1 }
        return counts
    }
}

/// `headtune evaluate`: a head on a labelled folder or manifest.
public enum HeadEvaluation {
    /// The report over every usable image of `data` (all of it: a held-out set), and the skipped files.
    public static func run(predictor: HeadPredictor, data: String, extractor: FeatureExtractor,
                           skipped: (String, Error) -> Void = { _, _ in },
                           progress: (Int, Int) -> Void = { _, _ in }) throws -> ClassificationReport {
        let dataset = try LabeledDataset.load(path: data, imageExtensions: InputCollector.imageExtensions, labels: predictor.labels)
        let results = try predictor.predict(paths: dataset.samples.map(\.path), extractor: extractor, progress: progress)
        var probabilities: [Float] = [], truth: [Int] = [], paths: [String] = []
        for (sample, result) in zip(dataset.samples, results) {
            switch result {
            case .success(let p):
                probabilities += p
                truth.append(sample.label)
                paths.append(sample.path)
            case .failure(let error): skipped(sample.path, error)
            }
        }
        guard !truth.isEmpty else { throw TrainingError.invalidDataset(path: data, reason: "no usable images") }
        return ClassificationReport(probabilities: probabilities, truth: truth, paths: paths, labels: predictor.labels)
    }
}

/// The version written into head files.
public enum HeadTuneVersion {
    public static let current = "0.3.0"
}
