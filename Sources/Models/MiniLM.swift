// MiniLM sentence encoder: a BERT encoder (Devlin et al. 2019) with MiniLM's small shape (Wang et al.
// 2020, "MiniLM: Deep Self-Attention Distillation"), as fine-tuned by sentence-transformers into
// all-MiniLM-L6-v2 (Reimers & Gurevych 2019). Matches Hugging Face transformers' BertModel (post-norm
// layers, exact-erf GELU, absolute position embeddings, token type 0) followed by sentence-transformers'
// Pooling(mean) and Normalize modules; the reference is shared/reference/python/golden_minilm.py.
//
// Activations are token rows, [batch · sequence, hidden], so every projection is one GEMM over all tokens.

import Foundation
import Kernels

/// BERT hyper-parameters, read from the checkpoint's config.json (its own key names).
public struct MiniLMConfiguration: Decodable, Sendable, Equatable {
    public var vocabularySize: Int
    public var hiddenSize: Int
    public var layerCount: Int
    public var headCount: Int
    public var intermediateSize: Int
    public var maxPositions: Int
    public var tokenTypeCount: Int
    public var layerNormEpsilon: Double
    public var hiddenActivation: String

    enum CodingKeys: String, CodingKey {
        case vocabularySize = "vocab_size"
        case hiddenSize = "hidden_size"
        case layerCount = "num_hidden_layers"
        case headCount = "num_attention_heads"
        case intermediateSize = "intermediate_size"
        case maxPositions = "max_position_embeddings"
        case tokenTypeCount = "type_vocab_size"
        case layerNormEpsilon = "layer_norm_eps"
        case hiddenActivation = "hidden_act"
    }

    public var headDimension: Int { hiddenSize / headCount }

    /// sentence-transformers/all-MiniLM-L6-v2.
    public static let allMiniLML6v2 = MiniLMConfiguration(
        vocabularySize: 30522, hiddenSize: 384, layerCount: 6, headCount: 12, intermediateSize: 1536,
        maxPositions: 512, tokenTypeCount: 2, layerNormEpsilon: 1e-12, hiddenActivation: "gelu")

    /// Reads config.json and checks that this implementation can run it.
    public static func load(contentsOf url: URL) throws(ModelsError) -> MiniLMConfiguration {
        let configuration: MiniLMConfiguration
        do {
            configuration = try JSONDecoder().decode(MiniLMConfiguration.self, from: Data(contentsOf: url))
        } catch {
            throw .invalidConfiguration(file: url.path, reason: "\(error)")
        }
        try configuration.validate(source: url.path)
        return configuration
    }

    func validate(source: String) throws(ModelsError) {
        guard hiddenActivation == "gelu" else {
            throw .invalidConfiguration(file: source, reason: "hidden_act \(hiddenActivation) (only exact \"gelu\" is implemented)")
        }
        guard headCount > 0, hiddenSize % headCount == 0 else {
            throw .invalidConfiguration(file: source, reason: "hidden_size \(hiddenSize) is not a multiple of num_attention_heads \(headCount)")
        }
    }
}

/// A linear layer `y = x · W + bias`. On AVX-512 machines it runs headtune's packed GEMM with the bias
/// in its epilogue (split by output columns when a short sentence gives few rows); elsewhere OpenBLAS
/// on W stored [in, out], the transpose of PyTorch's [out, in], made once at load: with few rows GEMM
/// time goes mostly to OpenBLAS packing the weight matrix, and packing the transposed layout was 2x
/// slower than this one.
struct Linear: Sendable {
    let outputs: Int
    let inputs: Int
    /// [inputs, outputs] for the OpenBLAS path; empty when `packed` is used
    let weight: [Float]
    let bias: [Float]
    /// PyTorch's layout packed for the AVX-512 kernel, or nil where it does not run
    let packed: PointwiseWeights?

    /// The weight as PyTorch lays it out, [outputs, inputs] (for an exported graph).
    var pytorchWeight: [Float] {
        if let packed { return rowMajor(packed) }
        var result = [Float](repeating: 0, count: outputs * inputs)
        for o in 0..<outputs {
            for i in 0..<inputs { result[o * inputs + i] = weight[i * outputs + o] }
        }
        return result
    }

    /// - pytorchWeight: [outputs, inputs]
    init(pytorchWeight: [Float], bias: [Float]) {
        let outputs = bias.count, inputs = pytorchWeight.count / max(outputs, 1)
        self.outputs = outputs
        self.inputs = inputs
        self.bias = bias
        if PointwiseWeights.packedKernelAvailable {
            packed = PointwiseWeights(weight: pytorchWeight, bias: bias, outChannels: outputs, inChannels: inputs)
            weight = []
            return
        }
        packed = nil
        var weight = [Float](repeating: 0, count: pytorchWeight.count)
        for o in 0..<outputs {
            for i in 0..<inputs { weight[i * outputs + o] = pytorchWeight[o * inputs + i] }
        }
        self.weight = weight
    }

    /// - input: [rows, inputs] -> output: [rows, outputs], rows `inputStride` / `outputStride` floats
    ///   apart (default: inputs / outputs; see `gemmRowStride`)
    /// - accumulate: `output += input · W + bias` instead (a pre-norm residual added while the GEMM's
    ///   output is in registers, or by BLAS's beta = 1, rather than in a pass of its own)
    /// - activation: applied after the bias (and the accumulated residual), in the GEMM's epilogue
    /// - columns: only these outputs, written where the whole product puts them (the others are not
    ///   touched); `computesColumns(columns)` must hold. nil: all.
    func callAsFunction(_ input: UnsafePointer<Float>, rows: Int, output: UnsafeMutablePointer<Float>,
                        accumulate: Bool = false, activation: Activation = .identity, inputStride: Int? = nil,
                        outputStride: Int? = nil, columns: Range<Int>? = nil, threads: Int) {
        let lda = inputStride ?? inputs, ldc = outputStride ?? outputs
        let columns = columns ?? 0..<outputs, c0 = columns.lowerBound
        precondition(lda >= inputs && ldc >= outputs && computesColumns(columns))
        if let packed {
            // In place is safe: the epilogue reads each residual element just before storing that element.
            pointwiseConvolution(input: input, rows: rows, weights: packed, activation: activation,
                                 residual: accumulate ? UnsafePointer(output) : nil, output: output,
                                 inputStride: lda, outputStride: ldc, columns: columns, threads: threads)
            return
        }
        guard !columns.isEmpty, rows > 0 else { return }
        let beta: Float = accumulate ? 1 : 0
        // OpenBLAS stays single-threaded (BLAS.load): the rows are split across headtune's own threads,
        // so no model changes process-wide BLAS state that another model's kernels rely on.
        weight.withUnsafeBufferPointer { w in
            let w = w.baseAddress!
            if threads > 1 && rows < 16 * threads {
                // A short sentence gives few rows: split the output columns (each thread streams its own
                // slice of W) instead of leaving all but one thread idle.
                parallelFor((columns.count + 63) / 64, threads: threads) { blocks in
                    let first = c0 + blocks.lowerBound * 64, count = min(c0 + blocks.upperBound * 64, columns.upperBound) - first
                    BLAS.sgemm(m: rows, n: count, k: inputs, a: input, lda: lda, b: w + first, ldb: outputs,
                               beta: beta, c: output + first, ldc: ldc)
                }
                return
            }
            parallelFor((rows + 15) / 16, threads: threads) { blocks in
                let first = blocks.lowerBound * 16, count = min(blocks.upperBound * 16, rows) - first
                BLAS.sgemm(m: count, n: columns.count, k: inputs, a: input + first * lda, lda: lda, b: w + c0,
                           ldb: outputs, beta: beta, c: output + first * ldc + c0, ldc: ldc)
            }
        }
        bias.withUnsafeBufferPointer { b in
            biasActivation(output + c0, rows: rows, columns: columns.count, rowStride: ldc, bias: b.baseAddress! + c0,
                           activation: activation, threads: threads)
        }
    }

    /// Whether `callAsFunction(..., columns:)` takes this range on this machine.
    func computesColumns(_ columns: Range<Int>) -> Bool { packed?.computesColumns(columns) ?? true }
}

/// LayerNorm parameters.
struct LayerNormWeights: Sendable {
    var gamma: [Float]
    var beta: [Float]
}

/// all-MiniLM-L6-v2 forward pass: token ids -> L2-normalized sentence embeddings.
public struct MiniLM: Sendable {
    public let configuration: MiniLMConfiguration
    /// [vocabularySize, hidden], [maxPositions, hidden], and token type 0's row [hidden].
    let wordEmbeddings: [Float]
    let positionEmbeddings: [Float]
    let tokenType0: [Float]
    let embeddingNorm: LayerNormWeights
    let layers: [Layer]

    struct Layer: Sendable {
        /// query, key and value stacked: [3 · hidden, hidden], so one GEMM makes all three.
        let queryKeyValue: Linear
        let attentionOutput: Linear
        let attentionNorm: LayerNormWeights
        let intermediate: Linear
        let output: Linear
        let outputNorm: LayerNormWeights
    }

    /// Sentence embedding size (384).
    public var dimension: Int { configuration.hiddenSize }

    /// Strict load from a Hugging Face BertModel state dict: every tensor present with its exact shape,
    /// nothing else. The pooler (`pooler.dense.*`, a tanh layer over [CLS] that sentence-transformers' mean
    /// pooling does not use) and the `embeddings.position_ids` buffer are expected but not read.
    public init(configuration: MiniLMConfiguration = .allMiniLML6v2, weights: some TensorSource) throws(ModelsError) {
        try configuration.validate(source: weights.sourceName)
        self.configuration = configuration
        let c = configuration, hidden = c.hiddenSize
        let reader = CheckpointReader(weights)
        reader.expectUnused(["pooler.dense.weight", "pooler.dense.bias", "embeddings.position_ids"])

        func linear(_ name: String, out: Int, in inputs: Int) throws(ModelsError) -> Linear {
            Linear(pytorchWeight: try reader.floats("\(name).weight", shape: [out, inputs]),
                   bias: try reader.floats("\(name).bias", shape: [out]))
        }
        func norm(_ name: String) throws(ModelsError) -> LayerNormWeights {
            LayerNormWeights(gamma: try reader.floats("\(name).weight", shape: [hidden]),
                             beta: try reader.floats("\(name).bias", shape: [hidden]))
        }
        wordEmbeddings = try reader.floats("embeddings.word_embeddings.weight", shape: [c.vocabularySize, hidden])
        positionEmbeddings = try reader.floats("embeddings.position_embeddings.weight", shape: [c.maxPositions, hidden])
        tokenType0 = Array(try reader.floats("embeddings.token_type_embeddings.weight",
                                             shape: [c.tokenTypeCount, hidden]).prefix(hidden))
        embeddingNorm = try norm("embeddings.LayerNorm")
        var layers: [Layer] = []
        for i in 0..<c.layerCount {
            let p = "encoder.layer.\(i)"
            var queryKeyValueWeight: [Float] = [], queryKeyValueBias: [Float] = []
            for part in ["query", "key", "value"] {
                queryKeyValueWeight += try reader.floats("\(p).attention.self.\(part).weight", shape: [hidden, hidden])
                queryKeyValueBias += try reader.floats("\(p).attention.self.\(part).bias", shape: [hidden])
            }
            layers.append(Layer(
                queryKeyValue: Linear(pytorchWeight: queryKeyValueWeight, bias: queryKeyValueBias),
                attentionOutput: try linear("\(p).attention.output.dense", out: hidden, in: hidden),
                attentionNorm: try norm("\(p).attention.output.LayerNorm"),
                intermediate: try linear("\(p).intermediate.dense", out: c.intermediateSize, in: hidden),
                output: try linear("\(p).output.dense", out: hidden, in: c.intermediateSize),
                outputNorm: try norm("\(p).output.LayerNorm")))
        }
        self.layers = layers
        try reader.finish()
    }

    /// Runs the encoder and pools.
    /// - inputIDs: [batch, sequence] token ids (pad with anything valid, e.g. 0, where the mask is 0)
    /// - attentionMask: [batch, sequence], 1 = real token (attended to and pooled), 0 = padding
    /// - embeddings: receives [batch, hidden] L2-normalized sentence embeddings
    /// Requires `batch · sequence <= workspace.tokenCapacity` and `sequence <= maxPositions`.
    public func forward(
        inputIDs: UnsafePointer<Int32>, attentionMask: UnsafePointer<UInt8>, batch: Int, sequence: Int,
        workspace: MiniLMWorkspace, embeddings: UnsafeMutablePointer<Float>
    ) {
        let c = configuration, hidden = c.hiddenSize, rows = batch * sequence
        precondition(rows <= workspace.tokenCapacity && sequence <= c.maxPositions, "workspace too small")
        let threads = workspace.threads
        let state = workspace.hidden.pointer
        let qkv = workspace.queryKeyValue.pointer
        let context = workspace.context.pointer
        let projected = workspace.projected.pointer
        let intermediate = workspace.intermediate.pointer

        // [batch, sequence] ids -> [rows, hidden]: word + position + token type 0, then LayerNorm.
        wordEmbeddings.withUnsafeBufferPointer { words in
            positionEmbeddings.withUnsafeBufferPointer { positions in
                for r in 0..<rows {
                    let id = min(max(Int(inputIDs[r]), 0), c.vocabularySize - 1)
                    let word = words.baseAddress! + id * hidden
                    let position = positions.baseAddress! + (r % sequence) * hidden
                    let out = state + r * hidden
                    for d in 0..<hidden { out[d] = word[d] + position[d] + tokenType0[d] }
                }
            }
        }
        layerNorm(input: state, rows: rows, columns: hidden, gamma: embeddingNorm.gamma, beta: embeddingNorm.beta,
                  epsilon: Float(c.layerNormEpsilon), output: state, threads: threads)

        for layer in layers {
            // [rows, hidden] -> [rows, 3 · hidden] -> attention -> [rows, hidden]
            layer.queryKeyValue(state, rows: rows, output: qkv, threads: threads)
            multiHeadAttention(query: qkv, key: qkv + hidden, value: qkv + 2 * hidden, rowStride: 3 * hidden,
                               batch: batch, sequence: sequence, heads: c.headCount, headDimension: c.headDimension,
                               keyMask: attentionMask, scale: 1 / Float(c.headDimension).squareRoot(),
                               output: context, threads: threads)
            layer.attentionOutput(context, rows: rows, output: projected, threads: threads)
            layerNorm(input: projected, residual: state, rows: rows, columns: hidden, gamma: layer.attentionNorm.gamma,
                      beta: layer.attentionNorm.beta, epsilon: Float(c.layerNormEpsilon), output: state, threads: threads)
            // [rows, hidden] -> [rows, intermediate] -> [rows, hidden]
            layer.intermediate(state, rows: rows, output: intermediate, threads: threads)
            biasGELU(intermediate, rows: rows, columns: c.intermediateSize, bias: nil, threads: threads)
            layer.output(intermediate, rows: rows, output: projected, threads: threads)
            layerNorm(input: projected, residual: state, rows: rows, columns: hidden, gamma: layer.outputNorm.gamma,
                      beta: layer.outputNorm.beta, epsilon: Float(c.layerNormEpsilon), output: state, threads: threads)
        }

        // [rows, hidden] -> [batch, hidden]
        maskedMeanPool(input: state, mask: attentionMask, batch: batch, sequence: sequence, channels: hidden,
                       output: embeddings)
        normalizeRows(embeddings, rows: batch, columns: hidden)
    }

    /// Embeds token sequences of any lengths as one padded batch (each padded to the longest).
    /// - returns: [sequences.count, hidden], row-major
    public func embed(_ sequences: [[Int32]], workspace: MiniLMWorkspace) throws(ModelsError) -> [Float] {
        guard !sequences.isEmpty else { return [] }
        let sequence = sequences.map(\.count).max() ?? 0
        guard sequence >= 1, sequence <= configuration.maxPositions else {
            throw .invalidInput(reason: "sequence length \(sequence), expected 1...\(configuration.maxPositions)")
        }
        let batch = sequences.count
        guard batch * sequence <= workspace.tokenCapacity else {
            throw .invalidInput(reason: "\(batch)x\(sequence) tokens exceed the workspace's \(workspace.tokenCapacity)")
        }
        var ids = [Int32](repeating: 0, count: batch * sequence)
        var mask = [UInt8](repeating: 0, count: batch * sequence)
        for (b, tokens) in sequences.enumerated() {
            for (t, id) in tokens.enumerated() {
                guard id >= 0 && Int(id) < configuration.vocabularySize else {
                    throw .invalidInput(reason: "token id \(id) outside the vocabulary of \(configuration.vocabularySize)")
                }
                ids[b * sequence + t] = id
                mask[b * sequence + t] = 1
            }
        }
        var out = [Float](repeating: 0, count: batch * dimension)
        out.withUnsafeMutableBufferPointer { out in
            forward(inputIDs: ids, attentionMask: mask, batch: batch, sequence: sequence, workspace: workspace,
                    embeddings: out.baseAddress!)
        }
        return out
    }

    /// Buffers for up to `tokens` token rows (batch · padded sequence length), reused across calls.
    public func makeWorkspace(tokens: Int, threads: Int = 1) -> MiniLMWorkspace {
        MiniLMWorkspace(tokenCapacity: tokens, hidden: configuration.hiddenSize,
                        intermediate: configuration.intermediateSize, threads: threads)
    }
}

/// Scratch memory for `MiniLM.forward`. Not shared between concurrent calls.
public final class MiniLMWorkspace {
    public let tokenCapacity: Int
    public let threads: Int
    let hidden: ScratchBuffer
    let queryKeyValue: ScratchBuffer
    let context: ScratchBuffer
    let projected: ScratchBuffer
    let intermediate: ScratchBuffer

    init(tokenCapacity: Int, hidden width: Int, intermediate intermediateWidth: Int, threads: Int) {
        let capacity = max(1, tokenCapacity)
        self.tokenCapacity = capacity
        self.threads = max(1, threads)
        hidden = ScratchBuffer(count: capacity * width)
        queryKeyValue = ScratchBuffer(count: capacity * 3 * width)
        context = ScratchBuffer(count: capacity * width)
        projected = ScratchBuffer(count: capacity * width)
        intermediate = ScratchBuffer(count: capacity * intermediateWidth)
    }
}

// MARK: - As a text encoder

extension MiniLM: TextEncoderModel {
    public var maxPositions: Int { configuration.maxPositions }

    public func makeSession(tokens: Int, threads: Int) -> any TextEncoderSession {
        MiniLMSession(model: self, workspace: makeWorkspace(tokens: tokens, threads: threads))
    }
}

final class MiniLMSession: TextEncoderSession {
    let model: MiniLM
    let workspace: MiniLMWorkspace

    init(model: MiniLM, workspace: MiniLMWorkspace) {
        self.model = model
        self.workspace = workspace
    }

    var tokenCapacity: Int { workspace.tokenCapacity }

    func encode(inputIDs: UnsafePointer<Int32>, attentionMask: UnsafePointer<UInt8>, batch: Int, sequence: Int,
                embeddings: UnsafeMutablePointer<Float>) {
        model.forward(inputIDs: inputIDs, attentionMask: attentionMask, batch: batch, sequence: sequence,
                      workspace: workspace, embeddings: embeddings)
    }
}
