import CKernels
import Foundation

// Convolutions over channels-last (NHWC) tensors: a pixel's channels are contiguous, so a 1x1
// convolution is a plain GEMM and depthwise filters vectorize across channels.

/// 1x1 convolution: `out[m, :] = activation(in[m, :] · weightᵀ + bias (+ residual[m, :]))`.
/// - input: [rows, inChannels] (rows = batch · height · width), rows `inputStride` floats apart
///   (default inChannels)
/// - weight: [outChannels, inChannels] (PyTorch's [out, in, 1, 1] with BatchNorm folded in)
/// - output, residual: [rows, outChannels], rows `outputStride` floats apart (default outChannels)
/// - columns: only these output channels (the others untouched); nil: all
public func pointwiseConvolution(
    input: UnsafePointer<Float>, rows: Int, inChannels: Int,
    weight: UnsafePointer<Float>, bias: UnsafePointer<Float>, outChannels: Int,
    activation: Activation, residual: UnsafePointer<Float>? = nil,
    output: UnsafeMutablePointer<Float>, inputStride: Int? = nil, outputStride: Int? = nil,
    columns: Range<Int>? = nil, threads: Int
) {
    let lda = inputStride ?? inChannels, ldc = outputStride ?? outChannels
    let columns = columns ?? 0..<outChannels, c0 = columns.lowerBound
    precondition(lda >= inChannels && ldc >= outChannels && c0 >= 0 && columns.upperBound <= outChannels)
    guard !columns.isEmpty else { return }
    // In place (residual == output) stays right: BLAS writes only `out`, so add the residual with
    // beta = 1 rather than reading it after BLAS has overwritten it.
    let inPlace = residual.map { UnsafeRawPointer($0) == UnsafeRawPointer(output) } ?? false
    // Row tiles small enough that the epilogue finds the GEMM's output still in cache; the threads
    // split the tiles (OpenBLAS itself runs single-threaded, see BLAS.load).
    let tileRows = max(16, (1 << 16) / max(columns.count, 1))
    let tiles = (rows + tileRows - 1) / tileRows
    parallelFor(tiles, threads: threads) { tileRange in
        for tile in tileRange {
            let first = tile * tileRows, count = min(tileRows, rows - first)
            let out = output + first * ldc + c0
            BLAS.sgemm(transposeB: true, m: count, n: columns.count, k: inChannels,
                       a: input + first * lda, lda: lda, b: weight + c0 * inChannels, ldb: inChannels,
                       beta: inPlace ? 1 : 0, c: out, ldc: ldc)
            hk_bias_activation(out, 0, count, columns.count, ldc, bias + c0,
                               inPlace ? nil : residual.map { $0 + first * ldc + c0 }, activation.kernelCode)
        }
    }
}

/// Geometry of a 2-D convolution over NHWC input with explicit (TF 'SAME' or other) padding.
public struct ConvolutionGeometry: Sendable, Equatable {
    public var batch: Int
    public var height: Int
    public var width: Int
    public var channels: Int
    public var kernel: Int
    public var stride: Int
    public var padTop: Int
    public var padLeft: Int
    public var outHeight: Int
    public var outWidth: Int

    /// TF 'SAME' padding, as EfficientNet uses.
    public init(batch: Int, height: Int, width: Int, channels: Int, kernel: Int, stride: Int) {
        let vertical = SamePadding(input: height, kernel: kernel, stride: stride)
        let horizontal = SamePadding(input: width, kernel: kernel, stride: stride)
        self.init(batch: batch, height: height, width: width, channels: channels, kernel: kernel, stride: stride,
                  padTop: vertical.before, padLeft: horizontal.before,
                  outHeight: vertical.output, outWidth: horizontal.output)
    }

    public init(batch: Int, height: Int, width: Int, channels: Int, kernel: Int, stride: Int,
                padTop: Int, padLeft: Int, outHeight: Int, outWidth: Int) {
        self.batch = batch
        self.height = height
        self.width = width
        self.channels = channels
        self.kernel = kernel
        self.stride = stride
        self.padTop = padTop
        self.padLeft = padLeft
        self.outHeight = outHeight
        self.outWidth = outWidth
    }

    public var outputCount: Int { batch * outHeight * outWidth * channels }
}

/// Depthwise convolution (one kernel×kernel filter per channel) with bias and activation.
/// - input: [batch, height, width, channels]
/// - weight: [kernel, kernel, channels] (taps outer, channels inner, so each tap is a contiguous vector)
/// - output: [batch, outHeight, outWidth, channels]
public func depthwiseConvolution(
    input: UnsafePointer<Float>, geometry g: ConvolutionGeometry,
    weight: UnsafePointer<Float>, bias: UnsafePointer<Float>, activation: Activation,
    output: UnsafeMutablePointer<Float>, threads: Int
) {
    precondition(g.kernel >= 1 && g.kernel <= 7, "depthwise kernels up to 7x7 (CKernels' HK_MAX_KERNEL)")
    let rows = g.batch * g.outHeight, relu6 = activation.relu6Flag
    if threads > 1 && rows < 4 * threads && g.channels >= 32 * threads {
        // Few rows (7x7 maps) split unevenly: split the channels, in 16-channel vectors.
        let vectors = (g.channels + 15) / 16
        parallelFor(vectors, threads: threads) { range in
            hk_depthwise_channels(input, g.height, g.width, g.channels, weight, bias, g.kernel, g.stride, g.padTop,
                                  g.padLeft, g.outHeight, g.outWidth, relu6, output, 0, rows,
                                  range.lowerBound * 16, min(range.upperBound * 16, g.channels))
        }
        return
    }
    parallelFor(rows, threads: threads) { range in
        hk_depthwise(input, g.height, g.width, g.channels, weight, bias, g.kernel, g.stride, g.padTop, g.padLeft,
                     g.outHeight, g.outWidth, relu6, output, range.lowerBound, range.upperBound)
    }
}

/// Dense 2-D convolution via im2col + GEMM, for layers with few input channels (the stem).
/// - input: [batch, height, width, channels]
/// - weights: [outChannels, kernel · kernel · channels] (PyTorch's [out, in, k, k] permuted to [out, k, k, in])
/// - columns: scratch of at least `batch · outHeight · outWidth · kernel² · channels` floats
/// - output: [batch, outHeight, outWidth, outChannels]
public func convolution(
    input: UnsafePointer<Float>, geometry g: ConvolutionGeometry, weights: PointwiseWeights, activation: Activation,
    columns: UnsafeMutablePointer<Float>, output: UnsafeMutablePointer<Float>, threads: Int
) {
    precondition(weights.inChannels == g.kernel * g.kernel * g.channels)
    im2col(input: input, geometry: g, columns: columns, threads: threads)
    pointwiseConvolution(input: columns, rows: g.batch * g.outHeight * g.outWidth, weights: weights,
                         activation: activation, output: output, threads: threads)
}

/// The patches of a dense convolution as rows: columns[(n · outHeight + oy) · outWidth + ox] = the
/// kernel x kernel x channels patch at that output position (taps outer, channels inner), zeros where
/// it leaves the image. columns: `batch · outHeight · outWidth · kernel² · channels` floats.
public func im2col(input: UnsafePointer<Float>, geometry g: ConvolutionGeometry, columns: UnsafeMutablePointer<Float>,
                   threads: Int) {
    parallelFor(g.batch * g.outHeight, threads: threads) { range in
        hk_im2col(input, g.height, g.width, g.channels, g.kernel, g.stride, g.padTop, g.padLeft, g.outHeight,
                  g.outWidth, columns, range.lowerBound, range.upperBound)
    }
}

/// Mean over the spatial positions: [batch, positions, channels] -> [batch, channels].
public func globalAveragePool(
    input: UnsafePointer<Float>, batch: Int, positions: Int, channels: Int, output: UnsafeMutablePointer<Float>
) {
    let scale = 1 / Float(positions)
    for n in 0..<batch {
        let out = output + n * channels
        out.update(repeating: 0, count: channels)
        for p in 0..<positions {
            let src = input + (n * positions + p) * channels
            for c in 0..<channels { out[c] += src[c] }
        }
        for c in 0..<channels { out[c] *= scale }
    }
}

/// Numerically stable softmax over each row of [rows, columns], in place.
public func softmaxRows(_ x: UnsafeMutablePointer<Float>, rows: Int, columns: Int) {
    for r in 0..<rows {
        let row = x + r * columns
        var peak = -Float.infinity
        for c in 0..<columns { peak = max(peak, row[c]) }
        var sum: Float = 0
        for c in 0..<columns {
            row[c] = expf(row[c] - peak)
            sum += row[c]
        }
        let inverse = 1 / sum
        for c in 0..<columns { row[c] *= inverse }
    }
}

/// `pointwiseConvolution` for training batches (thousands of rows): one GEMM per thread over its
/// share of the rows, so OpenBLAS packs the weights once per thread instead of once per row tile (the
/// tiles are for inference, where the epilogue should find the output in cache); bias, residual and
/// activation are applied to each thread's rows after its GEMM.
/// - input: [rows, inChannels]; weight: [outChannels, inChannels]; residual, output: [rows, outChannels]
public func pointwiseConvolutionBatch(
    input: UnsafePointer<Float>, rows: Int, inChannels: Int, weight: UnsafePointer<Float>, bias: UnsafePointer<Float>,
    outChannels: Int, activation: Activation = .identity, residual: UnsafePointer<Float>? = nil,
    output: UnsafeMutablePointer<Float>, threads: Int
) {
    guard rows > 0 else { return }
    parallelFor(rows, threads: threads, minimumChunk: 64) { range in
        let out = output + range.lowerBound * outChannels
        BLAS.sgemm(transposeB: true, m: range.count, n: outChannels, k: inChannels, a: input + range.lowerBound * inChannels,
                   lda: inChannels, b: weight, ldb: inChannels, c: out, ldc: outChannels)
        hk_bias_activation(out, 0, range.count, outChannels, outChannels, bias,
                           residual.map { $0 + range.lowerBound * outChannels }, activation.kernelCode)
    }
}

// MARK: - Backward passes (fine-tuning the last blocks)
//
// Each accumulates into its gradient outputs (`+=`): a tensor used twice (a block input that feeds
// both the expansion and the residual) gets both contributions. Callers zero gradients first.

/// Backward of `pointwiseConvolution` without its activation (apply `relu6Backward` to the output
/// gradient first): for `y = x · Wᵀ + b`,
/// `dX += dY · W` (when `inputGradient` is given), `dW += dYᵀ · x`, `db += Σ_rows dY`.
/// - input: [rows, inChannels]; weight: [outChannels, inChannels]; outputGradient: [rows, outChannels]
/// - inputGradient: [rows, inChannels]; weightGradient: [outChannels, inChannels]; biasGradient: [outChannels]
public func pointwiseConvolutionBackward(
    input: UnsafePointer<Float>, rows: Int, inChannels: Int, weight: UnsafePointer<Float>, outChannels: Int,
    outputGradient: UnsafePointer<Float>, inputGradient: UnsafeMutablePointer<Float>?,
    weightGradient: UnsafeMutablePointer<Float>?, biasGradient: UnsafeMutablePointer<Float>?, threads: Int
) {
    guard rows > 0 else { return }
    // dX and dW cost the same (rows · in · out multiply-adds). With both asked, half the threads take
    // each, so each GEMM is split as little as possible: every part packs its whole other operand
    // (W for a dX part, x for a dW part), and one GEMM per thread packs each once. Parts split dX by
    // rows and dW by output channels: no value is written by two threads.
    let threads = max(1, threads)
    let both = inputGradient != nil && weightGradient != nil
    let inputParts = inputGradient == nil ? 0 : (both ? max(1, threads / 2) : threads)
    let weightParts = weightGradient == nil ? 0 : (both ? max(1, threads - inputParts) : threads)
    parallelFor(inputParts + weightParts, threads: threads) { range in
        for job in range {
            if job < inputParts, let inputGradient {
                let first = rows * job / inputParts, count = rows * (job + 1) / inputParts - first
                guard count > 0 else { continue }
                BLAS.sgemm(m: count, n: inChannels, k: outChannels, a: outputGradient + first * outChannels, lda: outChannels,
                           b: weight, ldb: inChannels, beta: 1, c: inputGradient + first * inChannels, ldc: inChannels)
            } else if let weightGradient {
                let part = job - inputParts
                let first = outChannels * part / weightParts, count = outChannels * (part + 1) / weightParts - first
                guard count > 0 else { continue }
                BLAS.sgemm(transposeA: true, m: count, n: inChannels, k: rows, a: outputGradient + first, lda: outChannels,
                           b: input, ldb: inChannels, beta: 1, c: weightGradient + first * inChannels, ldc: inChannels)
            }
        }
    }
    if let biasGradient { hk_column_sums(outputGradient, rows, outChannels, biasGradient) }
}

/// Backward of `depthwiseConvolution` without its activation: `dX` (when given) and `dW` of
/// `z = depthwise(x, w) + b`, plus `db += Σ dZ`.
/// - input: [batch, height, width, channels] (the forward input); weight: [kernel, kernel, channels]
/// - outputGradient: [batch, outHeight, outWidth, channels]
/// - inputGradient: like input; weightGradient: like weight; biasGradient: [channels]
public func depthwiseConvolutionBackward(
    input: UnsafePointer<Float>, geometry g: ConvolutionGeometry, weight: UnsafePointer<Float>,
    outputGradient: UnsafePointer<Float>, inputGradient: UnsafeMutablePointer<Float>?,
    weightGradient: UnsafeMutablePointer<Float>?, biasGradient: UnsafeMutablePointer<Float>?, threads: Int
) {
    precondition(g.kernel >= 1 && g.kernel <= 7)
    // Split by channels in 16-channel vectors: output rows of one image share input rows, channels do not.
    let vectors = (g.channels + 15) / 16
    parallelFor(vectors, threads: threads) { range in
        hk_depthwise_backward(input, g.height, g.width, g.channels, weight, g.kernel, g.stride, g.padTop, g.padLeft,
                              g.outHeight, g.outWidth, outputGradient, inputGradient, weightGradient,
                              0, g.batch * g.outHeight, range.lowerBound * 16, min(range.upperBound * 16, g.channels))
    }
    if let biasGradient { hk_column_sums(outputGradient, g.batch * g.outHeight * g.outWidth, g.channels, biasGradient) }
}

/// Backward of `globalAveragePool`: `dX[n, p, c] += dPooled[n, c] / positions`.
public func globalAveragePoolBackward(
    outputGradient: UnsafePointer<Float>, batch: Int, positions: Int, channels: Int,
    inputGradient: UnsafeMutablePointer<Float>
) {
    let scale = 1 / Float(positions)
    for n in 0..<batch {
        let pooled = outputGradient + n * channels
        for p in 0..<positions {
            let dx = inputGradient + (n * positions + p) * channels
            for c in 0..<channels { dx[c] += pooled[c] * scale }
        }
    }
}

/// Backward of `globalAveragePool(relu6(z))` in one pass, written (not accumulated) into `gradient`:
/// `gradient[n, p, c] = dPooled[n, c] / positions` where `0 < activated[n, p, c] < 6`, else 0.
/// - outputGradient: [batch, ≥ channels] rows `outputStride` apart; activated, gradient: [batch, positions, channels]
public func globalAveragePoolReLU6Backward(
    outputGradient: UnsafePointer<Float>, outputStride: Int, activated: UnsafePointer<Float>, batch: Int, positions: Int,
    channels: Int, gradient: UnsafeMutablePointer<Float>, threads: Int
) {
    parallelFor(batch, threads: threads) { range in
        hk_average_pool_relu6_backward(outputGradient, outputStride, activated, positions, channels, gradient,
                                       range.lowerBound, range.upperBound)
    }
}

/// Backward of ReLU6 in place: `gradient[i] = 0` where the activation was outside its linear range.
/// `values` may be the pre-activation z or the output relu6(z): 0 < z < 6 exactly when
/// 0 < relu6(z) < 6, so a forward pass need keep only its output.
public func relu6Backward(values: UnsafePointer<Float>, gradient: UnsafeMutablePointer<Float>, count: Int, threads: Int = 1) {
    // Memory-bound: threads only pay off on large tensors.
    parallelFor(count, threads: threads, minimumChunk: 1 << 16) { range in
        hk_relu6_backward(values + range.lowerBound, gradient + range.lowerBound, range.count)
    }
}
