import Foundation
import Weights

/// What an earlier run of `classify --output FILE` already finished, for `--resume`.
///
/// The earlier records come from `FILE.partial` (an interrupted run) or else `FILE` (a finished run
/// given more inputs). Records with predictions are kept and their paths skipped; error records are
/// dropped so those files are tried again; a last line cut off mid-write is dropped too. The kept
/// records are written back to `FILE.partial`, and the new run appends to it. An interrupted run
/// wrote a prefix of its inputs in order, so the resumed file equals an uninterrupted run's.
public struct ResumeLog {
    public enum Format: Sendable { case jsonl, csv }

    /// How many finished records each path has (an input list may name a file more than once).
    public private(set) var finished: [String: Int] = [:]
    /// Records carried over.
    public private(set) var records = 0
    /// Error records and cut-off lines dropped.
    public private(set) var dropped = 0
    /// The carried-over file starts with the CSV header.
    public private(set) var hasHeader = false

    /// Nothing finished (a fresh run).
    public init() {}

    /// Reads the earlier output of `path` and rewrites `OutputSink.partialPath(for: path)` with its
    /// finished records. No earlier output: nothing finished.
    public static func prepare(outputPath path: String, format: Format) throws -> ResumeLog {
        let partial = OutputSink.partialPath(for: path)
        let fileManager = FileManager.default
        guard let source = [partial, path].first(where: { fileManager.fileExists(atPath: $0) }) else { return ResumeLog() }
        guard let data = fileManager.contents(atPath: source) else {
            throw HeadTuneError.outputFailed(path: path, reason: "cannot read \(source) to resume from it")
        }
        var log = ResumeLog()
        let kept: Data
        switch format {
        case .jsonl: kept = log.keepJSONLines(data)
        case .csv: kept = try log.keepCSVRows(data, source: source)
        }
        do { try AtomicFile.write(kept, to: partial) } catch {
            throw HeadTuneError.outputFailed(path: path, reason: error.localizedDescription)
        }
        return log
    }

    /// Skips, in order, as many occurrences of each path as have finished records.
    public func remaining(_ paths: [String]) -> [String] {
        var left = finished
        return paths.filter { path in
            guard let count = left[path], count > 0 else { return true }
            left[path] = count - 1
            return false
        }
    }

    mutating func keepJSONLines(_ data: Data) -> Data {
        var kept = Data()
        var start = data.startIndex
        while let newline = data[start...].firstIndex(of: UInt8(ascii: "\n")) {
            let line = data[start...newline]
            start = data.index(after: newline)
            guard let object = try? JSONSerialization.jsonObject(with: line) as? [String: Any],
                  let path = object["path"] as? String, object["error"] == nil, object["predictions"] != nil else {
                if line.count > 1 { dropped += 1 }
                continue
            }
            finished[path, default: 0] += 1
            records += 1
            kept.append(line)
        }
        if start < data.endIndex { dropped += 1 }
        return kept
    }

    /// RFC 4180 rows (quoted fields may hold commas, quotes and newlines); a record is its rows of
    /// one path, finished when none of them carries an error.
    mutating func keepCSVRows(_ data: Data, source: String) throws -> Data {
        var kept = Data()
        var rows: [(fields: [String], text: Data)] = []
        var fields: [String] = [], field = [UInt8](), quoted = false, rowStart = data.startIndex
        var index = data.startIndex
        while index < data.endIndex {
            let byte = data[index]
            if quoted {
                if byte == UInt8(ascii: "\"") {
                    let next = data.index(after: index)
                    if next < data.endIndex, data[next] == UInt8(ascii: "\"") { field.append(byte); index = next } else { quoted = false }
                } else { field.append(byte) }
            } else if byte == UInt8(ascii: "\"") {
                quoted = true
            } else if byte == UInt8(ascii: ",") {
                fields.append(String(decoding: field, as: UTF8.self)); field = []
            } else if byte == UInt8(ascii: "\n") {
                fields.append(String(decoding: field, as: UTF8.self)); field = []
                rows.append((fields, data[rowStart...index]))
                fields = []
                rowStart = data.index(after: index)
            } else if byte != UInt8(ascii: "\r") {
                field.append(byte)
            }
            index = data.index(after: index)
        }
        if rowStart < data.endIndex { dropped += 1 }
        // The header names the columns (6, or 8 with a head's unknown,ood_score); error is the last.
        guard let header = rows.first, header.fields.first == "path", header.fields.last == "error" else {
            throw HeadTuneError.outputFailed(path: source, reason: "not a classify CSV (no path,...,error header); cannot resume from it")
        }
        let columns = header.fields.count
        hasHeader = true
        kept.append(header.text)
        rows.removeFirst()
        // A record is one row per rank (1, 2, ...) of one path, or one error row.
        var i = 0
        while i < rows.count {
            var j = i + 1
            while j < rows.count, rows[j].fields.first == rows[i].fields.first, rows[j].fields.count > 1,
                  rows[j].fields[1] == String(j - i + 1) { j += 1 }
            let record = rows[i..<j]
            // Starting at rank 1: a lone rank-2 row (not something classify writes) would otherwise count as a
            // record, and join the previous one of its path when an error record between them is dropped.
            if record.allSatisfy({ $0.fields.count == columns && $0.fields[columns - 1].isEmpty && !$0.fields[1].isEmpty }),
               rows[i].fields[1] == "1" {
                finished[rows[i].fields[0], default: 0] += 1
                records += 1
                for row in record { kept.append(row.text) }
            } else {
                dropped += 1
            }
            i = j
        }
        return kept
    }
}
