import ArgumentParser
import Foundation
import HeadTune

struct Classify: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Classify images and print the top-k labels with probabilities.",
        discussion: """
            jsonl: one record per input, in input order:
              {"path": "cat.jpg", "predictions": [{"label": "tabby", "index": 281, "score": 0.41}, ...]}
            and for an input that failed: {"path": "x.txt", "error": "<reason>"}.
            csv: path,rank,index,label,score,error. table: human-readable.
            The exit status is 1 if any input failed; the others are still classified.
            """)

    enum Format: String, ExpressibleByArgument, CaseIterable {
        case table, jsonl, csv
    }

    @Flag(help: "Use the pretrained ImageNet-1k classifier (1000 classes).")
    var imagenet = false

    @Option(help: "Use a head trained with `headtune train` (its classes, geometry and test-time flip).", completion: .file())
    var head: String?

    @Option(help: "How many labels to report per image.")
    var topK: Int = 5

    @Option(help: "Output format: table, jsonl or csv (default: table on a terminal, jsonl otherwise).")
    var format: Format?

    @OptionGroup var inputs: InputOptions
    @OptionGroup var output: OutputOptions
    @OptionGroup var backbone: BackboneOptions

    func validate() throws {
        guard imagenet != (head != nil) else {
            throw ValidationError("choose one classifier: --imagenet or --head FILE (trained with `headtune train`)")
        }
        guard topK >= 1 else { throw ValidationError("--top-k must be at least 1") }
    }

    func run() throws {
        let paths = try inputs.collect()
        let model = try backbone.loadBackbone()
        let predictor = try head.map { try HeadPredictor.load(path: $0, backbone: model) }
        let imagenetLabels = predictor == nil ? try ImageNetLabels.load() : nil
        let label: (Int) -> String = { predictor?.labels[$0] ?? imagenetLabels!.label($0) }
        let sink = try OutputSink(path: output.output)
        let format = self.format ?? (sink.isTerminal ? .table : .jsonl)
        let k = min(topK, predictor?.labels.count ?? imagenetLabels!.names.count)
        if format == .csv { sink.write("path,rank,index,label,score,error\n") }

        func emit(_ path: String, _ probabilities: Result<[Float], Error>) {
            var record = ClassificationRecord(path: path)
            switch probabilities {
            case .success(let probabilities):
                record.predictions = probabilities.withUnsafeBufferPointer { largestEntries($0, k: k) }.map {
                    Prediction(label: label($0.index), index: $0.index, score: $0.score)
                }
            case .failure(let error):
                record.error = errorMessage(error, path: path)
            }
            sink.write(render(record, format: format))
        }

        var failures = 0
        do {
            if let predictor {
                // A head needs every view of an image before it can answer, so records follow extraction.
                let extractor = FeatureExtractor(backbone: model, cache: nil, batchSize: backbone.batchSize, threads: backbone.threads)
                let progress = extractionProgress(force: inputs.progress)
                let results = try predictor.predict(paths: paths, extractor: extractor) { progress("features", $0, $1) }
                for (path, result) in zip(paths, results) {
                    if case .failure(let error) = result {
                        failures += 1
                        printError("headtune: \(errorMessage(error, path: path))")
                    }
                    emit(path, result)
                }
            } else {
                failures = try runBackbone(backbone: model, options: backbone, inputs: paths, forceProgress: inputs.progress,
                                           computeLogits: true) { path, result in
                    emit(path, result.map { probabilities(fromLogits: $0.logits ?? []) })
                }
            }
        } catch {
            sink.discard()
            throw error
        }
        try finish(sink, failures: failures, total: paths.count)
    }

    private func render(_ record: ClassificationRecord, format: Format) -> String {
        switch format {
        case .jsonl:
            return record.json.serialized() + "\n"
        case .csv:
            if let error = record.error { return "\(csvField(record.path)),,,,,\(csvField(error))\n" }
            return (record.predictions ?? []).enumerated().map { rank, p in
                "\(csvField(record.path)),\(rank + 1),\(p.index),\(csvField(p.label)),\(String(format: "%.6f", p.score)),\n"
            }.joined()
        case .table:
            if let error = record.error { return "\(record.path)\n    error: \(error)\n" }
            let rows = (record.predictions ?? []).enumerated().map { rank, p in
                String(format: "    %d. %6.2f%%  %@ (%d)", rank + 1, p.score * 100, p.label, p.index)
            }
            return ([record.path] + rows).joined(separator: "\n") + "\n"
        }
    }
}

/// RFC 4180 quoting where needed.
func csvField(_ value: String) -> String {
    guard value.contains(where: { $0 == "," || $0 == "\"" || $0 == "\n" || $0 == "\r" }) else { return value }
    return "\"" + value.replacingOccurrences(of: "\"", with: "\"\"") + "\""
}
