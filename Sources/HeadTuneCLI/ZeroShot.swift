import ArgumentParser
import Foundation
import HeadTune

struct ZeroShot: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "zero-shot",
        abstract: "Classify images into classes given only by name.",
        discussion: """
            Each label is embedded with every --template ({} = the label; several are averaged) and compared \
            with the image's vector in the text space (--method). jsonl records are those of `classify`, plus \
            the cosine similarity: {"path": ..., "predictions": [{"label": ..., "index": ..., "score": ..., \
            "similarity": ...}]}. With two or more labels `score` is softmax(similarity x --temperature) over \
            the labels; with a single label it is the similarity itself (a softmax over one class is always 1).

            Examples:
              headtune zero-shot --labels "cat,rocket,coffee,motorcycle" samples/
              headtune zero-shot --labels-file classes.txt --template "a photo of a {}." --format jsonl photos/
            """)

    enum Format: String, ExpressibleByArgument, CaseIterable { case table, jsonl }

    @Option(help: "Comma-separated class names.") var labels: String?
    @Option(help: "File with one class name per line.", completion: .file()) var labelsFile: String?
    @Option(help: "Prompt template, repeatable; {} is replaced by the label.") var template: [String] = []
    @Option(help: ArgumentHelp("A named template ensemble, added to --template: clip-imagenet (CLIP's 80 ImageNet prompts).",
                               valueName: "name"))
    var templates: String?
    @Option(help: ArgumentHelp("Softmax temperature applied to the similarities.",
                               discussion: "Default: a joint model's learned logit scale (CLIP: 100), else 50."))
    var temperature: Float?
    @Option(parsing: .unconditional, help: "How many labels to report per image.") var topK: Int = 5
    @Option(help: "Output format: table or jsonl (default: from the --output file's extension, else table on a terminal, jsonl otherwise).") var format: Format?

    @OptionGroup var textSpace: TextSpaceOptions
    @OptionGroup var inputs: InputOptions
    @OptionGroup var output: OutputOptions
    @OptionGroup var encoderOptions: EncoderOptions

    func validate() throws {
        guard (labels == nil) != (labelsFile == nil) else { throw ValidationError("give --labels or --labels-file (one of them)") }
        guard topK >= 1 else { throw ValidationError("--top-k must be at least 1 (got \(topK))") }
        guard template.allSatisfy({ $0.contains("{}") }) else { throw ValidationError("each --template must contain {}") }
        if let templates, PromptTemplates.named[templates] == nil {
            throw ValidationError("unknown --templates \(templates); known: \(PromptTemplates.named.keys.sorted().joined(separator: ", "))")
        }
        if let temperature, !(temperature > 0) { throw ValidationError("--temperature must be positive") }
    }

    func run() throws {
        let names = try labelsFile.map(readLines)
            ?? (labels ?? "").split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        guard !names.isEmpty else { throw ValidationError("no labels given") }
        let paths = try inputs.collect()
        let encoder = try encoderOptions.loadEncoder()
        let space = try textSpace.load(encoder: encoder, options: encoderOptions)
        let classes = try space.labelEmbeddings(names, templates: template + (templates.flatMap { PromptTemplates.named[$0] } ?? []))
        let sink = try OutputSink(path: output.output)
        let format = self.format ?? output.formatFromExtension(Format.self) ?? (sink.isTerminal ? .table : .jsonl)
        let failures: Int
        do {
            failures = try runEncoder(encoder, options: encoderOptions, inputs: paths, forceProgress: inputs.progress,
                                      outputs: space.requiredOutputs) { path, result in
                var members: [(String, JSONValue)] = [("path", .string(path))]
                var lines = [path]
                do {
                    let best = space.zeroShot(try space.imageVector(try result.get()), classes: classes,
                                              temperature: temperature ?? space.defaultTemperature, topK: topK)
                    members.append(("predictions", .array(best.map {
                        .object([("label", .string(names[$0.index])), ("index", .integer($0.index)),
                                 ("score", .float($0.score)), ("similarity", .float($0.similarity))])
                    })))
                    lines += best.enumerated().map { rank, p in
                        String(format: "    %d. %6.2f%%  %@ (similarity %.3f)", rank + 1, p.score * 100, names[p.index], p.similarity)
                    }
                } catch {
                    members.append(("error", .string(errorMessage(error, path: path))))
                    lines.append("    error: \(errorMessage(error, path: path))")
                }
                sink.write(format == .jsonl ? JSONValue.object(members).serialized() + "\n" : lines.joined(separator: "\n") + "\n")
            }
        } catch {
            sink.discard()
            throw error
        }
        try finish(sink, failures: failures, total: paths.count)
    }
}
