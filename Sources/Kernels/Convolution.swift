import CKernels
import Foundation

// Convolutions over channels-last (NHWC) tensors: a pixel's channels are contiguous, so a 1x1
// convolution is a plain GEMM and depthwise filters vectorize across channels.

/// 1x1 convolution: `out[m, :] = activation(in[m, :] · weightᵀ + bias (+ residual[m, :]))`.
/// - input: [rows, inChannels] (rows = batch · height · width)
/// - weight: [outChannels, inChannels] (PyTorch's [out, in, 1, 1] with BatchNorm folded in)
/// - output: [rows, outChannels]
public func pointwiseConvolution(
    input: UnsafePointer<Float>, rows: Int, inChannels: Int,
    weight: UnsafePointer<Float>, bias: UnsafePointer<Float>, outChannels: Int,
    activation: Activation, residual: UnsafePointer<Float>? = nil,
    output: UnsafeMutablePointer<Float>, threads: Int
) {
    // Row tiles small enough that the epilogue finds the GEMM's output still in cache; the threads
    // split the tiles (OpenBLAS itself runs single-threaded, see BLAS.load).
    let tileRows = max(16, (1 << 16) / max(outChannels, 1))
    let tiles = (rows + tileRows - 1) / tileRows
    parallelFor(tiles, threads: threads) { tileRange in
        for tile in tileRange {
            let first = tile * tileRows, count = min(tileRows, rows - first)
            let out = output + first * outChannels
            BLAS.sgemm(transposeB: true, m: count, n: outChannels, k: inChannels,
                       a: input + first * inChannels, lda: inChannels, b: weight, ldb: inChannels,
                       c: out, ldc: outChannels)
            hk_bias_activation(out, 0, count, outChannels, bias, residual.map { $0 + first * outChannels },
                               activation == .relu6 ? 1 : 0)
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
    let rows = g.batch * g.outHeight, relu6: Int32 = activation == .relu6 ? 1 : 0
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
    parallelFor(g.batch * g.outHeight, threads: threads) { range in
        hk_im2col(input, g.height, g.width, g.channels, g.kernel, g.stride, g.padTop, g.padLeft, g.outHeight,
                  g.outWidth, columns, range.lowerBound, range.upperBound)
    }
    pointwiseConvolution(input: columns, rows: g.batch * g.outHeight * g.outWidth, weights: weights,
                         activation: activation, output: output, threads: threads)
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
