import CKernels

/// `out[r, c] = activation(out[r, c] + bias[c] (+ residual[r, c]))` over a row-major [rows, columns]
/// matrix: the bias/activation/skip step that follows a GEMM.
public func biasActivation(
    _ out: UnsafeMutablePointer<Float>, rows: Int, columns: Int, bias: UnsafePointer<Float>,
    activation: Activation, residual: UnsafePointer<Float>? = nil, threads: Int = 1
) {
    parallelFor(rows, threads: threads, minimumChunk: max(1, 16_384 / max(columns, 1))) { range in
        hk_bias_activation(out, range.lowerBound, range.upperBound, columns, bias, residual,
                           activation == .relu6 ? 1 : 0)
    }
}
