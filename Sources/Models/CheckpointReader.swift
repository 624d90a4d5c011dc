/// Reads a checkpoint's tensors for a strict load. Every key a loader reads (or declares unused) is
/// recorded, so the loading code itself is the model's key table: nothing is listed twice. Missing keys
/// and shape mismatches are collected rather than thrown one by one, and `finish()` names them all,
/// together with the checkpoint's keys that nothing read.
final class CheckpointReader {
    private let source: any TensorSource
    private let ignorable: (String) -> Bool
    private var requested = Set<String>()
    private var missing: [String] = []
    private var mismatched: [(key: String, expected: [Int], found: [Int])] = []
    private let present: Set<String>

    /// - ignoring: checkpoint keys that may be present without being read (e.g. BatchNorm counters)
    init(_ source: some TensorSource, ignoring ignorable: @escaping (String) -> Bool = { _ in false }) {
        self.source = source
        self.ignorable = ignorable
        present = Set(source.tensorNames)
    }

    var sourceName: String { source.sourceName }

    /// The tensor `key` with exactly `shape`, as Float32 row-major. A missing or misshapen tensor is
    /// recorded for `finish()` and read as zeros meanwhile, so loading goes on to find every problem.
    func floats(_ key: String, shape: [Int]) throws(ModelsError) -> [Float] {
        requested.insert(key)
        let count = shape.reduce(1, *)
        guard present.contains(key) else {
            missing.append(key)
            return [Float](repeating: 0, count: count)
        }
        let found: [Int]
        do { found = try source.shape(of: key) } catch {
            throw .unreadableTensor(file: sourceName, key: key, reason: "\(error.localizedDescription)")
        }
        guard found == shape else {
            mismatched.append((key, shape, found))
            return [Float](repeating: 0, count: count)
        }
        do { return try source.floats(key) } catch {
            throw .unreadableTensor(file: sourceName, key: key, reason: "\(error.localizedDescription)")
        }
    }

    /// Keys the checkpoint must contain although this implementation does not read them (a pooler that
    /// sentence embeddings skip, a position-id buffer).
    func expectUnused(_ keys: [String]) {
        for key in keys {
            requested.insert(key)
            if !present.contains(key) { missing.append(key) }
        }
    }

    /// Throws if anything was missing, misshapen, or present but never read.
    func finish() throws(ModelsError) {
        let unexpected = present.subtracting(requested).filter { !ignorable($0) }.sorted()
        if !missing.isEmpty || !unexpected.isEmpty {
            throw .keyMismatch(file: sourceName, missing: missing.sorted(), unexpected: unexpected)
        }
        if let first = mismatched.first {
            throw .shapeMismatch(file: sourceName, key: first.key, expected: first.expected, found: first.found)
        }
    }
}
