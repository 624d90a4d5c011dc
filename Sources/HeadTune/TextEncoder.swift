import Foundation
import Kernels
import Models
import Weights

/// A sentence encoder with its tokenizer: text -> unit-length embedding (all-MiniLM-L6-v2 by default),
/// built by the model registry. Calls are serialized: the encoder owns one reusable session.
public final class TextEncoder: @unchecked Sendable {
    /// Stable id of network + weights, for index and bridge files.
    public let identifier: String
    let model: any TextEncoderModel
    let tokenizer: any TextTokenizer
    public let threads: Int
    public var dimension: Int { model.dimension }
    /// For a jointly trained model, its image tower's identifier (images embedded by it are in this space).
    public let pairedImageModel: String?
    /// A jointly trained model's learned factor on cosine similarities (CLIP: exp(logit_scale)).
    public let logitScale: Float?

    private let lock = NSLock()
    private var session: (any TextEncoderSession)?

    init(model: any TextEncoderModel, tokenizer: any TextTokenizer, identifier: String, threads: Int,
         pairedImageModel: String? = nil, logitScale: Float? = nil) {
        self.pairedImageModel = pairedImageModel
        self.logitScale = logitScale
        self.model = model
        self.tokenizer = tokenizer
        self.identifier = identifier
        self.threads = max(1, threads)
    }

    /// The text encoder that goes with `imageEncoder`: its own text tower for a jointly trained model,
    /// else the bundled sentence encoder.
    public static func load(for imageEncoder: ImageEncoder, weightsDirectory: URL? = nil,
                            threads: Int = ProcessInfo.processInfo.activeProcessorCount) throws -> TextEncoder {
        try load(model: imageEncoder.pairedTextModel, weightsDirectory: weightsDirectory, threads: threads)
    }

    /// Loads a text encoder through the model registry.
    /// - model: a bundled model's name (nil: all-minilm-l6-v2) or a model folder
    /// - weightsDirectory: nil searches the usual places (HEADTUNE_WEIGHTS, ./weights, ...)
    public static func load(model: String? = nil, weightsDirectory: URL? = nil,
                            threads: Int = ProcessInfo.processInfo.activeProcessorCount) throws -> TextEncoder {
        try BLAS.load()
        let loaded = try ModelRegistry.textEncoder(model, weightsDirectory: weightsDirectory)
        return TextEncoder(model: loaded.model, tokenizer: loaded.tokenizer, identifier: loaded.identifier, threads: threads,
                           pairedImageModel: loaded.pairedImageModel, logitScale: loaded.logitScale)
    }

    /// Token ids of `text` as the encoder sees them (special tokens added, truncated).
    public func tokenize(_ text: String) -> [Int32] { tokenizer.encode(text) }

    /// Embeddings of `texts`, in order. Texts are grouped by token count before batching (as
    /// sentence-transformers does) so little compute goes to padding; results do not depend on the grouping.
    /// - returns: texts.count rows of `dimension` floats, each of unit length
    public func embed(_ texts: [String], batchSize: Int = 32) throws -> [[Float]] {
        try embed(tokenIDs: texts.map(tokenizer.encode), batchSize: batchSize)
    }

    /// Embeddings of tokenized texts (`tokenize` output), in order.
    public func embed(tokenIDs ids: [[Int32]], batchSize: Int = 32) throws -> [[Float]] {
        let batchSize = max(1, batchSize)
        let order = ids.indices.sorted { ids[$0].count < ids[$1].count }
        var result = [[Float]](repeating: [], count: ids.count)
        lock.lock()
        defer { lock.unlock() }
        for start in stride(from: 0, to: order.count, by: batchSize) {
            let chunk = Array(order[start..<min(start + batchSize, order.count)])
            let rows = try embedPadded(chunk.map { ids[$0] })
            for (n, index) in chunk.enumerated() {
                result[index] = Array(rows[(n * dimension)..<((n + 1) * dimension)])
            }
        }
        return result
    }

    /// One text's embedding.
    public func embed(_ text: String) throws -> [Float] { try embed([text])[0] }

    /// A padded batch of `ids` ready to run again and again, for timing the network alone (tokenization
    /// and padding done once): `headtune bench text`. The closure is not thread-safe.
    public func preparedBatch(_ ids: [[Int32]]) throws -> () -> Void {
        let (padded, mask, sequence) = try pad(ids)
        let session = model.makeSession(tokens: padded.count, threads: threads)
        var out = [Float](repeating: 0, count: ids.count * dimension)
        return {
            out.withUnsafeMutableBufferPointer { out in
                session.encode(inputIDs: padded, attentionMask: mask, batch: ids.count, sequence: sequence, embeddings: out.baseAddress!)
            }
        }
    }

    /// [batch, longest] ids padded with the tokenizer's padding id, the attention mask, and the length.
    private func pad(_ sequences: [[Int32]]) throws -> (ids: [Int32], mask: [UInt8], sequence: Int) {
        let sequence = sequences.map(\.count).max() ?? 0
        guard sequence >= 1, sequence <= model.maxPositions else {
            throw HeadTuneError.invalidText(reason: "sequence length \(sequence), expected 1...\(model.maxPositions)")
        }
        var ids = [Int32](repeating: tokenizer.paddingID, count: sequences.count * sequence)
        var mask = [UInt8](repeating: 0, count: sequences.count * sequence)
        for (b, tokens) in sequences.enumerated() {
            for (t, id) in tokens.enumerated() {
                ids[b * sequence + t] = id
                mask[b * sequence + t] = 1
            }
        }
        return (ids, mask, sequence)
    }

    /// One padded batch through the session (grown when a batch needs more token rows).
    private func embedPadded(_ sequences: [[Int32]]) throws -> [Float] {
        let (ids, mask, sequence) = try pad(sequences)
        let batch = sequences.count, needed = batch * sequence
        if session == nil || session!.tokenCapacity < needed {
            session = model.makeSession(tokens: max(needed, 32 * 32), threads: threads)
        }
        var out = [Float](repeating: 0, count: batch * dimension)
        out.withUnsafeMutableBufferPointer { out in
            session!.encode(inputIDs: ids, attentionMask: mask, batch: batch, sequence: sequence, embeddings: out.baseAddress!)
        }
        return out
    }
}

/// Dot product of two equal-length vectors (cosine similarity for unit vectors).
public func dot(_ a: [Float], _ b: [Float]) -> Float {
    precondition(a.count == b.count, "vector lengths differ: \(a.count) vs \(b.count)")
    var sum: Float = 0
    for i in a.indices { sum += a[i] * b[i] }
    return sum
}
