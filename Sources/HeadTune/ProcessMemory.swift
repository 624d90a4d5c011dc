import Foundation

public enum ProcessMemory {
    /// This process's peak resident memory in MB. Reads VmHWM: getrusage's ru_maxrss keeps the
    /// parent's peak across fork+exec, which misreports a benchmark started from a big process.
    public static func peakResidentMB() -> Double {
        if let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8),
           let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmHWM:") }),
           let kilobytes = line.split(separator: " ").dropFirst().first.flatMap({ Double($0) }) {
            return kilobytes / 1024
        }
        var usage = rusage()
        getrusage(__rusage_who_t(RUSAGE_SELF.rawValue), &usage)
        return Double(usage.ru_maxrss) / 1024
    }
}
