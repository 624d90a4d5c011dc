import ArgumentParser
import Foundation
import HeadTune

/// Runs the encoder over the inputs with a progress bar, reporting failed files on stderr.
/// `emit` writes each result, in input order. Returns the number of failed inputs.
func runEncoder(
    _ encoder: ImageEncoder, options: EncoderOptions, inputs: [String], forceProgress: Bool, outputs: [ImageOutput],
    emit: (String, Result<EncodedImage, Error>) throws -> Void
) throws -> Int {
    let runner = BatchRunner(encoder: encoder, batchSize: options.batchSize, threads: options.threads, outputs: outputs)
    let progress = ProgressBar(total: inputs.count, force: forceProgress)
    var failures = 0
    try runner.run(paths: inputs) { index, result in
        if case .failure(let error) = result {
            failures += 1
            progress.clear()
            printError("headtune: \(errorMessage(error, path: inputs[index]))")
        }
        progress.clearForStdout()
        try emit(inputs[index], result)
        progress.advance()
    }
    progress.finish()
    return failures
}

/// An error's message, with the path in front unless the error already names it.
func errorMessage(_ error: Error, path: String) -> String { describe(error, path: path) }

/// Finishes a command: commits or discards the output and maps failures to the exit status.
func finish(_ sink: OutputSink, failures: Int, total: Int) throws {
    try sink.commit()
    if failures > 0 {
        printError("headtune: \(failures) of \(total) input(s) failed")
        throw ExitCode(1)
    }
}

/// Writes a line to stderr.
func printError(_ message: String) {
    FileHandle.standardError.write(Data((message + "\n").utf8))
}
