/// Where a model reads its checkpoint tensors from: a safetensors file, or a dictionary in tests.
public protocol TensorSource {
    /// Shown in error messages (a file path).
    var sourceName: String { get }
    var tensorNames: [String] { get }
    func shape(of name: String) throws -> [Int]
    /// The tensor's values as Float32, row-major.
    func floats(_ name: String) throws -> [Float]
}
