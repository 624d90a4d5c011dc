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
            """)

    @Option(help: "Images per batch.") var batch: Int = 1
    @OptionGroup var options: BenchOptions

    func validate() throws {
        guard batch >= 1 else { throw ValidationError("--batch must be >= 1") }
    }

    func run() throws {
        let backbone = try Backbone.efficientNetLite0(weightsDirectory: options.weights.map { URL(fileURLWithPath: $0) })
        let model = backbone.model
        let size = backbone.inputSize
        // Deterministic values in [-1, 1], like normalized pixels.
        var state: UInt32 = 12345
        let input = (0..<(batch * size * size * 3)).map { _ -> Float in
            state = state &* 1_664_525 &+ 1_013_904_223
            return Float(state >> 8) / Float(1 << 23) - 1
        }
        let workspace = model.makeWorkspace(batch: batch, threads: options.threads)
        var features = [Float](repeating: 0, count: batch * model.featureCount)
        var logits = [Float](repeating: 0, count: batch * model.classCount)
        let timing = BenchTiming(warmup: options.warmup, seconds: options.seconds) {
            input.withUnsafeBufferPointer { x in
                features.withUnsafeMutableBufferPointer { f in
                    logits.withUnsafeMutableBufferPointer { l in
                        model.forward(input: x.baseAddress!, workspace: workspace, features: f.baseAddress!,
                                      logits: l.baseAddress!)
                    }
                }
            }
        }
        let p50 = timing.p50, p90 = timing.p90, runs = timing.times.count
        let imagesPerSecond = timing.rate(itemsPerRun: batch)
        let peakMB = ProcessMemory.peakResidentMB()
        switch options.format {
        case .json:
            print(String(format: "{\"batch\": %d, \"threads\": %d, \"images_per_s\": %.2f, \"ms_per_batch_p50\": %.3f, \"ms_per_batch_p90\": %.3f, \"batches\": %d, \"peak_rss_mb\": %.1f, \"blas_core\": \"%@\"}",
                         batch, options.threads, imagesPerSecond, p50, p90, runs, peakMB, BLAS.coreName))
        case .text:
            print(String(format: "batch %d, %d thread(s): %.1f images/s, %.2f ms/batch p50, %.2f p90 (%d batches), peak RSS %.0f MB, OpenBLAS %@",
                         batch, options.threads, imagesPerSecond, p50, p90, runs, peakMB, BLAS.coreName))
        }
    }
}
