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
    /// Encoder outputs the head reads (recorded in the head file, so prediction extracts the same).
    /// Measured with the default recipe: head+stages +8 images of 125 on busi, +15 of 314 on cars49,
    /// +5 of 524 on pneumoniamnist over the head features alone (BENCHMARKS.md, "Training heads").
    public var featureSet: FeatureSet = .headAndStages
    public var configuration = TrainingConfiguration()
    /// Class directions [labels, features] in the raw feature space for the labels in head order
    /// (`LabelPrior`), used as the linear head's start and L2 anchor; nil: none.
    public var labelPrior: (@Sendable ([String]) throws -> FeatureMatrix)?
    /// The out-of-distribution detector's recipe (`--ood-score`, `--ood-false-alarm`, ...).
    public var outOfDistribution = OutOfDistributionDetector.Options()

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
        /// With `--unfreeze`: the cut activations the tail was trained on, and the probe it started from.
        public var cut: CutData? = nil
        /// The training images (index = `trainImages` value) and the validation images, by path.
        public var trainPaths: [String] = []
        public var validationPaths: [String] = []
    }

    /// What fine-tuning started from, for running the same work elsewhere (scripts/bench_finetune_peers.py).
    public struct CutData {
        /// [rows, cut width] training rows (one per view), their labels and images.
        public var train: FeatureMatrix
        public var trainLabels: [Int]
        public var trainImages: [Int]
        /// [images · views, cut width]: each validation image's prediction views, consecutively.
        public var validation: FeatureMatrix
        public var views: Int
        /// The linear probe (standardized space) and its standardization, and its L2.
        public var probe: ClassificationHead
        public var standardization: Standardization
        public var l2: Float
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
        /// Of `trainingSeconds`, the fine-tuning epochs of `--unfreeze` (after the probe).
        public var fineTuningSeconds = 0.0
        public var epochs = 0
        public var bestEpoch = 0
        public var stoppedEarly = false
        /// The cross-validation that chose the L2 strength (nil when --l2 was given).
        public var l2Selection: L2Selection?

        /// Counts one extraction's cache hits, network runs and damaged entries.
        mutating func add(_ outcome: FeatureExtractor.Outcome) {
            cacheHits += outcome.cacheHits
            extracted += outcome.extracted
            damagedCacheEntries += outcome.damagedEntries
        }
    }
}

public enum HeadTraining {
    /// Data -> head file, in the steps below: load the datasets, extract each image's prediction
    /// features (dropping unreadable files), split, add the augmented training views, fit the head,
    /// score the validation images, fit the out-of-distribution detector, describe it all in metadata.
    public static func run(_ request: HeadTrainingRequest, encoder: ImageEncoder, extractor: FeatureExtractor,
                           events: HeadTrainingEvents = HeadTrainingEvents(), now: Date = Date()) throws -> HeadTrainingOutcome {
        try request.configuration.validate()
        if request.configuration.unfreeze > 0 {
            return try runWithTail(request, encoder: encoder, extractor: extractor, events: events, now: now)
        }
        guard let featureCount = encoder.featureCount(for: request.featureSet) else {
            throw HeadTuneError.unsupportedFeatures(featureSet: request.featureSet.rawValue, encoder: encoder.identifier)
        }
        let (labels, samples) = try loadSamples(request)
        var statistics = HeadTrainingOutcome.Statistics()
        let start = Date()
        let usable = try predictionFeatures(of: samples, request: request, extractor: extractor, events: events,
                                            statistics: &statistics)
        let (trainIndices, validationIndices) = try split(usable, labels: labels, request: request, statistics: &statistics)
        var rows = TrainingRows(train: FeatureMatrix(columns: featureCount), validation: FeatureMatrix(columns: featureCount))
        for (n, i) in trainIndices.enumerated() { rows.appendTraining(usable[i].features, label: usable[i].sample.label, image: n) }
        try addAugmentedViews(to: &rows, paths: trainIndices.map { usable[$0].sample.path },
                              labels: trainIndices.map { usable[$0].sample.label }, request: request, extractor: extractor,
                              events: events, statistics: &statistics)
        for i in validationIndices { rows.validation.append(row: usable[i].features) }
        rows.validationLabels = validationIndices.map { usable[$0].sample.label }
        statistics.extractionSeconds = Date().timeIntervalSince(start)

        let result = try fitHead(rows, labels: labels, request: request, events: events, statistics: &statistics)
        // The head file records the L2 strength that was used, chosen or given.
        var configuration = request.configuration
        if configuration.resolvedOptimizer == .lbfgs { configuration.l2 = result.l2 }
        let report = validationReport(result, rows: rows, paths: validationIndices.map { usable[$0].sample.path }, labels: labels)
        let detector = outOfDistributionDetector(result, rows: rows, trainImages: trainIndices.count,
                                                 options: outOfDistributionOptions(request, encoder: encoder))
        let metadata = headMetadata(request, encoder: encoder, labels: labels, featureCount: featureCount, result: result,
                                    configuration: configuration, statistics: statistics,
                                    images: (trainIndices.count, validationIndices.count, rows.train.rows), report: report, now: now)
        return HeadTrainingOutcome(headFile: HeadFile(metadata: metadata, head: result.head, standardization: result.standardization,
                                                      outOfDistribution: detector),
                                   statistics: statistics,
                                   data: .init(train: rows.train, trainLabels: rows.trainLabels, trainImages: rows.trainImages,
                                               validation: rows.validation, validationLabels: rows.validationLabels,
                                               trainPaths: trainIndices.map { usable[$0].sample.path },
                                               validationPaths: validationIndices.map { usable[$0].sample.path }))
    }

    /// The rows a head is fitted and validated on.
    struct TrainingRows {
        var train: FeatureMatrix
        var trainLabels: [Int] = []
        /// Per training row, its image (augmented views share it): cross-validation folds group by it.
        var trainImages: [Int] = []
        var validation: FeatureMatrix
        var validationLabels: [Int] = []

        mutating func appendTraining(_ features: [Float], label: Int, image: Int) {
            train.append(row: features)
            trainLabels.append(label)
            trainImages.append(image)
        }
    }

    /// Step 8: what the head file says about the head: labels, encoder, preprocessing, recipe, data, metrics.
    /// - images: training images, validation images, training rows (views included)
    static func headMetadata(_ request: HeadTrainingRequest, encoder: ImageEncoder, labels: [String], featureCount: Int,
                             result: TrainingResult, configuration: TrainingConfiguration,
                             statistics: HeadTrainingOutcome.Statistics, images: (train: Int, validation: Int, rows: Int),
                             report: ClassificationReport?, now: Date) -> HeadFile.Metadata {
        HeadFile.Metadata(
            labels: labels,
            backbone: .init(id: encoder.identifier, weightsSHA256: encoder.weightsSHA256, featureCount: featureCount,
                            features: request.featureSet, precision: encoder.precision.rawValue),
            preprocessing: .init(policy: request.policy, inputSize: encoder.inputSize, testTimeFlip: request.testTimeFlip,
                                 augment: request.augment.map(\.rawValue)),
            architecture: result.head.architecture, training: configuration, bestEpoch: result.bestEpoch,
            dataset: .init(source: request.data, imagesPerClass: zip(statistics.trainCounts, statistics.validationCounts).map { $0 + $1 },
                           trainImages: images.train, validationImages: images.validation, trainRows: images.rows,
                           skippedFiles: statistics.skippedFiles),
            validation: report, createdAt: ISO8601DateFormatter().string(from: now), headtuneVersion: HeadTuneVersion.current)
    }

    /// Step 1: the labelled images of `request.data` (and of `validationData`, marked as validation).
    static func loadSamples(_ request: HeadTrainingRequest) throws -> (labels: [String], samples: [LabeledSample]) {
        let dataset = try LabeledDataset.load(path: request.data, imageExtensions: InputCollector.imageExtensions)
        let labels = dataset.labels
        let validationSet = try request.validationData.map {
            try LabeledDataset.load(path: $0, imageExtensions: InputCollector.imageExtensions, labels: labels, labelsFrom: .trainingData)
        }
        guard labels.count >= 2 else {
            throw TrainingError.invalidDataset(path: request.data, reason: "found \(labels.count) class; a classifier needs at least 2")
        }
        let external = validationSet?.samples.map { LabeledSample(path: $0.path, label: $0.label, split: .validation) } ?? []
        return (labels, dataset.samples + external)
    }

    /// Step 2: every image's features under the prediction views (averaged), as prediction will see
    /// them; files that fail are reported and dropped here.
    static func predictionFeatures(of samples: [LabeledSample], request: HeadTrainingRequest, extractor: FeatureExtractor,
                                   events: HeadTrainingEvents, statistics: inout HeadTrainingOutcome.Statistics)
        throws -> [(sample: LabeledSample, features: [Float])]
    {
        let views = HeadTune.predictionViews(policy: request.policy, testTimeFlip: request.testTimeFlip)
        let outcome = try extractor.extract(requests(paths: samples.map(\.path), views: views), featureSet: request.featureSet) {
            events.extraction("features", $0, $1)
        }
        statistics.add(outcome)
        var usable: [(sample: LabeledSample, features: [Float])] = []
        for (sample, result) in zip(samples, averagedFeatures(outcome.results, paths: samples.count, views: views.count)) {
            switch result {
            case .success(let features): usable.append((sample, features))
            case .failure(let error):
                events.skipped(sample.path, error)
                statistics.skippedFiles += 1
            }
        }
        return usable
    }

    /// Step 3: the manifest's split column, else --validation-dir, else a stratified seeded split.
    static func split(_ usable: [(sample: LabeledSample, features: [Float])], labels: [String], request: HeadTrainingRequest,
                      statistics: inout HeadTrainingOutcome.Statistics) throws -> (train: [Int], validation: [Int]) {
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
        return (trainIndices, validationIndices)
    }

    /// Step 4: the extra training views (`--augment`) of the training images, one row each.
    static func addAugmentedViews(to rows: inout TrainingRows, paths: [String], labels: [Int], request: HeadTrainingRequest,
                                  extractor: FeatureExtractor, events: HeadTrainingEvents,
                                  statistics: inout HeadTrainingOutcome.Statistics) throws {
        let predictionViews = HeadTune.predictionViews(policy: request.policy, testTimeFlip: request.testTimeFlip)
        let extraViews = Augmentation.trainingViews(policy: request.policy, augment: request.augment)
            .filter { !predictionViews.contains($0) }
        guard !extraViews.isEmpty else { return }
        let outcome = try extractor.extract(requests(paths: paths, views: extraViews), featureSet: request.featureSet) {
            events.extraction("augmented views", $0, $1)
        }
        statistics.add(outcome)
        for n in paths.indices {
            for v in extraViews.indices {
                // A view that fails where the plain one worked (it cannot, in practice) only loses that row.
                if case .success(let features) = outcome.results[n * extraViews.count + v] {
                    rows.appendTraining(features, label: labels[n], image: n)
                }
            }
        }
    }

    /// Step 5: the head itself (L2 chosen by cross-validation unless given).
    static func fitHead(_ rows: TrainingRows, labels: [String], request: HeadTrainingRequest, events: HeadTrainingEvents,
                        statistics: inout HeadTrainingOutcome.Statistics) throws -> TrainingResult {
        let start = Date()
        // The class names say nothing about the stage-pooled features: their weights start at, and are
        // pulled towards, zero.
        let prior = try request.labelPrior?(labels).paddingColumns(to: rows.train.columns)
        let result = try HeadTrainer.train(configuration: request.configuration, classes: labels.count, train: rows.train,
                                           trainLabels: rows.trainLabels, trainGroups: rows.trainImages,
                                           validation: rows.validation.rows > 0 ? rows.validation : nil,
                                           validationLabels: rows.validationLabels, prior: prior, onEpoch: events.epoch)
        statistics.l2Selection = result.l2Selection
        statistics.trainingSeconds = Date().timeIntervalSince(start)
        statistics.epochs = result.history.count
        statistics.stoppedEarly = result.stoppedEarly
        statistics.bestEpoch = result.bestEpoch
        return result
    }

    /// Step 6: the validation report (nil without validation images).
    static func validationReport(_ result: TrainingResult, rows: TrainingRows, paths: [String], labels: [String])
        -> ClassificationReport?
    {
        guard rows.validation.rows > 0 else { return nil }
        var standardized = rows.validation
        result.standardization.apply(to: &standardized)
        return ClassificationReport(probabilities: result.head.probabilities(standardized), truth: rows.validationLabels,
                                    paths: paths, labels: labels)
    }

    /// The request's detector options, with the relative Mahalanobis score on the stage features when
    /// the head reads them: on unseen classes of the same domain (unseen car models) the stage
    /// averages separate better than the pooled head features (BENCHMARKS.md, near-OOD).
    static func outOfDistributionOptions(_ request: HeadTrainingRequest, encoder: ImageEncoder) -> OutOfDistributionDetector.Options {
        var options = request.outOfDistribution
        if request.featureSet == .headAndStages, let headFeatures = encoder.featureCount(for: .head) {
            options.relativeMahalanobis?.firstColumn = headFeatures
        }
        return options
    }

    /// Step 7: the out-of-distribution detector: one row per training image (not its augmented views,
    /// which come after them), in the head's standardized space, with the head's logits for the
    /// confidence scores; thresholds from the validation images.
    static func outOfDistributionDetector(_ result: TrainingResult, rows: TrainingRows, trainImages: Int,
                                          options: OutOfDistributionDetector.Options) -> OutOfDistributionDetector?
    {
        var bank = rows.train.selecting(Array(0..<trainImages))
        result.standardization.apply(to: &bank)
        var calibration = rows.validation
        result.standardization.apply(to: &calibration)
        return OutOfDistributionDetector.fit(train: bank, trainLabels: Array(rows.trainLabels.prefix(trainImages)),
                                             trainLogits: result.head.logits(bank), classes: result.head.architecture.classes,
                                             validation: calibration.rows > 0 ? calibration : nil,
                                             validationLogits: result.head.logits(calibration), options: options)
    }

    private static func counts(_ labels: [Int], classes: Int) -> [Int] {
        var counts = [Int](repeating: 0, count: classes)
        for label in labels { counts[label] += 1 }
        return counts
    }
}

/// `headtune evaluate`: a head on a labelled folder or manifest.
public enum HeadEvaluation {
    /// The classification report, and with a folder of out-of-scope images, the out-of-distribution one.
    public struct Outcome: Sendable {
        public var report: ClassificationReport
        public var outOfDistribution: OutOfDistributionReport?
        /// Per usable image (the evaluation images, then the out-of-scope ones), every score the
        /// head's detector gave it.
        public var imageScores: [ImageScores] = []
    }

    public struct ImageScores: Sendable {
        public var path: String
        /// From the `--ood` folder rather than the evaluation data.
        public var outOfScope: Bool
        public var scores: [OutOfDistributionScore: Float]

        /// `{"path": ..., "out_of_scope": ..., "ood_scores": {"knn": ..., ...}}`.
        public var json: JSONValue {
            .object([("path", .string(path)), ("out_of_scope", .bool(outOfScope)),
                     ("ood_scores", .object(OutOfDistributionScore.allCases.compactMap { s in scores[s].map { (s.rawValue, .float($0)) } }))])
        }
    }

    /// The report over every usable image of `data` (all of it: a held-out set), and the skipped files.
    /// - ignoreUnknownLabels: leave out images of classes the head lacks (told to `ignored`, per class)
    ///   instead of failing with `TrainingError.unknownLabels`
    public static func run(predictor: HeadPredictor, data: String, extractor: FeatureExtractor,
                           ignoreUnknownLabels: Bool = false, ignored: ([String: Int]) -> Void = { _ in },
                           skipped: (String, Error) -> Void = { _, _ in },
                           progress: (Int, Int) -> Void = { _, _ in }) throws -> ClassificationReport {
        try evaluate(predictor: predictor, data: data, extractor: extractor, ignoreUnknownLabels: ignoreUnknownLabels,
                     ignored: ignored, skipped: skipped, progress: progress).report
    }

    /// The report, and with `outOfDistribution` (a folder, or any `classify` input), how the head's
    /// detector separates `data`'s images from those: per score, AUROC, false alarms and catches at
    /// the stored thresholds. Unreadable files on either side are skipped and reported.
    /// - ignoreUnknownLabels: leave out images of classes the head lacks (told to `ignored`, per class)
    ///   instead of failing with `TrainingError.unknownLabels`
    public static func evaluate(predictor: HeadPredictor, data: String, outOfDistribution: String? = nil,
                                extractor: FeatureExtractor, ignoreUnknownLabels: Bool = false,
                                ignored: ([String: Int]) -> Void = { _ in },
                                skipped: (String, Error) -> Void = { _, _ in },
                                progress: (Int, Int) -> Void = { _, _ in }) throws -> Outcome {
        let dataset = try LabeledDataset.load(path: data, imageExtensions: InputCollector.imageExtensions, labels: predictor.labels,
                                              ignoreUnknownLabels: ignoreUnknownLabels)
        if !dataset.unknownLabelCounts.isEmpty { ignored(dataset.unknownLabelCounts) }
        var outsidePaths: [String] = []
        if let outOfDistribution {
            guard predictor.head.outOfDistribution != nil else {
                throw TrainingError.invalidConfiguration("--ood \(outOfDistribution): the head has no out-of-distribution detector "
                                                         + "(written before format 2); train it again")
            }
            outsidePaths = try InputCollector.collect([outOfDistribution])
            guard !outsidePaths.isEmpty else {
                throw TrainingError.invalidDataset(path: outOfDistribution, reason: "no images (.jpg, .jpeg, .png) to score")
            }
        }
        let insidePaths = dataset.samples.map(\.path)
        let results = try predictor.predictOutputs(paths: insidePaths + outsidePaths, extractor: extractor, progress: progress)
        var probabilities: [Float] = [], truth: [Int] = [], paths: [String] = []
        var inside: [[OutOfDistributionScore: Float]] = [], outside: [[OutOfDistributionScore: Float]] = []
        var imageScores: [ImageScores] = []
        for (n, result) in results.enumerated() {
            let path = n < insidePaths.count ? insidePaths[n] : outsidePaths[n - insidePaths.count]
            switch result {
            case .success(let output) where n < insidePaths.count:
                probabilities += output.probabilities
                truth.append(dataset.samples[n].label)
                paths.append(path)
                inside.append(output.outOfDistributionScores)
                imageScores.append(ImageScores(path: path, outOfScope: false, scores: output.outOfDistributionScores))
            case .success(let output):
                outside.append(output.outOfDistributionScores)
                imageScores.append(ImageScores(path: path, outOfScope: true, scores: output.outOfDistributionScores))
            case .failure(let error): skipped(path, error)
            }
        }
        guard !truth.isEmpty else { throw TrainingError.invalidDataset(path: data, reason: "no usable images") }
        if let outOfDistribution, outside.isEmpty {
            throw TrainingError.invalidDataset(path: outOfDistribution, reason: "no usable images (all \(outsidePaths.count) failed)")
        }
        let report = ClassificationReport(probabilities: probabilities, truth: truth, paths: paths, labels: predictor.labels)
        let oodReport = outOfDistribution.map {
            OutOfDistributionReport(detector: predictor.head.outOfDistribution!, inside: inside, outside: outside, directory: $0)
        }
        return Outcome(report: report, outOfDistribution: oodReport,
                       imageScores: predictor.head.outOfDistribution == nil ? [] : imageScores)
    }
}

/// The version written into head files.
public enum HeadTuneVersion {
    public static let current = "0.4.0"
}
