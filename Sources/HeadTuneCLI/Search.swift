import ArgumentParser
import Foundation
import HeadTune

struct Search: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Rank indexed images by similarity to a text query.",
        discussion: """
            jsonl: one record per query, {"query": "...", "results": [{"path": "...", "score": 0.53}, ...]}, \
            highest score (cosine similarity in the text space) first. Only entries indexed with the same \
            models and --method are searched.

            Example:
              headtune search --db photos.sqlite "a cat" --top-k 3
            """)

    enum Format: String, ExpressibleByArgument, CaseIterable { case table, jsonl }

    @Argument(help: "The query text.") var query: String?
    @Option(help: "File with one query per line.", completion: .file()) var queriesFile: String?
    @Option(help: "Database made by `headtune index`.", completion: .file()) var db: String
    @Option(parsing: .unconditional, help: "How many images to return per query.") var topK: Int = 10
    @Option(help: "Output format: table or jsonl (default: table on a terminal, jsonl otherwise).") var format: Format?

    @OptionGroup var textSpace: TextSpaceOptions
    @OptionGroup var output: OutputOptions
    @OptionGroup var encoderOptions: EncoderOptions

    func validate() throws {
        guard query != nil || queriesFile != nil else { throw ValidationError("give a query or --queries-file") }
        guard topK >= 1 else { throw ValidationError("--top-k must be at least 1") }
        guard FileManager.default.fileExists(atPath: db) else { throw ValidationError("\(db): no such index (make one with `headtune index`)") }
    }

    func run() throws {
        let queries = (query.map { [$0] } ?? []) + (try queriesFile.map(readLines) ?? [])
        let encoder = try encoderOptions.loadEncoder()
        let space = try textSpace.load(encoder: encoder, options: encoderOptions)
        let index = try ImageIndex(path: db)
        let models = space.indexModels(imageEncoder: encoder)
        let (entries, skipped) = try index.entries(models: models)
        if skipped > 0 {
            printError("headtune: \(skipped) entr\(skipped == 1 ? "y" : "ies") of \(db) were indexed with other models or another --method and are not searched; re-run `headtune index`")
        }
        let embeddings = try space.text.embed(queries)
        let sink = try OutputSink(path: output.output)
        let format = self.format ?? (sink.isTerminal ? .table : .jsonl)
        for (query, q) in zip(queries, embeddings) {
            let scores = space.similarities(q, entries.map(\.embedding))
            let best = scores.withUnsafeBufferPointer { largestEntries($0, k: topK) }
            switch format {
            case .jsonl:
                sink.write(JSONValue.object([
                    ("query", .string(query)),
                    ("results", .array(best.map { .object([("path", .string(entries[$0.index].path)), ("score", .float($0.score))]) })),
                ]).serialized() + "\n")
            case .table:
                sink.write(([query] + best.enumerated().map { rank, hit in
                    String(format: "    %d. %.4f  %@", rank + 1, hit.score, entries[hit.index].path)
                }).joined(separator: "\n") + "\n")
            }
        }
        try sink.commit()
    }
}
