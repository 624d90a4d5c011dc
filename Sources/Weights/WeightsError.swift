import Foundation

/// Everything that can go wrong reading weights, manifests or locating them. Each case names the file
/// and, where there is one, the tensor key, so the message alone says what to fix.
public enum WeightsError: Error, Equatable, Sendable {
    // Files.
    case cannotOpen(file: String, reason: String)
    case weightsNotFound(file: String, searched: [String])
    case checksumMismatch(file: String, expected: String, found: String)

    // safetensors container.
    case truncated(file: String, size: Int)
    case headerTooLarge(file: String, length: UInt64, limit: Int)
    case headerPastEOF(file: String, length: UInt64, fileSize: Int)
    case headerNotUTF8(file: String)
    case headerNotJSON(file: String, detail: String)
    case invalidEntry(file: String, key: String, reason: String)
    case invalidMetadata(file: String, reason: String)
    case unknownDType(file: String, key: String, dtype: String)
    case invalidShape(file: String, key: String, reason: String)
    case invalidOffsets(file: String, key: String, reason: String)
    case offsetsOutOfRange(file: String, key: String, begin: Int, end: Int, dataSize: Int)
    case byteLengthMismatch(file: String, key: String, expected: Int, found: Int)
    case overlappingTensors(file: String, first: String, second: String)

    // Access.
    case missingTensor(file: String, key: String)
    case shapeMismatch(file: String, key: String, expected: [Int], found: [Int])
    case dtypeMismatch(file: String, key: String, found: DType, wanted: String)

    // Manifest.
    case manifestInvalid(file: String, reason: String)
}

extension WeightsError: LocalizedError {
    public var errorDescription: String? {
        switch self {
        case let .cannotOpen(file, reason):
            return "\(file): cannot open (\(reason))"
        case let .weightsNotFound(file, searched):
            return "\(file) not found; looked in: \(searched.joined(separator: ", ")). "
                + "Put the converted weights directory (weights/, made in a headtune source checkout by "
                + "`python3 scripts/assets.py weights`, which is `make weights`) in one of those places, "
                + "or pass --weights DIR or set HEADTUNE_WEIGHTS to it."
        case let .checksumMismatch(file, expected, found):
            return "\(file): sha256 \(found) does not match the manifest's \(expected) "
                + "(truncated or modified; rerun `make weights` to rebuild it)"
        case let .truncated(file, size):
            return "\(file): \(size) bytes is too short for a safetensors file (needs an 8-byte header length)"
        case let .headerTooLarge(file, length, limit):
            return "\(file): header length \(length) exceeds the \(limit)-byte limit (not a safetensors file?)"
        case let .headerPastEOF(file, length, fileSize):
            return "\(file): header length \(length) runs past the end of the \(fileSize)-byte file"
        case let .headerNotUTF8(file):
            return "\(file): header is not valid UTF-8"
        case let .headerNotJSON(file, detail):
            return "\(file): header is not a JSON object: \(detail)"
        case let .invalidEntry(file, key, reason):
            return "\(file): \(key): \(reason)"
        case let .invalidMetadata(file, reason):
            return "\(file): __metadata__: \(reason)"
        case let .unknownDType(file, key, dtype):
            return "\(file): \(key): unknown dtype \"\(dtype)\" (known: "
                + DType.allCases.map(\.rawValue).joined(separator: ", ") + ")"
        case let .invalidShape(file, key, reason):
            return "\(file): \(key): invalid shape: \(reason)"
        case let .invalidOffsets(file, key, reason):
            return "\(file): \(key): invalid data_offsets: \(reason)"
        case let .offsetsOutOfRange(file, key, begin, end, dataSize):
            return "\(file): \(key): data_offsets [\(begin), \(end)] end past the \(dataSize)-byte data section "
                + "(file truncated?)"
        case let .byteLengthMismatch(file, key, expected, found):
            return "\(file): \(key): data_offsets span \(found) bytes but dtype and shape need \(expected)"
        case let .overlappingTensors(file, first, second):
            return "\(file): tensors \(first) and \(second) overlap"
        case let .missingTensor(file, key):
            return "\(file): no tensor named \(key)"
        case let .shapeMismatch(file, key, expected, found):
            return "\(file): \(key): expected shape \(expected), found \(found)"
        case let .dtypeMismatch(file, key, found, wanted):
            return "\(file): \(key): dtype \(found.rawValue) cannot be read as \(wanted)"
        case let .manifestInvalid(file, reason):
            return "\(file): invalid weights manifest: \(reason)"
        }
    }
}

extension WeightsError: CustomStringConvertible {
    /// The same text as `errorDescription`, so `print(error)` and test failure logs read as a sentence.
    public var description: String { errorDescription ?? "WeightsError" }
}
