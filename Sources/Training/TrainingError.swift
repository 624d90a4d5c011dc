import Foundation

/// Errors of dataset loading, training, the feature cache and head files.
public enum TrainingError: Error, LocalizedError, Equatable {
    case invalidDataset(path: String, reason: String)
    case invalidManifest(path: String, line: Int, reason: String)
    case tooFewImages(label: String, count: Int, needed: Int)
    case unknownLabel(path: String, label: String, known: [String])
    case cacheFailed(path: String, reason: String)
    case invalidHeadFile(path: String, reason: String)
    case backboneMismatch(path: String, head: String, running: String)
    case invalidConfiguration(String)

    public var errorDescription: String? {
        switch self {
        case .invalidDataset(let path, let reason): return "\(path): \(reason)"
        case .invalidManifest(let path, let line, let reason): return "\(path):\(line): \(reason)"
        case .tooFewImages(let label, let count, let needed):
            return "class \"\(label)\" has \(count) usable image(s); a stratified validation split needs at least \(needed) "
                + "(add images, pass --validation-split 0, or give --validation-dir)"
        case .unknownLabel(let path, let label, let known):
            return "\(path): label \"\(label)\" is not one of the head's classes (\(known.joined(separator: ", ")))"
        case .cacheFailed(let path, let reason): return "\(path): feature cache failed (\(reason))"
        case .invalidHeadFile(let path, let reason): return "\(path): not a usable head file (\(reason))"
        case .backboneMismatch(let path, let head, let running):
            return "\(path): head was trained on backbone \(head), but this backbone is \(running); "
                + "retrain the head with `headtune train` on these weights"
        case .invalidConfiguration(let reason): return reason
        }
    }
}
