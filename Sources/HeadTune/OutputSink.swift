import Foundation
import Weights

/// Machine-readable output: stdout, or a file written atomically (`AtomicFile`: temp file in the same
/// directory, renamed over the target only when the run completes).
public final class OutputSink {
    private let handle: FileHandle
    private let file: AtomicFile.Writer?
    /// Resumable mode: the temp file is `<path>.partial`, flushed as the run goes and kept when the
    /// run does not complete, so `--resume` can carry on from it.
    private let keepsPartial: Bool
    private var buffer = Data()
    private var lastFlush = Date()
    private var lastSync = Date()

    public init(path: String?) throws {
        guard let path, path != "-" else {
            handle = FileHandle.standardOutput
            file = nil
            keepsPartial = false
            return
        }
        do { file = try AtomicFile.Writer(path: path) } catch {
            throw HeadTuneError.outputFailed(path: path, reason: error.reason)
        }
        handle = file!.handle
        keepsPartial = false
    }

    /// A resumable file output: records go to `<path>.partial` (appended to when `append`, else
    /// started afresh), reach the file at least once a second and the disk every 10 seconds;
    /// `commit` renames it over `path`. A run that dies leaves the partial file for `--resume`.
    public init(resumablePath path: String, append: Bool) throws {
        do { file = try AtomicFile.Writer(path: path, temporaryPath: Self.partialPath(for: path), truncate: !append) } catch {
            throw HeadTuneError.outputFailed(path: path, reason: error.reason)
        }
        handle = file!.handle
        keepsPartial = true
    }

    /// Where a resumable run keeps its records until it completes.
    public static func partialPath(for path: String) -> String { path + ".partial" }

    public var isTerminal: Bool { file == nil && isatty(STDOUT_FILENO) != 0 }

    public func write(_ text: String) {
        buffer.append(contentsOf: Array(text.utf8))
        // Lines reach a pipe promptly; large buffers go out in big writes; a resumable file is never
        // more than a second behind, so a killed run loses at most that.
        if file == nil || buffer.count >= 1 << 16 || (keepsPartial && Date().timeIntervalSince(lastFlush) >= 1) {
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
        do { try file?.commit() } catch {
            throw HeadTuneError.outputFailed(path: error.path, reason: error.reason)
        }
    }

    /// Drops a partial file (a resumable one is flushed and kept for `--resume`); the previous
    /// output (if any) stays as it was.
    public func discard() {
        guard let file else { return }
        if keepsPartial {
            flush()
            file.keepPartial()
        } else {
            file.discard()
        }
    }
}
