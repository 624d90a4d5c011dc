import ArgumentParser
import Foundation
import HeadTune
import Training

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

            Examples:
              headtune classify --imagenet --top-k 3 samples/
              headtune train photos/ --out photos.head --report photos.html
              headtune classify --head photos.head -o predictions.csv new-photos/
              headtune evaluate --head photos.head photos-test/
              headtune inspect photos.head
              headtune serve --head photos.head --port 8080
            """,
        version: HeadTuneVersion.current,
        subcommands: [Classify.self, Embed.self, Train.self, Evaluate.self, Inspect.self, ZeroShot.self, Match.self, Index.self, Quantize.self,
                      Search.self, Align.self, Export.self, Preprocess.self, Serve.self, Healthcheck.self, Bench.self, Info.self,
                      ModelsCommand.self])

    static func main() async {
        if let message = unknownCommandMessage(Array(CommandLine.arguments.dropFirst())) {
            printError("Error: \(message)\nSee 'headtune --help' for the commands.")
            Foundation.exit(ExitCode.validationFailure.rawValue)
        }
        await main(nil)
    }

    /// "unknown command 'trian'; did you mean 'train'?" when the first argument is neither an option
    /// nor a command (the parser would say only "unexpected argument").
    static func unknownCommandMessage(_ arguments: [String]) -> String? {
        guard let first = arguments.first, !first.hasPrefix("-") else { return nil }
        let names = configuration.subcommands.map { $0._commandName } + ["help"]
        guard !names.contains(first) else { return nil }
        if let name = NameSuggestion.closest(to: first, among: names) {
            return "unknown command '\(first)'; did you mean '\(name)'?"
        }
        return "unknown command '\(first)'; the commands are \(names.filter { $0 != "help" }.joined(separator: ", "))"
    }
}
