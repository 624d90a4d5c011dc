import Foundation
import Imaging
import Training

extension ClassificationReport {
    /// Pretty-printed JSON with sorted keys (`--format json`); with a model card under `model_card`, and
    /// further top-level members beside the report's own keys (e.g. `out_of_distribution`).
    public func jsonText(card: ModelCard? = nil, adding extra: [(key: String, value: any Encodable)] = []) throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        let members = (card.map { [(key: "model_card", value: $0 as any Encodable)] } ?? []) + extra
        return String(decoding: try encoder.encode(WithMembers(report: self, members: members)), as: UTF8.self) + "\n"
    }

    /// The report's own keys and the extra members beside them, in one object.
    private struct WithMembers: Encodable {
        var report: ClassificationReport
        var members: [(key: String, value: any Encodable)]

        private struct Key: CodingKey {
            var stringValue: String
            var intValue: Int? { nil }
            init(stringValue: String) { self.stringValue = stringValue }
            init?(intValue: Int) { nil }
        }

        func encode(to encoder: Encoder) throws {
            try report.encode(to: encoder)
            var container = encoder.container(keyedBy: Key.self)
            for member in members { try container.encode(member.value, forKey: Key(stringValue: member.key)) }
        }
    }

    /// A class's metrics as shown: nil (n/a) where undefined. With no image of the class, recall and F1
    /// are undefined, and so is precision when nothing was predicted as it either (a zero there would
    /// read as a class the head always gets wrong).
    func shownMetrics(_ index: Int) -> (precision: Double?, recall: Double?, f1: Double?) {
        let c = perClass[index]
        guard c.support == 0 else { return (c.precision, c.recall, c.f1) }
        let predictedAsIt = confusionMatrix.reduce(0) { $0 + $1[index] }
        return (predictedAsIt > 0 ? c.precision : nil, nil, nil)
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
        for (index, c) in perClass.enumerated() {
            let shown = shownMetrics(index)
            func column(_ value: Double?, _ width: Int) -> String {
                let text = value.map { String(format: "%.3f", $0) } ?? "n/a"
                return String(repeating: " ", count: max(0, width - text.count)) + text
            }
            lines.append("  \(cut(c.label))  \(column(shown.precision, 9))  \(column(shown.recall, 6))  \(column(shown.f1, 5))  "
                         + String(format: "%7d", c.support))
        }
        if perClass.contains(where: { $0.support == 0 }) {
            lines.append("  (n/a: no image of that class here, or none predicted as it)")
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
    /// the most confident mistakes (embedded PNG data URIs, so the file can be mailed as is; a click
    /// enlarges one). With a model card (`headtune train`): the head's settings and file, the data per
    /// class, training curves, the L2 cross-validation curve, the unknown flag's threshold against the
    /// validation scores, and beside each mistake a training image of the class it was taken for.
    public func html(title: String, maxPixels: Int = DecodeOptions.defaultMaxPixels, card: ModelCard? = nil) -> String {
        let escape = SVGChart.escape
        func percent(_ x: Double) -> String { String(format: "%.1f%%", x * 100) }
        var h = """
            <!doctype html><html><head><meta charset="utf-8"><title>\(escape(title))</title><style>
            body{font:14px system-ui,sans-serif;margin:24px;color:#222}h1{font-size:20px}h2{font-size:16px;margin-top:28px}
            .kpi{display:inline-block;margin:0 18px 12px 0;padding:10px 14px;background:#f3f5f8;border-radius:6px}
            .kpi b{display:block;font-size:20px}table{border-collapse:collapse}td,th{padding:3px 6px;text-align:right}
            th.l,td.l{text-align:left}.cm td{min-width:22px;font-size:11px;border:1px solid #fff}
            .cm th.v{writing-mode:vertical-rl;transform:rotate(180deg);font-size:11px;text-align:left}
            .bar{height:10px;background:#4a7bd0;display:inline-block}.na{color:#888}.bars td{font-size:12px}
            .mis{display:inline-block;margin:6px;vertical-align:top;font-size:11px;word-break:break-all;max-width:310px}
            .mis img{max-width:140px;max-height:140px;margin:0 4px 3px 0;border:1px solid #ccc;cursor:zoom-in;vertical-align:top}
            .mis img.big{max-width:320px;max-height:320px;cursor:zoom-out}.legend span{display:inline-block;width:12px;height:12px;margin:0 4px 0 12px;vertical-align:middle}
            .settings td{text-align:left}.charts svg{margin:0 12px 12px 0;border:1px solid #eee}
            </style></head><body><h1>\(escape(title))</h1>

            """
        for (name, value) in [("accuracy", percent(accuracy)), ("balanced accuracy", percent(balancedAccuracy)),
                              ("macro-F1", String(format: "%.3f", macroF1)), ("log loss", String(format: "%.3f", logLoss)),
                              ("ECE", String(format: "%.3f", ece)), ("images", String(count))] {
            h += "<div class=\"kpi\">\(name)<b>\(value)</b></div>"
        }
        if let card { h += card.htmlSections() }
        h += "<h2>Confusion matrix</h2><p class=\"legend\">Rows: true class; columns: predicted. Colour: share of the row,"
            + "<span style=\"background:rgb(40,140,70)\"></span>right (diagonal)<span style=\"background:rgb(210,50,40)\"></span>wrong</p><table class=\"cm\"><tr><th></th>"
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
        for (index, c) in perClass.enumerated() {
            let shown = shownMetrics(index)
            func bar(_ x: Double?) -> String {
                guard let x else { return "<span class=\"na\">n/a</span>" }
                return "<span class=\"bar\" style=\"width:\(Int(x * 120))px\"></span> \(String(format: "%.2f", x))"
            }
            h += "<tr><td class=\"l\">\(escape(c.label))</td><td>\(c.support)</td><td class=\"l\">\(bar(shown.precision))</td><td class=\"l\">\(bar(shown.recall))</td><td class=\"l\">\(bar(shown.f1))</td></tr>"
        }
        h += "</table><h2>Most confident mistakes</h2>"
        if card != nil { h += "<p>Each mistake (left) beside a training image of the class it was taken for (right). Click a thumbnail to enlarge it.</p>" }
        if misclassified.isEmpty { h += "<p>None.</p>" }
        let examples = Dictionary((card?.classes ?? []).compactMap { c in c.example.map { (c.label, $0) } }, uniquingKeysWith: { a, _ in a })
        for m in misclassified {
            let example = examples[m.predicted].map { thumbnail($0, maxPixels: maxPixels, caption: "a training \(m.predicted)") } ?? ""
            h += "<div class=\"mis\">\(thumbnail(m.path, maxPixels: maxPixels, caption: m.path))\(example)<br><b>\(escape(m.predicted))</b> "
                + "\(percent(m.confidence))<br>true: \(escape(m.truth))<br>\(escape(m.path))</div>"
        }
        return h + "</body></html>\n"
    }

    /// An embedded PNG (320 px on the long side, shown at 140 until clicked) of an image file that enlarges on click; empty if it cannot be read.
    func thumbnail(_ path: String, maxPixels: Int, caption: String) -> String {
        guard let decoded = try? ImageDecoder.decode(fileAt: path, options: DecodeOptions(maxPixels: maxPixels, minimumSide: 320)) else { return "" }
        let scale = 320 / Double(max(decoded.width, decoded.height))
        let image = scale < 1
            ? decoded.resized(width: max(1, Int(Double(decoded.width) * scale)), height: max(1, Int(Double(decoded.height) * scale)))
            : decoded
        return "<img src=\"data:image/png;base64,\(Data(PNGEncoder.encode(image)).base64EncodedString())\" title=\"\(SVGChart.escape(caption))\" "
            + "onclick=\"this.classList.toggle('big')\">"
    }
}
