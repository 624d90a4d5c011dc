import Foundation

/// Progress on stderr with count, rate and ETA. On a terminal: a one-line bar redrawn in place, taken
/// down before anything else is printed there (`clear`, `clearForStdout`) and redrawn with the next
/// step. Forced (`--progress`) when stderr is not a terminal: a plain line every few seconds, without
/// escape codes, so a log file reads cleanly. Otherwise silent, so pipes stay clean.
final class ProgressBar {
    private let total: Int
    private let unit: String
    /// stderr is a terminal: draw in place.
    private let interactive: Bool
    private let enabled: Bool
    /// stdout is a terminal too (usually the same one): records printed there would land on the bar's line.
    private let sharesTerminalWithStdout: Bool
    private let start = Date()
    private var lastDraw = Date.distantPast
    /// The bar is on the screen (interactive mode): `clear` takes it down, `advance` puts it back.
    private var visible = false
    /// The count the last line showed (a log line is not repeated by `finish`).
    private var shown = -1
    private(set) var done = 0

    /// How often a log line is written when stderr is not a terminal.
    static let logInterval: TimeInterval = 5

    init(total: Int, unit: String = "images", force: Bool = false) {
        self.total = total
        self.unit = unit
        interactive = isatty(STDERR_FILENO) != 0
        enabled = force || interactive
        sharesTerminalWithStdout = interactive && isatty(STDOUT_FILENO) != 0
    }

    func advance(by count: Int = 1) {
        done += count
        guard enabled else { return }
        let now = Date()
        let interval = interactive ? 0.1 : Self.logInterval
        if done == total || !visible && interactive || now.timeIntervalSince(lastDraw) >= interval {
            lastDraw = now
            draw(now)
        }
    }

    /// Takes the bar off the screen before another line is printed to stderr.
    func clear() {
        guard interactive, visible else { return }
        FileHandle.standardError.write(Data("\r\u{1B}[K".utf8))
        visible = false
    }

    /// Takes the bar off the screen before a record is printed to stdout, when that is the same terminal.
    func clearForStdout() {
        if sharesTerminalWithStdout { clear() }
    }

    func finish() {
        guard enabled else { return }
        if interactive || shown != done { draw(Date()) }
        if interactive { FileHandle.standardError.write(Data("\n".utf8)) }
        visible = false
    }

    private func draw(_ now: Date) {
        let elapsed = max(now.timeIntervalSince(start), 1e-6)
        let rate = Double(done) / elapsed
        let eta = rate > 0 ? Double(total - done) / rate : 0
        shown = done
        let figures = String(format: "%d/%d %@  %.1f %@/s  ETA %@", done, total, unit, rate, unit, Self.clock(eta))
        guard interactive else {
            FileHandle.standardError.write(Data("headtune: \(figures)\n".utf8))
            return
        }
        let fraction = total > 0 ? Double(done) / Double(total) : 1
        let width = 24
        let filled = Int(fraction * Double(width))
        let bar = String(repeating: "=", count: filled) + (filled < width ? ">" : "")
            + String(repeating: " ", count: max(0, width - filled - 1))
        FileHandle.standardError.write(Data("\r\u{1B}[K[\(bar)] \(figures)".utf8))
        visible = true
    }

    static func clock(_ seconds: Double) -> String {
        let s = Int(seconds.rounded())
        return s >= 3600 ? String(format: "%d:%02d:%02d", s / 3600, s / 60 % 60, s % 60)
            : String(format: "%d:%02d", s / 60, s % 60)
    }
}
