import ArgumentParser
import Foundation
import HeadTune
import Weights

struct ModelsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "models",
        abstract: "List the models headtune can run: the bundled ones and the model folders under $HEADTUNE_MODELS.",
        discussion: """
            Any listed name or folder works as --model. A folder is a Hugging Face checkpoint (config.json, \
            model.safetensors, and for CLIP vocab.json, merges.txt, preprocessor_config.json). jsonl: one \
            {"name", "kind", "bundled", "location", "bytes", "id", "summary"} record per model.

            Examples:
              headtune models
              HEADTUNE_MODELS=~/models headtune models --format jsonl
            """)

    enum Format: String, ExpressibleByArgument, CaseIterable { case table, jsonl }

    @Option(help: "Output format: table or jsonl (default: table on a terminal, jsonl otherwise).") var format: Format?
    @Option(help: ArgumentHelp("Folder of model folders.", discussion: "Default: $HEADTUNE_MODELS."), completion: .directory)
    var models: String?
    @Option(help: ArgumentHelp("Directory with the converted weights.", discussion: "Default: $HEADTUNE_WEIGHTS, then ./weights and its parents."),
            completion: .directory)
    var weights: String?

    func run() throws {
        let weightsDirectory = weights.map { URL(fileURLWithPath: $0) } ?? (try? WeightsLocator.directory())
        let folder = (models ?? ProcessInfo.processInfo.environment[ModelCatalogue.modelsEnvironmentVariable]).map { URL(fileURLWithPath: $0) }
        let listings = ModelCatalogue.list(weightsDirectory: weightsDirectory, modelsDirectory: folder)
        let sink = try OutputSink(path: nil)
        switch format ?? (sink.isTerminal ? .table : .jsonl) {
        case .jsonl:
            for m in listings {
                sink.write(JSONValue.object([
                    ("name", .string(m.name)), ("kind", .string(m.kind)), ("bundled", .bool(m.bundled)),
                    ("location", m.location.map { .string($0) } ?? .null), ("bytes", m.bytes.map { .integer(Int($0)) } ?? .null),
                    ("id", m.identifier.map { .string($0) } ?? .null), ("summary", .string(m.summary)),
                ]).serialized() + "\n")
            }
        case .table:
            for m in listings {
                let size = m.bytes.map { String(format: "%.1f MB", Double($0) / 1e6) } ?? "-"
                sink.write("\(m.name)  [\(m.kind)\(m.bundled ? ", bundled" : "")]  \(size)  \(m.identifier ?? "-")\n    \(m.summary)\n")
            }
        }
        try sink.commit()
    }
}
