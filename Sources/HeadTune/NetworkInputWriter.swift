import Foundation
import Imaging
import Weights

/// `headtune preprocess`: the exact network inputs headtune computes for image files, as one NumPy
/// array [N, 3, size, size] float32 (RGB, NCHW): what an exported ONNX model reads, so another
/// runtime sees bit for bit the tensors headtune classifies.
///
/// Rows are streamed to a temporary file (memory stays at one image whatever the count) and renamed
/// over `path` at the end; a file that fails to decode gets no row and the others go on.
public struct NetworkInputWriter {
    public var encoder: ImageEncoder
    public var policy: CropPolicy

    public init(encoder: ImageEncoder, policy: CropPolicy) {
        self.encoder = encoder
        self.policy = policy
    }

    /// Per path, in input order: its row in the array, or why it has none. A failure to write the
    /// array itself (disk full) is thrown, and the previous file at `path` is kept.
    /// - progress: called after each file with its path and result
    public func write(paths: [String], to path: String, progress: (String, Result<Int, Error>) throws -> Void = { _, _ in })
        throws -> [Result<Int, Error>]
    {
        let size = encoder.inputSize, floats = encoder.inputFloats
        // The header of the most rows there can be: a smaller count fits it, padded with spaces, so
        // the header is rewritten in place once the real count is known.
        let headerLength = NumpyArray.float32Header(shape: [paths.count, 3, size, size]).count
        let writer = try AtomicFile.Writer(path: path)
        var committed = false
        defer { if !committed { writer.discard() } }
        try writer.handle.write(contentsOf: NumpyArray.float32Header(shape: [0, 3, size, size], length: headerLength))
        var hwc = [Float](repeating: 0, count: floats), chw = [Float](repeating: 0, count: floats)
        var results: [Result<Int, Error>] = []
        var rows = 0
        for file in paths {
            let result: Result<Int, Error>
            do {
                try hwc.withUnsafeMutableBufferPointer { buffer throws(ImagingError) in
                    try encoder.prepare(.file(path: file), views: [ImageView(policy: policy)], into: buffer.baseAddress!)
                }
                result = .success(rows)
            } catch {
                result = .failure(error)
            }
            if case .success = result {
                // [size, size, 3] -> [3, size, size]
                for y in 0..<size { for x in 0..<size { for c in 0..<3 { chw[(c * size + y) * size + x] = hwc[(y * size + x) * 3 + c] } } }
                try chw.withUnsafeBytes { try writer.handle.write(contentsOf: $0) }
                rows += 1
            }
            results.append(result)
            try progress(file, result)
        }
        try writer.handle.seek(toOffset: 0)
        try writer.handle.write(contentsOf: NumpyArray.float32Header(shape: [rows, 3, size, size], length: headerLength))
        try writer.commit()
        committed = true
        return results
    }
}
