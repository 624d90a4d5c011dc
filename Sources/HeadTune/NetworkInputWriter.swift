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

    /// Per path, in input order: its row in the array, or why it has none.
    /// - progress: called after each file
    public func write(paths: [String], to path: String, progress: (Result<Int, Error>) throws -> Void = { _ in }) throws
        -> [Result<Int, Error>]
    {
        let size = encoder.inputSize, floats = encoder.inputFloats
        // Room for the largest row count, so the header is rewritten in place with the real one.
        let headerLength = NumpyArray.float32Header(shape: [max(paths.count, 1) * 10, 3, size, size]).count
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
                // [size, size, 3] -> [3, size, size]
                for y in 0..<size { for x in 0..<size { for c in 0..<3 { chw[(c * size + y) * size + x] = hwc[(y * size + x) * 3 + c] } } }
                try chw.withUnsafeBytes { try writer.handle.write(contentsOf: $0) }
                result = .success(rows)
                rows += 1
            } catch {
                result = .failure(error)
            }
            results.append(result)
            try progress(result)
        }
        try writer.handle.seek(toOffset: 0)
        try writer.handle.write(contentsOf: NumpyArray.float32Header(shape: [rows, 3, size, size], length: headerLength))
        try writer.commit()
        committed = true
        return results
    }
}
