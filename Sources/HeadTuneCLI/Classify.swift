import ArgumentParser
import Foundation
import HeadTune
import Training

struct Classify: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Classify images and print the top-k labels with probabilities.",
        discussion: """
            jsonl: one record per input, in input order:
              {"path": "cat.jpg", "predictions": [{"label": "tabby", "index": 281, "score": 0.41}, ...]}
            then "unknown" and "ood_score" (heads with an out-of-distribution detector), "embedding" and \
            "logits" (when asked for); for an input that failed: {"path": "x.txt", "error": "<reason>"}.
            csv: path,rank,index,label,score[,unknown,ood_score],error. table: human-readable.
            The exit status is 1 if any input failed; the others are still classified (--fail-fast stops). \
            With --output FILE, records go to FILE.partial as the run goes and FILE appears (renamed) \
            only when it completes; --resume carries on from FILE.partial (or adds to FILE).

            Examples:
              headtune classify --imagenet --top-k 3 samples/
              headtune classify --imagenet -o predictions.csv samples/
              ls samples/*.jpg | headtune classify --imagenet --format jsonl -
              headtune classify --head demo-data/textures.head --top-k 2 demo-data/textures/test/
            """)

    enum Format: String, ExpressibleByArgument, CaseIterable {
        case table, jsonl, csv
    }

    @Flag(help: "Use the pretrained ImageNet-1k classifier (1000 classes).")
    var imagenet = false

    @Option(help: "Use a head trained with `headtune train` (its classes, geometry and test-time flip).", completion: .file())
    var head: String?

    // Unconditional: `--top-k -1` is a value to reject with a reason, not a missing one.
    @Option(parsing: .unconditional, help: "How many labels to report per image (capped at the number of classes).")
    var topK: Int = 5

    @Option(help: "Output format: table, jsonl or csv (default: from the --output file's extension, else table on a terminal, jsonl otherwise).")
    var format: Format?

    @Flag(help: "Add the encoder's pooled features (1280-d for EfficientNet-Lite0) to each record (jsonl).")
    var embeddings = false

    @Flag(help: "Add the classifier's raw outputs before softmax/sigmoid to each record (jsonl).")
    var logits = false

    @Flag(help: "Add every out-of-distribution score of the head's detector (\"ood_scores\": knn, class-knn, mahalanobis, relative-mahalanobis, msp, energy, combined) to each record (jsonl).")
    var oodScores = false

    @Flag(help: "Stop at the first input that fails (default: report it and go on).")
    var failFast = false

    @Flag(help: "Skip inputs that already have a record in --output FILE (or FILE.partial from an interrupted run).")
    var resume = false

    @Option(help: ArgumentHelp("Classify only shard I of N (0-based) of the inputs, chosen by a hash of each path.",
                               valueName: "I/N"))
    var shard: String?

    @Option(help: "Threads decoding images while the network runs (default: as many as --threads).")
    var decodeThreads: Int?

    @OptionGroup var inputs: InputOptions
    @OptionGroup var output: OutputOptions
    @OptionGroup var encoderOptions: EncoderOptions

    func validate() throws {
        guard imagenet != (head != nil) else {
            throw ValidationError("choose one classifier: --imagenet or --head FILE (trained with `headtune train`)")
        }
        guard topK >= 1 else { throw ValidationError("--top-k must be at least 1 (got \(topK))") }
        let format = self.format ?? output.formatFromExtension(Format.self)
        if (embeddings || logits || oodScores), let format, format != .jsonl {
            throw ValidationError("--embeddings, --logits and --ood-scores need --format jsonl")
        }
        if resume {
            guard let path = output.output, path != "-" else { throw ValidationError("--resume needs --output FILE") }
            guard format == .jsonl || format == .csv else { throw ValidationError("--resume needs --format jsonl or csv") }
        }
        if let shard, InputShard(shard) == nil {
            throw ValidationError("--shard wants I/N with 0 <= I < N, e.g. 0/8 (got \(shard))")
        }
        if let decodeThreads, decodeThreads < 1 { throw ValidationError("--decode-threads must be at least 1") }
    }

    func run() throws {
        var paths = try inputs.collect()
        if let shard = shard.flatMap(InputShard.init) { paths = shard.select(paths) }
        let encoder = try encoderOptions.loadEncoder()
        let classifier: BatchClassifier.Classifier = try head.map { .head(try HeadPredictor.load(path: $0, encoder: encoder)) }
            ?? .imagenet(try ImageNetLabels.load())
        var job = BatchClassifier(encoder: encoder, classifier: classifier, topK: topK)
        job.includeEmbedding = embeddings
        job.includeLogits = logits
        job.includeOutOfDistributionScores = oodScores
        job.batchSize = encoderOptions.batchSize
        job.threads = encoderOptions.threads
        job.decodeThreads = decodeThreads

        var carried = ResumeLog()
        let sink: OutputSink
        if let path = output.output, path != "-" {
            if resume {
                carried = try ResumeLog.prepare(outputPath: path, format: (format ?? output.formatFromExtension(Format.self)) == .csv ? .csv : .jsonl)
                paths = carried.remaining(paths)
                printError("headtune: resuming \(path): \(carried.records) record(s) kept, \(paths.count) input(s) to go"
                           + (carried.dropped > 0 ? ", \(carried.dropped) error or cut-off record(s) to redo" : ""))
            }
            sink = try OutputSink(resumablePath: path, append: resume)
        } else {
            sink = try OutputSink(path: nil)
        }
        let format = self.format ?? output.formatFromExtension(Format.self) ?? (sink.isTerminal ? .table : .jsonl)
        if (embeddings || logits || oodScores) && format != .jsonl {
            throw ValidationError("--embeddings, --logits and --ood-scores need --format jsonl")
        }
        let detector = if case .head(let p) = classifier { p.head.outOfDistribution } else { OutOfDistributionDetector?.none }
        let hasDetector = detector != nil
        if format == .csv && !carried.hasHeader {
            sink.write(ClassificationRecord.csvHeader(outOfDistribution: hasDetector))
        }

        let progress = ProgressBar(total: paths.count, force: inputs.progress)
        var failures = 0
        do {
            try job.run(paths: paths) { record in
                progress.clearForStdout()
                sink.write(render(record, format: format, detector: detector))
                if let error = record.error {
                    failures += 1
                    progress.clear()
                    printError("headtune: \(error)")
                    if failFast { throw FailFast() }
                }
                progress.advance()
            }
        } catch is FailFast {
            progress.finish()
            sink.discard()
            printError("headtune: stopped at the first failure (--fail-fast)"
                       + (output.output.map { "; finished records are in \(OutputSink.partialPath(for: $0)), --resume carries on" } ?? ""))
            throw ExitCode(1)
        } catch {
            sink.discard()
            throw error
        }
        progress.finish()
        try finish(sink, failures: failures, total: paths.count)
    }

    private struct FailFast: Error {}

    private func render(_ record: ClassificationRecord, format: Format, detector: OutOfDistributionDetector?) -> String {
        switch format {
        case .jsonl:
            return record.json.serialized() + "\n"
        case .csv:
            return record.csvRows(outOfDistribution: detector != nil)
        case .table:
            if let error = record.error { return "\(record.path)\n    error: \(error)\n" }
            var lines = [record.path]
            if let score = record.oodScore, let detector {
                lines.append(String(format: "    %@ (out-of-distribution score %.3f, threshold %.3f, %@)",
                                    record.unknown == true ? "UNKNOWN: looks like none of the training classes" : "in distribution",
                                    score, detector.settings.threshold, detector.settings.method))
            }
            lines += (record.predictions ?? []).enumerated().map { rank, p in
                String(format: "    %d. %6.2f%%  %@ (%d)", rank + 1, p.score * 100, p.label, p.index)
            }
            return lines.joined(separator: "\n") + "\n"
        }
    }
}
