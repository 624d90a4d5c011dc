import Foundation
import Training

extension ModelCard {
    static let trainColour = "#4a7bd0", validationColour = "#e08a1e"

    /// The card's charts as SVG documents, by file name: loss.svg and accuracy.svg (per epoch, train
    /// and validation), l2.svg (the cross-validation curve, when L2 was chosen), unknown-scores.svg
    /// (validation scores against the threshold, with a detector and validation images).
    public func charts() -> [(name: String, svg: String)] {
        var charts: [(String, String)] = []
        if !epochs.isEmpty {
            let x = epochs.map { Double($0.epoch) }
            func series(_ name: String, _ colour: String, _ values: [Double?], dashed: Bool = false) -> SVGChart.Series {
                SVGChart.Series(name: name, colour: colour, points: zip(x, values).compactMap { a, b in b.map { (a, $0) } }, dashed: dashed)
            }
            charts.append(("loss.svg", SVGChart.lines(
                title: "Loss per epoch", xLabel: "epoch (L-BFGS: iteration)", yLabel: "cross-entropy",
                series: [series("train", Self.trainColour, epochs.map(\.trainLoss)),
                         series("validation", Self.validationColour, epochs.map(\.validationLoss), dashed: true)],
                markX: Double(bestEpoch), markLabel: "best \(bestEpoch)")))
            charts.append(("accuracy.svg", SVGChart.lines(
                title: "Accuracy per epoch", xLabel: "epoch (L-BFGS: iteration)", yLabel: "accuracy",
                series: [series("train", Self.trainColour, epochs.map(\.trainAccuracy)),
                         series("validation", Self.validationColour, epochs.map(\.validationAccuracy), dashed: true)],
                markX: Double(bestEpoch), markLabel: "best \(bestEpoch)")))
        }
        if !l2Curve.isEmpty {
            charts.append(("l2.svg", SVGChart.lines(
                title: "L2 strength by cross-validation", xLabel: "L2 (log scale)", yLabel: "held-out accuracy",
                series: [SVGChart.Series(name: "held-out accuracy", colour: Self.trainColour,
                                         points: l2Curve.map { (Double($0.l2), $0.accuracy) })],
                logX: true, markX: settings.l2.map(Double.init), markLabel: "chosen \(settings.l2.map { "\($0)" } ?? "")")))
        }
        if let flag = unknownFlag {
            charts.append(("unknown-scores.svg", SVGChart.histogram(
                title: "Unknown flag: validation images' scores", xLabel: "k-NN distance score (higher: less like the training images)",
                edges: flag.histogramEdges, counts: flag.histogramCounts, threshold: flag.threshold)))
        }
        return charts
    }

    /// The HTML sections for the report page (before its confusion matrix).
    func htmlSections() -> String {
        let e = SVGChart.escape
        var h = "<h2>Head</h2><table class=\"settings\">"
        var rows: [(String, String)] = [
            ("file", "\(headFile) (\(headBytes) bytes)"), ("sha256", headSHA256),
            ("encoder", settings.encoder), ("features", "\(settings.featureSet) (\(settings.features) values per image)"),
            ("geometry", "\(settings.policy) to \(settings.inputSize)x\(settings.inputSize), test-time flip \(settings.testTimeFlip ? "on" : "off")"
                + (settings.augment.isEmpty ? "" : ", augment \(settings.augment.joined(separator: ", "))")),
            ("head", "\(settings.head), \(settings.optimizer)"),
        ]
        if let l2 = settings.l2 { rows.append(("L2", "\(l2) (\(settings.l2ChosenBy ?? ""))")) }
        if let rate = settings.learningRate { rows.append(("learning rate", "\(rate)")) }
        rows.append(("seed", "\(settings.seed)"))
        rows.append(("best epoch", "\(bestEpoch) of \(epochs.count)"))
        if let flag = unknownFlag {
            rows.append(("unknown flag", String(format: "%@, k = %d, threshold %.4f (the %.0fth percentile of the %@ scores); %d of the validation images flagged",
                                                flag.method, flag.k, flag.threshold, flag.percentile, flag.calibration, flag.validationFlagged)))
        } else {
            rows.append(("unknown flag", "none"))
        }
        for (name, value) in rows { h += "<tr><th class=\"l\">\(e(name))</th><td>\(e(value))</td></tr>" }
        h += "</table><h2>Data</h2><table><tr><th class=\"l\">class</th><th>train</th><th>validation</th></tr>"
        for c in classes { h += "<tr><td class=\"l\">\(e(c.label))</td><td>\(c.train)</td><td>\(c.validation)</td></tr>" }
        h += "<tr><th class=\"l\">all</th><th>\(classes.reduce(0) { $0 + $1.train })</th><th>\(classes.reduce(0) { $0 + $1.validation })</th></tr></table>"
        if skippedFiles > 0 { h += "<p>\(skippedFiles) unreadable file(s) skipped.</p>" }
        let charts = self.charts()
        if !charts.isEmpty {
            h += "<h2>Training</h2><p class=\"legend\"><span style=\"background:\(Self.trainColour)\"></span>train"
                + "<span style=\"background:\(Self.validationColour)\"></span>validation (dashed); the grey line marks the epoch kept or the L2 chosen.</p>"
                + "<div class=\"charts\">" + charts.map(\.svg).joined() + "</div>"
        }
        return h
    }
}

extension ClassificationReport {
    /// confusion.svg: the confusion matrix for `--plots DIR`.
    public func confusionChart() -> (name: String, svg: String) {
        ("confusion.svg", SVGChart.confusionMatrix(labels: labels, matrix: confusionMatrix))
    }
}
