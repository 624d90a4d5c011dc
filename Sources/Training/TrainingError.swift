import Foundation

/// Errors of dataset loading, training and head files.
public enum TrainingError: Error, LocalizedError, Equatable {
    case invalidDataset(path: String, reason: String)

    public var errorDescription: String? {
        switch self {
        case .invalidDataset(let path, let reason): return "\(path): \(reason)"
        }
    }
}
