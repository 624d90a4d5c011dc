import ArgumentParser
import Foundation
import HeadTune
import Imaging
import Training
import Weights

struct Train: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Train a classification head on labelled images and write it to a head file.",
        discussion: """
            DATA is a folder with one sub-folder per class, or a CSV manifest with columns path,label[,split] \
            (paths relative to the CSV). Non-images are ignored; unreadable images are listed and skipped.
            Features are cached (--cache), so a second run on the same images extracts nothing.
            The defaults were chosen by measurement on three development sets (BENCHMARKS.md).

            Examples:
              headtune train demo-data/textures/train --out demo-data/textures.head --report demo-data/textures.html
              headtune train demo-data/textures/train --out demo-data/textures-mlp.head --head mlp --augment flip
              headtune train manifest.csv --out pets.head --validation-split 0 --l2 0.01
            """)

    @Argument(help: "Class-per-folder directory or CSV manifest.", completion: .file())
    var data: String

    @Option(name: .shortAndLong, help: "Head file to write (atomically).", completion: .file())
    var out: String

    @Option(help: "Fraction of each class held out for validation (stratified, seeded); 0 for none.")
    var validationSplit = 0.2

    @Option(help: "A separate validation folder or manifest (instead of --validation-split).", completion: .directory)
    var validationDir: String?

    @Option(help: "Input geometry: center-crop, resize (whole image, squashed) or letterbox (whole image, padded).")
    var policy: CropPolicy = .resize

    @Option(help: "Extra training views, comma-separated: flip, crop.")
    var augment: String?

    @Flag(inversion: .prefixedNo, help: "Use the mean of the features of each image and its mirror image, in training and prediction (--no-test-time-flip: the image alone, half the extraction time).")
    var testTimeFlip = true

    @Option(help: ArgumentHelp("Backbone outputs the head reads: head (the 1280 pooled features) or head+stages (those and the 784 averages of every stage's output).",
                               discussion: "Default: head+stages where the encoder has stage features (EfficientNet), else head (CLIP). Recorded in the head: evaluate, classify and serve extract the same."))
    var features: FeatureSet?

    @Option(help: "Head: linear (logistic regression) or mlp (one hidden layer with dropout).")
    var head: HeadKind = .linear

    @Option(help: "Hidden units of the mlp head.") var hidden = 512
    @Option(help: "Dropout of the mlp head.") var dropout: Float = 0.5
    @Option(help: "lbfgs or adamw (default: lbfgs for linear, adamw for mlp).") var optimizer: OptimizerKind?
    @Option(help: ArgumentHelp("L2 penalty on the weights (L-BFGS).",
                               discussion: "Default: chosen from 1e-4 ... 1 by 5-fold cross-validation on the training images."))
    var l2: Float?
    @Flag(help: "Start a linear head from the class names' text embeddings mapped into the image feature space, and pull it towards them (for 2-5 images per class).")
    var initFromLabels = false
    @Option(help: "Prompt template for --init-from-labels, repeatable; {} is the class name (folder names lose a leading number, _ becomes a space).")
    var labelTemplate: [String] = []
    @Option(help: "Image-text alignment file for --init-from-labels (default: the one in the weights directory).", completion: .file())
    var alignment: String?
    @Option(help: "AdamW learning rate.") var learningRate: Float = TrainingConfiguration().learningRate
    @Option(help: "AdamW decoupled weight decay.") var weightDecay: Float = TrainingConfiguration().weightDecay
    @Option(help: "Maximum epochs (AdamW) or iterations (L-BFGS).") var epochs = TrainingConfiguration().maxEpochs
    @Option(help: "AdamW minibatch size.") var minibatch = TrainingConfiguration().batchSize
    @Option(help: "Label smoothing of the cross-entropy.") var labelSmoothing: Float = TrainingConfiguration().labelSmoothing
    @Option(help: "none or balanced (weights inverse to class frequency).") var classWeights: ClassWeighting = .none
    @Option(help: "Stop after this many epochs without a better validation loss (0: never).") var patience = TrainingConfiguration().patience
    @Option(help: "Seed for the split, initialization, shuffling and dropout: same seed, same head, bit for bit.")
    var seed: UInt64 = 0

    @Option(help: ArgumentHelp("Train the last K blocks of the encoder with the head (the head convolution counts as one; 0: frozen features).",
                               discussion: "The frozen part runs once per image view and is cached at the cut; each epoch runs only the K blocks. A linear probe is fitted first, then blocks and head are fine-tuned together (AdamW, warm-up, cosine decay), keeping the epoch with the lowest validation loss. EfficientNet-Lite0 has 17."))
    var unfreeze = 0
    @Option(help: "Train low-rank adapters of this rank on the unfrozen blocks' 1x1 convolutions instead of their full weights (smaller head files).")
    var loraRank: Int?
    @Option(help: "Random views per training image (random resized crops and flips, seeded), each cached at the cut.")
    var views = TrainingConfiguration().randomViews
    @Option(help: "Fine-tuning epochs with --unfreeze.") var fineTuneEpochs = TrainingConfiguration().fineTuneEpochs
    @Option(help: "Fine-tuning optimizer: adamw or sgd (momentum 0.9).") var fineTuneOptimizer = TrainingConfiguration().fineTuneOptimizer
    @Option(help: "Peak learning rate of the unfrozen blocks (default: 1e-4, or 1e-3 with --lora-rank).") var tailLearningRate: Float?
    @Option(help: "Peak learning rate of the head while fine-tuning.") var fineTuneHeadLearningRate = TrainingConfiguration().fineTuneHeadLearningRate

    @Option(help: ArgumentHelp("Out-of-distribution score behind \"unknown\" and \"ood_score\": knn, class-knn, mahalanobis, relative-mahalanobis, msp, energy or combined.",
                               discussion: "The head stores every score's calibration; `headtune evaluate --ood DIR` compares them."))
    var oodScore = OutOfDistributionDetector.defaultMethod
    @Option(help: "Share of in-distribution (validation) images the out-of-distribution threshold flags.")
    var oodFalseAlarm = 0.05
    @Option(help: "Scores --ood-score combined joins, comma-separated.")
    var oodCombine = OutOfDistributionDetector.defaultCombine.map(\.rawValue).joined(separator: ",")
    @Option(help: "How --ood-score combined joins its scores (each put on the scale of its validation scores): max or mean.")
    var oodCombination = OutOfDistributionDetector.defaultCombination

    @Option(help: "Also write the exact training and validation features as .npy files into this directory (for comparisons, e.g. scripts/compare_sklearn.py).",
            completion: .directory)
    var dumpFeatures: String?

    @OptionGroup var report: ReportOptions
    @OptionGroup var cacheOptions: CacheOptions
    @OptionGroup var encoderOptions: EncoderOptions

    func validate() throws {
        guard validationSplit >= 0 && validationSplit < 1 else { throw ValidationError("--validation-split must be in [0, 1)") }
        guard !initFromLabels || head == .linear else { throw ValidationError("--init-from-labels needs --head linear") }
        guard !initFromLabels || unfreeze == 0 else { throw ValidationError("--init-from-labels works on frozen features: drop --unfreeze") }
        guard labelTemplate.allSatisfy({ $0.contains("{}") }) else { throw ValidationError("each --label-template must contain {}") }
        _ = try augmentations()
        _ = try outOfDistributionOptions()
        do { try trainingConfiguration.validate() } catch { throw ValidationError(error.localizedDescription) }
    }

    func augmentations() throws -> [Augmentation] {
        guard let augment, !augment.isEmpty else { return [] }
        return try augment.split(separator: ",").map {
            guard let a = Augmentation(rawValue: $0.trimmingCharacters(in: .whitespaces)) else {
                throw ValidationError("--augment takes flip and/or crop, comma-separated (got \"\($0)\")")
            }
            return a
        }
    }

    func outOfDistributionOptions() throws -> OutOfDistributionDetector.Options {
        guard oodFalseAlarm > 0 && oodFalseAlarm < 1 else { throw ValidationError("--ood-false-alarm must be in (0, 1), e.g. 0.05") }
        guard OutOfDistributionDetector.combinations.contains(oodCombination) else {
            throw ValidationError("--ood-combination takes \(OutOfDistributionDetector.combinations.joined(separator: " or ")) (got \"\(oodCombination)\")")
        }
        var options = OutOfDistributionDetector.Options()
        options.method = oodScore
        options.falseAlarmRate = oodFalseAlarm
        options.combination = oodCombination
        options.seed = seed
        options.combine = try oodCombine.split(separator: ",").map {
            let name = $0.trimmingCharacters(in: .whitespaces)
            guard let score = OutOfDistributionScore(rawValue: name), OutOfDistributionScore.components.contains(score) else {
                throw ValidationError("--ood-combine takes \(OutOfDistributionScore.components.map(\.rawValue).joined(separator: ", ")) (got \"\(name)\")")
            }
            return score
        }
        guard !options.combine.isEmpty else { throw ValidationError("--ood-combine needs at least one score") }
        return options
    }

    var trainingConfiguration: TrainingConfiguration {
        var c = TrainingConfiguration()
        c.head = head
        c.hiddenUnits = hidden
        c.dropout = dropout
        c.optimizer = optimizer
        c.l2 = l2
        c.learningRate = learningRate
        c.weightDecay = weightDecay
        c.maxEpochs = epochs
        c.batchSize = minibatch
        c.labelSmoothing = labelSmoothing
        c.classWeights = classWeights
        c.patience = patience
        c.seed = seed
        c.initFromLabels = initFromLabels
        c.unfreeze = unfreeze
        c.loraRank = loraRank
        c.randomViews = views
        c.fineTuneEpochs = fineTuneEpochs
        c.fineTuneOptimizer = fineTuneOptimizer
        c.tailLearningRate = tailLearningRate
        c.fineTuneHeadLearningRate = fineTuneHeadLearningRate
        return c
    }

    func run() throws {
        let started = Date()
        // Output paths first: a typo in a directory should not cost a training run.
        try AtomicFile.checkWritable(out)
        try report.checkWritable()
        let encoder = try encoderOptions.loadEncoder()
        let extractor = FeatureExtractor(encoder: encoder, cache: try cacheOptions.open(), batchSize: encoderOptions.batchSize,
                                         threads: encoderOptions.threads)
        var request = HeadTrainingRequest(data: data)
        request.validationData = validationDir
        request.validationSplit = validationSplit
        request.policy = policy
        request.augment = try augmentations()
        request.testTimeFlip = testTimeFlip
        request.featureSet = features ?? (encoder.featureCount(for: .headAndStages) != nil ? .headAndStages : .head)
        request.configuration = trainingConfiguration
        request.outOfDistribution = try outOfDistributionOptions()
        if initFromLabels {
            let space = try TextSpace.load(imageEncoder: encoder, text: try encoderOptions.loadTextEncoder(for: encoder),
                                           alignmentPath: alignment, weightsDirectory: encoderOptions.weightsDirectory) {
                printError("headtune: \($0)")
            }
            guard let bridge = space.bridge as? ConSEBridge else { throw ValidationError("--init-from-labels needs the class-name bridge") }
            let templates = labelTemplate.isEmpty ? [ImageTextAlignment.defaultClassTemplate] : labelTemplate
            request.labelPrior = { labels in
                let names = labels.map(LabelPrior.className(fromLabel:))
                printError("headtune: class directions from the names, e.g. \"\(templates[0].replacingOccurrences(of: "{}", with: names[0]))\"")
                return LabelPrior.classDirections(labelEmbeddings: try space.labelEmbeddings(names, templates: templates),
                                                  alignment: bridge.alignment)
            }
        }

        var events = HeadTrainingEvents()
        events.skipped = { path, error in printError("headtune: skipped \(errorMessage(error, path: path))") }
        events.extraction = extractionProgress(force: report.progress)
        var epochs: [EpochRecord] = []
        events.epoch = { record in
            epochs.append(record)
            // A compact log: the first epochs, then every 10th (every fine-tuning epoch: there are few).
            guard unfreeze > 0 || record.epoch <= 3 || record.epoch % 10 == 0 else { return }
            var line = String(format: "epoch %4d  train loss %.4f acc %.4f", record.epoch, record.trainLoss, record.trainAccuracy)
            if let loss = record.validationLoss, let accuracy = record.validationAccuracy {
                line += String(format: "   val loss %.4f acc %.4f", loss, accuracy)
            }
            printError(line)
        }
        let outcome = try HeadTraining.run(request, encoder: encoder, extractor: extractor, events: events)
        try outcome.headFile.write(to: out)
        if let directory = dumpFeatures { try dump(outcome, to: directory) }

        let s = outcome.statistics
        let meta = outcome.headFile.metadata
        let perClass = zip(s.trainCounts, s.validationCounts).map { $0 + $1 }
        if meta.labels.count <= 10 {
            printError("headtune: classes: " + zip(meta.labels, zip(s.trainCounts, s.validationCounts))
                .map { "\($0) \($1.0)+\($1.1)" }.joined(separator: ", ") + " (train+validation images)")
        } else {
            printError("headtune: \(meta.labels.count) classes, \(perClass.min()!)-\(perClass.max()!) images each; "
                       + "\(s.trainCounts.reduce(0, +)) train + \(s.validationCounts.reduce(0, +)) validation images")
        }
        if let selection = s.l2Selection {
            printError("headtune: l2 \(selection.chosen) by \(selection.folds)-fold cross-validation (held-out accuracy "
                       + selection.scores.map { "\($0.l2): " + String(format: "%.4f", $0.accuracy) }.joined(separator: ", ") + ")")
        }
        let method = unfreeze > 0
            ? "probe + fine-tuning of \(unfreeze) block\(unfreeze == 1 ? "" : "s")" + (loraRank.map { " (LoRA rank \($0))" } ?? "")
            : meta.training.resolvedOptimizer.rawValue
        printError(String(format: "headtune: %@ %.1f s (%d from cache, %d extracted%@), training %.1f s (%@, %d epochs, best %d%@), total %.1f s",
                          unfreeze > 0 ? "cut activations" : "features", s.extractionSeconds, s.cacheHits, s.extracted,
                          s.damagedCacheEntries > 0 ? ", \(s.damagedCacheEntries) damaged cache entries recomputed" : "",
                          s.trainingSeconds, method, s.epochs, s.bestEpoch,
                          s.stoppedEarly ? ", stopped early" : "", Date().timeIntervalSince(started)))
        if unfreeze > 0 {
            printError(String(format: "headtune: fine-tuning %.1f s for %d rows x %d epochs (%.0f rows/s)", s.fineTuningSeconds,
                              meta.dataset.trainRows, s.epochs, Double(meta.dataset.trainRows * s.epochs) / max(s.fineTuningSeconds, 1e-9)))
        }
        if s.skippedFiles > 0 { printError("headtune: \(s.skippedFiles) file(s) skipped (listed above)") }
        if let ood = outcome.headFile.outOfDistribution?.settings {
            let parts = ood.score == .combined
                ? " (\(ood.combination ?? "max") of \((ood.combine ?? []).map(\.rawValue).joined(separator: ", ")))" : ""
            printError(String(format: "headtune: out-of-distribution flag: %@%@ above %.4f, the %gth percentile of %d %@ images",
                              ood.method, parts, ood.threshold, ood.percentile, ood.calibrationImages, ood.calibration))
        }
        printError("headtune: wrote \(out)")
        if let validation = outcome.report {
            let card = try ModelCard(outcome: outcome, epochs: epochs, headPath: out)
            try report.emit(validation, title: "validation (\(data))", maxPixels: encoderOptions.maxPixels, card: card)
        } else {
            printError("headtune: no validation set (--validation-split 0): no report")
        }
    }

    /// train_features.npy [rows, d], train_labels.npy, train_images.npy (image index per row),
    /// validation_features.npy, validation_labels.npy (all float32) and labels.json.
    private func dump(_ outcome: HeadTrainingOutcome, to directory: String) throws {
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let d = outcome.data
        var files: [(String, [Float], [Int])] = [
            ("train_features", d.train.values, [d.train.rows, d.train.columns]),
            ("train_labels", d.trainLabels.map(Float.init), [d.trainLabels.count]),
            ("train_images", d.trainImages.map(Float.init), [d.trainImages.count]),
            ("validation_features", d.validation.values, [d.validation.rows, d.validation.columns]),
            ("validation_labels", d.validationLabels.map(Float.init), [d.validationLabels.count]),
        ]
        if let cut = d.cut, cut.probe.architecture.kind == .linear {
            // With --unfreeze: the cut activations (NHWC per row, then the frozen stages' pooled values) and
            // the linear probe fine-tuning started from (weight then bias, `HeadArchitecture.tensors`), for
            // scripts/bench_finetune_peers.py, which runs linear heads only.
            let p = cut.probe.parameters, a = cut.probe.architecture
            files += [
                ("cut_train", cut.train.values, [cut.train.rows, cut.train.columns]),
                ("cut_train_labels", cut.trainLabels.map(Float.init), [cut.trainLabels.count]),
                ("cut_validation", cut.validation.values, [cut.validation.rows, cut.validation.columns]),
                ("probe_weight", Array(p[0..<(a.classes * a.inputs)]), [a.classes, a.inputs]),
                ("probe_bias", Array(p[(a.classes * a.inputs)...]), [a.classes]),
                ("probe_mean", cut.standardization.mean, [cut.standardization.mean.count]),
                ("probe_inverse_std", cut.standardization.inverseStd, [cut.standardization.inverseStd.count]),
                ("probe_l2", [cut.l2], [1]),
            ]
        }
        for (name, values, shape) in files {
            let sink = try OutputSink(path: "\(directory)/\(name).npy")
            sink.write(NumpyArray.float32(values, shape: shape))
            try sink.commit()
        }
        let labels = try JSONEncoder().encode(outcome.headFile.metadata.labels)
        let sink = try OutputSink(path: "\(directory)/labels.json")
        sink.write(labels)
        try sink.commit()
    }
}
