import ArgumentParser
import Foundation
import HeadTune
import Kernels

struct Bench: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Measure inference speed (network only, on synthetic input; decoding excluded).",
        subcommands: [BenchBackbone.self, BenchText.self])
}

struct BenchBackbone: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "backbone",
        abstract: "Images per second of the backbone at a batch size, after warm-up.",
        discussion: """
            Prints {"batch": N, "threads": T, "images_per_s": ..., "ms_per_batch_p50": ..., \
            "ms_per_batch_p90": ..., "peak_rss_mb": ...} with --format json.

            Example:
              headtune bench backbone --batch 16 --seconds 3 --format json
            """)

    @Option(help: "Images per batch.") var batch: Int = 1
    @OptionGroup var options: BenchOptions

    func validate() throws {
        guard batch >= 1 else { throw ValidationError("--batch must be >= 1") }
    }

    func run() throws {
        let encoder = try ImageEncoder.load(model: options.model, weightsDirectory: options.weights.map { URL(fileURLWithPath: $0) },
                                            precision: options.precisionOptions.precision,
                                            quantizedFile: options.precisionOptions.quantizedFile)
        for note in encoder.notes { printError("headtune: \(note)") }
        let size = encoder.inputSize
        // Deterministic values in [-1, 1], like normalized pixels.
        var state: UInt32 = 12345
        let input = (0..<(batch * size * size * 3)).map { _ -> Float in
            state = state &* 1_664_525 &+ 1_013_904_223
            return Float(state >> 8) / Float(1 << 23) - 1
        }
        // The network's features and classifier logits, as `classify --imagenet` computes them (a joint
        // model: its projected embedding, as `embed` does).
        let session = encoder.makeSession(threads: options.threads)
        let outputs: [ImageOutput] = encoder.width(of: .embedding) != nil
            ? [.embedding] : encoder.availableOutputs.filter { $0 == .features || $0 == .logits }
        let timing = BenchTiming(warmup: options.warmup, seconds: options.seconds) {
            input.withUnsafeBufferPointer { x in _ = session.run(x.baseAddress!, rows: batch, outputs: outputs) }
        }
        let p50 = timing.p50, p90 = timing.p90, runs = timing.times.count
        let imagesPerSecond = timing.rate(itemsPerRun: batch)
        let peakMB = ProcessMemory.peakResidentMB()
        switch options.format {
        case .json:
            print(String(format: "{\"batch\": %d, \"threads\": %d, \"images_per_s\": %.2f, \"ms_per_batch_p50\": %.3f, \"ms_per_batch_p90\": %.3f, \"batches\": %d, \"peak_rss_mb\": %.1f, \"blas_core\": \"%@\", \"precision\": \"%@\"}",
                         batch, options.threads, imagesPerSecond, p50, p90, runs, peakMB, BLAS.coreName, encoder.precision.rawValue))
        case .text:
            print(String(format: "batch %d, %d thread(s): %.1f images/s, %.2f ms/batch p50, %.2f p90 (%d batches), peak RSS %.0f MB, OpenBLAS %@",
                         batch, options.threads, imagesPerSecond, p50, p90, runs, peakMB, BLAS.coreName))
        }
    }
}
