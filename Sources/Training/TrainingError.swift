import Foundation

/// Errors of dataset loading, training, the feature cache and head files.
public enum TrainingError: Error, LocalizedError, Equatable {
    case invalidDataset(path: String, reason: String)
    case invalidManifest(path: String, line: Int, reason: String)
    case tooFewImages(label: String, count: Int, needed: Int)
    /// Classes of a dataset that a head (or, for a validation set, the training data) does not have
    /// (a folder per class, or a manifest's labels).
    case unknownLabels(source: String, isFolder: Bool, labels: [UnknownLabel], known: [String], knownFrom: LabelOwner = .head)
    case cacheFailed(path: String, reason: String)
    case invalidHeadFile(path: String, reason: String)
    /// A file of another kind (an image, an archive) given where a head file belongs.
    case notAHeadFile(path: String, kind: String)
    case backboneMismatch(path: String, head: String, running: String)
    case invalidConfiguration(String)

    /// Whose classes the known labels are: the remedy differs (evaluate can leave images out, a
    /// training run's validation set must match its training classes).
    public enum LabelOwner: Equatable, Sendable {
        case head
        case trainingData
    }

    public struct UnknownLabel: Equatable, Sendable {
        public var label: String
        public var images: Int
        /// The head's class it probably means (same but for case, or a few edits away).
        public var suggestion: String?

        public init(label: String, images: Int, suggestion: String?) {
            self.label = label
            self.images = images
            self.suggestion = suggestion
        }
    }

    public var errorDescription: String? {
        switch self {
        case .invalidDataset(let path, let reason): return "\(path): \(reason)"
        case .invalidManifest(let path, let line, let reason): return "\(path):\(line): \(reason)"
        case .tooFewImages(let label, let count, let needed):
            return "class \"\(label)\" has \(count) usable image(s); a stratified validation split needs at least \(needed) "
                + "(add images, pass --validation-split 0, or give --validation-dir)"
        case .unknownLabels(let source, let isFolder, let labels, let known, let owner):
            let prefix = source.hasSuffix("/") ? source : source + "/"
            let whose = owner == .head ? "the head's classes" : "the training data's classes"
            let each = labels.map { entry in
                (isFolder ? "folder \(prefix)\(entry.label)/" : "label \"\(entry.label)\"") + " (\(entry.images) image(s))"
                    + (entry.suggestion.map { " is not one of \(whose); did you mean \"\($0)\"?" } ?? " is not one of \(whose)")
            }
            let shown = known.count <= 20 ? known.joined(separator: ", ") : known.prefix(20).joined(separator: ", ") + ", ... (\(known.count) in all)"
            let listed = each.joined(separator: "; ")
            let remedy = owner == .head ? "or pass --ignore-unknown-labels to leave those images out"
                : "or add those classes to the training data (a validation set is scored on the training classes)"
            return "\(source): " + listed + (listed.hasSuffix("?") ? " " : ". ") + "\(whose.prefix(1).uppercased() + whose.dropFirst()): \(shown). "
                + "Rename the \(isFolder ? "folder" : "label")s to match, " + remedy
        case .cacheFailed(let path, let reason): return "\(path): feature cache failed (\(reason))"
        case .invalidHeadFile(let path, let reason): return "\(path): not a usable head file (\(reason))"
        case .notAHeadFile(let path, let kind):
            return "\(path) is \(kind), not a head file (head files are written by `headtune train DATA --out NAME.head`)"
        case .backboneMismatch(let path, let head, let running):
            return "\(path): head was trained on backbone \(head), but this backbone is \(running); "
                + "retrain the head with `headtune train` on these weights"
        case .invalidConfiguration(let reason): return reason
        }
    }
}
