import Foundation

/// Machine-readable output: stdout, or a file written atomically (temp file in the same directory,
/// renamed over the target only when the run completes).
public final class OutputSink {
    private let handle: FileHandle
    private let temporaryPath: String?
    private let finalPath: String?
    private var buffer = Data()

    public init(path: String?) throws {
        guard let path, path != "-" else {
            handle = FileHandle.standardOutput
            temporaryPath = nil
            finalPath = nil
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
    }

    public var isTerminal: Bool { finalPath == nil && isatty(STDOUT_FILENO) != 0 }

    public func write(_ text: String) {
        buffer.append(contentsOf: Array(text.utf8))
        // Lines reach a pipe promptly; large buffers go out in big writes.
        if finalPath == nil || buffer.count >= 1 << 16 { flush() }
    }

    public func write(_ data: Data) {
        flush()
        handle.write(data)
    }

    private func flush() {
        guard !buffer.isEmpty else { return }
        handle.write(buffer)
        buffer.removeAll(keepingCapacity: true)
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

    /// Drops a partial file; the previous output (if any) stays as it was.
    public func discard() {
        guard let temporaryPath else { return }
        try? handle.close()
        unlink(temporaryPath)
    }
}

