import CKernels

/// `out[r, c] = activation(out[r, c] + bias[c] (+ residual[r, c]))` over a row-major [rows, columns]
/// matrix whose rows (and residual's) are `rowStride` floats apart (default `columns`): the
/// bias/activation/skip step that follows a GEMM.
public func biasActivation(
    _ out: UnsafeMutablePointer<Float>, rows: Int, columns: Int, rowStride: Int? = nil, bias: UnsafePointer<Float>,
    activation: Activation, residual: UnsafePointer<Float>? = nil, threads: Int = 1
) {
    let ld = rowStride ?? columns
    precondition(ld >= columns)
    parallelFor(rows, threads: threads, minimumChunk: max(1, 16_384 / max(columns, 1))) { range in
        hk_bias_activation(out, range.lowerBound, range.upperBound, columns, ld, bias, residual,
                           activation.kernelCode)
    }
}
