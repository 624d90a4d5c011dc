import Foundation
import Imaging
import Training

extension ClassificationReport {
    /// Pretty-printed JSON with sorted keys (`--format json`).
    public func jsonText() throws -> String {
        try jsonText(adding: Optional<(String, OutOfDistributionReport)>.none)
    }

    /// The JSON report with one more top-level member (e.g. `out_of_distribution`).
    public func jsonText<Extra: Encodable>(adding extra: (key: String, value: Extra)?) throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        guard let extra else { return String(decoding: try encoder.encode(self), as: UTF8.self) + "\n" }
        var object = try JSONSerialization.jsonObject(with: encoder.encode(self)) as! [String: Any]
        object[extra.key] = try JSONSerialization.jsonObject(with: encoder.encode(extra.value))
        let data = try JSONSerialization.data(withJSONObject: object, options: [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes])
        return String(decoding: data, as: UTF8.self) + "\n"
    }

    /// The human-readable report: summary, per-class table, confusion matrix, worst mistakes.
    public func text(title: String) -> String {
        var lines = ["\(title): \(count) images, \(labels.count) classes"]
        lines.append(String(format: "  accuracy %.4f   balanced accuracy %.4f   macro-F1 %.4f", accuracy, balancedAccuracy, macroF1))
        lines.append(String(format: "  log loss %.4f   expected calibration error %.4f", logLoss, ece))
        let width = min(max(labels.map(\.count).max() ?? 5, 5), 40)
        func cut(_ s: String) -> String { s.count > width ? String(s.prefix(width - 1)) + "…" : s.padding(toLength: width, withPad: " ", startingAt: 0) }
        lines.append("")
        lines.append("  \(cut("class"))  precision  recall     f1  support")
        for c in perClass {
            lines.append("  \(cut(c.label))  " + String(format: "%9.3f  %6.3f  %5.3f  %7d", c.precision, c.recall, c.f1, c.support))
        }
        lines.append("")
        if labels.count <= 12 {
            lines.append("  confusion matrix (rows: true class, columns: predicted, in the order above)")
            let cell = max(4, String(confusionMatrix.flatMap { $0 }.max() ?? 0).count + 1)
            for (c, row) in confusionMatrix.enumerated() {
                lines.append("  \(cut(labels[c]))" + row.map { String(repeating: " ", count: max(0, cell - String($0).count)) + String($0) }.joined())
            }
        } else {
            var pairs: [(Int, Int, Int)] = []
            for (t, row) in confusionMatrix.enumerated() { for (p, n) in row.enumerated() where t != p && n > 0 { pairs.append((n, t, p)) } }
            pairs.sort { $0.0 != $1.0 ? $0.0 > $1.0 : ($0.1, $0.2) < ($1.1, $1.2) }
            lines.append("  most frequent confusions (\(labels.count) classes: the full matrix is in --format json and --report)")
            for (n, t, p) in pairs.prefix(10) { lines.append("  \(n) x \(labels[t]) -> \(labels[p])") }
        }
        if !misclassified.isEmpty {
            lines.append("")
            lines.append("  most confident mistakes")
            for m in misclassified { lines.append(String(format: "  %5.1f%%  %@  (true %@, predicted %@)", m.confidence * 100, m.path, m.truth, m.predicted)) }
        }
        return lines.joined(separator: "\n") + "\n"
    }

    /// A self-contained HTML page: summary, confusion-matrix heat map, per-class bars, thumbnails of
    /// the most confident mistakes (embedded PNG data URIs, so the file can be mailed as is).
    public func html(title: String, maxPixels: Int = DecodeOptions.defaultMaxPixels) -> String {
        func escape(_ s: String) -> String {
            s.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
                .replacingOccurrences(of: ">", with: "&gt;").replacingOccurrences(of: "\"", with: "&quot;")
        }
        func percent(_ x: Double) -> String { String(format: "%.1f%%", x * 100) }
        var h = """
            <!doctype html><html><head><meta charset="utf-8"><title>\(escape(title))</title><style>
            body{font:14px system-ui,sans-serif;margin:24px;color:#222}h1{font-size:20px}h2{font-size:16px;margin-top:28px}
            .kpi{display:inline-block;margin:0 18px 12px 0;padding:10px 14px;background:#f3f5f8;border-radius:6px}
            .kpi b{display:block;font-size:20px}table{border-collapse:collapse}td,th{padding:3px 6px;text-align:right}
            th.l,td.l{text-align:left}.cm td{min-width:22px;font-size:11px;border:1px solid #fff}
            .cm th.v{writing-mode:vertical-rl;transform:rotate(180deg);font-size:11px;text-align:left}
            .bar{height:10px;background:#4a7bd0;display:inline-block}.bars td{font-size:12px}
            .mis{display:inline-block;width:150px;margin:6px;vertical-align:top;font-size:11px;word-break:break-all}
            .mis img{max-width:140px;max-height:140px;display:block;margin-bottom:3px;border:1px solid #ccc}
            </style></head><body><h1>\(escape(title))</h1>

            """
        for (name, value) in [("accuracy", percent(accuracy)), ("balanced accuracy", percent(balancedAccuracy)),
                              ("macro-F1", String(format: "%.3f", macroF1)), ("log loss", String(format: "%.3f", logLoss)),
                              ("ECE", String(format: "%.3f", ece)), ("images", String(count))] {
            h += "<div class=\"kpi\">\(name)<b>\(value)</b></div>"
        }
        h += "<h2>Confusion matrix</h2><p>Rows: true class; columns: predicted. Colour: share of the row.</p><table class=\"cm\"><tr><th></th>"
        for label in labels { h += "<th class=\"v\">\(escape(label))</th>" }
        h += "</tr>"
        for (t, row) in confusionMatrix.enumerated() {
            let total = max(row.reduce(0, +), 1)
            h += "<tr><th class=\"l\">\(escape(labels[t]))</th>"
            for (p, n) in row.enumerated() {
                let share = Double(n) / Double(total)
                let colour = t == p ? "rgba(40,140,70,\(String(format: "%.3f", share)))" : "rgba(210,50,40,\(String(format: "%.3f", share)))"
                h += "<td style=\"background:\(colour)\" title=\"\(escape(labels[t])) → \(escape(labels[p])): \(n)\">\(n > 0 ? String(n) : "")</td>"
            }
            h += "</tr>"
        }
        h += "</table><h2>Per class</h2><table class=\"bars\"><tr><th class=\"l\">class</th><th>support</th><th class=\"l\">precision</th><th class=\"l\">recall</th><th class=\"l\">F1</th></tr>"
        for c in perClass {
            func bar(_ x: Double) -> String { "<span class=\"bar\" style=\"width:\(Int(x * 120))px\"></span> \(String(format: "%.2f", x))" }
            h += "<tr><td class=\"l\">\(escape(c.label))</td><td>\(c.support)</td><td class=\"l\">\(bar(c.precision))</td><td class=\"l\">\(bar(c.recall))</td><td class=\"l\">\(bar(c.f1))</td></tr>"
        }
        h += "</table><h2>Most confident mistakes</h2>"
        if misclassified.isEmpty { h += "<p>None.</p>" }
        for m in misclassified {
            var image = ""
            if let decoded = try? ImageDecoder.decode(fileAt: m.path, options: DecodeOptions(maxPixels: maxPixels, minimumSide: 140)) {
                let scale = 140 / Double(max(decoded.width, decoded.height))
                let thumbnail = scale < 1
                    ? decoded.resized(width: max(1, Int(Double(decoded.width) * scale)), height: max(1, Int(Double(decoded.height) * scale)))
                    : decoded
                image = "<img src=\"data:image/png;base64,\(Data(PNGEncoder.encode(thumbnail)).base64EncodedString())\">"
            }
            h += "<div class=\"mis\">\(image)<b>\(escape(m.predicted))</b> \(percent(m.confidence))<br>true: \(escape(m.truth))<br>\(escape(m.path))</div>"
        }
        return h + "</body></html>\n"
    }
}
