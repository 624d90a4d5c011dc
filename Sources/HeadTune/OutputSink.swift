import Foundation

/// Machine-readable output: stdout, or a file written atomically (temp file in the same directory,
/// renamed over the target only when the run completes).
public final class OutputSink {
    private let handle: FileHandle
    private let temporaryPath: String?
    private let finalPath: String?
    /// Resumable mode: the temp file is `<path>.partial`, flushed as the run goes and kept when the
    /// run does not complete, so `--resume` can carry on from it.
    private let keepsPartial: Bool
    private var buffer = Data()
    private var lastFlush = Date()
    private var lastSync = Date()

    public init(path: String?) throws {
        guard let path, path != "-" else {
            handle = FileHandle.standardOutput
            temporaryPath = nil
            finalPath = nil
            keepsPartial = false
            return
        }
        let url = URL(fileURLWithPath: path)
        let temporary = url.deletingLastPathComponent()
            .appendingPathComponent(".\(url.lastPathComponent).\(ProcessInfo.processInfo.processIdentifier).tmp").path
        guard FileManager.default.createFile(atPath: temporary, contents: nil),
              let handle = FileHandle(forWritingAtPath: temporary) else {
            throw HeadTuneError.outputFailed(path: path, reason: "cannot create \(temporary)")
        }
        self.handle = handle
        temporaryPath = temporary
        finalPath = path
        keepsPartial = false
    }

    /// A resumable file output: records go to `<path>.partial` (appended to when `append`, else
    /// started afresh), reach the file at least once a second and the disk every 10 seconds;
    /// `commit` renames it over `path`. A run that dies leaves the partial file for `--resume`.
    public init(resumablePath path: String, append: Bool) throws {
        let partial = Self.partialPath(for: path)
        let flags = O_WRONLY | O_CREAT | (append ? O_APPEND : O_TRUNC)
        let descriptor = open(partial, flags, 0o644)
        guard descriptor >= 0 else {
            throw HeadTuneError.outputFailed(path: path, reason: "cannot open \(partial): \(String(cString: strerror(errno)))")
        }
        handle = FileHandle(fileDescriptor: descriptor, closeOnDealloc: true)
        temporaryPath = partial
        finalPath = path
        keepsPartial = true
    }

    /// Where a resumable run keeps its records until it completes.
    public static func partialPath(for path: String) -> String { path + ".partial" }

    public var isTerminal: Bool { finalPath == nil && isatty(STDOUT_FILENO) != 0 }

    public func write(_ text: String) {
        buffer.append(contentsOf: Array(text.utf8))
        // Lines reach a pipe promptly; large buffers go out in big writes; a resumable file is never
        // more than a second behind, so a killed run loses at most that.
        if finalPath == nil || buffer.count >= 1 << 16 || (keepsPartial && Date().timeIntervalSince(lastFlush) >= 1) {
            flush()
        }
    }

    public func write(_ data: Data) {
        flush()
        handle.write(data)
    }

    public func flush() {
        lastFlush = Date()
        guard !buffer.isEmpty else { return }
        handle.write(buffer)
        buffer.removeAll(keepingCapacity: true)
        if keepsPartial, lastFlush.timeIntervalSince(lastSync) >= 10 {
            lastSync = lastFlush
            try? handle.synchronize()
        }
    }

    /// Makes the output visible: renames the temp file over the target.
    public func commit() throws {
        flush()
        guard let temporaryPath, let finalPath else { return }
        try handle.synchronize()
        try handle.close()
        if rename(temporaryPath, finalPath) != 0 {
            let reason = String(cString: strerror(errno))
            unlink(temporaryPath)
            throw HeadTuneError.outputFailed(path: finalPath, reason: reason)
        }
    }

    /// Drops a partial file (a resumable one is flushed and kept for `--resume`); the previous
    /// output (if any) stays as it was.
    public func discard() {
        guard let temporaryPath else { return }
        if keepsPartial {
            flush()
            try? handle.synchronize()
            try? handle.close()
            return
        }
        try? handle.close()
        unlink(temporaryPath)
    }
}

