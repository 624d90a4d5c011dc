import ArgumentParser
import Foundation
import HeadTune
import Imaging

/// Options every command that runs an image encoder shares.
struct EncoderOptions: ParsableArguments {
    @Option(help: ArgumentHelp("Image encoder: a bundled model's name or a model folder.",
                               discussion: "Default: efficientnet-lite0 (see `headtune models`)."),
            completion: .directory)
    var model: String?

    @Option(parsing: .unconditional, help: "Images per network batch.")
    var batchSize: Int = 16

    @Option(parsing: .unconditional, help: "Threads for inference.")
    var threads: Int = ProcessInfo.processInfo.activeProcessorCount

    @Option(help: ArgumentHelp("Directory with the converted weights.", discussion: "Default: $HEADTUNE_WEIGHTS, then ./weights and its parents."),
            completion: .directory)
    var weights: String?

    @Option(help: "Refuse images whose header declares more pixels than this (decompression bombs).")
    var maxPixels: Int = DecodeOptions().maxPixels

    @OptionGroup var precisionOptions: PrecisionOptions

    @Option(help: ArgumentHelp("Memory the concurrent decodes may hold together (e.g. 256m, 1g); a decode waits for its share.",
                               valueName: "bytes"))
    var decodeMemory = MemorySize(bytes: MemoryBudget.defaultDecodeCapacity)

    func validate() throws {
        guard batchSize >= 1 && batchSize <= 1024 else { throw ValidationError("--batch-size must be in 1...1024") }
        guard threads >= 1 else { throw ValidationError("--threads must be at least 1") }
        guard maxPixels >= 1 else { throw ValidationError("--max-pixels must be positive") }
        guard decodeMemory.bytes >= 1 << 20 else { throw ValidationError("--decode-memory must be at least 1m") }
    }

    var weightsDirectory: URL? { weights.map { URL(fileURLWithPath: $0) } }

    func loadEncoder() throws -> ImageEncoder {
        let encoder = try ImageEncoder.load(model: model, weightsDirectory: weightsDirectory, maxPixels: maxPixels,
                                            decodeBudget: MemoryBudget(capacity: decodeMemory.bytes),
                                            precision: precisionOptions.precision, quantizedFile: precisionOptions.quantizedFile)
        for note in encoder.notes { printError("headtune: \(note)") }
        return encoder
    }

    /// The text encoder that goes with `encoder` (a CLIP folder's own text tower, else all-MiniLM-L6-v2).
    func loadTextEncoder(for encoder: ImageEncoder) throws -> TextEncoder {
        try TextEncoder.load(for: encoder, weightsDirectory: weightsDirectory, threads: threads)
    }
}

extension Precision: ExpressibleByArgument {}

/// `--precision` and `--quantized`, for every command that runs the image network.
struct PrecisionOptions: ParsableArguments {
    @Option(help: ArgumentHelp("Arithmetic of the image network's dense layers: fp32, or int8 (AVX-512 VNNI; the file `headtune quantize` writes).",
                               discussion: "On a CPU without VNNI, int8 says so on stderr and runs fp32."))
    var precision: Precision = .fp32

    @Option(help: ArgumentHelp("The int8 file for --precision int8.", discussion: "Default: beside the weights, where `headtune quantize` writes it."),
            completion: .file())
    var quantized: String?

    func validate() throws {
        if quantized != nil && precision != .int8 { throw ValidationError("--quantized needs --precision int8") }
    }

    var quantizedFile: URL? { quantized.map { URL(fileURLWithPath: $0) } }
}

/// Input paths: files, directories (walked), or `-` for a list of paths on stdin.
struct InputOptions: ParsableArguments {
    @Argument(help: ArgumentHelp("Image files or directories (walked recursively, sorted; non-images skipped). `-` reads paths from stdin, one per line.", valueName: "path"),
              completion: .file())
    var paths: [String] = []

    @Flag(help: "Show a progress bar on stderr even when it is not a terminal.")
    var progress = false

    func validate() throws {
        guard !paths.isEmpty else { throw ValidationError("give at least one image file or directory") }
    }

    func collect() throws -> [String] { try collectInputs(paths) }
}

/// The image paths of `arguments` (see `InputCollector`), saying on stderr what the walks skipped and why.
func collectInputs(_ arguments: [String]) throws -> [String] {
    let collected = InputCollector.collectReporting(arguments)
    if let summary = collected.skippedSummary() { printError("headtune: \(summary)") }
    guard !collected.paths.isEmpty else { throw HeadTuneError.noInputs(searched: arguments) }
    return collected.paths
}

/// Where machine-readable output goes.
struct OutputOptions: ParsableArguments {
    @Option(name: [.short, .long], help: "Write to this file (atomically: a failed run leaves the previous file intact) instead of stdout.",
            completion: .file())
    var output: String?
}

extension OutputOptions {
    /// The format the output file's extension names when `--format` is not given: out.csv -> csv,
    /// out.jsonl (.json, .ndjson) -> jsonl, out.txt -> table, out.npy -> npy; nil for stdout, other
    /// extensions, or a format `F` does not have.
    func formatFromExtension<F: RawRepresentable>(_: F.Type) -> F? where F.RawValue == String {
        guard let output, output != "-" else { return nil }
        let pathExtension = (output as NSString).pathExtension.lowercased()
        return F(rawValue: ["json": "jsonl", "ndjson": "jsonl", "txt": "table"][pathExtension] ?? pathExtension)
    }
}
