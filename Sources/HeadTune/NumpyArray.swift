import Foundation

/// Writer for NumPy's .npy format (version 1.0, little-endian float32, C order): embeddings and
/// training rows for other tools.
public enum NumpyArray {
    public static func float32(_ values: [Float], shape: [Int]) -> Data {
        precondition(values.count == shape.reduce(1, *), "\(values.count) values for shape \(shape)")
        var data = float32Header(shape: shape)
        values.withUnsafeBytes { data.append(contentsOf: $0) }
        return data
    }

    /// The header of a float32 array of `shape`, padded to a multiple of 64 bytes, or with spaces to
    /// exactly `length` bytes (so a streamed file's header can be rewritten once its row count is known).
    public static func float32Header(shape: [Int], length: Int? = nil) -> Data {
        let shapeText = shape.count == 1 ? "(\(shape[0]),)" : "(" + shape.map(String.init).joined(separator: ", ") + ")"
        var header = "{'descr': '<f4', 'fortran_order': False, 'shape': \(shapeText), }"
        // Magic (6) + version (2) + length (2) + header + '\n' is padded to a multiple of 64.
        let unpadded = 10 + header.utf8.count + 1
        let padding = length.map { $0 - unpadded } ?? (64 - unpadded % 64) % 64
        precondition(padding >= 0, "shape \(shape) needs a header longer than \(length ?? 0) bytes")
        header += String(repeating: " ", count: padding) + "\n"
        var data = Data([0x93] + Array("NUMPY".utf8) + [1, 0])
        let headerLength = UInt16(header.utf8.count)
        data.append(contentsOf: [UInt8(headerLength & 0xFF), UInt8(headerLength >> 8)])
        data.append(contentsOf: Array(header.utf8))
        return data
    }
}
