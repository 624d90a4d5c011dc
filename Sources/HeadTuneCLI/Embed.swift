import ArgumentParser
import Foundation
import HeadTune

struct Embed: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Write the encoder's pooled feature vector (1280-d for EfficientNet-Lite0) for each image.",
        discussion: """
            jsonl: {"path": "cat.jpg", "embedding": [0.12, ...]} per input, {"path": ..., "error": ...} on failure.
            npy: a float32 array [images, features] written to --output; stdout then gets one JSON line per
            input telling its row ({"path": ..., "row": 0}) or its error, so rows map back to files.
            """)

    enum Format: String, ExpressibleByArgument, CaseIterable {
        case jsonl, npy
    }


    @Option(help: "Output format: jsonl or npy (npy needs --output).")
    var format: Format = .jsonl

    @OptionGroup var inputs: InputOptions
    @OptionGroup var output: OutputOptions
    @OptionGroup var encoderOptions: EncoderOptions

    func validate() throws {
        if format == .npy && (output.output == nil || output.output == "-") {
            throw ValidationError("--format npy writes binary data: give --output FILE.npy")
        }
    }

    func run() throws {
        let paths = try inputs.collect()
        let encoder = try encoderOptions.loadEncoder()

        let sink: OutputSink
        let index: OutputSink?
        switch format {
        case .jsonl:
            sink = try OutputSink(path: output.output)
            index = nil
        case .npy:
            sink = try OutputSink(path: output.output)
            index = try OutputSink(path: nil)
        }
        var rows: [Float] = []
        var rowCount = 0
        let failures: Int
        do {
            failures = try runEncoder(encoder, options: encoderOptions, inputs: paths, forceProgress: inputs.progress,
                                      outputs: [.features]) { path, result in
                var record: [(String, JSONValue)] = [("path", .string(path))]
                switch result {
                case .success(let output) where format == .npy:
                    rows.append(contentsOf: output.features)
                    record.append(("row", .integer(rowCount)))
                    rowCount += 1
                case .success(let output):
                    record.append(("embedding", .array(output.features.map { .float($0) })))
                case .failure(let error):
                    record.append(("error", .string(errorMessage(error, path: path))))
                }
                (index ?? sink).write(JSONValue.object(record).serialized() + "\n")
            }
            if format == .npy {
                sink.write(NumpyArray.float32(rows, shape: [rowCount, encoder.featureCount]))
            }
        } catch {
            sink.discard()
            throw error
        }
        try finish(sink, failures: failures, total: paths.count)
    }
}
