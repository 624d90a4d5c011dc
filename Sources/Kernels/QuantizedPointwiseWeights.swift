import CKernels

/// Asymmetric uint8 quantization of a tensor (one pair for the whole tensor):
/// `x ≈ scale · (q − zeroPoint)`, q in 0...255.
public struct QuantizationParameters: Sendable, Equatable {
    public let scale: Float
    public let zeroPoint: Int

    /// - scale: > 0, normal, with a finite reciprocal (the kernels multiply by 1 / scale).
    /// - zeroPoint: 0...255.
    public init(scale: Float, zeroPoint: Int) {
        precondition(scale.isNormal && scale > 0 && (1 / scale).isFinite, "quantization scale \(scale) is not a positive normal float")
        precondition((0...255).contains(zeroPoint), "quantization zero point \(zeroPoint) is not in 0...255")
        self.scale = scale
        self.zeroPoint = zeroPoint
    }

    /// The parameters that cover `minimum...maximum`, widened to contain 0 so that 0 (zero padding,
    /// ReLU's zeros) is represented exactly: scale = (max − min) / 255, zeroPoint = round(−min / scale)
    /// (half to even). An empty or zero-width range gets scale 1 and zero point 0 (any scale is exact).
    public init(minimum: Float, maximum: Float) {
        precondition(minimum.isFinite && maximum.isFinite && minimum <= maximum, "range \(minimum)...\(maximum) is not finite and ordered")
        let low = min(minimum, 0), high = max(maximum, 0)
        let scale = (high - low) / 255
        guard scale.isNormal && (1 / scale).isFinite else {
            self.init(scale: 1, zeroPoint: 0)
            return
        }
        self.init(scale: scale, zeroPoint: Int(min(max((-low / scale).rounded(.toNearestOrEven), 0), 255)))
    }
}

/// Weights of a 1x1 convolution (or a linear layer) for the int8 GEMM (`hk_qgemm_vnni`): symmetric
/// per-output-channel int8 (`weight[o, i] ≈ weightScales[o] · W[o, i]`, W in -127...127), packed once,
/// with the epilogue's per-channel offset (`−zeroPoint · Σᵢ W[o, i]`) and scale (`input.scale ·
/// weightScales[o]`) precomputed for the input quantization the layer was calibrated for.
public final class QuantizedPointwiseWeights: @unchecked Sendable {
    public let outChannels: Int
    public let inChannels: Int
    /// [outChannels]: s_w, the step of each output channel's int8 weights.
    public let weightScales: [Float]
    /// [outChannels], float (added after the int32 sums are scaled).
    public let bias: [Float]
    /// The quantization of the uint8 input that the offsets and scales assume.
    public let input: QuantizationParameters
    /// hk_qgemm_pack's panels, 64-byte aligned. Immutable after init, like the three vectors below.
    let packed: UnsafeMutablePointer<Int8>
    /// [outChannels] −input.zeroPoint · Σᵢ W[o, i]
    let offset: UnsafeMutablePointer<Int32>
    /// [outChannels] input.scale · weightScales[o]
    let scale: UnsafeMutablePointer<Float>
    /// A copy of `bias` with a stable address for the C kernels.
    let packedBias: UnsafeMutablePointer<Float>

    /// Whether this CPU runs the VNNI kernel (AVX-512 with VNNI, e.g. Ice Lake, Sapphire Rapids, Zen 4).
    public static var available: Bool { hk_qgemm_vnni_available() != 0 }

    /// Quantizes fp32 weights [outChannels, inChannels] per output channel (quantizePerChannel) and packs them.
    public convenience init(weight: [Float], bias: [Float], outChannels: Int, inChannels: Int,
                            input: QuantizationParameters) {
        let (values, scales) = Self.quantizePerChannel(weight: weight, outChannels: outChannels, inChannels: inChannels)
        self.init(validated: values, weightScales: scales, bias: bias, outChannels: outChannels, inChannels: inChannels,
                  input: input)
    }

    /// Packs already-quantized weights (a quantized file's): values [outChannels, inChannels] in -127...127,
    /// weightScales [outChannels] finite and >= 0. Throws `KernelsError.invalidQuantizedWeights` naming
    /// the first offending channel otherwise.
    public convenience init(quantizedWeight values: [Int8], weightScales: [Float], bias: [Float], outChannels: Int,
                            inChannels: Int, input: QuantizationParameters) throws {
        precondition(values.count == outChannels * inChannels && weightScales.count == outChannels)
        let shape = "[\(outChannels), \(inChannels)]"
        if let o = weightScales.firstIndex(where: { !$0.isFinite || $0 < 0 }) {
            throw KernelsError.invalidQuantizedWeights(
                reason: "weights \(shape): channel \(o) has scale \(weightScales[o]) (scales must be finite and >= 0)")
        }
        if let index = values.firstIndex(of: -128) {
            throw KernelsError.invalidQuantizedWeights(
                reason: "weights \(shape): channel \(index / inChannels) input \(index % inChannels) is -128 " +
                    "(symmetric int8 weights are in -127...127; requantize the model)")
        }
        self.init(validated: values, weightScales: weightScales, bias: bias, outChannels: outChannels,
                  inChannels: inChannels, input: input)
    }

    private init(validated values: [Int8], weightScales: [Float], bias: [Float], outChannels: Int, inChannels: Int,
                 input: QuantizationParameters) {
        precondition(values.count == outChannels * inChannels && weightScales.count == outChannels && bias.count == outChannels)
        precondition(outChannels > 0 && inChannels > 0 && inChannels <= 65536, "int32 sums are exact up to 65536 inputs")
        self.outChannels = outChannels
        self.inChannels = inChannels
        self.weightScales = weightScales
        self.bias = bias
        self.input = input
        let size = hk_qgemm_packed_size(outChannels, inChannels)
        packed = UnsafeMutableRawPointer.allocate(byteCount: size, alignment: 64).bindMemory(to: Int8.self, capacity: size)
        let sums = UnsafeMutablePointer<Int32>.allocate(capacity: outChannels)
        defer { sums.deallocate() }
        hk_qgemm_pack(values, outChannels, inChannels, packed, sums)
        offset = .allocate(capacity: outChannels)
        scale = .allocate(capacity: outChannels)
        for o in 0..<outChannels {
            // |zeroPoint · Σ W| <= 255 · 127 · 65536 < 2^31.
            offset[o] = Int32(-input.zeroPoint * Int(sums[o]))
            scale[o] = input.scale * weightScales[o]
        }
        packedBias = .allocate(capacity: outChannels)
        packedBias.initialize(from: bias, count: outChannels)
    }

    deinit {
        UnsafeMutableRawPointer(packed).deallocate()
        offset.deallocate()
        scale.deallocate()
        packedBias.deallocate()
    }

    /// Symmetric per-output-channel int8 quantization of fp32 weights [outChannels, inChannels]:
    /// scales[o] = max |w[o, :]| / 127, values = round_half_even(w / scales[o]) clamped to -127...127
    /// (a channel of zeros gets scale 0 and zeros).
    public static func quantizePerChannel(weight: [Float], outChannels: Int, inChannels: Int) -> (values: [Int8], scales: [Float]) {
        precondition(weight.count == outChannels * inChannels)
        var values = [Int8](repeating: 0, count: weight.count)
        var scales = [Float](repeating: 0, count: outChannels)
        for o in 0..<outChannels {
            let row = weight[o * inChannels..<(o + 1) * inChannels]
            let largest = row.reduce(Float(0)) { max($0, abs($1)) }
            precondition(largest.isFinite, "weights of output channel \(o) are not finite")
            let step = largest / 127
            scales[o] = step
            guard step > 0 else { continue }
            for (i, w) in row.enumerated() {
                values[o * inChannels + i] = Int8(min(max((w / step).rounded(.toNearestOrEven), -127), 127))
            }
        }
        return (values, scales)
    }

    /// One int8 weight W[o, i], read from the packed panels (for inspection, tests, writing a file).
    public func quantizedWeight(output o: Int, input i: Int) -> Int8 {
        precondition(o >= 0 && o < outChannels && i >= 0 && i < inChannels)
        // Panels of 32 output channels, each [ceil(inChannels / 4)][32][4] (hk_qgemm_pack).
        let panel = Int(HK_QGEMM_PANEL), groups = (inChannels + 3) / 4
        return packed[((o / panel) * groups + i / 4) * panel * 4 + (o % panel) * 4 + i % 4]
    }
}

/// Where the int8 GEMM's results go.
public enum QuantizedOutput {
    /// Float [rows, outChannels].
    case float(UnsafeMutablePointer<Float>)
    /// uint8 [rows, outChannels], requantized with these parameters (the next layer's input quantization):
    /// q = clamp(round_half_even(y · (1 / scale)) + zeroPoint, 0, 255), NaN -> zeroPoint.
    case uint8(UnsafeMutablePointer<UInt8>, QuantizationParameters)
}

/// Which implementation of the int8 GEMM runs.
public enum QuantizedKernel: Sendable {
    /// AVX-512 VNNI; requires `QuantizedPointwiseWeights.available`.
    case vnni
    /// Portable scalar C, bit-identical to `.vnni` and many times slower: tests, and CPUs without VNNI
    /// when the caller asks for it.
    case reference
}

/// Int8 1x1 convolution:
/// `out[m, :] = activation(scale ⊙ (Σᵢ in[m, i] · W[:, i] + offset) + bias (+ residual[m, :]))`, with the
/// int32 sums exact and the input quantized as `weights.input` says.
/// - input: uint8 [rows, inChannels], row-major, no padding (k need not be a multiple of 4)
/// - residual: float [rows, outChannels] or nil; output: [rows, outChannels]
public func quantizedPointwiseConvolution(
    input: UnsafePointer<UInt8>, rows: Int, weights: QuantizedPointwiseWeights, activation: Activation,
    residual: UnsafePointer<Float>? = nil, output: QuantizedOutput, threads: Int, kernel: QuantizedKernel = .vnni
) {
    precondition(kernel == .reference || QuantizedPointwiseWeights.available,
                 "the int8 VNNI kernel needs AVX-512 VNNI, which this CPU lacks (use kernel: .reference)")
    var epilogue = hk_qgemm_epilogue(offset: weights.offset, scale: weights.scale, bias: weights.packedBias,
                                     residual: residual, relu6: activation.relu6Flag, output: nil,
                                     output_u8: nil, output_inv_scale: 1, output_zero_point: 0)
    switch output {
    case .float(let pointer):
        epilogue.output = pointer
    case .uint8(let pointer, let parameters):
        epilogue.output_u8 = pointer
        epilogue.output_inv_scale = 1 / parameters.scale
        epilogue.output_zero_point = Int32(parameters.zeroPoint)
    }
    let run = kernel == .vnni ? hk_qgemm_vnni : hk_qgemm_reference
    let k = weights.inChannels, n = weights.outChannels, packed = UnsafePointer(weights.packed)
    let blockRows = Int(HK_QGEMM_BLOCK_ROWS), panelWidth = Int(HK_QGEMM_PANEL)
    let blocks = (rows + blockRows - 1) / blockRows, panels = (n + panelWidth - 1) / panelWidth
    withUnsafePointer(to: &epilogue) { epilogue in
        if threads > 1 && blocks < 4 * threads && panels >= 2 {
            // Few rows (a 7x7 map, one image's logits): split the output columns, a panel at a time.
            parallelFor(panels, threads: threads) { range in
                run(input, 0, rows, k, packed, n, epilogue, range.lowerBound, range.upperBound)
            }
            return
        }
        // Chunks of whole row blocks so the kernel's full-height blocks line up.
        parallelFor(blocks, threads: threads, minimumChunk: 4) { range in
            run(input, range.lowerBound * blockRows, min(range.upperBound * blockRows, rows), k, packed, n, epilogue, 0, panels)
        }
    }
}

/// `output[i] = clamp(round_half_even(input[i] · (1 / scale)) + zeroPoint, 0, 255)`, the rounding of the
/// GEMM's uint8 output; NaN -> zeroPoint, +inf -> 255, -inf -> 0.
/// (Multiplying by the float reciprocal, not dividing: the two can differ by one step when x / scale
/// is within an ulp of a .5 tie, never for a power-of-two scale.)
public func quantize(input: UnsafePointer<Float>, count: Int, parameters: QuantizationParameters,
                     output: UnsafeMutablePointer<UInt8>, threads: Int) {
    let inverse = 1 / parameters.scale, zeroPoint = Int32(parameters.zeroPoint)
    elementChunks(count, threads: threads) { begin, end in
        hk_quantize_u8(input, begin, end, inverse, zeroPoint, output)
    }
}

/// The patches of a dense convolution (`im2col`) quantized with `parameters`: the image is quantized
/// once into `image`, then its bytes are copied into patches. Equal, byte for byte, to `quantize` of
/// `im2col`'s float patches, without the float patches in memory.
/// - image: `batch · height · width · channels` bytes of scratch
/// - columns: `batch · outHeight · outWidth · kernel² · channels` bytes
public func im2colQuantized(input: UnsafePointer<Float>, geometry g: ConvolutionGeometry, parameters: QuantizationParameters,
                            image: UnsafeMutablePointer<UInt8>, columns: UnsafeMutablePointer<UInt8>, threads: Int) {
    quantize(input: input, count: g.batch * g.height * g.width * g.channels, parameters: parameters, output: image,
             threads: threads)
    var zero: Float = 0, padding: UInt8 = 0
    quantize(input: &zero, count: 1, parameters: parameters, output: &padding, threads: 1)
    parallelFor(g.batch * g.outHeight, threads: threads) { range in
        hk_im2col_u8(image, g.height, g.width, g.channels, g.kernel, g.stride, g.padTop, g.padLeft, g.outHeight, g.outWidth,
                     padding, columns, range.lowerBound, range.upperBound)
    }
}

/// Floats of row scratch `depthwiseConvolutionQuantized` needs for `threads` threads.
public func depthwiseQuantizedScratchCount(geometry g: ConvolutionGeometry, threads: Int) -> Int {
    max(1, threads) * g.outWidth * g.channels
}

/// `depthwiseConvolution` whose output goes to uint8 as `quantize` with `parameters` would write it,
/// byte for byte, for the int8 layer that reads it; the float map is never written (each output row
/// lives only in `rowScratch`, `depthwiseQuantizedScratchCount` floats).
public func depthwiseConvolutionQuantized(
    input: UnsafePointer<Float>, geometry g: ConvolutionGeometry, weight: UnsafePointer<Float>, bias: UnsafePointer<Float>,
    activation: Activation, parameters: QuantizationParameters, output: UnsafeMutablePointer<UInt8>,
    rowScratch: UnsafeMutablePointer<Float>, threads: Int
) {
    precondition(g.kernel >= 1 && g.kernel <= 7, "depthwise kernels up to 7x7 (CKernels' HK_MAX_KERNEL)")
    let rows = g.batch * g.outHeight, relu6 = activation.relu6Flag
    let inverse = 1 / parameters.scale, zeroPoint = Int32(parameters.zeroPoint), rowFloats = g.outWidth * g.channels
    // As depthwiseConvolution splits: few rows (7x7 maps) by 16-channel vectors, else by rows.
    let byChannels = threads > 1 && rows < 4 * threads && g.channels >= 32 * threads
    let units = byChannels ? (g.channels + 15) / 16 : rows
    let chunks = max(1, min(threads, units))
    runOnPool(chunks: chunks, participants: chunks) { chunk, participant in
        let begin = units * chunk / chunks, end = units * (chunk + 1) / chunks
        guard begin < end else { return }
        let scratch = rowScratch + participant * rowFloats
        if byChannels {
            hk_depthwise_channels_u8(input, g.height, g.width, g.channels, weight, bias, g.kernel, g.stride, g.padTop, g.padLeft,
                                     g.outHeight, g.outWidth, relu6, scratch, inverse, zeroPoint, output, 0, rows,
                                     begin * 16, min(end * 16, g.channels))
        } else {
            hk_depthwise_channels_u8(input, g.height, g.width, g.channels, weight, bias, g.kernel, g.stride, g.padTop, g.padLeft,
                                     g.outHeight, g.outWidth, relu6, scratch, inverse, zeroPoint, output, begin, end,
                                     0, g.channels)
        }
    }
}

/// `output[i] = Float(input[i] − zeroPoint) · scale`.
public func dequantize(input: UnsafePointer<UInt8>, count: Int, parameters: QuantizationParameters,
                       output: UnsafeMutablePointer<Float>, threads: Int) {
    let zeroPoint = Int32(parameters.zeroPoint)
    elementChunks(count, threads: threads) { begin, end in
        hk_dequantize_u8(input, begin, end, parameters.scale, zeroPoint, output)
    }
}

/// Splits `0..<count` into ranges of whole 4096-element blocks, at least 16384 elements per thread.
@inline(__always)
private func elementChunks(_ count: Int, threads: Int, _ body: (Int, Int) -> Void) {
    let block = 4096
    parallelFor((count + block - 1) / block, threads: threads, minimumChunk: 4) { range in
        body(range.lowerBound * block, min(range.upperBound * block, count))
    }
}
