import Foundation

/// Small self-contained SVG charts for the report and `--plots DIR` (no script, no external font or
/// stylesheet, so a file opens the same in a browser, a slide or a paper).
public enum SVGChart {
    public struct Series: Sendable {
        public var name: String
        public var colour: String
        public var points: [(x: Double, y: Double)]
        public var dashed: Bool

        public init(name: String, colour: String, points: [(x: Double, y: Double)], dashed: Bool = false) {
            self.name = name
            self.colour = colour
            self.points = points
            self.dashed = dashed
        }
    }

    static let width = 480.0, height = 280.0
    static let left = 56.0, right = 16.0, top = 44.0, bottom = 44.0

    static func escape(_ s: String) -> String {
        s.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
            .replacingOccurrences(of: ">", with: "&gt;").replacingOccurrences(of: "\"", with: "&quot;")
    }

    static func number(_ x: Double) -> String { String(format: "%.1f", x) }

    static func tick(_ x: Double) -> String {
        if x != 0, abs(x) < 1e-2 || abs(x) >= 1e4 { return String(format: "%.0e", x) }
        return String(format: abs(x) < 1 ? "%.2f" : "%.4g", x)
    }

    /// Lines over a shared x axis, with a legend; `logX` puts x on a log10 scale (an L2 grid);
    /// `markX` draws a vertical line (the chosen value, the best epoch).
    public static func lines(title: String, xLabel: String, yLabel: String, series: [Series], logX: Bool = false,
                             markX: Double? = nil, markLabel: String = "") -> String {
        let all = series.flatMap(\.points)
        func tx(_ x: Double) -> Double { logX ? log10(max(x, 1e-12)) : x }
        let xs = all.map { tx($0.x) }, ys = all.map(\.y)
        let x0 = xs.min() ?? 0, x1 = max(xs.max() ?? 1, x0 + 1e-9)
        let y0 = min(ys.min() ?? 0, 0), y1 = max(ys.max() ?? 1, y0 + 1e-9)
        let plotW = width - left - right, plotH = height - top - bottom
        func px(_ x: Double) -> Double { left + (tx(x) - x0) / (x1 - x0) * plotW }
        func py(_ y: Double) -> Double { top + (1 - (y - y0) / (y1 - y0)) * plotH }
        var svg = header(title: title)
        svg += axes(xLabel: xLabel, yLabel: yLabel)
        for i in 0...4 {
            let y = y0 + Double(i) / 4 * (y1 - y0)
            svg += "<line x1=\"\(number(left))\" x2=\"\(number(width - right))\" y1=\"\(number(py(y)))\" y2=\"\(number(py(y)))\" stroke=\"#e4e4e4\"/>"
            svg += "<text x=\"\(number(left - 6))\" y=\"\(number(py(y) + 4))\" text-anchor=\"end\">\(tick(y))</text>"
        }
        for i in 0...4 {
            let t = x0 + Double(i) / 4 * (x1 - x0)
            let shown = logX ? tick(pow(10, t)) : tick(t)
            svg += "<text x=\"\(number(left + Double(i) / 4 * plotW))\" y=\"\(number(height - bottom + 16))\" text-anchor=\"middle\">\(shown)</text>"
        }
        if let markX {
            svg += "<line x1=\"\(number(px(markX)))\" x2=\"\(number(px(markX)))\" y1=\"\(number(top))\" y2=\"\(number(height - bottom))\" stroke=\"#888\" stroke-dasharray=\"3 3\"/>"
            let rightHalf = px(markX) > left + plotW / 2
            svg += "<text x=\"\(number(px(markX) + (rightHalf ? -4 : 4)))\" y=\"\(number(top + 12))\" text-anchor=\"\(rightHalf ? "end" : "start")\">\(escape(markLabel))</text>"
        }
        for s in series where !s.points.isEmpty {
            let path = s.points.map { "\(number(px($0.x))),\(number(py($0.y)))" }.joined(separator: " ")
            svg += "<polyline fill=\"none\" stroke=\"\(s.colour)\" stroke-width=\"2\"\(s.dashed ? " stroke-dasharray=\"6 3\"" : "") points=\"\(path)\"/>"
            if s.points.count <= 20 {
                for p in s.points { svg += "<circle cx=\"\(number(px(p.x)))\" cy=\"\(number(py(p.y)))\" r=\"2.5\" fill=\"\(s.colour)\"/>" }
            }
        }
        svg += legend(series.map { ($0.name, $0.colour, $0.dashed) })
        return svg + "</svg>\n"
    }

    /// Bars of a histogram (`edges` one longer than `counts`) with a vertical threshold line.
    public static func histogram(title: String, xLabel: String, edges: [Float], counts: [Int], threshold: Float?,
                                 thresholdLabel: String = "threshold") -> String {
        guard edges.count == counts.count + 1, let low = edges.first, let high = edges.last, high > low else {
            return header(title: title) + "<text x=\"20\" y=\"60\">no scores</text></svg>\n"
        }
        let plotW = width - left - right, plotH = height - top - bottom
        let peak = Double(max(counts.max() ?? 1, 1))
        func px(_ x: Float) -> Double { left + Double((x - low) / (high - low)) * plotW }
        var svg = header(title: title) + axes(xLabel: xLabel, yLabel: "images")
        for (i, n) in counts.enumerated() where n > 0 {
            let h = Double(n) / peak * plotH
            let over = threshold.map { edges[i] >= $0 } ?? false
            svg += "<rect x=\"\(number(px(edges[i]) + 0.5))\" y=\"\(number(top + plotH - h))\" width=\"\(number(max(px(edges[i + 1]) - px(edges[i]) - 1, 1)))\" height=\"\(number(h))\" fill=\"\(over ? "#d2322d" : "#4a7bd0")\"><title>\(tick(Double(edges[i])))-\(tick(Double(edges[i + 1]))): \(n)</title></rect>"
        }
        for i in 0...4 {
            let t = low + Float(i) / 4 * (high - low)
            svg += "<text x=\"\(number(px(t)))\" y=\"\(number(height - bottom + 16))\" text-anchor=\"middle\">\(tick(Double(t)))</text>"
        }
        svg += "<text x=\"\(number(left - 6))\" y=\"\(number(top + 4))\" text-anchor=\"end\">\(Int(peak))</text>"
        if let threshold {
            svg += "<line x1=\"\(number(px(threshold)))\" x2=\"\(number(px(threshold)))\" y1=\"\(number(top))\" y2=\"\(number(height - bottom))\" stroke=\"#222\" stroke-width=\"1.5\" stroke-dasharray=\"4 3\"/>"
            // Left of the line when it is in the right half, so the label stays inside the chart.
            let rightHalf = px(threshold) > left + plotW / 2
            svg += "<text x=\"\(number(px(threshold) + (rightHalf ? -4 : 4)))\" y=\"\(number(top + 12))\" text-anchor=\"\(rightHalf ? "end" : "start")\">\(escape(thresholdLabel)) \(tick(Double(threshold)))</text>"
        }
        svg += legend([("below the threshold: known", "#4a7bd0", false), ("above: flagged unknown", "#d2322d", false)])
        return svg + "</svg>\n"
    }

    /// The confusion matrix as a heat map: rows true class, columns predicted, colour the share of the row
    /// (green on the diagonal, red elsewhere), counts in the cells.
    public static func confusionMatrix(labels: [String], matrix: [[Int]]) -> String {
        let n = labels.count
        let cell = max(14.0, min(40.0, 520.0 / Double(max(n, 1))))
        let margin = min(160.0, 7.0 * Double(labels.map(\.count).max() ?? 4) + 12)
        let size = margin + cell * Double(n) + 16
        var svg = "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(number(size))\" height=\"\(number(size + 40))\" viewBox=\"0 0 \(number(size)) \(number(size + 40))\" font-family=\"sans-serif\" font-size=\"11\">"
        svg += "<rect width=\"100%\" height=\"100%\" fill=\"#fff\"/>"
        svg += "<text x=\"8\" y=\"16\" font-size=\"13\" font-weight=\"bold\">Confusion matrix (rows: true class, columns: predicted)</text>"
        let origin = margin
        for (t, row) in matrix.enumerated() {
            let total = max(row.reduce(0, +), 1)
            let y = origin + Double(t) * cell
            svg += "<text x=\"\(number(margin - 4))\" y=\"\(number(y + cell / 2 + 4))\" text-anchor=\"end\">\(escape(labels[t]))</text>"
            for (p, count) in row.enumerated() {
                let share = Double(count) / Double(total)
                let colour = t == p ? "rgba(40,140,70,\(String(format: "%.3f", share)))" : "rgba(210,50,40,\(String(format: "%.3f", share)))"
                let x = origin + Double(p) * cell
                svg += "<rect x=\"\(number(x))\" y=\"\(number(y))\" width=\"\(number(cell - 1))\" height=\"\(number(cell - 1))\" fill=\"\(colour)\" stroke=\"#eee\"><title>\(escape(labels[t])) -> \(escape(labels[p])): \(count)</title></rect>"
                if count > 0 && cell >= 18 {
                    svg += "<text x=\"\(number(x + cell / 2))\" y=\"\(number(y + cell / 2 + 4))\" text-anchor=\"middle\">\(count)</text>"
                }
            }
        }
        for (p, label) in labels.enumerated() {
            let x = origin + Double(p) * cell + cell / 2
            svg += "<text transform=\"translate(\(number(x + 4)),\(number(origin - 4))) rotate(-90)\">\(escape(label))</text>"
        }
        let legendY = origin + cell * Double(n) + 20
        svg += "<rect x=\"8\" y=\"\(number(legendY))\" width=\"12\" height=\"12\" fill=\"rgb(40,140,70)\"/><text x=\"24\" y=\"\(number(legendY + 10))\">right (share of the row)</text>"
        svg += "<rect x=\"170\" y=\"\(number(legendY))\" width=\"12\" height=\"12\" fill=\"rgb(210,50,40)\"/><text x=\"186\" y=\"\(number(legendY + 10))\">wrong (share of the row)</text>"
        return svg + "</svg>\n"
    }

    static func header(title: String) -> String {
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(Int(width))\" height=\"\(Int(height))\" viewBox=\"0 0 \(Int(width)) \(Int(height))\" font-family=\"sans-serif\" font-size=\"11\">"
            + "<rect width=\"100%\" height=\"100%\" fill=\"#fff\"/>"
            + "<text x=\"\(number(left))\" y=\"18\" font-size=\"13\" font-weight=\"bold\">\(escape(title))</text>"
    }

    static func axes(xLabel: String, yLabel: String) -> String {
        "<line x1=\"\(number(left))\" x2=\"\(number(width - right))\" y1=\"\(number(height - bottom))\" y2=\"\(number(height - bottom))\" stroke=\"#444\"/>"
            + "<line x1=\"\(number(left))\" x2=\"\(number(left))\" y1=\"\(number(top))\" y2=\"\(number(height - bottom))\" stroke=\"#444\"/>"
            + "<text x=\"\(number(left + (width - left - right) / 2))\" y=\"\(number(height - 8))\" text-anchor=\"middle\">\(escape(xLabel))</text>"
            + "<text transform=\"translate(14,\(number(top + (height - top - bottom) / 2))) rotate(-90)\" text-anchor=\"middle\">\(escape(yLabel))</text>"
    }

    static func legend(_ entries: [(String, String, Bool)]) -> String {
        // Between the title and the plot, so it never covers a line.
        var svg = "", x = left
        let y = 20.0
        for (name, colour, dashed) in entries {
            svg += "<line x1=\"\(number(x))\" x2=\"\(number(x + 18))\" y1=\"\(number(y + 8))\" y2=\"\(number(y + 8))\" stroke=\"\(colour)\" stroke-width=\"3\"\(dashed ? " stroke-dasharray=\"5 3\"" : "")/>"
            svg += "<text x=\"\(number(x + 22))\" y=\"\(number(y + 12))\">\(escape(name))</text>"
            x += 30 + Double(name.count) * 6
        }
        return svg
    }
}
