// Partial fine-tuning of EfficientNet-Lite: the frozen prefix (stem and the first blocks) as an encoder
// whose output is the activation at the cut, and the trainable tail (the last blocks and the head
// convolution) with forward and backward passes over a batch of those activations.
//
// The tail trains the BatchNorm-folded weights and biases (`y = x · (s ⊙ W)ᵀ + (β - μ s)`): with the
// BatchNorm statistics frozen, as is usual for small-batch fine-tuning, that is the same function
// class as training the convolution and the BatchNorm affine separately, in one tensor each.
// Activations are channels-last (NHWC), as in the forward pass.

import Foundation
import Imaging
import Kernels

// MARK: - The frozen prefix

/// Stem and blocks `0..<cut` of an EfficientNet-Lite; `.features` per image is the activation
/// entering block `cut` [h, w, c], followed by the pooled outputs of the stages that end before it.
public struct EfficientNetLitePrefix: ImageEncoderModel {
    let network: EfficientNetLite
    /// Index of the first block of the tail (`blocks.count`: only the head convolution is trained).
    let cut: Int
    let width: Int

    public var preprocessing: PreprocessingSpec { network.preprocessing }
    public var outputWidths: [ImageOutputName: Int] { [.features: width] }
    public func classifierWeights() -> [Float]? { nil }

    public func makeSession(threads: Int) -> any ImageEncoderSession {
        EfficientNetLitePrefixSession(prefix: self, threads: threads)
    }
}

final class EfficientNetLitePrefixSession: ImageEncoderSession {
    let prefix: EfficientNetLitePrefix
    let workspace: EfficientNetLiteWorkspace
    /// [count, stagePooledFeatureCount]: the frozen stages' pooled values before they are copied out.
    private var stageScratch = ScratchBuffer(count: 0)

    init(prefix: EfficientNetLitePrefix, threads: Int) {
        self.prefix = prefix
        workspace = prefix.network.makeWorkspace(batch: 1, threads: threads)
    }

    func encode(_ input: UnsafePointer<Float>, count: Int, outputs: [ImageOutputName: UnsafeMutablePointer<Float>]) {
        guard count > 0, let output = outputs[.features] else { return }
        precondition(outputs.count == 1, "a frozen prefix has only .features")
        let need = count * max(prefix.network.stagePooledFeatureCount, prefix.network.featureCount)
        if stageScratch.count < need { stageScratch = ScratchBuffer(count: need) }
        prefix.network.forwardPrefix(input: input, batch: count, workspace: workspace, cut: prefix.cut, cutOutput: output,
                                     stageScratch: stageScratch.pointer)
    }
}

// MARK: - The trainable tail

/// Blocks `cut..<blocks.count` and the head convolution, trained in full or through LoRA adapters
/// (Hu et al. 2021) on their 1x1 convolutions: `W = W₀ + B·A`, `A` [rank, in] drawn like PEFT's
/// Kaiming-uniform start, `B` [out, rank] zero (so training starts from the pretrained network); the
/// folded biases train too (they are few), the depthwise filters stay frozen.
public final class EfficientNetLiteTail: TrainableTail {
    let network: EfficientNetLite
    public let unfreeze: Int
    public let loraRank: Int?
    let cut: Int
    let plan: EfficientNetLitePlan
    public let tensors: [TailTensor]
    public var parameters: [Float]
    /// Pretrained weights [out, in] of the adapted convolutions by tensor name prefix (LoRA only).
    let frozenWeights: [String: [Float]]
    /// Floats of the cut activation per image, and of the frozen stages' pooled values after it.
    let activationWidth: Int
    let frozenStageWidth: Int
    /// Pooled widths of the stages that end inside the tail, in order.
    let tailStageWidth: Int
    private let index: [String: TailTensor]

    public var inputWidth: Int { activationWidth + frozenStageWidth }

    public func outputWidth(includeStages: Bool) -> Int {
        network.featureCount + (includeStages ? network.stagePooledFeatureCount : 0)
    }

    /// The index of the first tail block when the last `unfreeze` blocks train (checked).
    static func cut(unfreeze: Int, network: EfficientNetLite) throws(ModelsError) -> Int {
        let unfreezable = network.blocks.count + 1
        guard unfreeze >= 1 && unfreeze <= unfreezable else {
            throw .invalidInput(reason: "cannot unfreeze \(unfreeze) blocks: \(network.configuration.blocks.count) blocks "
                                + "and the head convolution make \(unfreezable) (0 trains the head alone)")
        }
        return unfreezable - unfreeze
    }

    /// The tail with the pretrained weights (adapters, if any, start at zero effect).
    init(network: EfficientNetLite, unfreeze: Int, loraRank: Int?, seed: UInt64) throws(ModelsError) {
        cut = try Self.cut(unfreeze: unfreeze, network: network)
        if let loraRank, loraRank < 1 { throw .invalidInput(reason: "a LoRA rank must be at least 1 (got \(loraRank))") }
        self.network = network
        self.unfreeze = unfreeze
        self.loraRank = loraRank
        plan = EfficientNetLitePlan(configuration: network.configuration, height: network.configuration.inputSize,
                                    width: network.configuration.inputSize)
        let shape = network.cutShape(cut, plan: plan)
        activationWidth = shape.height * shape.width * shape.channels
        frozenStageWidth = network.frozenStageWidth(cut: cut)
        tailStageWidth = network.stagePooledFeatureCount - frozenStageWidth

        // The layout, and the pretrained values to start from.
        var tensors: [TailTensor] = [], values: [Float] = [], frozen: [String: [Float]] = [:]
        var generator = SplitMix64(seed: seed)
        func add(_ name: String, _ shape: [Int], _ start: [Float], decayed: Bool) {
            tensors.append(TailTensor(name: name, shape: shape, offset: values.count, isDecayed: decayed))
            values += start
        }
        func addConvolution(_ name: String, _ weights: PointwiseWeights) {
            let w = rowMajor(weights), out = weights.outChannels, inputs = weights.inChannels
            if let rank = loraRank {
                frozen[name] = w
                let bound = 1 / Float(inputs).squareRoot()
                add("\(name).lora_a", [rank, inputs], (0..<(rank * inputs)).map { _ in bound * (2 * generator.unitFloat() - 1) },
                    decayed: true)
                add("\(name).lora_b", [out, rank], [Float](repeating: 0, count: out * rank), decayed: true)
            } else {
                add("\(name).weight", [out, inputs], w, decayed: true)
            }
            add("\(name).bias", [out], weights.bias, decayed: false)
        }
        for b in cut..<network.blocks.count {
            let block = network.blocks[b], a = block.arguments
            if let expand = block.expand { addConvolution("blocks.\(b).expand", expand) }
            if loraRank == nil {
                add("blocks.\(b).depthwise.weight", [a.kernel, a.kernel, a.expandedChannels], block.depthwise.weight, decayed: true)
            }
            add("blocks.\(b).depthwise.bias", [a.expandedChannels], block.depthwise.bias, decayed: false)
            addConvolution("blocks.\(b).project", block.project)
        }
        addConvolution("head", network.head)
        self.tensors = tensors
        parameters = values
        frozenWeights = frozen
        index = Dictionary(uniqueKeysWithValues: tensors.map { ($0.name, $0) })
    }

    /// A stored tail: the same layout, values from `source` (strict).
    convenience init(network: EfficientNetLite, unfreeze: Int, loraRank: Int?, source: some TensorSource) throws(ModelsError) {
        try self.init(network: network, unfreeze: unfreeze, loraRank: loraRank, seed: 0)
        let reader = CheckpointReader(source)
        for tensor in tensors {
            let values = try reader.floats(tensor.name, shape: tensor.shape)
            parameters.replaceSubrange(tensor.offset..<(tensor.offset + tensor.count), with: values)
        }
        try reader.finish()
    }

    // MARK: Effective weights

    /// A 1x1 convolution's weight as the tail uses it now: its parameters, or `W₀ + B·A`.
    private func convolutionWeight(_ name: String) -> [Float] {
        if let w = index["\(name).weight"] { return Array(parameters[w.offset..<(w.offset + w.count)]) }
        let a = index["\(name).lora_a"]!, b = index["\(name).lora_b"]!
        var w = frozenWeights[name]!
        let out = b.shape[0], rank = b.shape[1], inputs = a.shape[1]
        parameters.withUnsafeBufferPointer { p in
            w.withUnsafeMutableBufferPointer { w in
                // [out, in] += B [out, rank] · A [rank, in]
                BLAS.sgemm(m: out, n: inputs, k: rank, a: p.baseAddress! + b.offset, lda: rank, b: p.baseAddress! + a.offset,
                           ldb: inputs, beta: 1, c: w.baseAddress!, ldc: inputs)
            }
        }
        return w
    }

    private func values(_ name: String) -> [Float] {
        let t = index[name]!
        return Array(parameters[t.offset..<(t.offset + t.count)])
    }

    struct BlockWeights {
        var expand: (weight: [Float], bias: [Float])?
        var depthwise: (weight: [Float], bias: [Float])
        var project: (weight: [Float], bias: [Float])
    }

    struct Weights {
        var blocks: [BlockWeights]
        var head: (weight: [Float], bias: [Float])
    }

    private func effectiveWeights() -> Weights {
        Weights(
            blocks: (cut..<network.blocks.count).map { b in
                let block = network.blocks[b]
                return BlockWeights(
                    expand: block.expand == nil ? nil : (convolutionWeight("blocks.\(b).expand"), values("blocks.\(b).expand.bias")),
                    depthwise: (loraRank == nil ? values("blocks.\(b).depthwise.weight") : block.depthwise.weight,
                                values("blocks.\(b).depthwise.bias")),
                    project: (convolutionWeight("blocks.\(b).project"), values("blocks.\(b).project.bias")))
            },
            head: (convolutionWeight("head"), values("head.bias")))
    }

    /// The network with this tail's weights (adapters merged) in its last blocks.
    func merged() -> EfficientNetLite {
        let weights = effectiveWeights()
        func pointwise(_ w: (weight: [Float], bias: [Float])) -> PointwiseWeights {
            PointwiseWeights(weight: w.weight, bias: w.bias, outChannels: w.bias.count, inChannels: w.weight.count / w.bias.count)
        }
        var blocks = network.blocks
        for (i, b) in (cut..<blocks.count).enumerated() {
            let w = weights.blocks[i]
            blocks[b] = EfficientNetLite.Block(arguments: blocks[b].arguments, expand: w.expand.map(pointwise),
                                               depthwise: FoldedConvolution(weight: w.depthwise.weight, bias: w.depthwise.bias),
                                               project: pointwise(w.project))
        }
        return EfficientNetLite(configuration: network.configuration, stem: network.stem, blocks: blocks,
                                head: pointwise(weights.head), classifier: network.classifier)
    }

    // MARK: Forward and backward

    /// What one block's backward pass reads.
    struct SavedBlock {
        var geometry: ConvolutionGeometry
        /// [rows, in] block input
        var input: [Float]
        /// [rows, mid] expansion after ReLU6 (blocks with an expansion); ReLU6's backward reads its
        /// mask from the output as well as from the pre-activation (`relu6Backward`), so only outputs are kept
        var expanded: [Float]
        /// [rows', mid] depthwise output after ReLU6
        var filtered: [Float]
    }

    struct Saved {
        var weights: Weights
        var blocks: [SavedBlock]
        /// [positions·count, lastChannels] head-convolution input, and its output after ReLU6
        var headInput: [Float]
        var headActivated: [Float]
    }

    private func geometry(_ b: Int, batch: Int) -> ConvolutionGeometry {
        var g = plan.blocks[b]
        g.batch = batch
        return g
    }

    public func forward(_ input: UnsafePointer<Float>, count: Int, includeStages: Bool, threads: Int) -> TailPass {
        let weights = effectiveWeights()
        let outputWidth = outputWidth(includeStages: includeStages)
        var output = [Float](repeating: 0, count: count * outputWidth)
        // [count, h, w, c] from the per-image rows [activation | frozen stages]
        var x = [Float](repeating: 0, count: count * activationWidth)
        for n in 0..<count {
            x.withUnsafeMutableBufferPointer { ($0.baseAddress! + n * activationWidth).update(from: input + n * inputWidth, count: activationWidth) }
            if includeStages {
                output.withUnsafeMutableBufferPointer {
                    ($0.baseAddress! + n * outputWidth + network.featureCount)
                        .update(from: input + n * inputWidth + activationWidth, count: frozenStageWidth)
                }
            }
        }
        var saved: [SavedBlock] = []
        var stageOffset = network.featureCount + frozenStageWidth
        for (i, b) in (cut..<network.blocks.count).enumerated() {
            let a = network.blocks[b].arguments, w = weights.blocks[i], g = geometry(b, batch: count)
            let rows = count * g.height * g.width, outRows = count * g.outHeight * g.outWidth, mid = a.expandedChannels
            var block = SavedBlock(geometry: g, input: x, expanded: [], filtered: [])
            if let expand = w.expand {
                // [rows, in] -> [rows, mid]
                block.expanded = pointwise(x, rows: rows, weight: expand.weight, bias: expand.bias, inputs: a.inChannels,
                                           outputs: mid, activation: .relu6, residual: nil, threads: threads)
            }
            // [count, H, W, mid] -> [count, H', W', mid]
            block.filtered = [Float](repeating: 0, count: outRows * mid)
            (w.expand == nil ? x : block.expanded).withUnsafeBufferPointer { e in
                w.depthwise.weight.withUnsafeBufferPointer { dw in
                    w.depthwise.bias.withUnsafeBufferPointer { db in
                        block.filtered.withUnsafeMutableBufferPointer { z in
                            depthwiseConvolution(input: e.baseAddress!, geometry: g, weight: dw.baseAddress!, bias: db.baseAddress!,
                                                 activation: .relu6, output: z.baseAddress!, threads: threads)
                        }
                    }
                }
            }
            // [rows', mid] -> [rows', out] (+ block input)
            x = pointwise(block.filtered, rows: outRows, weight: w.project.weight, bias: w.project.bias, inputs: mid,
                          outputs: a.outChannels, activation: .identity, residual: a.hasResidual ? x : nil, threads: threads)
            saved.append(block)
            if includeStages && network.endsStage[b] {
                let positions = g.outHeight * g.outWidth
                x.withUnsafeBufferPointer { y in
                    output.withUnsafeMutableBufferPointer { o in
                        for n in 0..<count {
                            globalAveragePool(input: y.baseAddress! + n * positions * a.outChannels, batch: 1, positions: positions,
                                              channels: a.outChannels, output: o.baseAddress! + n * outputWidth + stageOffset)
                        }
                    }
                }
                stageOffset += a.outChannels
            }
        }
        // Head convolution: [positions·count, last] -> [.., 1280] -> ReLU6 -> mean over positions
        let positions = plan.finalHeight * plan.finalWidth, head = network.featureCount
        let activated = pointwise(x, rows: count * positions, weight: weights.head.weight, bias: weights.head.bias,
                                  inputs: weights.head.weight.count / head, outputs: head, activation: .relu6, residual: nil,
                                  threads: threads)
        activated.withUnsafeBufferPointer { h in
            output.withUnsafeMutableBufferPointer { o in
                for n in 0..<count {
                    globalAveragePool(input: h.baseAddress! + n * positions * head, batch: 1, positions: positions, channels: head,
                                      output: o.baseAddress! + n * outputWidth)
                }
            }
        }
        return TailPass(output: output, count: count, includeStages: includeStages,
                        storage: Saved(weights: weights, blocks: saved, headInput: x, headActivated: activated))
    }

    public func backward(_ pass: TailPass, outputGradient: UnsafePointer<Float>, parameterGradient: UnsafeMutablePointer<Float>,
                         threads: Int) {
        let saved = pass.storage as! Saved
        let count = pass.count, outputWidth = outputWidth(includeStages: pass.includeStages)
        let positions = plan.finalHeight * plan.finalWidth, head = network.featureCount

        // dL/d(head output) [count·positions, 1280]: the pooled gradient spread over the positions, through ReLU6.
        let dHead = [Float](unsafeUninitializedCapacity: count * positions * head) { d, initialized in
            saved.headActivated.withUnsafeBufferPointer {
                globalAveragePoolReLU6Backward(outputGradient: outputGradient, outputStride: outputWidth, activated: $0.baseAddress!,
                                               batch: count, positions: positions, channels: head, gradient: d.baseAddress!,
                                               threads: threads)
            }
            initialized = count * positions * head
        }
        // With the head convolution alone in the tail, its input is frozen: no input gradient.
        var dx = [Float](repeating: 0, count: cut < network.blocks.count ? saved.headInput.count : 0)
        convolutionBackward("head", input: saved.headInput, rows: count * positions, weight: saved.weights.head.weight,
                            outputs: head, outputGradient: dHead, inputGradient: &dx, gradient: parameterGradient, threads: threads)

        // Stage-pooled outputs of tail blocks sit after the frozen ones, in block order; walk them backwards.
        var stageOffset = network.stagePooledFeatureCount + network.featureCount
        for (i, b) in (cut..<network.blocks.count).enumerated().reversed() {
            let a = network.blocks[b].arguments, block = saved.blocks[i], w = saved.weights.blocks[i], g = block.geometry
            let rows = count * g.height * g.width, outRows = count * g.outHeight * g.outWidth, mid = a.expandedChannels
            var dy = dx
            if pass.includeStages && network.endsStage[b] {
                stageOffset -= a.outChannels
                let outPositions = g.outHeight * g.outWidth
                dy.withUnsafeMutableBufferPointer { d in
                    for n in 0..<count {
                        globalAveragePoolBackward(outputGradient: outputGradient + n * outputWidth + stageOffset, batch: 1,
                                                  positions: outPositions, channels: a.outChannels,
                                                  inputGradient: d.baseAddress! + n * outPositions * a.outChannels)
                    }
                }
            }
            // The first tail block's input gradient would go into the frozen prefix: not computed.
            let needsInputGradient = i > 0
            var dInput = needsInputGradient ? (a.hasResidual ? dy : [Float](repeating: 0, count: rows * a.inChannels)) : []
            var dFiltered = [Float](repeating: 0, count: outRows * mid)
            convolutionBackward("blocks.\(b).project", input: block.filtered, rows: outRows, weight: w.project.weight,
                                outputs: a.outChannels, outputGradient: dy, inputGradient: &dFiltered, gradient: parameterGradient,
                                threads: threads)
            dFiltered.withUnsafeMutableBufferPointer { d in
                block.filtered.withUnsafeBufferPointer {
                    relu6Backward(values: $0.baseAddress!, gradient: d.baseAddress!, count: d.count, threads: threads)
                }
            }
            let depthwiseWeight = index["blocks.\(b).depthwise.weight"], depthwiseBias = index["blocks.\(b).depthwise.bias"]!
            let needsExpandedGradient = w.expand != nil || needsInputGradient
            var dExpanded = [Float](repeating: 0, count: needsExpandedGradient ? rows * mid : 0)
            (w.expand == nil ? block.input : block.expanded).withUnsafeBufferPointer { e in
                w.depthwise.weight.withUnsafeBufferPointer { dw in
                    dFiltered.withUnsafeBufferPointer { dz in
                        dExpanded.withUnsafeMutableBufferPointer { de in
                            depthwiseConvolutionBackward(
                                input: e.baseAddress!, geometry: g, weight: dw.baseAddress!, outputGradient: dz.baseAddress!,
                                inputGradient: needsExpandedGradient ? de.baseAddress! : nil,
                                weightGradient: depthwiseWeight.map { parameterGradient + $0.offset },
                                biasGradient: parameterGradient + depthwiseBias.offset, threads: threads)
                        }
                    }
                }
            }
            if let expand = w.expand {
                dExpanded.withUnsafeMutableBufferPointer { d in
                    block.expanded.withUnsafeBufferPointer {
                        relu6Backward(values: $0.baseAddress!, gradient: d.baseAddress!, count: d.count, threads: threads)
                    }
                }
                if needsInputGradient {
                    convolutionBackward("blocks.\(b).expand", input: block.input, rows: rows, weight: expand.weight, outputs: mid,
                                        outputGradient: dExpanded, inputGradient: &dInput, gradient: parameterGradient, threads: threads)
                } else {
                    var none: [Float] = []
                    convolutionBackward("blocks.\(b).expand", input: block.input, rows: rows, weight: expand.weight, outputs: mid,
                                        outputGradient: dExpanded, inputGradient: &none, gradient: parameterGradient, threads: threads)
                }
            } else if needsInputGradient {
                for j in dInput.indices { dInput[j] += dExpanded[j] }
            }
            dx = dInput
        }
    }

    /// `y = activation(x · Wᵀ + b (+ residual))` through the kernels' training-batch pointwise convolution.
    private func pointwise(_ x: [Float], rows: Int, weight: [Float], bias: [Float], inputs: Int, outputs: Int,
                           activation: Activation, residual: [Float]?, threads: Int) -> [Float] {
        // Every value is written by the GEMM (beta 0): no need to zero the buffer first.
        [Float](unsafeUninitializedCapacity: rows * outputs) { y, initialized in
            x.withUnsafeBufferPointer { x in
                weight.withUnsafeBufferPointer { w in
                    bias.withUnsafeBufferPointer { b in
                        func run(_ skip: UnsafePointer<Float>?) {
                            pointwiseConvolutionBatch(input: x.baseAddress!, rows: rows, inChannels: inputs, weight: w.baseAddress!,
                                                      bias: b.baseAddress!, outChannels: outputs, activation: activation,
                                                      residual: skip, output: y.baseAddress!, threads: threads)
                        }
                        if let residual { residual.withUnsafeBufferPointer { run($0.baseAddress!) } } else { run(nil) }
                    }
                }
            }
            initialized = rows * outputs
        }
    }

    /// A 1x1 convolution's backward: `inputGradient` (+=, skipped when empty), and its parameters'
    /// gradients in the tail's layout: dW itself, or for LoRA `dA = Bᵀ·dW` and `dB = dW·Aᵀ`.
    private func convolutionBackward(_ name: String, input: [Float], rows: Int, weight: [Float], outputs: Int,
                                     outputGradient: [Float], inputGradient: inout [Float],
                                     gradient: UnsafeMutablePointer<Float>, threads: Int) {
        let inputs = weight.count / outputs, bias = index["\(name).bias"]!
        let full = index["\(name).weight"]
        var dW = [Float](repeating: 0, count: full == nil ? weight.count : 0)
        input.withUnsafeBufferPointer { x in
            weight.withUnsafeBufferPointer { w in
                outputGradient.withUnsafeBufferPointer { dy in
                    inputGradient.withUnsafeMutableBufferPointer { dx in
                        dW.withUnsafeMutableBufferPointer { dW in
                            pointwiseConvolutionBackward(
                                input: x.baseAddress!, rows: rows, inChannels: inputs, weight: w.baseAddress!, outChannels: outputs,
                                outputGradient: dy.baseAddress!, inputGradient: dx.isEmpty ? nil : dx.baseAddress!,
                                weightGradient: full.map { gradient + $0.offset } ?? dW.baseAddress!,
                                biasGradient: gradient + bias.offset, threads: threads)
                        }
                    }
                }
            }
        }
        guard full == nil else { return }
        let a = index["\(name).lora_a"]!, b = index["\(name).lora_b"]!, rank = a.shape[0]
        parameters.withUnsafeBufferPointer { p in
            dW.withUnsafeBufferPointer { dW in
                // dA [rank, in] += Bᵀ [rank, out] · dW [out, in]
                BLAS.sgemm(transposeA: true, m: rank, n: inputs, k: outputs, a: p.baseAddress! + b.offset, lda: rank,
                           b: dW.baseAddress!, ldb: inputs, beta: 1, c: gradient + a.offset, ldc: inputs)
                // dB [out, rank] += dW [out, in] · Aᵀ [in, rank]
                BLAS.sgemm(transposeB: true, m: outputs, n: rank, k: inputs, a: dW.baseAddress!, lda: inputs,
                           b: p.baseAddress! + a.offset, ldb: inputs, beta: 1, c: gradient + b.offset, ldc: rank)
            }
        }
    }
}

/// Row-major [out, in] weights from whichever layout `PointwiseWeights` keeps.
func rowMajor(_ weights: PointwiseWeights) -> [Float] {
    if !weights.weight.isEmpty { return weights.weight }
    var w = [Float](repeating: 0, count: weights.outChannels * weights.inChannels)
    for o in 0..<weights.outChannels {
        for i in 0..<weights.inChannels { w[o * weights.inChannels + i] = weights.weight(output: o, input: i) }
    }
    return w
}

/// A small seeded generator (SplitMix64) for the adapters' start: Models has no dependency on Training.
struct SplitMix64 {
    private var state: UInt64
    init(seed: UInt64) { state = seed &+ 0x9E37_79B9_7F4A_7C15 }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
    /// Uniform in [0, 1).
    mutating func unitFloat() -> Float { Float(next() >> 40) / Float(1 << 24) }
}

// MARK: - As a partially trainable encoder

extension EfficientNetLite: PartiallyTrainableImageModel {
    public var unfreezableBlockCount: Int { blocks.count + 1 }

    public func frozenPrefix(unfreeze: Int) throws(ModelsError) -> any ImageEncoderModel {
        let cut = try EfficientNetLiteTail.cut(unfreeze: unfreeze, network: self)
        let plan = EfficientNetLitePlan(configuration: configuration, height: configuration.inputSize, width: configuration.inputSize)
        return EfficientNetLitePrefix(network: self, cut: cut, width: prefixWidth(cut: cut, plan: plan))
    }

    public func trainableTail(unfreeze: Int, loraRank: Int?, seed: UInt64) throws(ModelsError) -> any TrainableTail {
        try EfficientNetLiteTail(network: self, unfreeze: unfreeze, loraRank: loraRank, seed: seed)
    }

    public func trainableTail(unfreeze: Int, loraRank: Int?, tensors: some TensorSource) throws(ModelsError) -> any TrainableTail {
        try EfficientNetLiteTail(network: self, unfreeze: unfreeze, loraRank: loraRank, source: tensors)
    }

    public func applying(_ tail: any TrainableTail) throws(ModelsError) -> any ImageEncoderModel {
        guard let tail = tail as? EfficientNetLiteTail, tail.network.configuration == configuration else {
            throw .invalidInput(reason: "a tail of another network cannot be applied to EfficientNet-Lite")
        }
        return tail.merged()
    }
}
