// CLIP's image tower as an ONNX graph: the weights `forward` runs, attention written out in
// operator set 13 (MatMul, Softmax), LayerNorm from its reductions.

import ONNX

extension CLIPVisionModel: ONNXExportableImageModel {
    public func appendONNX(to graph: inout ONNXGraph, input: String, outputs: Set<ImageOutputName>) -> [ImageOutputName: String] {
        let c = configuration, t = c.vision, w = t.hiddenSize, p = c.patchSize, side = c.patchesPerSide
        let heads = t.headCount, headWidth = t.headDimension

        // Patch embedding: [hidden, p, p, 3] (channels-last patches) -> [hidden, 3, p, p].
        let patchWeight = permuteOHWItoOIHW(rowMajor(patchEmbedding), out: w, in: 3, kernel: p)
        // [N, 3, S, S] -> [N, hidden, S/p, S/p] -> [N, patches, hidden]
        var x = graph.convolution(input, weight: patchWeight, bias: [Float](repeating: 0, count: w), outChannels: w, kernel: p,
                                  stride: p, pads: (0, 0, 0, 0), name: "patch_embedding")
        x = graph.reshape(x, to: [0, w, side * side], name: "patches.flat")
        x = graph.transpose(x, permutation: [0, 2, 1], name: "patches")
        // [N, 1 + patches, hidden]: the class token first, then the patches, plus positions.
        let classToken = graph.broadcastRow(classEmbedding, batchOf: x, name: "class_token")
        x = graph.concatenate([classToken, x], axis: 1, name: "tokens")
        x = graph.node("Add", [x, graph.constant("position_embedding", positionEmbedding, shape: [c.visionTokens, w])],
                       output: "embeddings")
        x = graph.layerNorm(x, gamma: preNorm.gamma, beta: preNorm.beta, epsilon: preNorm.epsilon, name: "pre_layrnorm")

        for (l, layer) in encoder.layers.enumerated() {
            let name = "layers.\(l)"
            // Attention: LN -> q, k, v [N, T, hidden] -> [N, heads, T, head width] -> softmax(q kᵀ / √d) v.
            var h = graph.layerNorm(x, gamma: layer.norm1.gamma, beta: layer.norm1.beta, epsilon: layer.norm1.epsilon,
                                    name: "\(name).layer_norm1")
            let stacked = layer.queryKeyValue.pytorchWeight
            var parts: [String] = []
            for (j, part) in ["q", "k", "v"].enumerated() {
                let projected = graph.matmul(h, weight: Array(stacked[(j * w * w)..<((j + 1) * w * w)]),
                                             bias: Array(layer.queryKeyValue.bias[(j * w)..<((j + 1) * w)]), outputs: w,
                                             name: "\(name).\(part)_proj")
                let split = graph.reshape(projected, to: [0, 0, heads, headWidth], name: "\(name).\(part).heads")
                // k goes to [N, heads, head width, T] so q · k is one MatMul.
                parts.append(graph.transpose(split, permutation: part == "k" ? [0, 2, 3, 1] : [0, 2, 1, 3], name: "\(name).\(part)"))
            }
            var scores = graph.node("MatMul", [parts[0], parts[1]], output: "\(name).scores")
            scores = graph.scale(scores, by: 1 / Float(headWidth).squareRoot(), name: "\(name).scaled_scores")
            let weights = graph.node("Softmax", [scores], attributes: [.int("axis", -1)], output: "\(name).attention")
            var context = graph.node("MatMul", [weights, parts[2]], output: "\(name).context.heads")
            context = graph.transpose(context, permutation: [0, 2, 1, 3], name: "\(name).context.tokens")
            context = graph.reshape(context, to: [0, 0, w], name: "\(name).context")
            h = graph.matmul(context, weight: layer.outputProjection.pytorchWeight, bias: layer.outputProjection.bias, outputs: w,
                             name: "\(name).out_proj")
            x = graph.node("Add", [x, h], output: "\(name).attention_residual")
            // MLP: LN -> fc1 -> activation -> fc2, residual.
            h = graph.layerNorm(x, gamma: layer.norm2.gamma, beta: layer.norm2.beta, epsilon: layer.norm2.epsilon,
                                name: "\(name).layer_norm2")
            h = graph.matmul(h, weight: layer.fc1.pytorchWeight, bias: layer.fc1.bias, outputs: t.intermediateSize, name: "\(name).fc1")
            switch encoder.activation {
            case .quickGELU: h = graph.quickGELU(h, name: "\(name).activation")
            case .gelu: h = graph.gelu(h, name: "\(name).activation")
            }
            h = graph.matmul(h, weight: layer.fc2.pytorchWeight, bias: layer.fc2.bias, outputs: w, name: "\(name).fc2")
            x = graph.node("Add", [x, h], output: "\(name).mlp_residual")
        }
        // [N, hidden]: the class token after post_layernorm (what a head reads), then the projection.
        let classState = graph.select(x, index: 0, axis: 1, name: "class_state")
        let pooled = graph.layerNorm(classState, gamma: postNorm.gamma, beta: postNorm.beta, epsilon: postNorm.epsilon,
                                     name: "pooled")
        var result: [ImageOutputName: String] = [:]
        if outputs.contains(.features) { result[.features] = pooled }
        if outputs.contains(.embedding) {
            result[.embedding] = graph.matmul(pooled, weight: projection.pytorchWeight, bias: nil, outputs: c.projectionDimension,
                                              name: "visual_projection")
        }
        return result
    }
}
