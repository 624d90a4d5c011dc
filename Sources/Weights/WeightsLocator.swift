import Foundation

/// Finds the directory that holds the converted weights.
///
/// Search order: `$HEADTUNE_WEIGHTS` alone when it is set (an explicit choice is never overridden by a
/// fallback); otherwise `weights/` in the current directory and each of its parents (a checkout), then
/// beside the executable (`<exe dir>/../share/headtune/weights`, `<exe dir>/weights`: an install or a
/// container image), then `/usr/share/headtune/weights`.
public struct WeightsLocator: Sendable {
    public static let environmentVariable = "HEADTUNE_WEIGHTS"

    public var environment: [String: String]
    public var currentDirectory: URL
    public var executableURL: URL?

    /// Defaults to this process's environment, working directory and executable; tests pass their own.
    public init(environment: [String: String] = ProcessInfo.processInfo.environment,
                currentDirectory: URL = URL(fileURLWithPath: FileManager.default.currentDirectoryPath),
                executableURL: URL? = Bundle.main.executableURL) {
        self.environment = environment
        self.currentDirectory = currentDirectory
        self.executableURL = executableURL
    }

    /// The directories searched, in order.
    public var candidates: [URL] {
        if let explicit = environment[Self.environmentVariable], !explicit.isEmpty {
            return [URL(fileURLWithPath: explicit, relativeTo: currentDirectory).standardizedFileURL]
        }
        var result: [URL] = []
        var directory = currentDirectory.standardizedFileURL
        while true {
            result.append(directory.appendingPathComponent("weights"))
            let parent = directory.deletingLastPathComponent()
            if parent.path == directory.path { break }
            directory = parent
        }
        if let executableDirectory = executableURL?.resolvingSymlinksInPath().deletingLastPathComponent() {
            result.append(executableDirectory.appendingPathComponent("../share/headtune/weights").standardizedFileURL)
            result.append(executableDirectory.appendingPathComponent("weights"))
        }
        result.append(URL(fileURLWithPath: "/usr/share/headtune/weights"))
        return result
    }

    /// The first candidate directory that contains `fileName` (a path relative to the weights
    /// directory, e.g. "efficientnet-lite0.safetensors" or "all-minilm-l6-v2/vocab.txt").
    /// Throws `weightsNotFound`, listing every place looked, when none does.
    public func directory(containing fileName: String = "manifest.json") throws -> URL {
        let searched = candidates
        for directory in searched {
            var isDirectory: ObjCBool = false
            let path = directory.appendingPathComponent(fileName).path
            if FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), !isDirectory.boolValue {
                return directory
            }
        }
        throw WeightsError.weightsNotFound(file: fileName, searched: searched.map(\.path))
    }

    /// `WeightsLocator().directory(containing:)` for this process's environment and paths.
    public static func directory(containing fileName: String = "manifest.json") throws -> URL {
        try WeightsLocator().directory(containing: fileName)
    }

    /// The URL of `fileName` inside the first weights directory that has it.
    public func url(for fileName: String) throws -> URL {
        try directory(containing: fileName).appendingPathComponent(fileName)
    }
}
