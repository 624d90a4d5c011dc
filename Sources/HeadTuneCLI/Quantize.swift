import ArgumentParser
import Foundation
import HeadTune
import Weights

extension CalibrationMethod: ExpressibleByArgument {}

struct Quantize: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Make the int8 form of the image network from calibration images, for --precision int8.",
        discussion: """
            Runs the calibration images through the fp32 network twice (each quantized layer's input \
            range, then a histogram over it), picks every layer's uint8 grid by --method, rounds the \
            weights to int8 per output channel, and writes a safetensors file with the fp32 weights' \
            sha256 and the calibration summary: beside the weights unless --out says otherwise, where \
            --precision int8 finds it. Calibrate on images like the ones you will classify (a few \
            hundred are plenty). Images that do not decode are named on stderr and skipped. Prints one \
            JSON object on stdout: the file, the images used and each layer's range.

            Examples:
              headtune quantize --calibration ../shared/datasets/imagenette/dev --images 200
              headtune classify --precision int8 --imagenet samples/
              headtune bench backbone --precision int8 --batch 32
            """)

    @Option(help: ArgumentHelp("Calibration images: files or directories (walked).", valueName: "path"), completion: .directory)
    var calibration: [String] = []

    @Option(help: "Use at most this many calibration images, spread evenly over the sorted list.")
    var images: Int = 200

    @Option(help: "How each layer's input range is chosen: minmax, percentile (0.01-99.99%), or mse (least squared error).")
    var method: CalibrationMethod = .mse

    @Option(name: [.short, .long], help: "The int8 file to write (default: beside the weights, where --precision int8 looks).",
            completion: .file())
    var out: String?

    @OptionGroup var encoderOptions: EncoderOptions

    @Flag(help: "Show a progress bar on stderr even when it is not a terminal.")
    var progress = false

    func validate() throws {
        guard !calibration.isEmpty else { throw ValidationError("give calibration images with --calibration DIR") }
        guard images >= Quantization.minimumImages else {
            throw ValidationError("--images must be at least \(Quantization.minimumImages)")
        }
        guard encoderOptions.precisionOptions.precision == .fp32 else {
            throw ValidationError("quantize calibrates the fp32 network; drop --precision")
        }
    }

    func run() throws {
        let all = try collectInputs(calibration)
        // Evenly spread, so that a folder sorted by class gives every class its share.
        let chosen = all.count <= images ? all : (0..<images).map { all[$0 * all.count / images] }
        let encoder = try encoderOptions.loadEncoder()
        let output = try out ?? Quantization.defaultFile(model: encoderOptions.model, weightsDirectory: encoderOptions.weightsDirectory)
        var bar: ProgressBar?
        var currentPass = 0
        let report = try Quantization.run(
            encoder: encoder, images: chosen, method: method, output: output,
            calibrationSource: calibration.joined(separator: ", ") + " (\(chosen.count) of \(all.count) images)",
            threads: encoderOptions.threads, batchSize: encoderOptions.batchSize,
            progress: { pass, done, total in
                if pass != currentPass {
                    bar?.finish()
                    printError("headtune: calibration pass \(pass) of 2 (\(pass == 1 ? "ranges" : "histograms"))")
                    bar = ProgressBar(total: total, force: progress)
                    currentPass = pass
                } else {
                    bar?.advance(by: done - (bar?.done ?? 0))
                }
            },
            skipped: { path, error in
                bar?.clear()
                printError("headtune: \(path): skipped (\((error as? LocalizedError)?.errorDescription ?? "\(error)"))")
            })
        bar?.finish()
        let encoderJSON = JSONEncoder()
        encoderJSON.outputFormatting = [.sortedKeys]
        print(String(decoding: try encoderJSON.encode(report), as: UTF8.self))
        printError("headtune: wrote \(report.file) (\(report.bytes / 1024) KiB, \(report.layers.count) layers, \(report.images) images, method \(report.method)); use it with --precision int8")
    }
}
