import ArgumentParser
import Foundation
import HeadTune
import Kernels

struct BenchText: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "text",
        abstract: "Sentences per second of the text encoder (all-MiniLM-L6-v2, or a --model folder's text tower) at a batch size, after warm-up.",
        discussion: """
            The batch is `benchmarkSentences(batch)`: 8 short English sentences, repeated with a " #i" suffix \
            (the same list scripts/bench_common.py gives the peers). Tokenization is done once and timed \
            separately; the timed loop is the network with padding + mask, pooling and normalization.
            Prints {"batch": N, "threads": T, "sentences_per_s": ..., "ms_per_batch_p50": ..., ...} with --format json.

            Example:
              headtune bench text --batch 32 --seconds 3
            """)

    @Option(help: "Sentences per batch.") var batch: Int = 1
    @OptionGroup var options: BenchOptions

    func validate() throws {
        guard batch >= 1 else { throw ValidationError("--batch must be >= 1") }
        guard options.precisionOptions.precision == .fp32 else {
            throw ValidationError("--precision int8 is for the image network (bench backbone); the text encoder runs fp32")
        }
    }

    /// The benchmark sentences (kept equal to BENCHMARK_SENTENCES in scripts/bench_common.py).
    static func benchmarkSentences(_ count: Int) -> [String] {
        let base = ["A cat sits on the mat.", "A kitten is resting on a rug.", "The stock market fell sharply today.",
                    "How do I reset my password?", "Crème brûlée, naïve café — déjà vu!", "Two dogs play in the snow.",
                    "Swift is a general-purpose programming language.", "The weather will be sunny tomorrow."]
        return (0..<count).map { base[$0 % base.count] + ($0 < base.count ? "" : " #\($0)") }
    }

    func run() throws {
        let encoder = try TextEncoder.load(model: options.model, weightsDirectory: options.weights.map { URL(fileURLWithPath: $0) },
                                           threads: options.threads)
        let sentences = Self.benchmarkSentences(batch)
        let tokenizeStart = DispatchTime.now().uptimeNanoseconds
        let ids = sentences.map(encoder.tokenize)
        let tokenizeMs = Double(DispatchTime.now().uptimeNanoseconds - tokenizeStart) / 1e6
        let sequence = ids.map(\.count).max() ?? 1
        let runBatch = try encoder.preparedBatch(ids)
        let timing = BenchTiming(warmup: options.warmup, seconds: options.seconds) { runBatch() }
        let p50 = timing.p50, p90 = timing.p90, runs = timing.times.count
        let perSecond = timing.rate(itemsPerRun: batch)
        let peakMB = ProcessMemory.peakResidentMB()
        switch options.format {
        case .json:
            print(String(format: "{\"batch\": %d, \"threads\": %d, \"sequence\": %d, \"sentences_per_s\": %.2f, \"ms_per_batch_p50\": %.3f, \"ms_per_batch_p90\": %.3f, \"batches\": %d, \"tokenize_ms\": %.3f, \"peak_rss_mb\": %.1f, \"blas_core\": \"%@\"}",
                         batch, options.threads, sequence, perSecond, p50, p90, runs, tokenizeMs, peakMB, BLAS.coreName))
        case .text:
            print(String(format: "batch %d (padded to %d tokens), %d thread(s): %.1f sentences/s, %.2f ms/batch p50, %.2f p90 (%d batches), tokenize %.2f ms, peak RSS %.0f MB, OpenBLAS %@",
                         batch, sequence, options.threads, perSecond, p50, p90, runs, tokenizeMs, peakMB, BLAS.coreName))
        }
    }
}
