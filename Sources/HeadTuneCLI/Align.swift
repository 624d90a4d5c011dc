import ArgumentParser
import Foundation
import HeadTune
import Weights

struct Align: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Fit the image-text bridge (ConSE class embeddings + DeViSE-style ridge map) and write it.",
        discussion: """
            Embeds the 1000 ImageNet class names (every synonym in --template, averaged) with the text \
            encoder, and fits a ridge regression from those embeddings to the rows of the backbone's ImageNet \
            classifier (Frome et al. 2013), choosing lambda on held-out classes unless --lambda is given. \
            Deterministic: the same weights give the same file. `make align` runs it.
            """)

    @Option(name: [.short, .long], help: "Output file (default: image-text-alignment.safetensors in the weights directory).",
            completion: .file())
    var output: String?

    @Option(help: "Ridge strength (default: chosen on held-out classes).")
    var lambda: Double?

    @Option(help: "Prompt for the class names; {} is replaced by each synonym.")
    var template: String = ImageTextAlignment.defaultClassTemplate

    @OptionGroup var encoderOptions: EncoderOptions

    func validate() throws {
        if let lambda, !(lambda > 0) { throw ValidationError("--lambda must be positive") }
        guard template.contains("{}") else { throw ValidationError("--template must contain {}") }
    }

    func run() throws {
        let encoder = try encoderOptions.loadEncoder()
        let alignment = try ImageTextAlignment.fit(encoder: encoder, textEncoder: try encoderOptions.loadTextEncoder(for: encoder),
                                                   lambda: lambda, template: template) { printError("headtune: \($0)") }
        let path = try output ?? TextSpace.defaultAlignmentPath(weightsDirectory: encoderOptions.weightsDirectory)
        try alignment.write(to: path)
        printError("headtune: wrote \(path) (\(alignment.identifier), lambda \(alignment.ridgeLambda))")
    }
}
