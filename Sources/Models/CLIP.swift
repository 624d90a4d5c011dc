// CLIP (Radford et al., "Learning Transferable Visual Models From Natural Language Supervision", ICML
// 2021): a ViT image tower (Dosovitskiy et al. 2021) and a causal Transformer text tower trained
// together into one embedding space. Matches Hugging Face transformers' CLIPModel (modeling_clip.py):
// pre-norm encoder layers, quick_gelu or gelu as the config says, the image's class token through
// `post_layernorm` and `visual_projection`, the text's end-of-text token through `final_layer_norm` and
// `text_projection`. Checkpoints are Hugging Face `CLIPModel` folders (config.json, model.safetensors
// in fp32 or fp16, vocab.json, merges.txt, preprocessor_config.json); the reference is
// scripts/make_clip_fixture.py (tiny seeded model in Tests/ModelsTests/Resources/tiny-clip) and
// scripts/check-clip (ViT-B/32 size).
//
// Activations are token rows, [batch · tokens, width], so every projection is one GEMM over all tokens.

import Foundation
import Imaging
import Kernels
import Weights

/// Hyper-parameters from a `CLIPModel` config.json (its own key names; absent keys take transformers'
/// defaults, as `save_pretrained` leaves out values equal to them).
public struct CLIPConfiguration: Decodable, Sendable, Equatable {
    public struct Tower: Sendable, Equatable {
        public var hiddenSize: Int
        public var intermediateSize: Int
        public var layerCount: Int
        public var headCount: Int
        public var layerNormEpsilon: Double
        public var activation: String
        public var headDimension: Int { hiddenSize / headCount }
    }

    public var vision: Tower
    public var text: Tower
    public var imageSize: Int
    public var patchSize: Int
    public var channels: Int
    public var vocabularySize: Int
    public var maxPositions: Int
    /// transformers pools the text at `argmax(input_ids)` when this is 2 (configs written before the
    /// end-of-text id was recorded), else at the first position holding this id.
    public var endOfTextID: Int
    public var projectionDimension: Int

    public var patchesPerSide: Int { imageSize / patchSize }
    /// Class token + patches.
    public var visionTokens: Int { 1 + patchesPerSide * patchesPerSide }

    private enum Keys: String, CodingKey {
        case projection_dim, vision_config, text_config
        case hidden_size, intermediate_size, num_hidden_layers, num_attention_heads, layer_norm_eps, hidden_act
        case image_size, patch_size, num_channels, vocab_size, max_position_embeddings, eos_token_id
    }

    public init(from decoder: Decoder) throws {
        let root = try decoder.container(keyedBy: Keys.self)
        projectionDimension = try root.decodeIfPresent(Int.self, forKey: .projection_dim) ?? 512
        func tower(_ key: Keys, hidden: Int, intermediate: Int, layers: Int, heads: Int) throws
            -> (Tower, KeyedDecodingContainer<Keys>?)
        {
            let c = try root.decodeIfPresent(Nested.self, forKey: key)?.container
            return (Tower(hiddenSize: try c?.decodeIfPresent(Int.self, forKey: .hidden_size) ?? hidden,
                          intermediateSize: try c?.decodeIfPresent(Int.self, forKey: .intermediate_size) ?? intermediate,
                          layerCount: try c?.decodeIfPresent(Int.self, forKey: .num_hidden_layers) ?? layers,
                          headCount: try c?.decodeIfPresent(Int.self, forKey: .num_attention_heads) ?? heads,
                          layerNormEpsilon: try c?.decodeIfPresent(Double.self, forKey: .layer_norm_eps) ?? 1e-5,
                          activation: try c?.decodeIfPresent(String.self, forKey: .hidden_act) ?? "quick_gelu"), c)
        }
        let (vision, v) = try tower(.vision_config, hidden: 768, intermediate: 3072, layers: 12, heads: 12)
        let (text, t) = try tower(.text_config, hidden: 512, intermediate: 2048, layers: 12, heads: 8)
        self.vision = vision
        self.text = text
        imageSize = try v?.decodeIfPresent(Int.self, forKey: .image_size) ?? 224
        patchSize = try v?.decodeIfPresent(Int.self, forKey: .patch_size) ?? 32
        channels = try v?.decodeIfPresent(Int.self, forKey: .num_channels) ?? 3
        vocabularySize = try t?.decodeIfPresent(Int.self, forKey: .vocab_size) ?? 49408
        maxPositions = try t?.decodeIfPresent(Int.self, forKey: .max_position_embeddings) ?? 77
        endOfTextID = try t?.decodeIfPresent(Int.self, forKey: .eos_token_id) ?? 49407
    }

    /// A nested config object, decoded with the same keys.
    private struct Nested: Decodable {
        let container: KeyedDecodingContainer<Keys>
        init(from decoder: Decoder) throws { container = try decoder.container(keyedBy: Keys.self) }
    }

    /// Reads config.json and checks that this implementation can run it.
    public static func load(contentsOf url: URL) throws(ModelsError) -> CLIPConfiguration {
        let configuration: CLIPConfiguration
        do { configuration = try JSONDecoder().decode(CLIPConfiguration.self, from: Data(contentsOf: url)) } catch {
            throw .invalidConfiguration(file: url.path, reason: "\(error)")
        }
        try configuration.validate(source: url.path)
        return configuration
    }

    func validate(source: String) throws(ModelsError) {
        for (name, tower) in [("vision_config", vision), ("text_config", text)] {
            guard CLIPActivation(rawValue: tower.activation) != nil else {
                throw .invalidConfiguration(file: source, reason: "\(name).hidden_act \"\(tower.activation)\" (headtune runs "
                                            + CLIPActivation.allCases.map { "\"\($0.rawValue)\"" }.joined(separator: ", ") + ")")
            }
            guard tower.headCount > 0, tower.hiddenSize > 0, tower.hiddenSize % tower.headCount == 0 else {
                throw .invalidConfiguration(file: source, reason: "\(name).hidden_size \(tower.hiddenSize) is not a multiple of num_attention_heads \(tower.headCount)")
            }
            guard tower.layerCount >= 0, tower.intermediateSize > 0 else {
                throw .invalidConfiguration(file: source, reason: "\(name) has \(tower.layerCount) layers of width \(tower.intermediateSize)")
            }
        }
        guard channels == 3 else { throw .invalidConfiguration(file: source, reason: "num_channels \(channels) (RGB only)") }
        guard patchSize > 0, imageSize >= patchSize, imageSize % patchSize == 0 else {
            throw .invalidConfiguration(file: source, reason: "image_size \(imageSize) is not a multiple of patch_size \(patchSize)")
        }
        guard vocabularySize > 0, maxPositions > 0, projectionDimension > 0 else {
            throw .invalidConfiguration(file: source, reason: "vocab_size, max_position_embeddings and projection_dim must be positive")
        }
    }
}

/// The MLP activations CLIP checkpoints use.
enum CLIPActivation: String, CaseIterable {
    /// x · sigmoid(1.702 x): OpenAI's checkpoints.
    case quickGELU = "quick_gelu"
    /// The exact erf GELU: LAION / OpenCLIP checkpoints converted to Hugging Face.
    case gelu
}

/// LayerNorm parameters [width].
struct CLIPLayerNorm: Sendable {
    let gamma: [Float]
    let beta: [Float]
    let epsilon: Float

    init(_ reader: CheckpointReader, _ name: String, width: Int, epsilon: Double) throws(ModelsError) {
        gamma = try reader.floats("\(name).weight", shape: [width])
        beta = try reader.floats("\(name).bias", shape: [width])
        self.epsilon = Float(epsilon)
    }

    /// [rows, width] -> [rows, width]
    func callAsFunction(_ input: UnsafePointer<Float>, rows: Int, output: UnsafeMutablePointer<Float>, threads: Int) {
        layerNorm(input: input, rows: rows, columns: gamma.count, gamma: gamma, beta: beta, epsilon: epsilon,
                  output: output, threads: threads)
    }
}

/// One pre-norm Transformer layer: x += attn(LN1(x)); x += fc2(act(fc1(LN2(x)))).
struct CLIPEncoderLayer: Sendable {
    let norm1: CLIPLayerNorm
    /// q, k and v stacked: [3 · width, width].
    let queryKeyValue: Linear
    let outputProjection: Linear
    let norm2: CLIPLayerNorm
    let fc1: Linear
    let fc2: Linear

    init(_ reader: CheckpointReader, _ p: String, tower t: CLIPConfiguration.Tower) throws(ModelsError) {
        let w = t.hiddenSize
        func linear(_ name: String, out: Int, in inputs: Int) throws(ModelsError) -> Linear {
            Linear(pytorchWeight: try reader.floats("\(name).weight", shape: [out, inputs]),
                   bias: try reader.floats("\(name).bias", shape: [out]))
        }
        norm1 = try CLIPLayerNorm(reader, "\(p).layer_norm1", width: w, epsilon: t.layerNormEpsilon)
        var weight: [Float] = [], bias: [Float] = []
        for part in ["q", "k", "v"] {
            weight += try reader.floats("\(p).self_attn.\(part)_proj.weight", shape: [w, w])
            bias += try reader.floats("\(p).self_attn.\(part)_proj.bias", shape: [w])
        }
        queryKeyValue = Linear(pytorchWeight: weight, bias: bias)
        outputProjection = try linear("\(p).self_attn.out_proj", out: w, in: w)
        norm2 = try CLIPLayerNorm(reader, "\(p).layer_norm2", width: w, epsilon: t.layerNormEpsilon)
        fc1 = try linear("\(p).mlp.fc1", out: t.intermediateSize, in: w)
        fc2 = try linear("\(p).mlp.fc2", out: w, in: t.intermediateSize)
    }
}

/// A stack of encoder layers with the buffers it runs in.
struct CLIPEncoder: Sendable {
    let tower: CLIPConfiguration.Tower
    let layers: [CLIPEncoderLayer]
    let activation: CLIPActivation

    init(_ reader: CheckpointReader, _ prefix: String, tower: CLIPConfiguration.Tower) throws(ModelsError) {
        self.tower = tower
        activation = CLIPActivation(rawValue: tower.activation) ?? .quickGELU
        var layers: [CLIPEncoderLayer] = []
        for i in 0..<tower.layerCount { layers.append(try CLIPEncoderLayer(reader, "\(prefix).layers.\(i)", tower: tower)) }
        self.layers = layers
    }

    /// Runs every layer over `state` and keeps the rows a pooled output reads: afterwards row b of
    /// `state` (b < batch) holds the final state of item b's token `pooledPositions[b]`. The last layer
    /// runs only for those rows (its keys and values still come from every token): nothing else of
    /// its output is read, and each row's numbers are the ones the full layer gives it.
    /// - state: [batch · sequence, width]; keyMask: [batch, sequence] or nil; causal: text attention
    /// - pooledPositions: [batch], each in `0..<sequence`
    func callAsFunction(_ state: UnsafeMutablePointer<Float>, batch: Int, sequence: Int, keyMask: UnsafePointer<UInt8>?,
                        causal: Bool, pooledPositions: [Int], workspace: CLIPWorkspace, threads: Int) {
        let rows = batch * sequence
        precondition(rows <= workspace.rows, "workspace too small")
        precondition(pooledPositions.count == batch && pooledPositions.allSatisfy { (0..<sequence).contains($0) })
        for layer in layers.dropLast() {
            // [rows, w] -> LN -> [rows, 3w] -> attention -> [rows, w] -> + state
            attention(layer, state, batch: batch, sequence: sequence, keyMask: keyMask, causal: causal,
                      queryPositions: nil, workspace: workspace, threads: threads)
            // [rows, w] -> LN -> [rows, intermediate] -> act -> [rows, w] -> + state
            feedForward(layer, state, rows: rows, workspace: workspace, threads: threads)
        }
        if let last = layers.last {
            attention(last, state, batch: batch, sequence: sequence, keyMask: keyMask, causal: causal,
                      queryPositions: pooledPositions, workspace: workspace, threads: threads)
            feedForward(last, state, rows: batch, workspace: workspace, threads: threads)
        } else {
            gatherRows(state, batch: batch, sequence: sequence, positions: pooledPositions)
        }
    }

    /// `state += out_proj(attention(LN1(state)))` for every row, or, with `queryPositions`, for the
    /// pooled rows only, which it first moves to rows 0..<batch of `state`.
    private func attention(_ layer: CLIPEncoderLayer, _ state: UnsafeMutablePointer<Float>, batch: Int, sequence: Int,
                           keyMask: UnsafePointer<UInt8>?, causal: Bool, queryPositions: [Int]?,
                           workspace: CLIPWorkspace, threads: Int) {
        let rows = batch * sequence, w = tower.hiddenSize
        let normed = workspace.normed.pointer, qkv = workspace.queryKeyValue.pointer, context = workspace.context.pointer
        let scale = 1 / Float(tower.headDimension).squareRoot()
        layer.norm1(state, rows: rows, output: normed, threads: threads)
        let qkvProjection = layer.queryKeyValue
        if let queryPositions, qkvProjection.computesColumns(0..<w), qkvProjection.computesColumns(w..<(3 * w)),
           workspace.intermediate.count >= 4 * batch * w {
            // Keys and values for every token, queries for the pooled rows only: their normed rows
            // gathered, projected to q, and put back where attention reads them.
            qkvProjection(normed, rows: rows, output: qkv, columns: w..<(3 * w), threads: threads)
            let gathered = workspace.intermediate.pointer, queries = gathered + batch * w
            for b in 0..<batch { (gathered + b * w).update(from: normed + (b * sequence + queryPositions[b]) * w, count: w) }
            qkvProjection(gathered, rows: batch, output: queries, columns: 0..<w, threads: threads)
            for b in 0..<batch {
                (qkv + (b * sequence + queryPositions[b]) * 3 * w).update(from: queries + b * 3 * w, count: w)
            }
        } else {
            qkvProjection(normed, rows: rows, output: qkv, threads: threads)
        }
        guard let queryPositions else {
            multiHeadAttention(query: qkv, key: qkv + w, value: qkv + 2 * w, rowStride: 3 * w, batch: batch,
                               sequence: sequence, heads: tower.headCount, headDimension: tower.headDimension,
                               keyMask: keyMask, causal: causal, scale: scale, output: context, threads: threads)
            layer.outputProjection(context, rows: rows, output: state, accumulate: true, threads: threads)
            return
        }
        multiHeadAttention(query: qkv, key: qkv + w, value: qkv + 2 * w, rowStride: 3 * w, batch: batch,
                           sequence: sequence, heads: tower.headCount, headDimension: tower.headDimension,
                           keyMask: keyMask, causal: causal, scale: scale, queryPositions: queryPositions,
                           output: context, threads: threads)
        gatherRows(state, batch: batch, sequence: sequence, positions: queryPositions)
        layer.outputProjection(context, rows: batch, output: state, accumulate: true, threads: threads)
    }

    /// `state += fc2(act(fc1(LN2(state))))` over the first `rows` rows.
    private func feedForward(_ layer: CLIPEncoderLayer, _ state: UnsafeMutablePointer<Float>, rows: Int,
                             workspace: CLIPWorkspace, threads: Int) {
        let normed = workspace.normed.pointer, intermediate = workspace.intermediate.pointer
        let stride = workspace.intermediateStride
        layer.norm2(state, rows: rows, output: normed, threads: threads)
        switch activation {
        case .quickGELU:
            // quick_gelu in fc1's epilogue, while its output is in registers.
            layer.fc1(normed, rows: rows, output: intermediate, activation: .quickGELU, outputStride: stride,
                      threads: threads)
        case .gelu:
            layer.fc1(normed, rows: rows, output: intermediate, outputStride: stride, threads: threads)
            // The padding past each row's intermediateSize floats (never read) goes through GELU as well.
            biasGELU(intermediate, rows: rows, columns: stride, bias: nil, threads: threads)
        }
        layer.fc2(intermediate, rows: rows, output: state, accumulate: true, inputStride: stride, threads: threads)
    }

    /// Moves row `b · sequence + positions[b]` of `state` to row b, for b in order: the rows written
    /// (b) never pass the rows still to be read (at least b' · sequence for b' > b).
    private func gatherRows(_ state: UnsafeMutablePointer<Float>, batch: Int, sequence: Int, positions: [Int]) {
        let w = tower.hiddenSize
        for b in 0..<batch where b * sequence + positions[b] != b {
            (state + b * w).update(from: state + (b * sequence + positions[b]) * w, count: w)
        }
    }
}

/// Buffers for one tower's forward pass over up to `rows` token rows.
final class CLIPWorkspace {
    let rows: Int
    let state: ScratchBuffer
    let normed: ScratchBuffer
    let queryKeyValue: ScratchBuffer
    let context: ScratchBuffer
    /// [rows, intermediateStride]: the MLP's hidden activations, rows padded (gemmRowStride)
    let intermediate: ScratchBuffer
    let intermediateStride: Int
    /// Patches (vision: im2col columns) or pooled rows.
    let extra: ScratchBuffer

    init(rows: Int, tower: CLIPConfiguration.Tower, extra: Int) {
        self.rows = max(1, rows)
        let w = tower.hiddenSize
        state = ScratchBuffer(count: self.rows * w)
        normed = ScratchBuffer(count: self.rows * w)
        queryKeyValue = ScratchBuffer(count: self.rows * 3 * w)
        context = ScratchBuffer(count: self.rows * w)
        intermediateStride = gemmRowStride(columns: tower.intermediateSize)
        intermediate = ScratchBuffer(count: self.rows * intermediateStride)
        self.extra = ScratchBuffer(count: extra)
    }
}

// MARK: - Image tower

/// CLIP's ViT image tower: images -> pooled class token [hidden] and projected embedding [projection].
public struct CLIPVisionModel: Sendable {
    public let configuration: CLIPConfiguration
    public let preprocessing: PreprocessingSpec
    /// Patch embedding as a GEMM: [hidden, patch · patch · 3] (PyTorch [out, 3, p, p] permuted to
    /// [out, p, p, 3] so it reads channels-last patches), no bias.
    let patchEmbedding: PointwiseWeights
    let classEmbedding: [Float]
    /// [1 + patches, hidden]
    let positionEmbedding: [Float]
    let preNorm: CLIPLayerNorm
    let encoder: CLIPEncoder
    let postNorm: CLIPLayerNorm
    /// [projection, hidden], no bias.
    let projection: Linear

    init(configuration c: CLIPConfiguration, preprocessing: PreprocessingSpec, reader: CheckpointReader) throws(ModelsError) {
        configuration = c
        self.preprocessing = preprocessing
        let w = c.vision.hiddenSize, p = c.patchSize, e = c.vision.layerNormEpsilon
        var patch = try reader.floats("vision_model.embeddings.patch_embedding.weight", shape: [w, 3, p, p])
        patch = permuteOIHWtoOHWI(patch, out: w, in: 3, kernel: p)
        patchEmbedding = PointwiseWeights(weight: patch, bias: [Float](repeating: 0, count: w), outChannels: w, inChannels: p * p * 3)
        classEmbedding = try reader.floats("vision_model.embeddings.class_embedding", shape: [w])
        positionEmbedding = try reader.floats("vision_model.embeddings.position_embedding.weight", shape: [c.visionTokens, w])
        preNorm = try CLIPLayerNorm(reader, "vision_model.pre_layrnorm", width: w, epsilon: e)
        encoder = try CLIPEncoder(reader, "vision_model.encoder", tower: c.vision)
        postNorm = try CLIPLayerNorm(reader, "vision_model.post_layernorm", width: w, epsilon: e)
        projection = Linear(pytorchWeight: try reader.floats("visual_projection.weight", shape: [c.projectionDimension, w]),
                            bias: [Float](repeating: 0, count: c.projectionDimension))
    }

    /// - input: [batch, size, size, 3] normalized pixels, channels-last
    /// - pooled: receives [batch, hidden] (post_layernorm of the class token), when non-nil
    /// - embedding: receives [batch, projection] (unnormalized, as `get_image_features`), when non-nil
    func forward(_ input: UnsafePointer<Float>, batch: Int, workspace: CLIPWorkspace, threads: Int,
                 pooled: UnsafeMutablePointer<Float>?, embedding: UnsafeMutablePointer<Float>?) {
        let c = configuration, w = c.vision.hiddenSize, tokens = c.visionTokens, side = c.patchesPerSide
        let state = workspace.state.pointer, patches = workspace.normed.pointer
        // [batch, S, S, 3] -> [batch, S/p, S/p, hidden]: one GEMM over non-overlapping patches.
        let geometry = ConvolutionGeometry(batch: batch, height: c.imageSize, width: c.imageSize, channels: 3,
                                           kernel: c.patchSize, stride: c.patchSize, padTop: 0, padLeft: 0,
                                           outHeight: side, outWidth: side)
        convolution(input: input, geometry: geometry, weights: patchEmbedding, activation: .identity,
                    columns: workspace.extra.pointer, output: patches, threads: threads)
        // [batch, 1 + patches, hidden]: class token first, then the patches, plus positions.
        for b in 0..<batch {
            let out = state + b * tokens * w
            for d in 0..<w { out[d] = classEmbedding[d] + positionEmbedding[d] }
            for t in 1..<tokens {
                let source = patches + (b * (tokens - 1) + t - 1) * w, row = out + t * w
                for d in 0..<w { row[d] = source[d] + positionEmbedding[t * w + d] }
            }
        }
        preNorm(state, rows: batch * tokens, output: state, threads: threads)
        // The class tokens (position 0) come back as rows 0..<batch of state.
        encoder(state, batch: batch, sequence: tokens, keyMask: nil, causal: false,
                pooledPositions: [Int](repeating: 0, count: batch), workspace: workspace, threads: threads)
        // Class tokens -> post_layernorm -> [batch, hidden] -> projection.
        let normed = pooled ?? workspace.normed.pointer
        postNorm(state, rows: batch, output: normed, threads: threads)
        if let embedding { projection(normed, rows: batch, output: embedding, threads: threads) }
    }

    func makeWorkspace(batch: Int) -> CLIPWorkspace {
        let c = configuration
        return CLIPWorkspace(rows: batch * c.visionTokens, tower: c.vision,
                             extra: batch * (c.visionTokens - 1) * c.patchSize * c.patchSize * 3)
    }
}

extension CLIPVisionModel: ImageEncoderModel {
    public var outputWidths: [ImageOutputName: Int] {
        [.features: configuration.vision.hiddenSize, .embedding: configuration.projectionDimension]
    }

    /// CLIP has no pretrained classifier; its classes come from text.
    public func classifierWeights() -> [Float]? { nil }

    public func makeSession(threads: Int) -> any ImageEncoderSession { CLIPVisionSession(model: self, threads: threads) }
}

/// Buffers for the largest batch seen so far.
final class CLIPVisionSession: ImageEncoderSession {
    let model: CLIPVisionModel
    let threads: Int
    private var workspace: CLIPWorkspace?
    private var capacity = 0

    init(model: CLIPVisionModel, threads: Int) {
        self.model = model
        self.threads = max(1, threads)
    }

    func encode(_ input: UnsafePointer<Float>, count: Int, outputs: [ImageOutputName: UnsafeMutablePointer<Float>]) {
        guard count > 0 else { return }
        precondition(outputs.keys.allSatisfy { $0 == .features || $0 == .embedding }, "CLIP images give features and embedding")
        // Images go through in groups of at most 32: the token rows of a group are the workspace.
        let group = min(count, 32)
        if workspace == nil || capacity < group {
            workspace = model.makeWorkspace(batch: group)
            capacity = group
        }
        let floats = model.preprocessing.inputSize * model.preprocessing.inputSize * 3
        let pooledWidth = model.configuration.vision.hiddenSize, embeddingWidth = model.configuration.projectionDimension
        var start = 0
        while start < count {
            let n = min(group, count - start)
            model.forward(input + start * floats, batch: n, workspace: workspace!, threads: threads,
                          pooled: outputs[.features].map { $0 + start * pooledWidth },
                          embedding: outputs[.embedding].map { $0 + start * embeddingWidth })
            start += n
        }
    }
}

// MARK: - Text tower

/// CLIP's text tower: token ids -> the end-of-text token's state -> projected, L2-normalized embedding.
public struct CLIPTextModel: Sendable {
    public let configuration: CLIPConfiguration
    /// [vocabulary, hidden], [maxPositions, hidden]
    let tokenEmbedding: [Float]
    let positionEmbedding: [Float]
    let encoder: CLIPEncoder
    let finalNorm: CLIPLayerNorm
    /// [projection, hidden], no bias.
    let projection: Linear

    init(configuration c: CLIPConfiguration, reader: CheckpointReader) throws(ModelsError) {
        configuration = c
        let w = c.text.hiddenSize
        tokenEmbedding = try reader.floats("text_model.embeddings.token_embedding.weight", shape: [c.vocabularySize, w])
        positionEmbedding = try reader.floats("text_model.embeddings.position_embedding.weight", shape: [c.maxPositions, w])
        encoder = try CLIPEncoder(reader, "text_model.encoder", tower: c.text)
        finalNorm = try CLIPLayerNorm(reader, "text_model.final_layer_norm", width: w, epsilon: c.text.layerNormEpsilon)
        projection = Linear(pytorchWeight: try reader.floats("text_projection.weight", shape: [c.projectionDimension, w]),
                            bias: [Float](repeating: 0, count: c.projectionDimension))
    }

    /// The position transformers pools for one sequence (`eos_token_id` 2: the old argmax rule).
    func poolingPosition(_ ids: UnsafePointer<Int32>, length: Int) -> Int {
        if configuration.endOfTextID == 2 {
            var best = 0
            for t in 0..<length where ids[t] > ids[best] { best = t }
            return best
        }
        for t in 0..<length where Int(ids[t]) == configuration.endOfTextID { return t }
        return 0
    }

    /// - inputIDs, attentionMask: [batch, sequence]
    /// - pooled: receives [batch, hidden] (final_layer_norm at the pooling position), when non-nil
    /// - embeddings: receives [batch, projection], L2-normalized when `normalize`
    func forward(inputIDs: UnsafePointer<Int32>, attentionMask: UnsafePointer<UInt8>, batch: Int, sequence: Int,
                 workspace: CLIPWorkspace, threads: Int, pooled: UnsafeMutablePointer<Float>?,
                 embeddings: UnsafeMutablePointer<Float>, normalize: Bool) {
        let c = configuration, w = c.text.hiddenSize, rows = batch * sequence
        precondition(rows <= workspace.rows && sequence <= c.maxPositions, "workspace too small")
        let state = workspace.state.pointer
        for r in 0..<rows {
            let id = min(max(Int(inputIDs[r]), 0), c.vocabularySize - 1), position = r % sequence
            let out = state + r * w
            for d in 0..<w { out[d] = tokenEmbedding[id * w + d] + positionEmbedding[position * w + d] }
        }
        // The pooled rows come back as rows 0..<batch of state; only they need the final LayerNorm
        // (it is per row).
        let positions = (0..<batch).map { b in poolingPosition(inputIDs + b * sequence, length: sequence) }
        encoder(state, batch: batch, sequence: sequence, keyMask: attentionMask, causal: true, pooledPositions: positions,
                workspace: workspace, threads: threads)
        let normed = pooled ?? workspace.normed.pointer
        finalNorm(state, rows: batch, output: normed, threads: threads)
        projection(normed, rows: batch, output: embeddings, threads: threads)
        if normalize { normalizeRows(embeddings, rows: batch, columns: c.projectionDimension) }
    }
}

extension CLIPTextModel: TextEncoderModel {
    public var dimension: Int { configuration.projectionDimension }
    public var maxPositions: Int { configuration.maxPositions }

    public func makeSession(tokens: Int, threads: Int) -> any TextEncoderSession {
        CLIPTextSession(model: self, workspace: CLIPWorkspace(rows: tokens, tower: configuration.text, extra: 0),
                        threads: max(1, threads))
    }
}

final class CLIPTextSession: TextEncoderSession {
    let model: CLIPTextModel
    let workspace: CLIPWorkspace
    let threads: Int

    init(model: CLIPTextModel, workspace: CLIPWorkspace, threads: Int) {
        self.model = model
        self.workspace = workspace
        self.threads = threads
    }

    var tokenCapacity: Int { workspace.rows }

    func encode(inputIDs: UnsafePointer<Int32>, attentionMask: UnsafePointer<UInt8>, batch: Int, sequence: Int,
                embeddings: UnsafeMutablePointer<Float>) {
        model.forward(inputIDs: inputIDs, attentionMask: attentionMask, batch: batch, sequence: sequence, workspace: workspace,
                      threads: threads, pooled: nil, embeddings: embeddings, normalize: true)
    }
}

// MARK: - Loading

/// Both towers of a CLIP checkpoint and its learned temperature.
public struct CLIPModel: Sendable {
    public let vision: CLIPVisionModel?
    public let text: CLIPTextModel?
    /// exp(logit_scale): the factor on cosine similarities in CLIP's softmax (100 for OpenAI's models).
    public let logitScale: Float

    public struct Towers: OptionSet, Sendable {
        public let rawValue: Int
        public init(rawValue: Int) { self.rawValue = rawValue }
        public static let vision = Towers(rawValue: 1)
        public static let text = Towers(rawValue: 2)
        public static let both: Towers = [.vision, .text]
    }

    /// Strict load of the towers asked for: every tensor of a loaded tower present with its exact
    /// shape and nothing else in the file except the other tower's tensors and the `position_ids`
    /// buffers older checkpoints carry.
    /// - preprocessing: the image tower's (from preprocessor_config.json); nil when only the text tower loads
    public init(configuration: CLIPConfiguration, preprocessing: PreprocessingSpec?, weights: some TensorSource,
                towers: Towers = .both) throws(ModelsError) {
        let skipVision = !towers.contains(.vision), skipText = !towers.contains(.text)
        let reader = CheckpointReader(weights, ignoring: { key in
            key.hasSuffix("embeddings.position_ids")
                || (skipVision && (key.hasPrefix("vision_model.") || key.hasPrefix("visual_projection.")))
                || (skipText && (key.hasPrefix("text_model.") || key.hasPrefix("text_projection.")))
        })
        if towers.contains(.vision) {
            guard let preprocessing else { throw .invalidInput(reason: "CLIP's image tower needs its preprocessing") }
            vision = try CLIPVisionModel(configuration: configuration, preprocessing: preprocessing, reader: reader)
        } else {
            vision = nil
        }
        text = towers.contains(.text) ? try CLIPTextModel(configuration: configuration, reader: reader) : nil
        logitScale = Float(exp(Double(try reader.floats("logit_scale", shape: []).first ?? 0)))
        try reader.finish()
    }

    /// The preprocessing a `preprocessor_config.json` describes (CLIPImageProcessor: shortest side to
    /// `size.shortest_edge` with bicubic, centre crop `crop_size`, rescale 1/255, mean/std).
    public static func preprocessing(contentsOf url: URL, imageSize: Int) throws(ModelsError) -> PreprocessingSpec {
        struct File: Decodable {
            struct Size: Decodable {
                var shortest_edge: Int?
                var height: Int?
                var width: Int?
            }
            enum SizeValue: Decodable {
                case one(Int), box(Size)
                init(from decoder: Decoder) throws {
                    let c = try decoder.singleValueContainer()
                    if let v = try? c.decode(Int.self) { self = .one(v) } else { self = .box(try c.decode(Size.self)) }
                }
                var side: Int? {
                    switch self {
                    case .one(let v): return v
                    case .box(let s): return s.shortest_edge ?? s.height
                    }
                }
            }
            var size: SizeValue?
            var crop_size: SizeValue?
            var image_mean: [Float]?
            var image_std: [Float]?
            var do_center_crop: Bool?
            var resample: Int?
        }
        let file: File
        do { file = try JSONDecoder().decode(File.self, from: Data(contentsOf: url)) } catch {
            throw .invalidConfiguration(file: url.path, reason: "\(error)")
        }
        let mean = file.image_mean ?? [0.48145466, 0.4578275, 0.40821073]
        let std = file.image_std ?? [0.26862954, 0.26130258, 0.27577711]
        guard mean.count == 3, std.count == 3, std.allSatisfy({ $0 > 0 }) else {
            throw .invalidConfiguration(file: url.path, reason: "image_mean and image_std need 3 values, std > 0")
        }
        let crop = file.crop_size?.side ?? imageSize, shortest = file.size?.side ?? imageSize
        guard crop == imageSize, shortest == imageSize, file.do_center_crop != false else {
            throw .invalidConfiguration(file: url.path, reason: "resize to \(shortest) and crop \(crop) for a \(imageSize) px model "
                                        + "(headtune runs the shortest side resized to the model's input, then its centre crop)")
        }
        guard file.resample == nil || file.resample == 3 else {
            throw .invalidConfiguration(file: url.path, reason: "resample \(file.resample!) (headtune resizes with bicubic, 3)")
        }
        return PreprocessingSpec(inputSize: imageSize, centerCrop: .shortestSide, normalization: .meanStd(mean: mean, std: std),
                                 defaultPolicy: .centerCrop)
    }
}
