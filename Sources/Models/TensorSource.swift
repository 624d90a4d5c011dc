/// Where a model reads its checkpoint tensors from: a safetensors file, or a dictionary in tests.
public protocol TensorSource {
    /// Shown in error messages (a file path).
    var sourceName: String { get }
    var tensorNames: [String] { get }
    func shape(of name: String) throws -> [Int]
    /// The tensor's values as Float32, row-major.
    func floats(_ name: String) throws -> [Float]
}

extension TensorSource {
    /// Reads `name` and checks its shape; errors name the file and key.
    func floats(_ name: String, shape expected: [Int]) throws(ModelsError) -> [Float] {
        let found: [Int]
        do { found = try shape(of: name) } catch {
            throw .unreadableTensor(file: sourceName, key: name, reason: "\(error.localizedDescription)")
        }
        guard found == expected else { throw .shapeMismatch(file: sourceName, key: name, expected: expected, found: found) }
        do { return try floats(name) } catch {
            throw .unreadableTensor(file: sourceName, key: name, reason: "\(error.localizedDescription)")
        }
    }

    /// Strict key check: every expected key present, nothing else except keys `ignorable` accepts.
    func requireExactly(_ expected: Set<String>, ignoring ignorable: (String) -> Bool) throws(ModelsError) {
        let present = Set(tensorNames)
        let missing = expected.subtracting(present).sorted()
        let unexpected = present.subtracting(expected).filter { !ignorable($0) }.sorted()
        if !missing.isEmpty || !unexpected.isEmpty {
            throw .keyMismatch(file: sourceName, missing: missing, unexpected: unexpected)
        }
    }
}
