import Foundation

/// Files that readers see whole or not at all: contents go to a temporary file in the target's own
/// directory (same file system, so the rename is atomic), reach the disk, and are then renamed over the
/// target. A run that fails halfway leaves the previous file as it was. Every writer of a result file
/// (head files, bridges, CLI outputs, resume logs) goes through here.
public enum AtomicFile {
    /// Why a file could not be written.
    public struct Failure: Error, LocalizedError, Equatable {
        public var path: String
        public var reason: String
        public var errorDescription: String? { "cannot write \(path): \(reason)" }
    }

    /// The temporary name used for `path` by this process: hidden, beside the target.
    public static func temporaryPath(for path: String) -> String {
        let url = URL(fileURLWithPath: path)
        return url.deletingLastPathComponent()
            .appendingPathComponent(".\(url.lastPathComponent).\(ProcessInfo.processInfo.processIdentifier).tmp").path
    }

    /// Writes `data` to `path` atomically.
    public static func write(_ data: Data, to path: String) throws(Failure) {
        let writer = try Writer(path: path)
        do { try writer.handle.write(contentsOf: data) } catch {
            writer.discard()
            throw Failure(path: path, reason: error.localizedDescription)
        }
        try writer.commit()
    }

    /// Checks before any work that `path` can be written: its directory exists and is writable.
    public static func checkWritable(_ path: String) throws(Failure) {
        // As the user wrote it ("nodir", not "/current/dir/nodir"), so the message matches the command line.
        let given = (path as NSString).deletingLastPathComponent
        let directory = given.isEmpty ? "." : given
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: directory, isDirectory: &isDirectory), isDirectory.boolValue else {
            throw Failure(path: path, reason: "no such directory \(directory)")
        }
        guard access(directory, W_OK) == 0 else { throw Failure(path: path, reason: "directory \(directory) is not writable") }
    }

    /// A file written in pieces, then committed (renamed into place) or discarded.
    public final class Writer {
        public let path: String
        public let temporaryPath: String
        public let handle: FileHandle
        private var open = true

        /// - temporaryPath: where the pieces go until `commit`; default: `AtomicFile.temporaryPath(for:)`.
        ///   `truncate: false` keeps (and appends to) what a temporary file already holds, for resumable runs.
        public init(path: String, temporaryPath: String? = nil, truncate: Bool = true) throws(Failure) {
            self.path = path
            let temporary = temporaryPath ?? AtomicFile.temporaryPath(for: path)
            self.temporaryPath = temporary
            let descriptor = Foundation.open(temporary, O_WRONLY | O_CREAT | (truncate ? O_TRUNC : O_APPEND), 0o644)
            guard descriptor >= 0 else {
                throw Failure(path: path, reason: "cannot create \(temporary): \(String(cString: strerror(errno)))")
            }
            handle = FileHandle(fileDescriptor: descriptor, closeOnDealloc: true)
        }

        /// Flushes to disk and renames over `path`.
        public func commit() throws(Failure) {
            guard open else { return }
            open = false
            do {
                try handle.synchronize()
                try handle.close()
            } catch {
                unlink(temporaryPath)
                throw Failure(path: path, reason: error.localizedDescription)
            }
            // rename(2) replaces the old file in one step: readers see the old or the new file, never none.
            if rename(temporaryPath, path) != 0 {
                let reason = String(cString: strerror(errno))
                unlink(temporaryPath)
                throw Failure(path: path, reason: "cannot rename into place: \(reason)")
            }
        }

        /// Deletes the temporary file; the previous `path` stays as it was.
        public func discard() {
            guard open else { return }
            open = false
            try? handle.close()
            unlink(temporaryPath)
        }

        /// Closes the temporary file and leaves it where it is (a resumable run's partial output).
        public func keepPartial() {
            guard open else { return }
            open = false
            try? handle.synchronize()
            try? handle.close()
        }
    }
}
