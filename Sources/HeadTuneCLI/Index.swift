import ArgumentParser
import Foundation
import HeadTune

struct Index: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Store image embeddings in a SQLite database for `headtune search`.",
        discussion: """
            Per image: path, SHA-256 of the file, the backbone / text encoder / alignment ids, the method, the \
            raw backbone outputs and the image's vector in the text space. A file whose content and models are \
            unchanged is skipped, so re-running over a folder only processes new or edited files.
            """)

    @Option(help: "Database file (created if missing).", completion: .file()) var db: String

    @OptionGroup var textSpace: TextSpaceOptions
    @OptionGroup var inputs: InputOptions
    @OptionGroup var backbone: BackboneOptions

    func run() throws {
        let paths = try inputs.collect()
        let model = try backbone.loadBackbone()
        let (encoder, alignment) = try textSpace.load(backbone: model, options: backbone)
        let index = try ImageIndex(path: db)
        let models = ImageIndex.Models(backbone: model.identifier, textEncoder: encoder.identifier,
                                       alignment: alignment.identifier, method: textSpace.method)
        var hashes: [String: String] = [:]
        var pending: [String] = []
        var failures = 0
        for path in paths {
            do {
                let hash = try ImageIndex.contentHash(of: path)
                if try index.isCurrent(path: path, contentSHA256: hash, models: models) { continue }
                hashes[path] = hash
                pending.append(path)
            } catch {
                failures += 1
                printError("headtune: \(errorMessage(error, path: path))")
            }
        }
        var indexed = 0
        if !pending.isEmpty {
            failures += try runBackbone(backbone: model, options: backbone, inputs: pending, forceProgress: inputs.progress,
                                        computeLogits: true) { path, result in
                guard case .success(let out) = result, let logits = out.logits else { return }
                let embedding = try alignment.embed(features: out.features, logits: logits, method: textSpace.method,
                                                    top: textSpace.conseTop)
                try index.upsert(path: path, contentSHA256: hashes[path]!, models: models, features: out.features,
                                 logits: logits, embedding: embedding)
                indexed += 1
            }
        }
        let skipped = paths.count - pending.count - (failures - (pending.count - indexed))
        printError("headtune: \(db): indexed \(indexed), unchanged \(max(0, skipped)), failed \(failures); \(index.count) image(s) in the index")
        if failures > 0 { throw ExitCode(1) }
    }
}
