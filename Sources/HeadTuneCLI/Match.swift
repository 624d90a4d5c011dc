import ArgumentParser
import Foundation
import HeadTune

struct Match: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Print the similarity matrix between texts and images.",
        discussion: """
            Cosine similarity in the text space (--method) of every image with every text. table: one row per \
            image, one column per text. jsonl: {"path": ..., "similarities": [s_text0, s_text1, ...]} per image, \
            after a first line {"texts": [...]} naming the columns.

            Example:
              headtune match --text "a cat" --text "a rocket launch" samples/
            """)

    enum Format: String, ExpressibleByArgument, CaseIterable { case table, jsonl }

    @Option(help: "A text to compare, repeatable.") var text: [String] = []
    @Option(help: "File with one text per line.", completion: .file()) var textsFile: String?
    @Option(help: "Output format: table or jsonl (default: from the --output file's extension, else table on a terminal, jsonl otherwise).") var format: Format?

    @OptionGroup var textSpace: TextSpaceOptions
    @OptionGroup var inputs: InputOptions
    @OptionGroup var output: OutputOptions
    @OptionGroup var encoderOptions: EncoderOptions

    func validate() throws {
        guard !text.isEmpty || textsFile != nil else { throw ValidationError("give --text (repeatable) or --texts-file") }
    }

    func run() throws {
        let texts = try text + (textsFile.map(readLines) ?? [])
        let paths = try inputs.collect()
        let encoder = try encoderOptions.loadEncoder()
        let space = try textSpace.load(encoder: encoder, options: encoderOptions)
        let textEmbeddings = try space.text.embed(texts)
        let sink = try OutputSink(path: output.output)
        let format = self.format ?? output.formatFromExtension(Format.self) ?? (sink.isTerminal ? .table : .jsonl)
        switch format {
        case .jsonl: sink.write(JSONValue.object([("texts", .array(texts.map { .string($0) }))]).serialized() + "\n")
        case .table: sink.write(texts.enumerated().map { "[\($0.offset)] \($0.element)" }.joined(separator: "\n") + "\n")
        }
        let failures: Int
        do {
            failures = try runEncoder(encoder, options: encoderOptions, inputs: paths, forceProgress: inputs.progress,
                                      outputs: space.requiredOutputs) { path, result in
                do {
                    let row = space.similarities(try space.imageVector(try result.get()), textEmbeddings)
                    switch format {
                    case .jsonl:
                        sink.write(JSONValue.object([("path", .string(path)), ("similarities", .array(row.map { .float($0) }))])
                            .serialized() + "\n")
                    case .table:
                        sink.write(row.map { String(format: "%7.4f", $0) }.joined(separator: " ") + "  \(path)\n")
                    }
                } catch {
                    let message = errorMessage(error, path: path)
                    sink.write(format == .jsonl
                        ? JSONValue.object([("path", .string(path)), ("error", .string(message))]).serialized() + "\n"
                        : "error: \(message)\n")
                }
            }
        } catch {
            sink.discard()
            throw error
        }
        try finish(sink, failures: failures, total: paths.count)
    }
}
