import Foundation

/// Errors from building models out of checkpoints.
public enum ModelsError: Error, LocalizedError, Equatable {
    /// A strict load found keys missing from, or not expected in, the checkpoint.
    case keyMismatch(file: String, missing: [String], unexpected: [String])
    case shapeMismatch(file: String, key: String, expected: [Int], found: [Int])
    case unreadableTensor(file: String, key: String, reason: String)
    case invalidInput(reason: String)
    case unreadableFile(file: String, reason: String)
    case invalidVocabulary(file: String, reason: String)
    case invalidConfiguration(file: String, reason: String)
    /// A file of headtune's own (an int8 file) that is not what it should be: the reason says how.
    case invalidCheckpoint(file: String, reason: String)
    /// `--model NAME|DIR` named nothing the registry can build.
    case unknownModel(name: String, reason: String)

    public var errorDescription: String? {
        switch self {
        case .keyMismatch(let file, let missing, let unexpected):
            var parts: [String] = []
            if !missing.isEmpty { parts.append("missing \(missing.count) tensor(s): \(Self.list(missing))") }
            if !unexpected.isEmpty { parts.append("unexpected \(unexpected.count) tensor(s): \(Self.list(unexpected))") }
            return "\(file): not the expected checkpoint, \(parts.joined(separator: "; "))"
        case .shapeMismatch(let file, let key, let expected, let found):
            return "\(file): tensor \(key) has shape \(found), expected \(expected)"
        case .unreadableTensor(let file, let key, let reason):
            return "\(file): cannot read tensor \(key): \(reason)"
        case .invalidCheckpoint(let file, let reason):
            return "\(file): \(reason)"
        case .invalidInput(let reason):
            return "invalid model input: \(reason)"
        case .unreadableFile(let file, let reason):
            return "\(file): cannot read (\(reason))"
        case .invalidVocabulary(let file, let reason):
            return "\(file): not a usable tokenizer vocabulary (\(reason))"
        case .invalidConfiguration(let file, let reason):
            return "\(file): unusable model configuration (\(reason))"
        case .unknownModel(let name, let reason):
            return "model \(name): \(reason)"
        }
    }

    private static func list(_ keys: [String]) -> String {
        keys.count <= 8 ? keys.joined(separator: ", ") : keys.prefix(8).joined(separator: ", ") + ", ..."
    }
}
