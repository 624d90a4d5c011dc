import ArgumentParser
import Dispatch
import Foundation

/// Latencies of repeated runs after a warm-up, for the bench commands.
struct BenchTiming {
    /// Milliseconds per run, sorted.
    let times: [Double]
    let totalMilliseconds: Double

    /// Runs `body` for `warmup` seconds (discarded), then for at least `seconds` and 3 runs.
    init(warmup: Double, seconds: Double, _ body: () -> Void) {
        func once() -> Double {
            let start = DispatchTime.now().uptimeNanoseconds
            body()
            return Double(DispatchTime.now().uptimeNanoseconds - start) / 1e6
        }
        var elapsed = 0.0
        repeat { elapsed += once() } while elapsed < warmup * 1000
        var times: [Double] = []
        elapsed = 0
        repeat {
            let t = once()
            times.append(t)
            elapsed += t
        } while elapsed < seconds * 1000 || times.count < 3
        self.times = times.sorted()
        totalMilliseconds = elapsed
    }

    var p50: Double { times[times.count / 2] }
    var p90: Double { times[min(times.count - 1, Int(Double(times.count) * 0.9))] }

    /// Items per second when each run handles `itemsPerRun` items.
    func rate(itemsPerRun: Int) -> Double { Double(itemsPerRun * times.count) / (totalMilliseconds / 1000) }
}

/// Options the bench commands share.
struct BenchOptions: ParsableArguments {
    enum Format: String, ExpressibleByArgument, CaseIterable { case json, text }

    @Option(help: "Seconds to measure (after warm-up).") var seconds: Double = 5
    @Option(help: "Seconds of warm-up.") var warmup: Double = 1
    @Option(help: "Threads.") var threads: Int = ProcessInfo.processInfo.activeProcessorCount
    @Option(help: "json or text.") var format: Format = .text
    @Option(help: "Directory with the converted weights.", completion: .directory) var weights: String?
    @Option(help: "Model: a bundled model's name or a model folder (default efficientnet-lite0 for backbone, all-minilm-l6-v2 for text).",
            completion: .directory) var model: String?
    @OptionGroup var precisionOptions: PrecisionOptions

    func validate() throws {
        guard threads >= 1, seconds > 0, warmup >= 0 else {
            throw ValidationError("--threads must be >= 1, --seconds > 0, --warmup >= 0")
        }
    }
}
