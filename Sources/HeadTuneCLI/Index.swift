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

            Example:
              headtune index --db photos.sqlite samples/
            """)

    @Option(help: "Database file (created if missing).", completion: .file()) var db: String

    @OptionGroup var textSpace: TextSpaceOptions
    @OptionGroup var inputs: InputOptions
    @OptionGroup var encoderOptions: EncoderOptions

    func run() throws {
        let paths = try inputs.collect()
        let encoder = try encoderOptions.loadEncoder()
        let space = try textSpace.load(encoder: encoder, options: encoderOptions)
        let index = try ImageIndex(path: db)
        var progress: ProgressBar?
        let summary = try index.update(paths: paths, encoder: encoder, space: space, batchSize: encoderOptions.batchSize,
                                       threads: encoderOptions.threads,
                                       failed: { path, error in
                                           progress?.clear()
                                           printError("headtune: \(errorMessage(error, path: path))")
                                       },
                                       progress: { done, total in
                                           if progress == nil { progress = ProgressBar(total: total, force: inputs.progress) }
                                           if done > 0 { progress?.advance() }
                                       })
        progress?.finish()
        printError("headtune: \(db): indexed \(summary.indexed), unchanged \(summary.unchanged), failed \(summary.failed); \(index.count) image(s) in the index")
        if summary.failed > 0 { throw ExitCode(1) }
    }
}
