import Foundation

/// Which part of the data an image belongs to.
public enum DatasetSplit: String, Codable, Sendable {
    case train
    case validation
}

/// One labelled image.
public struct LabeledSample: Sendable, Equatable {
    public var path: String
    /// Index into `LabeledDataset.labels`.
    public var label: Int
    /// The split a manifest's `split` column assigned, if any.
    public var split: DatasetSplit?

    public init(path: String, label: Int, split: DatasetSplit? = nil) {
        self.path = path
        self.label = label
        self.split = split
    }
}

/// Labelled images from a folder with one sub-folder per class, or from a CSV manifest
/// (`path,label[,split]`, paths relative to the CSV's directory).
public struct LabeledDataset: Sendable {
    /// The folder or manifest it was read from.
    public var source: String
    /// Class names in index order.
    public var labels: [String]
    public var samples: [LabeledSample]
    /// Files that were skipped because they are not images by name (`.DS_Store`, `README`).
    public var ignoredFiles: [String]
    /// Images left out because their class is not among the fixed labels (`ignoreUnknownLabels`), per class.
    public var unknownLabelCounts: [String: Int]

    public init(source: String, labels: [String], samples: [LabeledSample], ignoredFiles: [String] = [],
                unknownLabelCounts: [String: Int] = [:]) {
        self.source = source
        self.labels = labels
        self.samples = samples
        self.ignoredFiles = ignoredFiles
        self.unknownLabelCounts = unknownLabelCounts
    }

    /// Image count per class, in label order.
    public var countsPerClass: [Int] {
        var counts = [Int](repeating: 0, count: labels.count)
        for sample in samples { counts[sample.label] += 1 }
        return counts
    }

    /// Reads a class-per-folder directory or a `.csv` manifest.
    /// - imageExtensions: lower-case extensions counted as images; other files are ignored.
    /// - labels: a fixed class order (a trained head's); classes must be among them (else
    ///   `TrainingError.unknownLabels`, naming each with the nearest known label). nil: sorted names.
    /// - ignoreUnknownLabels: leave out the images of classes not among `labels` instead (counted in `unknownLabelCounts`).
    /// - labelsFrom: whose classes `labels` are, for the error's wording and remedy
    public static func load(path: String, imageExtensions: Set<String>, labels fixedLabels: [String]? = nil,
                            labelsFrom owner: TrainingError.LabelOwner = .head,
                            ignoreUnknownLabels: Bool = false) throws -> LabeledDataset {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw TrainingError.invalidDataset(path: path, reason: "no such file or directory")
        }
        let raw = isDirectory.boolValue
            ? try loadFolder(path, imageExtensions: imageExtensions)
            : try loadManifest(path, imageExtensions: imageExtensions)
        let labels = fixedLabels ?? Array(Set(raw.entries.map(\.label))).sorted()
        let index = Dictionary(uniqueKeysWithValues: labels.enumerated().map { ($1, $0) })
        var samples: [LabeledSample] = []
        var unknown: [String: Int] = [:]
        for entry in raw.entries {
            guard let label = index[entry.label] else {
                unknown[entry.label, default: 0] += 1
                continue
            }
            samples.append(LabeledSample(path: entry.path, label: label, split: entry.split))
        }
        if !unknown.isEmpty && !ignoreUnknownLabels {
            let names = unknown.keys.sorted()
            throw TrainingError.unknownLabels(
                source: path, isFolder: isDirectory.boolValue,
                labels: names.map { .init(label: $0, images: unknown[$0]!, suggestion: NameSuggestion.closest(to: $0, among: labels)) },
                known: labels, knownFrom: owner)
        }
        guard !samples.isEmpty else {
            throw TrainingError.invalidDataset(path: path, reason: isDirectory.boolValue
                ? "no images (.jpg, .jpeg, .png) in class sub-folders; expected DATA/<class>/<image>"
                : "the manifest lists no images")
        }
        return LabeledDataset(source: path, labels: labels, samples: samples, ignoredFiles: raw.ignored, unknownLabelCounts: unknown)
    }

    struct RawEntry {
        var path: String
        var label: String
        var split: DatasetSplit?
    }

    private static func isImage(_ name: String, _ extensions: Set<String>) -> Bool {
        !name.hasPrefix(".") && extensions.contains((name as NSString).pathExtension.lowercased())
    }

    private static func loadFolder(_ root: String, imageExtensions: Set<String>) throws -> (entries: [RawEntry], ignored: [String]) {
        let fileManager = FileManager.default
        let prefix = root.hasSuffix("/") ? root : root + "/"
        let names = try fileManager.contentsOfDirectory(atPath: root).sorted()
        var entries: [RawEntry] = [], ignored: [String] = []
        for name in names where !name.hasPrefix(".") {
            var isDirectory: ObjCBool = false
            guard fileManager.fileExists(atPath: prefix + name, isDirectory: &isDirectory), isDirectory.boolValue else {
                ignored.append(prefix + name)
                continue
            }
            let classRoot = URL(fileURLWithPath: prefix + name).resolvingSymlinksInPath().path
            let files = (fileManager.enumerator(atPath: classRoot)?.allObjects as? [String] ?? [])
                .sorted { $0.utf8.lexicographicallyPrecedes($1.utf8) }
            for relative in files {
                let path = prefix + name + "/" + relative
                var isSubdirectory: ObjCBool = false
                // Hidden files and folders (.DS_Store, .git) are skipped without comment.
                guard !relative.split(separator: "/").contains(where: { $0.hasPrefix(".") }),
                      fileManager.fileExists(atPath: path, isDirectory: &isSubdirectory), !isSubdirectory.boolValue
                else { continue }
                if isImage((relative as NSString).lastPathComponent, imageExtensions) {
                    entries.append(RawEntry(path: path, label: name))
                } else {
                    ignored.append(path)
                }
            }
        }
        return (entries, ignored)
    }

    private static func loadManifest(_ path: String, imageExtensions: Set<String>) throws -> (entries: [RawEntry], ignored: [String]) {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else {
            throw TrainingError.invalidDataset(path: path, reason: "not a directory and not a readable UTF-8 CSV manifest")
        }
        return try manifestEntries(text, path: path, imageExtensions: imageExtensions)
    }

    /// The rows of manifest text read from `path` (image paths resolved against its folder).
    static func manifestEntries(_ text: String, path: String, imageExtensions: Set<String>) throws -> (entries: [RawEntry], ignored: [String]) {
        let base = (path as NSString).deletingLastPathComponent
        var rows = try CSV.parse(text, path: path)
        guard let header = rows.first?.fields.map({ $0.lowercased().trimmingCharacters(in: .whitespaces) }),
              let pathColumn = header.firstIndex(of: "path"), let labelColumn = header.firstIndex(of: "label") else {
            throw TrainingError.invalidManifest(path: path, line: 1, reason: "expected a header row with columns path,label[,split]")
        }
        let splitColumn = header.firstIndex(of: "split")
        rows.removeFirst()
        var entries: [RawEntry] = [], ignored: [String] = []
        for row in rows {
            let fields = row.fields
            guard fields.count > max(pathColumn, labelColumn) else {
                throw TrainingError.invalidManifest(path: path, line: row.line, reason: "expected \(header.count) columns, found \(fields.count)")
            }
            let relative = fields[pathColumn], label = fields[labelColumn].trimmingCharacters(in: .whitespaces)
            guard !relative.isEmpty, !label.isEmpty else {
                throw TrainingError.invalidManifest(path: path, line: row.line, reason: "empty path or label")
            }
            var split: DatasetSplit?
            if let splitColumn, splitColumn < fields.count, !fields[splitColumn].isEmpty {
                switch fields[splitColumn].lowercased() {
                case "train": split = .train
                case "val", "valid", "validation": split = .validation
                case let other:
                    throw TrainingError.invalidManifest(path: path, line: row.line, reason: "split \"\(other)\" is not train or validation")
                }
            }
            let resolved = relative.hasPrefix("/") || base.isEmpty ? relative : base + "/" + relative
            if isImage((relative as NSString).lastPathComponent, imageExtensions) {
                entries.append(RawEntry(path: resolved, label: label, split: split))
            } else {
                ignored.append(resolved)
            }
        }
        return (entries, ignored)
    }
}

/// RFC 4180 CSV: quoted fields may hold commas, quotes ("") and newlines.
enum CSV {
    struct Row {
        var line: Int
        var fields: [String]
    }

    static func parse(_ text: String, path: String) throws -> [Row] {
        var rows: [Row] = []
        var field = "", fields: [String] = [], quoted = false, line = 1, rowLine = 1, fieldStarted = false
        var iterator = text.unicodeScalars.makeIterator()
        var pending: Unicode.Scalar? = nil
        func endRow() {
            fields.append(field)
            if !(fields.count == 1 && fields[0].isEmpty) { rows.append(Row(line: rowLine, fields: fields)) }
            fields = []; field = ""; fieldStarted = false
        }
        while let c = pending ?? iterator.next() {
            pending = nil
            if quoted {
                if c == "\"" {
                    if let next = iterator.next() {
                        if next == "\"" { field.unicodeScalars.append("\"") } else { quoted = false; pending = next }
                    } else { quoted = false }
                } else {
                    if c == "\n" { line += 1 }
                    field.unicodeScalars.append(c)
                }
                continue
            }
            switch c {
            case "\"" where !fieldStarted: quoted = true; fieldStarted = true
            case ",": fields.append(field); field = ""; fieldStarted = false
            case "\r": break
            case "\n": endRow(); line += 1; rowLine = line
            default: field.unicodeScalars.append(c); fieldStarted = true
            }
        }
        if quoted { throw TrainingError.invalidManifest(path: path, line: rowLine, reason: "unterminated quoted field") }
        if !field.isEmpty || !fields.isEmpty { endRow() }
        return rows
    }
}
