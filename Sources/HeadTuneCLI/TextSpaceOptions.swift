import ArgumentParser
import Foundation
import HeadTune
import Weights

extension ImageTextMethod: ExpressibleByArgument {}

/// Options of the commands that compare images with text: which bridge and which fitted file.
struct TextSpaceOptions: ParsableArguments {
    @Option(help: ArgumentHelp("How images enter the text space: conse (probability-weighted ImageNet class-name embeddings), devise (linear map fitted on the ImageNet classifier), contrastive or asif (fitted on image-caption pairs by `headtune align --pairs`; the file must hold one) or native (a jointly trained --model such as CLIP).",
                               discussion: "Default: native for a CLIP --model; else the bridge fitted on pairs when the alignment file holds one; else conse (it measured better than devise on zero-shot and retrieval, BENCHMARKS.md)."))
    var method: ImageTextMethod?

    @Option(help: "Classes ConSE mixes per image (T in Norouzi et al.).")
    var conseTop: Int = 10

    @Option(help: ArgumentHelp("Alignment file made by `headtune align` (with --pairs: also holds the bridge fitted on your pairs).", discussion: "Default: image-text-alignment.safetensors in the weights directory (fitted there on first use)."),
            completion: .file())
    var alignment: String?

    func validate() throws {
        guard conseTop >= 1 && conseTop <= 1000 else { throw ValidationError("--conse-top must be in 1...1000") }
    }

    /// The text space for `encoder`, by the library's loading policy (`TextSpace.load`).
    func load(encoder: ImageEncoder, options: EncoderOptions) throws -> TextSpace {
        try TextSpace.load(imageEncoder: encoder, text: options.loadTextEncoder(for: encoder), alignmentPath: alignment, method: method,
                           conseTop: conseTop, weightsDirectory: options.weightsDirectory) { printError("headtune: \($0)") }
    }
}

/// Non-empty trimmed lines of a text file.
func readLines(_ path: String) throws -> [String] {
    let text: String
    do { text = try String(contentsOfFile: path, encoding: .utf8) } catch {
        throw ValidationError("\(path): cannot read (\(error.localizedDescription))")
    }
    return text.split(whereSeparator: \.isNewline).map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
}
