// EfficientNet-Lite (Tan & Le, "EfficientNet: Rethinking Model Scaling for CNNs", ICML 2019; the Lite
// variants of the TensorFlow TPU repository: no squeeze-excite, ReLU6, fixed stem and head) for the
// lukemelas-style PyTorch checkpoint `efficientnet-lite0-57934424.pth`. Matches the reference in
// shared/reference/python/effnet_lite.py: TF 'SAME' padding, BatchNorm eps 1e-3, bias-free convolutions.
//
// Activations are channels-last (NHWC) throughout, so 1x1 convolutions are plain GEMMs.

import Foundation
import Imaging
import Kernels

/// Architecture hyper-parameters of an EfficientNet-Lite network.
public struct EfficientNetLiteConfiguration: Codable, Sendable, Equatable {
    /// One stage of MBConv blocks (EfficientNet-B0 block arguments).
    public struct Stage: Codable, Sendable, Equatable {
        public var repeats: Int
        public var kernel: Int
        public var stride: Int
        public var expandRatio: Int
        public var inChannels: Int
        public var outChannels: Int
    }

    public var stemChannels: Int
    public var stages: [Stage]
    public var headChannels: Int
    public var numClasses: Int
    public var batchNormEpsilon: Double
    public var inputSize: Int

    public static let lite0 = EfficientNetLiteConfiguration(
        stemChannels: 32,
        stages: [
            Stage(repeats: 1, kernel: 3, stride: 1, expandRatio: 1, inChannels: 32, outChannels: 16),
            Stage(repeats: 2, kernel: 3, stride: 2, expandRatio: 6, inChannels: 16, outChannels: 24),
            Stage(repeats: 2, kernel: 5, stride: 2, expandRatio: 6, inChannels: 24, outChannels: 40),
            Stage(repeats: 3, kernel: 3, stride: 2, expandRatio: 6, inChannels: 40, outChannels: 80),
            Stage(repeats: 3, kernel: 5, stride: 1, expandRatio: 6, inChannels: 80, outChannels: 112),
            Stage(repeats: 4, kernel: 5, stride: 2, expandRatio: 6, inChannels: 112, outChannels: 192),
            Stage(repeats: 1, kernel: 3, stride: 1, expandRatio: 6, inChannels: 192, outChannels: 320),
        ],
        headChannels: 1280, numClasses: 1000, batchNormEpsilon: 1e-3, inputSize: 224)

    /// The blocks the stages expand to, in checkpoint order (`_blocks.0` ...).
    public var blocks: [BlockArguments] {
        stages.flatMap { stage in
            (0..<stage.repeats).map { j in
                BlockArguments(kernel: stage.kernel, stride: j == 0 ? stage.stride : 1, expandRatio: stage.expandRatio,
                               inChannels: j == 0 ? stage.inChannels : stage.outChannels,
                               outChannels: stage.outChannels)
            }
        }
    }

    public struct BlockArguments: Sendable, Equatable {
        public var kernel: Int
        public var stride: Int
        public var expandRatio: Int
        public var inChannels: Int
        public var outChannels: Int
        public var expandedChannels: Int { inChannels * expandRatio }
        public var hasResidual: Bool { stride == 1 && inChannels == outChannels }
    }
}

/// A convolution with BatchNorm folded in: `y = conv(x, weight) + bias`.
struct FoldedConvolution: Sendable {
    /// Layout depends on the use: [out, in] for 1x1, [out, k, k, in] for dense, [k, k, channels] for depthwise.
    var weight: [Float]
    var bias: [Float]
}

/// EfficientNet-Lite forward pass: images -> pooled features and class logits, in one pass.
public struct EfficientNetLite: Sendable {
    public let configuration: EfficientNetLiteConfiguration
    /// [stemChannels, 3 · 3 · 3], taps outer and channels inner like im2col's patches
    let stem: PointwiseWeights
    let blocks: [Block]
    let head: PointwiseWeights
    /// Classifier [numClasses, headChannels] and bias [numClasses].
    let classifier: PointwiseWeights

    struct Block: Sendable {
        let arguments: EfficientNetLiteConfiguration.BlockArguments
        let expand: PointwiseWeights?
        let depthwise: FoldedConvolution
        let project: PointwiseWeights
    }

    public var featureCount: Int { configuration.headChannels }
    public var classCount: Int { configuration.numClasses }

    /// Index of the last block of each stage, whose output `forward` can pool as mid-level features.
    public let stageEndBlocks: [Int]

    /// Per block: whether it ends a stage, for the per-image loop.
    let endsStage: [Bool]

    /// Width of the stage-pooled features: the channels of every stage's last block
    /// (16+24+40+80+112+192+320 = 784 for Lite0).
    public var stagePooledFeatureCount: Int { configuration.stages.map(\.outChannels).reduce(0, +) }

    /// Strict load from a lukemelas-style state dict: every tensor must be present with its exact shape,
    /// and no other tensor may be there (BatchNorm's `num_batches_tracked` counters are allowed).
    public init(configuration: EfficientNetLiteConfiguration = .lite0, weights: some TensorSource) throws(ModelsError) {
        self.configuration = configuration
        let c = configuration
        let reader = CheckpointReader(weights, ignoring: { $0.hasSuffix(".num_batches_tracked") })

        /// `convKey` [shape] with the BatchNorm `bnKey` (weight, bias, running_mean, running_var) folded in.
        func fold(_ convKey: String, _ bnKey: String, shape: [Int]) throws(ModelsError) -> FoldedConvolution {
            let out = shape[0]
            var weight = try reader.floats(convKey, shape: shape)
            let gamma = try reader.floats("\(bnKey).weight", shape: [out])
            let beta = try reader.floats("\(bnKey).bias", shape: [out])
            let mean = try reader.floats("\(bnKey).running_mean", shape: [out])
            let variance = try reader.floats("\(bnKey).running_var", shape: [out])
            var bias = [Float](repeating: 0, count: out)
            let perOutput = weight.count / out
            for o in 0..<out {
                // Folded in double precision so the fp32 weights carry no extra rounding.
                let scale = Double(gamma[o]) / (Double(variance[o]) + c.batchNormEpsilon).squareRoot()
                for i in 0..<perOutput { weight[o * perOutput + i] = Float(Double(weight[o * perOutput + i]) * scale) }
                bias[o] = Float(Double(beta[o]) - Double(mean[o]) * scale)
            }
            return FoldedConvolution(weight: weight, bias: bias)
        }

        func pointwise(_ conv: FoldedConvolution) -> PointwiseWeights {
            PointwiseWeights(weight: conv.weight, bias: conv.bias, outChannels: conv.bias.count,
                             inChannels: conv.weight.count / conv.bias.count)
        }

        // Stem: PyTorch [out, in, k, k] -> [out, k, k, in] to match im2col's channels-last patches.
        var stem = try fold("_conv_stem.weight", "_bn0", shape: [c.stemChannels, 3, 3, 3])
        stem.weight = permuteOIHWtoOHWI(stem.weight, out: c.stemChannels, in: 3, kernel: 3)
        self.stem = pointwise(stem)

        var blocks: [Block] = []
        for (i, arguments) in c.blocks.enumerated() {
            let p = "_blocks.\(i)"
            let mid = arguments.expandedChannels, k = arguments.kernel
            let expand = arguments.expandRatio == 1
                ? nil : pointwise(try fold("\(p)._expand_conv.weight", "\(p)._bn0", shape: [mid, arguments.inChannels, 1, 1]))
            var depthwise = try fold("\(p)._depthwise_conv.weight", "\(p)._bn1", shape: [mid, 1, k, k])
            depthwise.weight = Self.permuteDepthwise(depthwise.weight, channels: mid, kernel: k)
            let project = pointwise(try fold("\(p)._project_conv.weight", "\(p)._bn2", shape: [arguments.outChannels, mid, 1, 1]))
            blocks.append(Block(arguments: arguments, expand: expand, depthwise: depthwise, project: project))
        }
        self.blocks = blocks
        var end = -1
        let stageEnds = c.stages.map { end += $0.repeats; return end }
        stageEndBlocks = stageEnds
        endsStage = blocks.indices.map { stageEnds.contains($0) }
        let lastChannels = c.stages.last?.outChannels ?? c.stemChannels
        head = pointwise(try fold("_conv_head.weight", "_bn1", shape: [c.headChannels, lastChannels, 1, 1]))
        classifier = pointwise(FoldedConvolution(
            weight: try reader.floats("_fc.weight", shape: [c.numClasses, c.headChannels]),
            bias: try reader.floats("_fc.bias", shape: [c.numClasses])))
        try reader.finish()
    }

    /// The same network with other weights (a tail tuned by `EfficientNetLiteTail`).
    init(configuration: EfficientNetLiteConfiguration, stem: PointwiseWeights, blocks: [Block], head: PointwiseWeights,
         classifier: PointwiseWeights) {
        self.configuration = configuration
        self.stem = stem
        self.blocks = blocks
        self.head = head
        self.classifier = classifier
        var end = -1
        let stageEnds = configuration.stages.map { end += $0.repeats; return end }
        stageEndBlocks = stageEnds
        endsStage = blocks.indices.map { stageEnds.contains($0) }
    }

    /// [channels, 1, k, k] -> [k, k, channels]: each tap becomes a contiguous vector over channels.
    static func permuteDepthwise(_ w: [Float], channels: Int, kernel: Int) -> [Float] {
        var result = [Float](repeating: 0, count: w.count)
        for ch in 0..<channels {
            for t in 0..<(kernel * kernel) { result[t * channels + ch] = w[ch * kernel * kernel + t] }
        }
        return result
    }

    /// Runs the network.
    /// - input: [batch, height, width, 3] normalized pixels (channels-last)
    /// - features: receives [batch, headChannels] pooled features
    /// - logits: receives [batch, numClasses] when non-nil
    /// - stagePooled: receives [batch, stagePooledFeatureCount] when non-nil: the global average of each
    ///   stage's output, stage by stage (mid-level features for domains far from ImageNet)
    ///
    /// Images go through the network one at a time: one image's activations fit in the core's L2 cache
    /// far better than a batch's. With several threads and at least as many images, each thread runs
    /// whole images on its own lane (no synchronisation inside the network); a lone image, or the ones
    /// left over, splits each layer across the threads instead.
    /// - batch: images in `input` (default: the batch size the workspace was made for; any count works)
    public func forward(
        input: UnsafePointer<Float>, batch: Int? = nil, workspace: EfficientNetLiteWorkspace,
        features: UnsafeMutablePointer<Float>, logits: UnsafeMutablePointer<Float>?,
        stagePooled: UnsafeMutablePointer<Float>? = nil
    ) {
        forward(input: input, batch: batch, workspace: workspace, features: features, logits: logits,
                stagePooled: stagePooled, cut: nil, cutOutput: nil)
    }

    /// `forward` up to block `cut` only: writes [batch, prefixWidth(cut)] to `cutOutput` (see `forwardImage`).
    func forwardPrefix(input: UnsafePointer<Float>, batch: Int, workspace: EfficientNetLiteWorkspace, cut: Int,
                       cutOutput: UnsafeMutablePointer<Float>, stageScratch: UnsafeMutablePointer<Float>) {
        forward(input: input, batch: batch, workspace: workspace, features: stageScratch, logits: nil,
                stagePooled: stageScratch, cut: cut, cutOutput: cutOutput)
    }

    private func forward(
        input: UnsafePointer<Float>, batch: Int?, workspace: EfficientNetLiteWorkspace,
        features: UnsafeMutablePointer<Float>, logits: UnsafeMutablePointer<Float>?,
        stagePooled: UnsafeMutablePointer<Float>?, cut: Int?, cutOutput: UnsafeMutablePointer<Float>?
    ) {
        let plan = workspace.plan
        let batch = batch ?? workspace.batch
        let lanes = workspace.lanes(for: batch)
        let inputCount = plan.inputHeight * plan.inputWidth * 3
        let stageWidth = stagePooledFeatureCount
        let cutWidth = cut.map { prefixWidth(cut: $0, plan: plan) } ?? 0
        func run(_ image: Int, lane: EfficientNetLiteWorkspace.Lane, threads: Int) {
            // A prefix run pools its stages into per-image scratch (the caller's, one stage row per image).
            forwardImage(input: input + image * inputCount, plan: plan, lane: lane, threads: threads,
                         features: cut == nil ? features + image * featureCount : features,
                         stagePooled: stagePooled.map { $0 + image * stageWidth },
                         cut: cut, cutOutput: cutOutput.map { $0 + image * cutWidth })
        }
        let wholeLanes = lanes.count > 1 ? batch / lanes.count * lanes.count : 0
        if wholeLanes > 0 {
            runOnPool(chunks: wholeLanes, participants: lanes.count) { image, participant in
                run(image, lane: lanes[participant], threads: 1)
            }
        }
        for image in wholeLanes..<batch { run(image, lane: lanes[0], threads: workspace.threads) }
        if cut == nil, let logits {
            // [batch, 1280] -> [batch, 1000]
            pointwiseConvolution(input: features, rows: batch, weights: classifier, activation: .identity,
                                 output: logits, threads: workspace.threads)
        }
    }

    /// Narrower maps run their blocks layer by layer: their expanded activations fit in cache anyway,
    /// and the fused kernel's row-by-row expansion would stream the weights once per row (14 and 56
    /// measured within noise of 28).
    static let minimumFusedWidth = 28

    /// One block layer by layer: expand, depthwise, project, each over the whole map.
    private func unfusedBlock(
        _ block: Block, geometry: ConvolutionGeometry, input: UnsafeMutablePointer<Float>,
        lane: EfficientNetLiteWorkspace.Lane, output: UnsafeMutablePointer<Float>, threads: Int
    ) {
        let a = block.arguments
        let expanded = lane.expanded.pointer, filtered = lane.filtered.pointer
        // [rows, in] -> [rows, mid]
        var depthwiseInput = UnsafePointer(input)
        if let expand = block.expand {
            pointwiseConvolution(input: input, rows: geometry.height * geometry.width, weights: expand,
                                 activation: .relu6, output: expanded, threads: threads)
            depthwiseInput = UnsafePointer(expanded)
        }
        // [H, W, mid] -> [H/s, W/s, mid]
        depthwiseConvolution(input: depthwiseInput, geometry: geometry, weight: block.depthwise.weight,
                             bias: block.depthwise.bias, activation: .relu6, output: filtered, threads: threads)
        // [rows', mid] -> [rows', out] (+ block input)
        pointwiseConvolution(input: filtered, rows: geometry.outHeight * geometry.outWidth, weights: block.project,
                             activation: .identity, residual: a.hasResidual ? UnsafePointer(input) : nil,
                             output: output, threads: threads)
    }

    /// One image: [height, width, 3] -> features [headChannels] (and stage-pooled values).
    /// With `cut` (a block index), stops before that block and writes `cutOutput`: the block's input
    /// [h, w, c] followed by the stage-pooled values of the stages that end before it (the frozen
    /// prefix of partial fine-tuning, `EfficientNetLitePrefix`); `features` is then not written.
    private func forwardImage(
        input: UnsafePointer<Float>, plan: EfficientNetLitePlan, lane: EfficientNetLiteWorkspace.Lane, threads: Int,
        features: UnsafeMutablePointer<Float>, stagePooled: UnsafeMutablePointer<Float>?,
        cut: Int? = nil, cutOutput: UnsafeMutablePointer<Float>? = nil
    ) {
        var current = lane.activationA.pointer
        var next = lane.activationB.pointer

        // [H, W, 3] -> [H/2, W/2, stemChannels]
        convolution(input: input, geometry: plan.stem, weights: stem, activation: .relu6,
                    columns: lane.columns.pointer, output: current, threads: threads)

        var stageOffset = 0
        let cutActivation = cut.map { cutShape($0, plan: plan) }
        for (index, (block, geometry)) in zip(blocks, plan.blocks).enumerated() {
            if let cut, index == cut { break }
            let a = block.arguments
            let outRows = geometry.outHeight * geometry.outWidth
            if geometry.width >= Self.minimumFusedWidth && invertedResidualAvailable(expand: block.expand, project: block.project) {
                invertedResidual(input: current, inChannels: a.inChannels, expand: block.expand, geometry: geometry,
                                 depthwiseWeight: block.depthwise.weight, depthwiseBias: block.depthwise.bias,
                                 project: block.project, residual: a.hasResidual, output: next,
                                 scratch: lane.blockScratch.pointer, threads: threads)
            } else {
                unfusedBlock(block, geometry: geometry, input: current, lane: lane, output: next, threads: threads)
            }
            swap(&current, &next)
            if let stagePooled, endsStage[index] {
                // [positions, out] -> values [stageOffset, stageOffset + out) of the stage-pooled row
                globalAveragePool(input: current, batch: 1, positions: outRows, channels: a.outChannels,
                                  output: stagePooled + stageOffset)
                stageOffset += a.outChannels
            }
        }

        if let cutActivation, let cutOutput {
            // [h, w, c] at the cut, then the frozen stages' pooled values.
            let count = cutActivation.height * cutActivation.width * cutActivation.channels
            cutOutput.update(from: current, count: count)
            if let stagePooled { (cutOutput + count).update(from: stagePooled, count: stageOffset) }
            return
        }

        // [positions, 320] -> [positions, 1280] -> mean over positions -> [1280]
        let positions = plan.finalHeight * plan.finalWidth
        let expanded = lane.expanded.pointer
        pointwiseConvolution(input: current, rows: positions, weights: head, activation: .relu6,
                             output: expanded, threads: threads)
        globalAveragePool(input: expanded, batch: 1, positions: positions, channels: configuration.headChannels,
                          output: features)
    }

    /// The activation entering block `cut` (`blocks.count`: the head convolution's input).
    func cutShape(_ cut: Int, plan: EfficientNetLitePlan) -> (height: Int, width: Int, channels: Int) {
        if cut < blocks.count {
            let g = plan.blocks[cut]
            return (g.height, g.width, blocks[cut].arguments.inChannels)
        }
        return (plan.finalHeight, plan.finalWidth, configuration.stages.last?.outChannels ?? configuration.stemChannels)
    }

    /// Width of the stage-pooled values of the stages that end before block `cut`.
    func frozenStageWidth(cut: Int) -> Int {
        zip(stageEndBlocks, configuration.stages).filter { $0.0 < cut }.reduce(0) { $0 + $1.1.outChannels }
    }

    /// Floats per image a prefix run up to block `cut` writes.
    func prefixWidth(cut: Int, plan: EfficientNetLitePlan) -> Int {
        let shape = cutShape(cut, plan: plan)
        return shape.height * shape.width * shape.channels + frozenStageWidth(cut: cut)
    }

    /// Convenience for tests and one-off calls; steady-state callers reuse a workspace.
    /// - input: [batch, height, width, 3] channels-last
    public func forward(_ input: [Float], batch: Int, height: Int, width: Int, threads: Int = 1)
        throws(ModelsError) -> (features: [Float], logits: [Float])
    {
        guard input.count == batch * height * width * 3 else {
            throw .invalidInput(reason: "expected \(batch)x\(height)x\(width)x3 values, got \(input.count)")
        }
        let workspace = makeWorkspace(batch: batch, height: height, width: width, threads: threads)
        var features = [Float](repeating: 0, count: batch * featureCount)
        var logits = [Float](repeating: 0, count: batch * classCount)
        input.withUnsafeBufferPointer { input in
            features.withUnsafeMutableBufferPointer { f in
                logits.withUnsafeMutableBufferPointer { l in
                    forward(input: input.baseAddress!, workspace: workspace, features: f.baseAddress!, logits: l.baseAddress!)
                }
            }
        }
        return (features, logits)
    }

    /// Buffers for one batch size and input geometry, planned once and reused across calls.
    public func makeWorkspace(batch: Int, height: Int? = nil, width: Int? = nil, threads: Int = 1) -> EfficientNetLiteWorkspace {
        EfficientNetLiteWorkspace(plan: EfficientNetLitePlan(configuration: configuration,
                                                             height: height ?? configuration.inputSize,
                                                             width: width ?? configuration.inputSize),
                                  batch: batch, threads: threads)
    }
}

/// Per-layer geometry and buffer sizes for one image of one input size.
public struct EfficientNetLitePlan: Sendable, Equatable {
    let inputHeight: Int
    let inputWidth: Int
    let stem: ConvolutionGeometry
    /// Depthwise geometry of each block (input size = the block's input size).
    let blocks: [ConvolutionGeometry]
    let finalHeight: Int
    let finalWidth: Int
    /// Floats per buffer.
    let activationCount: Int
    let expandedCount: Int
    let filteredCount: Int
    let columnsCount: Int
    /// Per thread, for the fused inverted-residual kernel (the largest block's need).
    let blockScratchCount: Int

    init(configuration c: EfficientNetLiteConfiguration, height: Int, width: Int) {
        inputHeight = height
        inputWidth = width
        stem = ConvolutionGeometry(batch: 1, height: height, width: width, channels: 3, kernel: 3, stride: 2)
        var h = stem.outHeight, w = stem.outWidth
        var activation = h * w * c.stemChannels, expanded = 0, filtered = 0
        var blocks: [ConvolutionGeometry] = []
        for a in c.blocks {
            let g = ConvolutionGeometry(batch: 1, height: h, width: w, channels: a.expandedChannels,
                                        kernel: a.kernel, stride: a.stride)
            blocks.append(g)
            expanded = max(expanded, h * w * a.expandedChannels)
            filtered = max(filtered, g.outHeight * g.outWidth * a.expandedChannels)
            h = g.outHeight
            w = g.outWidth
            activation = max(activation, h * w * a.outChannels)
        }
        self.blocks = blocks
        blockScratchCount = blocks.map { invertedResidualScratchCount(geometry: $0) }.max() ?? 0
        finalHeight = h
        finalWidth = w
        expandedCount = max(expanded, h * w * c.headChannels)
        activationCount = activation
        filteredCount = filtered
        columnsCount = stem.outHeight * stem.outWidth * 9 * 3
    }
}

/// Scratch memory for `EfficientNetLite.forward`: one lane of buffers per thread that runs whole
/// images, made when a batch first needs it (a lone image runs on one lane, split across the threads).
/// Not shared between concurrent calls.
public final class EfficientNetLiteWorkspace {
    public let plan: EfficientNetLitePlan
    /// The default batch of `forward`; other counts reuse the same buffers.
    public let batch: Int
    public let threads: Int
    private var madeLanes: [Lane] = []

    final class Lane {
        let activationA: ScratchBuffer
        let activationB: ScratchBuffer
        let expanded: ScratchBuffer
        let filtered: ScratchBuffer
        let columns: ScratchBuffer
        /// `threads` slots for the fused inverted-residual kernel.
        let blockScratch: ScratchBuffer

        init(plan: EfficientNetLitePlan, threads: Int) {
            activationA = ScratchBuffer(count: plan.activationCount)
            activationB = ScratchBuffer(count: plan.activationCount)
            expanded = ScratchBuffer(count: plan.expandedCount)
            filtered = ScratchBuffer(count: plan.filteredCount)
            columns = ScratchBuffer(count: plan.columnsCount)
            blockScratch = ScratchBuffer(count: plan.blockScratchCount * threads)
        }
    }

    init(plan: EfficientNetLitePlan, batch: Int, threads: Int) {
        self.plan = plan
        self.threads = max(1, threads)
        self.batch = max(1, batch)
    }

    /// min(threads, batch) lanes: each thread runs whole images when there are enough of them.
    func lanes(for batch: Int) -> [Lane] {
        let needed = max(1, min(threads, batch))
        while madeLanes.count < needed { madeLanes.append(Lane(plan: plan, threads: threads)) }
        return Array(madeLanes.prefix(needed))
    }
}

// MARK: - As an image encoder

extension EfficientNetLite: ImageEncoderModel {
    /// TF EfficientNet eval preprocessing: the 0.875 centre crop (224 of 256), (x - 127) / 128
    /// (shared/reference/README.md: the BatchNorm statistics agree with it, not with mean/std).
    public var preprocessing: PreprocessingSpec {
        PreprocessingSpec(inputSize: configuration.inputSize, centerCrop: .fraction(margin: 32),
                          normalization: .scaleOffset(offset: 127, scale: 128), defaultPolicy: .centerCrop)
    }

    public var outputWidths: [ImageOutputName: Int] {
        [.features: featureCount, .stages: stagePooledFeatureCount, .logits: classCount]
    }

    public func makeSession(threads: Int) -> any ImageEncoderSession {
        EfficientNetLiteSession(model: self, threads: threads)
    }

    /// `_fc.weight` [numClasses, headChannels], as in the checkpoint.
    public func classifierWeights() -> [Float]? { rowMajor(classifier) }
}

/// One workspace, for batches of any size.
final class EfficientNetLiteSession: ImageEncoderSession {
    let model: EfficientNetLite
    let workspace: EfficientNetLiteWorkspace
    /// [count, features] when the caller did not ask for the features themselves.
    private var scratchFeatures = ScratchBuffer(count: 0)

    init(model: EfficientNetLite, threads: Int) {
        self.model = model
        workspace = model.makeWorkspace(batch: 1, threads: threads)
    }

    func encode(_ input: UnsafePointer<Float>, count: Int, outputs: [ImageOutputName: UnsafeMutablePointer<Float>]) {
        guard count > 0 else { return }
        precondition(outputs.keys.allSatisfy { $0 != .embedding }, "EfficientNet-Lite has no image-text embedding")
        var features = outputs[.features]
        if features == nil {
            if scratchFeatures.count < count * model.featureCount {
                scratchFeatures = ScratchBuffer(count: count * model.featureCount)
            }
            features = scratchFeatures.pointer
        }
        model.forward(input: input, batch: count, workspace: workspace, features: features!, logits: outputs[.logits],
                      stagePooled: outputs[.stages])
    }
}
