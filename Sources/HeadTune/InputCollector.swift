import Foundation

/// Expands command-line inputs into image paths, in a deterministic order.
public enum InputCollector {
    public static let imageExtensions: Set<String> = ["jpg", "jpeg", "jpe", "jfif", "png"]

    /// Files are kept as given (even without an image extension: the decoder reports what they are);
    /// directories are walked recursively in sorted order, keeping only image extensions;
    /// `-` reads one path per line from stdin. A missing path is kept so that it is reported per file.
    public static func collect(_ arguments: [String]) throws -> [String] {
        var result: [String] = []
        let fileManager = FileManager.default
        for argument in arguments {
            if argument == "-" {
                while let line = readLine() {
                    let path = line.trimmingCharacters(in: .whitespacesAndNewlines)
                    if !path.isEmpty { result.append(path) }
                }
                continue
            }
            var isDirectory: ObjCBool = false
            guard fileManager.fileExists(atPath: argument, isDirectory: &isDirectory), isDirectory.boolValue else {
                result.append(argument)
                continue
            }
            result.append(contentsOf: walk(argument))
        }
        return result
    }

    private static func walk(_ directory: String) -> [String] {
        let fileManager = FileManager.default
        let prefix = directory.hasSuffix("/") ? directory : directory + "/"
        // Enumerate through a symlinked directory too, but report paths under the name the user gave.
        let root = URL(fileURLWithPath: directory).resolvingSymlinksInPath().path
        guard let enumerator = fileManager.enumerator(atPath: root) else { return [] }
        var found: [String] = []
        while let relative = enumerator.nextObject() as? String {
            let name = (relative as NSString).lastPathComponent
            if name.hasPrefix(".") { continue }
            guard imageExtensions.contains((name as NSString).pathExtension.lowercased()) else { continue }
            var isDirectory: ObjCBool = false
            if fileManager.fileExists(atPath: prefix + relative, isDirectory: &isDirectory), !isDirectory.boolValue {
                found.append(prefix + relative)
            }
        }
        return found.sorted { $0.utf8.lexicographicallyPrecedes($1.utf8) }
    }
}
