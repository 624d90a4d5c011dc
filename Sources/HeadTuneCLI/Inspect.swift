import ArgumentParser
import Foundation
import HeadTune
import Training
import Weights

struct Inspect: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show what a head file holds: labels, encoder, feature set, preprocessing, metrics, training settings.",
        discussion: """
            Reads only the head file (no weights, no images). --format json prints one object with the keys \
            file, bytes, sha256, labels, encoder, feature_set, preprocessing, architecture, training, best_epoch, \
            dataset, metrics (validation; null without a validation split), unknown_flag (the out-of-distribution \
            detector and its threshold; null without one), tail, multi_label, created_at, headtune_version, format_version.

            Examples:
              headtune inspect demo-data/textures.head
              headtune inspect demo-data/textures.head --format json | jq .labels
            """)

    enum Format: String, ExpressibleByArgument, CaseIterable { case text, json }

    @Argument(help: "Head file written by `headtune train`.", completion: .file())
    var head: String

    @Option(help: "text or json.")
    var format: Format = .text

    func run() throws {
        let file = try HeadFile.read(path: head)
        let summary = HeadSummary(path: head, file: file, bytes: try fileSize(head), sha256: try SHA256.hex(fileAt: head))
        switch format {
        case .json:
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
            print(String(decoding: try encoder.encode(summary), as: UTF8.self))
        case .text:
            print(summary.text, terminator: "")
        }
    }

    private func fileSize(_ path: String) throws -> Int {
        (try FileManager.default.attributesOfItem(atPath: path)[.size] as? NSNumber)?.intValue ?? 0
    }
}

/// A head file's description, the same facts for the text and the JSON form.
struct HeadSummary: Encodable {
    struct Metrics: Encodable {
        var images: Int
        var accuracy: Double
        var balancedAccuracy: Double
        var macroF1: Double
        var logLoss: Double
        var ece: Double

        enum CodingKeys: String, CodingKey {
            case images, accuracy, ece
            case balancedAccuracy = "balanced_accuracy", macroF1 = "macro_f1", logLoss = "log_loss"
        }
    }

    var file: String
    var bytes: Int
    var sha256: String
    var labels: [String]
    var encoder: HeadFile.BackboneInfo
    var featureSet: FeatureSet
    var preprocessing: HeadFile.Preprocessing
    var architecture: HeadArchitecture
    var training: TrainingConfiguration
    var bestEpoch: Int
    var dataset: HeadFile.DatasetSummary
    // Written as null when absent (not left out), so a script reading `metrics` finds the key.
    var metrics: Nullable<Metrics>
    var unknownFlag: Nullable<OutOfDistributionDetector.Settings>
    var tail: Nullable<HeadFile.TunedTail.Settings>
    var multiLabel: Bool
    var createdAt: String
    var headtuneVersion: String
    var formatVersion: Int

    enum CodingKeys: String, CodingKey {
        case file, bytes, sha256, labels, encoder, preprocessing, architecture, training, dataset, metrics, tail
        case featureSet = "feature_set", bestEpoch = "best_epoch", unknownFlag = "unknown_flag", multiLabel = "multi_label"
        case createdAt = "created_at", headtuneVersion = "headtune_version", formatVersion = "format_version"
    }

    init(path: String, file: HeadFile, bytes: Int, sha256: String) {
        let m = file.metadata
        self.file = path
        self.bytes = bytes
        self.sha256 = sha256
        labels = m.labels
        encoder = m.backbone
        featureSet = m.backbone.featureSet
        preprocessing = m.preprocessing
        architecture = m.architecture
        training = m.training
        bestEpoch = m.bestEpoch
        dataset = m.dataset
        metrics = Nullable(m.validation.map {
            Metrics(images: $0.count, accuracy: $0.accuracy, balancedAccuracy: $0.balancedAccuracy, macroF1: $0.macroF1,
                    logLoss: $0.logLoss, ece: $0.ece)
        })
        unknownFlag = Nullable(m.outOfDistribution)
        tail = Nullable(m.tail)
        multiLabel = m.multiLabel ?? false
        createdAt = m.createdAt
        headtuneVersion = m.headtuneVersion
        formatVersion = m.formatVersion
    }

    var text: String {
        let shownLabels = labels.count <= 20 ? labels.joined(separator: ", ") : labels.prefix(20).joined(separator: ", ") + ", ..."
        let perClass = zip(labels, dataset.imagesPerClass).prefix(20).map { "\($0) \($1)" }.joined(separator: ", ")
            + (labels.count > 20 ? ", ..." : "")
        let head = architecture.kind == .mlp
            ? "mlp (\(architecture.inputs) -> \(architecture.hidden) -> \(architecture.classes), dropout \(training.dropout))"
            : "linear (\(architecture.inputs) -> \(architecture.classes))"
        let optimizer = training.resolvedOptimizer.rawValue
        let regularization = training.resolvedOptimizer == .lbfgs
            ? (training.l2.map { "l2 \($0)" } ?? "l2 chosen by \(training.crossValidationFolds)-fold cross-validation from \(training.l2Grid.map { "\($0)" }.joined(separator: ", "))")
            : "learning rate \(training.learningRate), weight decay \(training.weightDecay), \(training.maxEpochs) epochs max, patience \(training.patience)"
        var lines = [
            "file:           \(file) (\(bytes) bytes, sha256 \(sha256))",
            "classes:        \(labels.count): \(shownLabels)\(multiLabel ? " (multi-label)" : "")",
            "encoder:        \(encoder.id) (weights sha256 \(encoder.weightsSHA256.prefix(12)), trained on \(encoder.precision ?? "fp32") features)",
            "features:       \(featureSet.rawValue) (\(encoder.featureCount) values per image)",
            "preprocessing:  \(preprocessing.policy.rawValue) to \(preprocessing.inputSize)x\(preprocessing.inputSize), test-time flip "
                + (preprocessing.testTimeFlip ? "on" : "off") + ", augment: " + (preprocessing.augment.isEmpty ? "none" : preprocessing.augment.joined(separator: ", ")),
            "head:           \(head)",
            "training:       \(optimizer), \(regularization), label smoothing \(training.labelSmoothing), class weights \(training.classWeights.rawValue), seed \(training.seed), best epoch \(bestEpoch)",
        ]
        if let tail = tail.value {
            lines.append("tuned tail:     last \(tail.unfreeze) block(s) of the encoder" + (tail.loraRank.map { ", LoRA rank \($0)" } ?? ""))
        }
        lines.append("data:           \(dataset.source): \(dataset.trainImages) train + \(dataset.validationImages) validation images "
                     + "(\(perClass)), \(dataset.skippedFiles) skipped")
        if let metrics = metrics.value {
            lines.append(String(format: "validation:     %d images: accuracy %.4f, balanced accuracy %.4f, macro-F1 %.4f, log loss %.4f, ECE %.4f",
                                metrics.images, metrics.accuracy, metrics.balancedAccuracy, metrics.macroF1, metrics.logLoss, metrics.ece))
        } else {
            lines.append("validation:     none (trained with --validation-split 0)")
        }
        if let flag = unknownFlag.value {
            lines.append(String(format: "unknown flag:   %@ (k = %d), threshold %.4f = the %.0fth percentile of %d %@ images' scores; bank of %d training images",
                                flag.method, flag.k, flag.threshold, flag.percentile, flag.calibrationImages, flag.calibration, flag.bankImages))
        } else {
            lines.append("unknown flag:   none (no out-of-distribution detector in this head)")
        }
        lines.append("created:        \(createdAt) by headtune \(headtuneVersion) (head format v\(formatVersion))")
        return lines.joined(separator: "\n") + "\n"
    }
}

/// An optional that encodes as null when empty (synthesized `Encodable` leaves nil members out).
struct Nullable<Wrapped: Encodable>: Encodable {
    var value: Wrapped?

    init(_ value: Wrapped?) { self.value = value }

    func encode(to encoder: Encoder) throws {
        var container = encoder.singleValueContainer()
        if let value { try container.encode(value) } else { try container.encodeNil() }
    }
}
