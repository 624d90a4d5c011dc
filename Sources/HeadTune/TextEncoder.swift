import Foundation
import Kernels
import Models
import Weights

/// The sentence encoder with its tokenizer: text -> 384-d L2-normalized embedding (all-MiniLM-L6-v2).
/// Calls are serialized: the encoder owns one reusable workspace.
public final class TextEncoder: @unchecked Sendable {
    /// Stable id of network + weights, for index files.
    public let identifier: String
    public let model: MiniLM
    public let tokenizer: WordPieceTokenizer
    public let threads: Int
    public var dimension: Int { model.dimension }

    private let lock = NSLock()
    private var workspace: MiniLMWorkspace?

    public init(model: MiniLM, tokenizer: WordPieceTokenizer, identifier: String,
                threads: Int = ProcessInfo.processInfo.activeProcessorCount) {
        self.model = model
        self.tokenizer = tokenizer
        self.identifier = identifier
        self.threads = max(1, threads)
    }

    public static let weightsFileName = "all-minilm-l6-v2.safetensors"

    /// Loads all-MiniLM-L6-v2 from `weights/` (see `weights/README.md`).
    /// - weightsDirectory: nil searches the usual places (HEADTUNE_WEIGHTS, ./weights, ...).
    public static func allMiniLML6v2(weightsDirectory: URL? = nil,
                                     threads: Int = ProcessInfo.processInfo.activeProcessorCount) throws -> TextEncoder {
        try BLAS.load()
        let directory = try weightsDirectory ?? WeightsLocator.directory(containing: weightsFileName)
        let files = directory.appendingPathComponent("all-minilm-l6-v2")
        let configuration = try MiniLMConfiguration.load(contentsOf: files.appendingPathComponent("config.json"))
        let model = try MiniLM(configuration: configuration,
                               weights: try SafeTensors(contentsOf: directory.appendingPathComponent(weightsFileName)))
        let tokenizer = try WordPieceTokenizer(vocabularyFile: files.appendingPathComponent("vocab.txt"))
        let manifest = try? WeightsManifest.load(contentsOf: directory.appendingPathComponent("manifest.json"))
        let hash = manifest?.file(output: weightsFileName)?.outputSHA256 ?? "unknown"
        return TextEncoder(model: model, tokenizer: tokenizer, identifier: "all-minilm-l6-v2@\(hash.prefix(12))",
                           threads: threads)
    }

    /// Embeddings of `texts`, in order. Texts are grouped by token count before batching (as
    /// sentence-transformers does) so little compute goes to padding; results do not depend on the grouping.
    /// - returns: texts.count rows of `dimension` floats, each of unit length
    public func embed(_ texts: [String], batchSize: Int = 32) throws -> [[Float]] {
        let ids = texts.map(tokenizer.encode)
        return try embed(tokenIDs: ids, batchSize: batchSize)
    }

    /// Embeddings of tokenized texts (`tokenizer.encode` output), in order.
    public func embed(tokenIDs ids: [[Int32]], batchSize: Int = 32) throws -> [[Float]] {
        let order = ids.indices.sorted { ids[$0].count < ids[$1].count }
        var result = [[Float]](repeating: [], count: ids.count)
        lock.lock()
        defer { lock.unlock() }
        for start in stride(from: 0, to: order.count, by: max(1, batchSize)) {
            let chunk = Array(order[start..<min(start + max(1, batchSize), order.count)])
            let longest = chunk.map { ids[$0].count }.max() ?? 1
            let needed = chunk.count * longest
            if workspace == nil || workspace!.tokenCapacity < needed {
                workspace = model.makeWorkspace(tokens: max(needed, batchSize * 32), threads: threads)
            }
            let rows = try model.embed(chunk.map { ids[$0] }, workspace: workspace!)
            for (n, index) in chunk.enumerated() {
                result[index] = Array(rows[(n * dimension)..<((n + 1) * dimension)])
            }
        }
        return result
    }

    /// One text's embedding.
    public func embed(_ text: String) throws -> [Float] { try embed([text])[0] }
}

/// Dot product of two equal-length vectors (cosine similarity for unit vectors).
public func dot(_ a: [Float], _ b: [Float]) -> Float {
    precondition(a.count == b.count, "vector lengths differ: \(a.count) vs \(b.count)")
    var sum: Float = 0
    for i in a.indices { sum += a[i] * b[i] }
    return sum
}
