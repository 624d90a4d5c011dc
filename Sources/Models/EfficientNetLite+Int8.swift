// EfficientNet-Lite in 8-bit integers (issue 15): every dense layer (the stem, each block's 1x1
// expansion and projection, the head convolution and the classifier) multiplies uint8 activations by
// int8 weights with AVX-512 VNNI, accumulating exactly in int32; the depthwise convolutions, biases,
// residual sums and ReLU6 stay in fp32. Weights are symmetric per output channel, activations
// asymmetric per tensor with scales calibrated on real images (`EfficientNetLiteCalibration`), as
// TensorFlow Lite quantizes EfficientNet-Lite (which was designed for it: no squeeze-excite, ReLU6);
// each bias absorbs the mean shift its weights' rounding causes on the calibration images.
//
// The network runs layer by layer, one image per thread, through `forwardLayers`, which the fp32
// calibration pass shares: what calibration observes is exactly what each int8 layer later reads.

import Foundation
import Imaging
import Kernels
import Weights

extension QuantizationParameters {
    /// The smallest and largest value the grid represents.
    public var low: Float { scale * Float(-zeroPoint) }
    public var high: Float { scale * Float(255 - zeroPoint) }
}

/// How calibration turns each layer input's observed values into a quantization range.
public enum CalibrationMethod: String, CaseIterable, Sendable {
    /// The smallest and largest value seen.
    case minMax = "minmax"
    /// The 0.01st and 99.99th percentiles of all values seen (outliers clipped).
    case percentile
    /// The range whose grid minimizes the mean squared error over the observed histogram (rounding
    /// inside the range, clipping outside it).
    case mse
}

// MARK: - The dense layers and the shared traversal

extension EfficientNetLite {
    /// The dense layers in the order the network runs them, named as the int8 file names them:
    /// "stem", "blocks.<i>.expand" (blocks with expansion), "blocks.<i>.project", "head", "classifier".
    var denseLayers: [(name: String, weights: PointwiseWeights)] {
        var layers: [(String, PointwiseWeights)] = [("stem", stem)]
        for (i, block) in blocks.enumerated() {
            if let expand = block.expand { layers.append(("blocks.\(i).expand", expand)) }
            layers.append(("blocks.\(i).project", block.project))
        }
        layers.append(("head", head))
        layers.append(("classifier", classifier))
        return layers
    }

    /// Index in `denseLayers` of each block's expansion and projection.
    var denseLayerIndices: (expand: [Int?], project: [Int], head: Int, classifier: Int) {
        var expand: [Int?] = [], project: [Int] = [], next = 1
        for block in blocks {
            if block.expand != nil { expand.append(next); next += 1 } else { expand.append(nil) }
            project.append(next)
            next += 1
        }
        return (expand, project, next, next + 1)
    }

    /// One image through every layer but the classifier, layer by layer, with each dense layer run by
    /// `dense(layer, input, rows, activation, residual, output)` (input [rows, in] -> output [rows, out]).
    /// The stem is im2col then `dense(0, ...)`, unless `stem(image, geometry, output)` runs it whole; a
    /// block's depthwise convolution and projection likewise, unless `depthwiseAndProject` runs both.
    /// - features: receives [headChannels]; stagePooled: [stagePooledFeatureCount], when non-nil
    func forwardLayers(
        input: UnsafePointer<Float>, plan: EfficientNetLitePlan, lane: EfficientNetLiteWorkspace.Lane, threads: Int,
        features: UnsafeMutablePointer<Float>, stagePooled: UnsafeMutablePointer<Float>?,
        stem: ((_ image: UnsafePointer<Float>, _ geometry: ConvolutionGeometry, _ output: UnsafeMutablePointer<Float>) -> Void)? = nil,
        depthwiseAndProject: ((_ block: Int, _ input: UnsafePointer<Float>, _ geometry: ConvolutionGeometry,
                               _ residual: UnsafePointer<Float>?, _ output: UnsafeMutablePointer<Float>) -> Void)? = nil,
        dense: (_ layer: Int, _ input: UnsafePointer<Float>, _ rows: Int, _ activation: Activation,
                _ residual: UnsafePointer<Float>?, _ output: UnsafeMutablePointer<Float>) -> Void
    ) {
        let indices = denseLayerIndices
        var current = lane.activationA.pointer, next = lane.activationB.pointer
        let expanded = lane.expanded.pointer, filtered = lane.filtered.pointer, columns = lane.columns.pointer
        let g = plan.stem
        // [H, W, 3] -> patches [H/2 · W/2, 27] -> [H/2, W/2, stemChannels]
        if let stem {
            stem(input, g, current)
        } else {
            im2col(input: input, geometry: g, columns: columns, threads: threads)
            dense(0, columns, g.outHeight * g.outWidth, .relu6, nil, current)
        }
        var stageOffset = 0
        for (index, (block, geometry)) in zip(blocks, plan.blocks).enumerated() {
            let a = block.arguments
            var depthwiseInput = UnsafePointer(current)
            if let expandLayer = indices.expand[index] {
                dense(expandLayer, current, geometry.height * geometry.width, .relu6, nil, expanded)
                depthwiseInput = UnsafePointer(expanded)
            }
            let outRows = geometry.outHeight * geometry.outWidth
            let residual = a.hasResidual ? UnsafePointer(current) : nil
            if let depthwiseAndProject {
                depthwiseAndProject(index, depthwiseInput, geometry, residual, next)
            } else {
                depthwiseConvolution(input: depthwiseInput, geometry: geometry, weight: block.depthwise.weight,
                                     bias: block.depthwise.bias, activation: .relu6, output: filtered, threads: threads)
                dense(indices.project[index], filtered, outRows, .identity, residual, next)
            }
            swap(&current, &next)
            if let stagePooled, endsStage[index] {
                globalAveragePool(input: current, batch: 1, positions: outRows, channels: a.outChannels,
                                  output: stagePooled + stageOffset)
                stageOffset += a.outChannels
            }
        }
        let positions = plan.finalHeight * plan.finalWidth
        dense(indices.head, current, positions, .relu6, nil, expanded)
        globalAveragePool(input: expanded, batch: 1, positions: positions, channels: configuration.headChannels,
                          output: features)
    }
}

// MARK: - Calibration

/// Observes the input of every dense layer while the fp32 network runs layer by layer over
/// calibration images, in two passes: the first finds each input's range, the second fills a
/// histogram over that range; `quantization(method:)` then picks each layer's grid.
public final class EfficientNetLiteCalibration: ImageModelCalibration {
    public let model: EfficientNetLite
    public static let bins = 2048
    /// Per dense layer: smallest and largest value seen (first pass).
    public private(set) var ranges: [(low: Float, high: Float)]
    /// Per dense layer: counts over `ranges` in `bins` equal bins (second pass).
    private var histograms: [[Double]]
    /// Per dense layer: the sum of each input channel over every row seen (first pass), and the rows.
    private var channelSums: [[Double]]
    private var rowsSeen: [Int]
    public private(set) var imagesObserved = [0, 0]
    private var pass = 0
    private let workspace: EfficientNetLiteWorkspace

    public init(model: EfficientNetLite) {
        self.model = model
        let count = model.denseLayers.count
        ranges = Array(repeating: (Float.infinity, -Float.infinity), count: count)
        histograms = Array(repeating: [Double](repeating: 0, count: Self.bins), count: count)
        channelSums = model.denseLayers.map { [Double](repeating: 0, count: $0.weights.inChannels) }
        rowsSeen = Array(repeating: 0, count: count)
        workspace = model.makeWorkspace(batch: 1, threads: 1)
    }

    public var layerNames: [String] { model.denseLayers.map(\.name) }

    /// Starts the histogram pass (after every calibration image went through `observe` once).
    public func beginHistogramPass() {
        precondition(pass == 0 && imagesObserved[0] > 0, "the range pass comes first")
        pass = 1
    }

    /// Runs `count` preprocessed images ([count, size, size, 3]) and records every dense layer's input.
    public func observe(_ input: UnsafePointer<Float>, count: Int, threads: Int) {
        let plan = workspace.plan, lane = workspace.lanes(for: 1)[0]
        let inputCount = plan.inputHeight * plan.inputWidth * 3
        let layers = model.denseLayers
        var features = [Float](repeating: 0, count: model.featureCount)
        for image in 0..<count {
            features.withUnsafeMutableBufferPointer { f in
                model.forwardLayers(input: input + image * inputCount, plan: plan, lane: lane, threads: threads,
                                    features: f.baseAddress!, stagePooled: nil) { layer, x, rows, activation, residual, output in
                    record(layer, x, rows: rows, columns: layers[layer].weights.inChannels)
                    pointwiseConvolution(input: x, rows: rows, weights: layers[layer].weights, activation: activation,
                                         residual: residual, output: output, threads: threads)
                }
                // The classifier's input: the pooled features themselves.
                record(layers.count - 1, f.baseAddress!, rows: 1, columns: f.count)
            }
            imagesObserved[pass] += 1
        }
    }

    private func record(_ layer: Int, _ x: UnsafePointer<Float>, rows: Int, columns: Int) {
        let count = rows * columns
        if pass == 0 {
            var low = ranges[layer].low, high = ranges[layer].high
            for i in 0..<count where x[i].isFinite {
                low = min(low, x[i])
                high = max(high, x[i])
            }
            ranges[layer] = (low, high)
            channelSums[layer].withUnsafeMutableBufferPointer { sums in
                for r in 0..<rows {
                    let row = x + r * columns
                    for c in 0..<columns where row[c].isFinite { sums[c] += Double(row[c]) }
                }
            }
            rowsSeen[layer] += rows
            return
        }
        let (low, high) = ranges[layer]
        let width = (high - low) / Float(Self.bins)
        guard width > 0 else { histograms[layer][0] += Double(count); return }
        histograms[layer].withUnsafeMutableBufferPointer { h in
            for i in 0..<count where x[i].isFinite {
                let bin = Int((x[i] - low) / width)
                h[min(max(bin, 0), Self.bins - 1)] += 1
            }
        }
    }

    public func layerRanges(method: CalibrationMethod) -> [(name: String, quantization: QuantizationParameters)] {
        Array(zip(layerNames, quantization(method: method)))
    }

    public func quantizedModel(method: CalibrationMethod, metadata: [String: String]) -> any QuantizedImageModel {
        var metadata = metadata
        metadata["calibration_method"] = method.rawValue
        metadata["calibration_images"] = String(imagesObserved[0])
        return QuantizedEfficientNetLite(quantizing: model, inputQuantization: quantization(method: method),
                                         inputMeans: inputMeans, metadata: metadata)
    }

    /// Per dense layer: the mean of each input channel over the calibration images.
    public var inputMeans: [[Float]] {
        zip(channelSums, rowsSeen).map { sums, rows in sums.map { Float($0 / Double(max(rows, 1))) } }
    }

    /// Each dense layer's input grid under `method`.
    public func quantization(method: CalibrationMethod) -> [QuantizationParameters] {
        precondition(imagesObserved[0] > 0 && (method == .minMax || imagesObserved[1] > 0), "observe images first")
        return ranges.indices.map { layer in
            let (low, high) = ranges[layer]
            switch method {
            case .minMax: return QuantizationParameters(minimum: low, maximum: high)
            case .percentile:
                return QuantizationParameters(minimum: quantile(layer, 0.0001), maximum: quantile(layer, 0.9999))
            case .mse: return minimumErrorGrid(layer)
            }
        }
    }

    private func binCenter(_ layer: Int, _ bin: Int) -> Float {
        let (low, high) = ranges[layer]
        return low + (Float(bin) + 0.5) * (high - low) / Float(Self.bins)
    }

    /// The value below which a fraction `p` of the observed values lie (bin resolution).
    private func quantile(_ layer: Int, _ p: Double) -> Float {
        let h = histograms[layer], total = h.reduce(0, +)
        guard total > 0 else { return 0 }
        var seen = 0.0
        for (bin, count) in h.enumerated() {
            seen += count
            if seen >= p * total {
                let (low, high) = ranges[layer]
                // Edges, not centres, at the extremes: a ReLU6 input keeps its exact 0 and 6.
                return bin == 0 ? low : bin == Self.bins - 1 ? high : binCenter(layer, bin)
            }
        }
        return ranges[layer].high
    }

    /// The grid minimizing Σ count · error² over the histogram, among ranges shrunk from the observed
    /// one by the same fraction on both sides (rounding error step²/12 inside, distance to the range
    /// outside).
    private func minimumErrorGrid(_ layer: Int) -> QuantizationParameters {
        let (low, high) = ranges[layer]
        let h = histograms[layer]
        var best = QuantizationParameters(minimum: low, maximum: high), bestError = Double.infinity
        for step in 0..<100 {
            let fraction = Float(1 - 0.0099 * Double(step))
            let grid = QuantizationParameters(minimum: low * fraction, maximum: high * fraction)
            let gridLow = Double(grid.low), gridHigh = Double(grid.high), rounding = Double(grid.scale) * Double(grid.scale) / 12
            var error = 0.0
            for (bin, count) in h.enumerated() where count > 0 {
                let v = Double(binCenter(layer, bin))
                if v < gridLow { error += count * (gridLow - v) * (gridLow - v) }
                else if v > gridHigh { error += count * (v - gridHigh) * (v - gridHigh) }
                else { error += count * rounding }
            }
            if error < bestError { bestError = error; best = grid }
        }
        return best
    }
}

// MARK: - The int8 network

/// EfficientNet-Lite with int8 dense layers: the fp32 network's depthwise convolutions, and for each
/// dense layer its int8 weights, its (bias-corrected) bias and the grid its input is quantized to.
public struct QuantizedEfficientNetLite: Sendable {
    public let base: EfficientNetLite
    let layers: [QuantizedPointwiseWeights]
    public let inputQuantization: [QuantizationParameters]
    /// What the int8 file says about itself (weights hash, calibration), for model cards and `info`.
    public let metadata: [String: String]
    /// VNNI where the CPU has it; elsewhere the bit-identical portable kernel (tests: the registry
    /// runs fp32 on such CPUs rather than this slow path).
    let kernel: QuantizedKernel

    public static var isSupported: Bool { QuantizedPointwiseWeights.available }

    /// - weights: per dense layer (`EfficientNetLite.denseLayers` order) int8 values [out, in], scales [out]
    ///   and the bias [out] added to the scaled sums
    init(base: EfficientNetLite, weights: [(values: [Int8], scales: [Float], bias: [Float])],
         inputQuantization: [QuantizationParameters], metadata: [String: String]) throws(KernelsError) {
        let dense = base.denseLayers
        precondition(weights.count == dense.count && inputQuantization.count == dense.count)
        self.base = base
        self.inputQuantization = inputQuantization
        self.metadata = metadata
        kernel = QuantizedPointwiseWeights.available ? .vnni : .reference
        var layers: [QuantizedPointwiseWeights] = []
        for (layer, (w, input)) in zip(dense, zip(weights, inputQuantization)) {
            do {
                layers.append(try QuantizedPointwiseWeights(quantizedWeight: w.values, weightScales: w.scales, bias: w.bias,
                                                            outChannels: layer.weights.outChannels,
                                                            inChannels: layer.weights.inChannels, input: input))
            } catch let error as KernelsError {
                throw error
            } catch {
                throw .invalidQuantizedWeights(reason: "\(layer.name): \(error)")
            }
        }
        self.layers = layers
    }

    /// Quantizes `base`'s weights per output channel and takes the calibrated input grids. With
    /// `inputMeans` (each layer's mean input per channel over the calibration images) the biases are
    /// corrected for the mean shift the weights' rounding causes, `b − (Ŵ − W) · E[x]` (Nagel et al.
    /// 2019, "Data-Free Quantization Through Weight Equalization and Bias Correction"), so that a
    /// head trained on fp32 features sees int8 features centred where it expects them.
    public init(quantizing base: EfficientNetLite, inputQuantization: [QuantizationParameters], inputMeans: [[Float]]? = nil,
                metadata: [String: String]) {
        let dense = base.denseLayers
        let weights = dense.enumerated().map { index, layer -> (values: [Int8], scales: [Float], bias: [Float]) in
            let o = layer.weights.outChannels, i = layer.weights.inChannels
            let fp32 = rowMajor(layer.weights)
            let q = QuantizedPointwiseWeights.quantizePerChannel(weight: fp32, outChannels: o, inChannels: i)
            var bias = layer.weights.bias
            if let means = inputMeans?[index] {
                precondition(means.count == i)
                for r in 0..<o {
                    var shift = 0.0
                    for c in 0..<i {
                        let rounded = Double(q.scales[r]) * Double(q.values[r * i + c])
                        shift += (rounded - Double(fp32[r * i + c])) * Double(means[c])
                    }
                    bias[r] = Float(Double(bias[r]) - shift)
                }
            }
            return (q.values, q.scales, bias)
        }
        do {
            try self.init(base: base, weights: weights, inputQuantization: inputQuantization, metadata: metadata)
        } catch {
            preconditionFailure("per-channel quantization made weights the kernel refuses: \(error)")
        }
    }

    // MARK: File

    public static let fileFormat = "headtune-int8"
    public static let fileVersion = "1"

    /// The int8 file: per dense layer `<name>.weight` (I8 [out, in]), `<name>.weight_scale` (F32 [out]),
    /// `<name>.bias` (F32 [out], bias-corrected), `<name>.input_scale` (F32 [1]) and
    /// `<name>.input_zero_point` (I32 [1]), read back from the packed layers (the file holds exactly
    /// what runs); `metadata` plus the format.
    public func fileContents() -> Data {
        var tensors: [SafeTensorsWriter.Tensor] = []
        for ((name, _), layer) in zip(base.denseLayers, layers) {
            let o = layer.outChannels, i = layer.inChannels
            var values = [Int8](repeating: 0, count: o * i)
            for r in 0..<o { for c in 0..<i { values[r * i + c] = layer.quantizedWeight(output: r, input: c) } }
            tensors.append(.init(name: "\(name).weight", shape: [o, i], int8s: values))
            tensors.append(.init(name: "\(name).weight_scale", shape: [o], values: layer.weightScales))
            tensors.append(.init(name: "\(name).bias", shape: [o], values: layer.bias))
            tensors.append(.init(name: "\(name).input_scale", shape: [1], values: [layer.input.scale]))
            tensors.append(.init(name: "\(name).input_zero_point", shape: [1], int32s: [Int32(layer.input.zeroPoint)]))
        }
        var metadata = self.metadata
        metadata["format"] = Self.fileFormat
        metadata["format_version"] = Self.fileVersion
        return SafeTensorsWriter.serialize(tensors, metadata: metadata)
    }

    /// Reads an int8 file for `base` (strict: every tensor of every dense layer with its exact shape and
    /// dtype, no others), refusing one made from other fp32 weights than `weightsSHA256`.
    public init(base: EfficientNetLite, file: SafeTensors, weightsSHA256: String) throws(ModelsError) {
        let source = file.path
        guard file.metadata["format"] == Self.fileFormat else {
            throw .invalidCheckpoint(file: source, reason: "not a headtune int8 file (metadata format is \(file.metadata["format"].map { "\"\($0)\"" } ?? "missing"), expected \"\(Self.fileFormat)\")")
        }
        guard file.metadata["format_version"] == Self.fileVersion else {
            throw .invalidCheckpoint(file: source, reason: "int8 file version \(file.metadata["format_version"] ?? "missing") is not the version \(Self.fileVersion) this build reads")
        }
        guard let recorded = file.metadata["weights_sha256"], recorded == weightsSHA256 else {
            throw .invalidCheckpoint(file: source, reason: "it was quantized from fp32 weights with sha256 \(file.metadata["weights_sha256"] ?? "(none recorded)"), not the loaded \(weightsSHA256); run `headtune quantize` again")
        }
        let dense = base.denseLayers
        var expected = Set<String>()
        var weights: [(values: [Int8], scales: [Float], bias: [Float])] = [], grids: [QuantizationParameters] = []
        do {
            for (name, fp32) in dense {
                let o = fp32.outChannels, i = fp32.inChannels
                expected.formUnion(["\(name).weight", "\(name).weight_scale", "\(name).bias", "\(name).input_scale",
                                    "\(name).input_zero_point"])
                let values = try file.int8s("\(name).weight", shape: [o, i])
                let scales = try file.tensor("\(name).weight_scale", shape: [o])
                let bias = try file.tensor("\(name).bias", shape: [o])
                guard bias.allSatisfy(\.isFinite) else {
                    throw ModelsError.invalidCheckpoint(file: source, reason: "\(name).bias holds a value that is not finite")
                }
                let scale = try file.tensor("\(name).input_scale", shape: [1])[0]
                guard try file.shape(of: "\(name).input_zero_point") == [1] else {
                    throw ModelsError.invalidCheckpoint(file: source, reason: "\(name).input_zero_point must have shape [1]")
                }
                let zeroPoint = try file.int64s("\(name).input_zero_point")[0]
                guard scale.isNormal, scale > 0, (1 / scale).isFinite else {
                    throw ModelsError.invalidCheckpoint(file: source, reason: "\(name).input_scale \(scale) is not a positive normal number")
                }
                guard (0...255).contains(zeroPoint) else {
                    throw ModelsError.invalidCheckpoint(file: source, reason: "\(name).input_zero_point \(zeroPoint) is outside 0...255")
                }
                weights.append((values, scales, bias))
                grids.append(QuantizationParameters(scale: scale, zeroPoint: Int(zeroPoint)))
            }
        } catch let error as ModelsError {
            throw error
        } catch {
            throw .invalidCheckpoint(file: source, reason: (error as? LocalizedError)?.errorDescription ?? "\(error)")
        }
        let unexpected = Set(file.tensorNames).subtracting(expected)
        guard unexpected.isEmpty else { throw .keyMismatch(file: source, missing: [], unexpected: unexpected.sorted()) }
        do {
            try self.init(base: base, weights: weights, inputQuantization: grids, metadata: file.metadata)
        } catch {
            throw .invalidCheckpoint(file: source, reason: error.localizedDescription)
        }
    }
}

/// Per-thread buffers of the int8 network: the fp32 lane, plus the uint8 copy of a dense layer's input.
final class QuantizedEfficientNetLiteWorkspace {
    let fp32: EfficientNetLiteWorkspace
    private var quantizedLanes: [ScratchBytes] = []
    private var rowScratchLanes: [ScratchBuffer] = []
    let quantizedCount: Int
    /// Per lane: the depthwise convolution's float rows on their way to uint8, for every thread.
    let rowScratchCount: Int

    init(model: QuantizedEfficientNetLite, threads: Int) {
        fp32 = model.base.makeWorkspace(batch: 1, threads: threads)
        let plan = fp32.plan
        // The largest dense input: the stem's patches (and the quantized image they are copied from), an
        // expansion's input, a projection's input, the head's.
        quantizedCount = max(plan.columnsCount + plan.inputHeight * plan.inputWidth * 3, plan.activationCount,
                             plan.filteredCount, plan.expandedCount)
        rowScratchCount = plan.blocks.map { depthwiseQuantizedScratchCount(geometry: $0, threads: threads) }.max() ?? 1
    }

    func lanes(for batch: Int) -> [(EfficientNetLiteWorkspace.Lane, ScratchBytes, ScratchBuffer)] {
        let lanes = fp32.lanes(for: batch)
        while quantizedLanes.count < lanes.count {
            quantizedLanes.append(ScratchBytes(count: quantizedCount))
            rowScratchLanes.append(ScratchBuffer(count: rowScratchCount))
        }
        return (0..<lanes.count).map { (lanes[$0], quantizedLanes[$0], rowScratchLanes[$0]) }
    }
}

/// Uninitialized bytes owned by a workspace.
final class ScratchBytes {
    let pointer: UnsafeMutablePointer<UInt8>
    let count: Int
    init(count: Int) {
        self.count = max(count, 1)
        pointer = UnsafeMutablePointer<UInt8>.allocate(capacity: self.count)
    }
    deinit { pointer.deallocate() }
}

extension QuantizedEfficientNetLite {
    /// Like `EfficientNetLite.forward`: whole images per thread when the batch allows, else one image
    /// split across the threads.
    func forward(input: UnsafePointer<Float>, batch: Int, workspace: QuantizedEfficientNetLiteWorkspace,
                 features: UnsafeMutablePointer<Float>, logits: UnsafeMutablePointer<Float>?,
                 stagePooled: UnsafeMutablePointer<Float>?) {
        let plan = workspace.fp32.plan
        let inputCount = plan.inputHeight * plan.inputWidth * 3
        let featureCount = base.featureCount, stageWidth = base.stagePooledFeatureCount
        let lanes = workspace.lanes(for: batch)
        let projectLayers = base.denseLayerIndices.project
        func run(_ image: Int, lane: (EfficientNetLiteWorkspace.Lane, ScratchBytes, ScratchBuffer), threads: Int) {
            let quantized = lane.1.pointer
            base.forwardLayers(input: input + image * inputCount, plan: plan, lane: lane.0, threads: threads,
                               features: features + image * featureCount,
                               stagePooled: stagePooled.map { $0 + image * stageWidth },
                               stem: { image, geometry, output in
                                   // The image quantized once, its bytes copied into patches: no float patches.
                                   let stem = layers[0]
                                   // The image's bytes after the patches' (the lane holds both).
                                   let patches = geometry.outHeight * geometry.outWidth * stem.inChannels
                                   im2colQuantized(input: image, geometry: geometry, parameters: stem.input,
                                                   image: quantized + patches, columns: quantized, threads: threads)
                                   quantizedPointwiseConvolution(input: quantized, rows: geometry.outHeight * geometry.outWidth,
                                                                 weights: stem, activation: .relu6, output: .float(output),
                                                                 threads: threads, kernel: kernel)
                               },
                               depthwiseAndProject: { index, x, geometry, residual, output in
                                   // The depthwise rows go to uint8 as they are made: no float map, no quantize pass.
                                   let project = layers[projectLayers[index]], block = base.blocks[index]
                                   depthwiseConvolutionQuantized(input: x, geometry: geometry, weight: block.depthwise.weight,
                                                                 bias: block.depthwise.bias, activation: .relu6,
                                                                 parameters: project.input, output: quantized,
                                                                 rowScratch: lane.2.pointer, threads: threads)
                                   quantizedPointwiseConvolution(input: quantized, rows: geometry.outHeight * geometry.outWidth,
                                                                 weights: project, activation: .identity, residual: residual,
                                                                 output: .float(output), threads: threads, kernel: kernel)
                               }) { layer, x, rows, activation, residual, output in
                dense(layer, x, rows: rows, activation: activation, residual: residual, output: output,
                      scratch: quantized, threads: threads)
            }
        }
        let wholeLanes = lanes.count > 1 ? batch / lanes.count * lanes.count : 0
        if wholeLanes > 0 {
            runOnPool(chunks: wholeLanes, participants: lanes.count) { image, participant in
                run(image, lane: lanes[participant], threads: 1)
            }
        }
        for image in wholeLanes..<batch { run(image, lane: lanes[0], threads: workspace.fp32.threads) }
        if let logits {
            // [batch, 1280] -> [batch, 1000], the pooled features quantized like any layer input.
            let classifier = layers.count - 1
            let scratch = lanes[0].1
            for first in stride(from: 0, to: batch, by: max(1, scratch.count / featureCount)) {
                let rows = min(batch - first, max(1, scratch.count / featureCount))
                dense(classifier, features + first * featureCount, rows: rows, activation: .identity, residual: nil,
                      output: logits + first * base.classCount, scratch: scratch.pointer, threads: workspace.fp32.threads)
            }
        }
    }

    /// One dense layer: quantize the fp32 input to its grid, then the int8 GEMM with the fused epilogue.
    private func dense(_ layer: Int, _ input: UnsafePointer<Float>, rows: Int, activation: Activation,
                       residual: UnsafePointer<Float>?, output: UnsafeMutablePointer<Float>,
                       scratch: UnsafeMutablePointer<UInt8>, threads: Int) {
        let weights = layers[layer]
        quantize(input: input, count: rows * weights.inChannels, parameters: weights.input, output: scratch, threads: threads)
        quantizedPointwiseConvolution(input: scratch, rows: rows, weights: weights, activation: activation, residual: residual,
                                      output: .float(output), threads: threads, kernel: kernel)
    }
}

extension EfficientNetLite: QuantizableImageModel {
    public func makeCalibration() -> any ImageModelCalibration { EfficientNetLiteCalibration(model: self) }
}

extension QuantizedEfficientNetLite: QuantizedImageModel {
    public var preprocessing: PreprocessingSpec { base.preprocessing }
    public var outputWidths: [ImageOutputName: Int] { base.outputWidths }
    /// The fp32 classifier: what a bridge regresses onto is the network's meaning, not its rounding.
    public func classifierWeights() -> [Float]? { base.classifierWeights() }
    public func makeSession(threads: Int) -> any ImageEncoderSession { QuantizedEfficientNetLiteSession(model: self, threads: threads) }
}

final class QuantizedEfficientNetLiteSession: ImageEncoderSession {
    let model: QuantizedEfficientNetLite
    let workspace: QuantizedEfficientNetLiteWorkspace
    private var scratchFeatures = ScratchBuffer(count: 0)

    init(model: QuantizedEfficientNetLite, threads: Int) {
        self.model = model
        workspace = QuantizedEfficientNetLiteWorkspace(model: model, threads: threads)
    }

    func encode(_ input: UnsafePointer<Float>, count: Int, outputs: [ImageOutputName: UnsafeMutablePointer<Float>]) {
        guard count > 0 else { return }
        precondition(outputs.keys.allSatisfy { $0 != .embedding }, "EfficientNet-Lite has no image-text embedding")
        var features = outputs[.features]
        if features == nil {
            if scratchFeatures.count < count * model.base.featureCount {
                scratchFeatures = ScratchBuffer(count: count * model.base.featureCount)
            }
            features = scratchFeatures.pointer
        }
        model.forward(input: input, batch: count, workspace: workspace, features: features!, logits: outputs[.logits],
                      stagePooled: outputs[.stages])
    }
}
