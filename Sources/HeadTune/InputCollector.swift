import Foundation

/// Expands command-line inputs into image paths, in a deterministic order.
public enum InputCollector {
    /// What the decoder reads (JPEG, PNG, WebP, TIFF, HEIC; it recognises the format by its bytes, not by this).
    public static let imageExtensions: Set<String> = ["jpg", "jpeg", "jpe", "jfif", "png", "webp", "tif", "tiff", "heic", "heif"]
    /// Image formats cameras and phones write that the decoder does not read: reported, not silently dropped.
    public static let unsupportedImageExtensions: Set<String> = ["avif", "gif", "bmp", "jxl"]

    /// Why a file met in a walked directory is not an input.
    public enum SkipReason: String, Sendable, CaseIterable {
        case unsupportedFormat = "in an image format headtune does not decode (convert to JPEG or PNG)"
        case brokenLink = "a broken symbolic link"
        case linkLoop = "a symbolic link back into a folder being walked"
        case alreadyWalked = "a symbolic link to a folder already walked"
        case unreadableFolder = "an unreadable folder"
        case notAnImage = "not an image (by extension)"
    }

    public struct Skipped: Equatable, Sendable {
        public var path: String
        public var reason: SkipReason
    }

    public struct Collected: Sendable {
        /// The inputs, each directory's files in sorted order.
        public var paths: [String] = []
        /// What walking the directories passed over (hidden files are not listed).
        public var skipped: [Skipped] = []

        /// "skipped 3 file(s): 1 a broken symbolic link (d/x.jpg); 2 not an image (by extension) (d/a.txt, d/b.csv)",
        /// nil when nothing was skipped. At most `examples` paths per reason.
        public func skippedSummary(examples: Int = 3) -> String? {
            guard !skipped.isEmpty else { return nil }
            let groups = SkipReason.allCases.compactMap { reason -> String? in
                let paths = skipped.filter { $0.reason == reason }.map(\.path)
                guard !paths.isEmpty else { return nil }
                let shown = paths.prefix(examples).joined(separator: ", ") + (paths.count > examples ? ", ..." : "")
                return "\(paths.count) \(reason.rawValue) (\(shown))"
            }
            return "skipped \(skipped.count) file(s): " + groups.joined(separator: "; ")
        }
    }

    /// Files are kept as given (even without an image extension: the decoder reports what they are);
    /// directories are walked recursively in sorted order, keeping only image extensions and following
    /// symbolic links (each folder once, so a link loop ends); `-` reads one path per line from stdin.
    /// A missing path is kept so that it is reported per file.
    public static func collect(_ arguments: [String]) throws -> [String] { collectReporting(arguments).paths }

    /// `collect`, with what the directory walks passed over and why.
    public static func collectReporting(_ arguments: [String]) -> Collected {
        var collected = Collected()
        let fileManager = FileManager.default
        for argument in arguments {
            if argument == "-" {
                while let line = readLine() {
                    let path = line.trimmingCharacters(in: .whitespacesAndNewlines)
                    if !path.isEmpty { collected.paths.append(path) }
                }
                continue
            }
            var isDirectory: ObjCBool = false
            guard fileManager.fileExists(atPath: argument, isDirectory: &isDirectory), isDirectory.boolValue else {
                collected.paths.append(argument)
                continue
            }
            var walk = DirectoryWalk()
            walk.visit(argument.hasSuffix("/") ? argument : argument + "/", ancestors: [])
            collected.paths += walk.found.sorted { $0.utf8.lexicographicallyPrecedes($1.utf8) }
            collected.skipped += walk.skipped.sorted { $0.path.utf8.lexicographicallyPrecedes($1.path.utf8) }
        }
        return collected
    }

    /// A folder's identity on disk, the same whichever link reached it.
    private struct FolderIdentity: Hashable {
        var device: UInt64
        var inode: UInt64
        init(_ status: stat) {
            device = UInt64(status.st_dev)
            inode = UInt64(status.st_ino)
        }
    }

    /// One directory argument's walk: paths are reported under the name the user gave, links followed.
    private struct DirectoryWalk {
        var found: [String] = []
        var skipped: [Skipped] = []
        private var walked = Set<FolderIdentity>()

        /// - folder: a path ending in "/"
        /// - ancestors: the folders above this one on the current path (a link to one of them is a loop)
        mutating func visit(_ folder: String, ancestors: Set<FolderIdentity>) {
            var status = stat()
            guard stat(folder, &status) == 0 else { return skipped.append(Skipped(path: folder, reason: .brokenLink)) }
            let identity = FolderIdentity(status)
            if ancestors.contains(identity) { return skipped.append(Skipped(path: folder, reason: .linkLoop)) }
            if walked.contains(identity) { return skipped.append(Skipped(path: folder, reason: .alreadyWalked)) }
            walked.insert(identity)
            guard let names = try? FileManager.default.contentsOfDirectory(atPath: folder) else {
                return skipped.append(Skipped(path: folder, reason: .unreadableFolder))
            }
            for name in names where !name.hasPrefix(".") {
                let path = folder + name
                var entry = stat()
                guard stat(path, &entry) == 0 else {
                    skipped.append(Skipped(path: path, reason: .brokenLink))
                    continue
                }
                if entry.st_mode & S_IFMT == S_IFDIR {
                    visit(path + "/", ancestors: ancestors.union([identity]))
                    continue
                }
                let pathExtension = (name as NSString).pathExtension.lowercased()
                if imageExtensions.contains(pathExtension) {
                    found.append(path)
                } else {
                    skipped.append(Skipped(path: path, reason: unsupportedImageExtensions.contains(pathExtension) ? .unsupportedFormat : .notAnImage))
                }
            }
        }
    }
}
