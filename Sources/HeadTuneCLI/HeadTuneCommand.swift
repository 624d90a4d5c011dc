import ArgumentParser

@main
struct HeadTuneCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "headtune",
        abstract: "Transfer-learning image classification on CPU with a frozen pretrained backbone.",
        discussion: """
            The backbone is EfficientNet-Lite0 (ImageNet), run by headtune's own Swift code from the \
            converted pretrained weights in weights/ (fetch them with `make weights`).
            Machine-readable results go to stdout, progress and per-file errors to stderr.
            """,
        subcommands: [Classify.self, Embed.self, Train.self, Evaluate.self, ZeroShot.self, Match.self, Index.self,
                      Search.self, Align.self, Serve.self, Healthcheck.self, Bench.self, Info.self, ModelsCommand.self])
}
