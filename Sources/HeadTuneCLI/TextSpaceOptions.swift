import ArgumentParser
import Foundation
import HeadTune
import Weights

extension ImageTextMethod: ExpressibleByArgument {}

/// Options of the commands that compare images with text: which bridge and which fitted file.
struct TextSpaceOptions: ParsableArguments {
    @Option(help: ArgumentHelp("How images enter the text space: conse (probability-weighted ImageNet class-name embeddings) or devise (linear map fitted on the ImageNet classifier).",
                               discussion: "Default conse: it measured better on zero-shot and retrieval (BENCHMARKS.md)."))
    var method: ImageTextMethod = .conse

    @Option(help: "Classes ConSE mixes per image (T in Norouzi et al.).")
    var conseTop: Int = 10

    @Option(help: ArgumentHelp("Alignment file made by `headtune align`.", discussion: "Default: image-text-alignment.safetensors in the weights directory."),
            completion: .file())
    var alignment: String?

    func validate() throws {
        guard conseTop >= 1 && conseTop <= 1000 else { throw ValidationError("--conse-top must be in 1...1000") }
    }

    /// The text encoder and the alignment for `backbone`.
    func load(backbone: Backbone, options: BackboneOptions) throws -> (TextEncoder, ImageTextAlignment) {
        try loadTextSpace(alignment: alignment, backbone: backbone, options: options)
    }
}

/// The text encoder and the image-text alignment for `backbone` (fitted and kept on first use).
/// - alignment: the file to read; nil: the one in the weights directory
func loadTextSpace(alignment: String?, backbone: Backbone, options: BackboneOptions) throws -> (TextEncoder, ImageTextAlignment) {
    let directory = try options.weights.map { URL(fileURLWithPath: $0) }
        ?? WeightsLocator.directory(containing: TextEncoder.weightsFileName)
    let encoder = try TextEncoder.allMiniLML6v2(weightsDirectory: directory, threads: options.threads)
    let path = alignment ?? directory.appendingPathComponent(ImageTextAlignment.defaultFileName).path
    if FileManager.default.fileExists(atPath: path) {
        return (encoder, try ImageTextAlignment.read(path: path, backbone: backbone, textEncoder: encoder))
    }
    guard alignment == nil else { throw HeadTuneError.alignmentUnavailable(path: path, reason: "file not found") }
    // First use: fit the default bridge (deterministic, seconds) and keep it for next time.
    printError("headtune: \(path) not found; fitting the image-text alignment once (same as `headtune align`)")
    let fitted = try ImageTextAlignment.fit(backbone: backbone, textEncoder: encoder, weightsDirectory: directory) {
        printError("headtune: \($0)")
    }
    do { try fitted.write(to: path) } catch {
        printError("headtune: warning: \(error.localizedDescription); using the fitted alignment without saving it")
    }
    return (encoder, fitted)
}

/// Embeds each label with every template ("{}" = the label), averages and normalizes:
/// prompt ensembling as in CLIP's zero-shot classifiers.
func labelEmbeddings(_ labels: [String], templates: [String], encoder: TextEncoder) throws -> [[Float]] {
    let prompts = labels.flatMap { label in templates.map { $0.replacingOccurrences(of: "{}", with: label) } }
    let rows = try encoder.embed(prompts)
    return labels.indices.map { l in
        var sum = [Float](repeating: 0, count: encoder.dimension)
        for t in templates.indices {
            for (j, v) in rows[l * templates.count + t].enumerated() { sum[j] += v }
        }
        let norm = max(sum.reduce(0) { $0 + $1 * $1 }.squareRoot(), 1e-12)
        return sum.map { $0 / norm }
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
