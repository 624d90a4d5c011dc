import ArgumentParser
import Foundation
import HeadTune
import Training
import Weights

struct Preprocess: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Write the exact network inputs of images as a NumPy array, for an exported ONNX model.",
        discussion: """
            Decodes each image, applies the geometry policy (the head's with --head, else the encoder's \
            default) and the encoder's normalization, and writes one .npy array [N, 3, size, size] float32 \
            (RGB, NCHW): the `pixels` input of `headtune export`'s model, value for value what headtune \
            classifies. Prints one JSON line per input on stdout, {"path": ..., "row": i} or \
            {"path": ..., "error": ...}; a file that fails gets no row and the others go on.

            Examples:
              headtune preprocess --head demo-data/textures.head --out inputs.npy samples/
              python3 -c "import numpy, onnxruntime as ort; x = numpy.load('inputs.npy'); \\
                print(ort.InferenceSession('textures.onnx').run(['probabilities'], {'pixels': x})[0])"
            """)

    @Option(help: "Use this head's geometry policy (and check it fits the encoder).", completion: .file())
    var head: String?

    @Option(name: [.short, .long], help: "The .npy file to write (written to a temporary file, then renamed).", completion: .file())
    var out: String

    @OptionGroup var inputs: InputOptions
    @OptionGroup var encoderOptions: EncoderOptions

    func run() throws {
        try AtomicFile.checkWritable(out)
        let paths = try inputs.collect()
        let encoder = try encoderOptions.loadEncoder()
        let policy = try head.map { try HeadPredictor.load(path: $0, encoder: encoder).policy } ?? encoder.preprocessor.policy
        let progress = ProgressBar(total: paths.count, force: inputs.progress)
        var failures = 0
        _ = try NetworkInputWriter(encoder: encoder, policy: policy).write(paths: paths, to: out) { file, result in
            progress.clearForStdout()
            let path = JSONValue.string(file)
            switch result {
            case .success(let row):
                print(JSONValue.object([("path", path), ("row", .integer(row))]).serialized())
            case .failure(let error):
                failures += 1
                let message = (error as? LocalizedError)?.errorDescription ?? "\(error)"
                print(JSONValue.object([("path", path), ("error", .string(message))]).serialized())
                progress.clear()
                printError("headtune: \(message)")
            }
            progress.advance()
        }
        progress.finish()
        if failures > 0 {
            printError("headtune: \(failures) of \(paths.count) input(s) failed; \(out) holds the other \(paths.count - failures)")
            throw ExitCode(1)
        }
    }
}
