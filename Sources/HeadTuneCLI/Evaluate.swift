import ArgumentParser
import Foundation
import HeadTune
import Training
import Weights

struct Evaluate: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Measure a trained head on labelled images (a folder per class or a CSV manifest).",
        discussion: """
            Prints accuracy, balanced accuracy, macro-F1, per-class precision/recall/F1/support, the confusion \
            matrix, log loss, expected calibration error and the most confidently misclassified files. \
            A class with no image here shows n/a for what is undefined without one (recall, F1).
            With --ood DIR (images known to be out of scope), also how the "unknown" flag separates the \
            evaluation images from those: per out-of-distribution score, AUROC, the false-alarm rate on the \
            evaluation images and the catch rate on DIR at the head's thresholds (json: key out_of_distribution).

            Examples:
              headtune evaluate --head demo-data/textures.head demo-data/textures/test
              headtune evaluate --head demo-data/textures.head demo-data/textures/test --format json --report test.html
              headtune evaluate --head demo-data/textures.head more-photos/ --ignore-unknown-labels
              headtune evaluate --head demo-data/textures.head demo-data/textures/test --ood samples/
            """)

    @Option(help: "Head file written by `headtune train`.", completion: .file())
    var head: String

    @Argument(help: "Class-per-folder directory or CSV manifest; labels must be among the head's classes.", completion: .file())
    var data: String

    @Flag(help: "Leave out images whose class the head does not have (default: stop and name those classes).")
    var ignoreUnknownLabels = false

    @Option(name: .customLong("ood"), help: "Folder of images known to be out of scope, to measure the out-of-distribution flag on.",
            completion: .directory)
    var outOfDistribution: String?

    @Option(help: "Write every image's out-of-distribution scores here as JSON lines (path, out_of_scope, ood_scores), atomically.",
            completion: .file())
    var oodScores: String?

    @OptionGroup var report: ReportOptions
    @OptionGroup var cacheOptions: CacheOptions
    @OptionGroup var encoderOptions: EncoderOptions

    func run() throws {
        try report.checkWritable()
        if let oodScores { try AtomicFile.checkWritable(oodScores) }
        let encoder = try encoderOptions.loadEncoder()
        let predictor = try HeadPredictor.load(path: head, encoder: encoder)
        if oodScores != nil, predictor.head.outOfDistribution == nil {
            throw ValidationError("--ood-scores: \(head) has no out-of-distribution detector (written before format 2)")
        }
        let extractor = FeatureExtractor(encoder: encoder, cache: try cacheOptions.open(), batchSize: encoderOptions.batchSize,
                                         threads: encoderOptions.threads)
        var skipped = 0
        let progress = extractionProgress(force: report.progress)
        let outcome = try HeadEvaluation.evaluate(predictor: predictor, data: data, outOfDistribution: outOfDistribution,
                                                  extractor: extractor, ignoreUnknownLabels: ignoreUnknownLabels,
                                                  ignored: { counts in
                                                      printError("headtune: left out (--ignore-unknown-labels) "
                                                                 + counts.keys.sorted().map { "\(counts[$0]!) image(s) of \"\($0)\"" }
                                                                 .joined(separator: ", ") + ": not among the head's classes")
                                                  },
                                            skipped: { path, error in
                                                skipped += 1
                                                printError("headtune: skipped \(errorMessage(error, path: path))")
                                            },
                                            progress: { progress("features", $0, $1) })
        if let oodScores {
            let sink = try OutputSink(path: oodScores)
            for image in outcome.imageScores { sink.write(image.json.serialized() + "\n") }
            try sink.commit()
        }
        if skipped > 0 { printError("headtune: \(skipped) file(s) skipped (listed above)") }
        try report.emit(outcome.report, outOfDistribution: outcome.outOfDistribution,
                        title: "\((head as NSString).lastPathComponent) on \(data)", maxPixels: encoderOptions.maxPixels)
    }
}
