import ArgumentParser
import Foundation
import HeadTune

struct Embed: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Write each image's (or text's) embedding: the encoder's pooled features, or a joint model's embedding.",
        discussion: """
            Images: EfficientNet-Lite0's 1280 pooled features; with a CLIP --model, the projected image \
            embedding, L2-normalized. Texts (--text, --texts-file): the text encoder's unit-length embedding \
            (all-MiniLM-L6-v2, or the CLIP --model's own text tower, in the same space as its images).
            jsonl: {"path": "cat.jpg", "embedding": [0.12, ...]} per input, {"path": ..., "error": ...} on failure; \
            {"text": "a dog", "embedding": [...]} per text.
            npy: a float32 array [images, features] written to --output; stdout then gets one JSON line per \
            input telling its row ({"path": ..., "row": 0}) or its error, so rows map back to files.

            Examples:
              headtune embed samples/ -o embeddings.jsonl
              headtune embed samples/ -o embeddings.npy > rows.jsonl
              headtune embed --text "a photo of a cat" --text "a rocket"
            """)

    enum Format: String, ExpressibleByArgument, CaseIterable {
        case jsonl, npy
    }


    @Option(name: .customLong("format"), help: "Output format: jsonl or npy (npy needs --output; default: from the --output file's extension, else jsonl).")
    var formatOption: Format?

    var format: Format { formatOption ?? output.formatFromExtension(Format.self) ?? .jsonl }

    @Option(help: "A text to embed instead of images, repeatable.") var text: [String] = []
    @Option(help: "File with one text per line to embed.", completion: .file()) var textsFile: String?

    @Argument(help: ArgumentHelp("Image files or directories (walked recursively, sorted; non-images skipped). `-` reads paths from stdin, one per line.", valueName: "path"),
              completion: .file())
    var paths: [String] = []

    @Flag(help: "Show a progress bar on stderr even when it is not a terminal.")
    var progress = false
    @OptionGroup var output: OutputOptions
    @OptionGroup var encoderOptions: EncoderOptions

    var embedsTexts: Bool { !text.isEmpty || textsFile != nil }

    func validate() throws {
        guard embedsTexts != !paths.isEmpty else {
            throw ValidationError(embedsTexts ? "give images or texts (--text, --texts-file), not both"
                                              : "give at least one image file or directory, or --text")
        }
        if format == .npy && (output.output == nil || output.output == "-") {
            throw ValidationError("--format npy writes binary data: give --output FILE.npy")
        }
    }

    func run() throws {
        let encoder = try encoderOptions.loadEncoder()
        if embedsTexts { return try embedTexts(encoder: encoder) }
        let paths = try collectInputs(self.paths)

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
            failures = try runEncoder(encoder, options: encoderOptions, inputs: paths, forceProgress: progress,
                                      outputs: [encoder.embeddingOutput]) { path, result in
                var record: [(String, JSONValue)] = [("path", .string(path))]
                switch result {
                case .success(let output) where format == .npy:
                    rows.append(contentsOf: encoder.embeddingVector(output))
                    record.append(("row", .integer(rowCount)))
                    rowCount += 1
                case .success(let output):
                    record.append(("embedding", .array(encoder.embeddingVector(output).map { .float($0) })))
                case .failure(let error):
                    record.append(("error", .string(errorMessage(error, path: path))))
                }
                (index ?? sink).write(JSONValue.object(record).serialized() + "\n")
            }
            if format == .npy {
                sink.write(NumpyArray.float32(rows, shape: [rowCount, encoder.width(of: encoder.embeddingOutput) ?? 0]))
            }
        } catch {
            sink.discard()
            throw error
        }
        try finish(sink, failures: failures, total: paths.count)
    }

    /// One embedding per text, from the text encoder that goes with `encoder`.
    private func embedTexts(encoder: ImageEncoder) throws {
        let texts = try text + (textsFile.map(readLines) ?? [])
        let textEncoder = try encoderOptions.loadTextEncoder(for: encoder)
        let embeddings = try textEncoder.embed(texts)
        let sink = try OutputSink(path: output.output)
        switch format {
        case .jsonl:
            for (t, e) in zip(texts, embeddings) {
                sink.write(JSONValue.object([("text", .string(t)), ("embedding", .array(e.map { .float($0) }))]).serialized() + "\n")
            }
        case .npy:
            sink.write(NumpyArray.float32(embeddings.flatMap { $0 }, shape: [texts.count, textEncoder.dimension]))
        }
        try sink.commit()
    }
}
