import ArgumentParser
import Foundation
import HeadTune
import Imaging
import Training
import Weights

extension CropPolicy: ExpressibleByArgument {}
extension HeadKind: ExpressibleByArgument {}
extension OutOfDistributionScore: ExpressibleByArgument {}
extension OptimizerKind: ExpressibleByArgument {}
extension ClassWeighting: ExpressibleByArgument {}
extension FeatureSet: ExpressibleByArgument {}

/// Where features are cached between runs.
struct CacheOptions: ParsableArguments {
    @Option(help: ArgumentHelp("Feature cache (SQLite).", discussion: "Default: $XDG_CACHE_HOME/headtune/features.sqlite or ~/.cache/headtune/features.sqlite."),
            completion: .file())
    var cache: String?

    @Flag(help: "Extract every feature again and store nothing.")
    var noCache = false

    func open() throws -> FeatureCache? {
        guard !noCache else { return nil }
        let cache = try FeatureCache(path: self.cache ?? FeatureCache.defaultPath)
        if let aside = cache.recoveredFrom {
            printError("headtune: \(cache.path) was not a readable feature cache; moved it to \(aside) and started a new one")
        }
        return cache
    }
}

/// How an evaluation report is shown.
struct ReportOptions: ParsableArguments {
    enum Format: String, ExpressibleByArgument, CaseIterable { case text, json }

    @Option(help: "Report on stdout: text or json (keys accuracy, balanced_accuracy, macro_f1, log_loss, ece, per_class, confusion_matrix, misclassified; train adds model_card).")
    var format: Format = .text

    @Option(help: "Also write a self-contained HTML report (heat map, per-class bars, thumbnails of mistakes; train: the model card).", completion: .file())
    var report: String?

    @Option(help: "Also write the confusion matrix (and with train the loss, accuracy, L2 and unknown-score charts) as SVG files into this directory.",
            completion: .directory)
    var plots: String?

    @Flag(help: "Show progress bars on stderr even when it is not a terminal.")
    var progress = false

    /// Fails before any work if --report or --plots cannot be written.
    func checkWritable() throws {
        if let report { try AtomicFile.checkWritable(report) }
        if let plots {
            var isDirectory: ObjCBool = false
            let exists = FileManager.default.fileExists(atPath: plots, isDirectory: &isDirectory)
            if exists && !isDirectory.boolValue { throw ValidationError("--plots \(plots) is a file, not a directory") }
            try AtomicFile.checkWritable(exists ? plots + "/confusion.svg" : plots)
        }
    }

    func emit(_ report: ClassificationReport, outOfDistribution: OutOfDistributionReport? = nil, title: String, maxPixels: Int,
              card: ModelCard? = nil) throws {
        switch format {
        case .text: print(report.text(title: title) + (outOfDistribution?.text() ?? ""), terminator: "")
        case .json:
            print(try report.jsonText(card: card, adding: outOfDistribution.map { [("out_of_distribution", $0)] } ?? []), terminator: "")
        }
        if let path = self.report {
            let sink = try OutputSink(path: path)
            sink.write(report.html(title: title, maxPixels: maxPixels, card: card))
            try sink.commit()
            printError("headtune: wrote \(path)")
        }
        if let directory = plots {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            let charts = [report.confusionChart()] + (card?.charts() ?? [])
            for chart in charts {
                let sink = try OutputSink(path: (directory as NSString).appendingPathComponent(chart.name))
                sink.write(chart.svg)
                try sink.commit()
            }
            printError("headtune: wrote \(charts.map(\.name).joined(separator: ", ")) into \(directory)")
        }
    }
}

/// Extraction with a progress bar per phase, on stderr.
func extractionProgress(force: Bool) -> (String, Int, Int) -> Void {
    var bar: ProgressBar?
    var phase = ""
    return { name, done, total in
        if name != phase || bar == nil {
            bar?.finish()
            phase = name
            bar = ProgressBar(total: total, unit: "images", force: force)
            if force || isatty(STDERR_FILENO) != 0 { printError("headtune: extracting \(name) of \(total) image view(s)") }
        }
        if done > 0 { bar?.advance() }
        if done == total { bar?.finish(); bar = nil; phase = "" }
    }
}
