import ArgumentParser
import HeadTune

@main
struct HeadTuneCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "headtune",
        abstract: "Transfer-learning image classification on CPU with a frozen pretrained backbone.",
        discussion: """
            The default encoder is EfficientNet-Lite0 (ImageNet), run by headtune's own Swift code from the \
            converted pretrained weights in weights/ (`python3 scripts/assets.py weights` fetches them); \
            --model takes another bundled model or a Hugging Face CLIP folder (`headtune models` lists them).
            Machine-readable results go to stdout, progress and per-file errors to stderr.
            """,
        version: HeadTuneVersion.current,
        subcommands: [Classify.self, Embed.self, Train.self, Evaluate.self, ZeroShot.self, Match.self, Index.self,
                      Search.self, Align.self, Serve.self, Healthcheck.self, Bench.self, Info.self, ModelsCommand.self])
}
