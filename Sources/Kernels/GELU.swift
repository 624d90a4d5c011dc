import CKernels
import Foundation

/// `x = gelu(x + bias)` in place over a row-major [rows, columns] matrix, with the exact GELU of
/// Hendrycks & Gimpel 2016, `0.5 · x · (1 + erf(x / √2))` (BERT's "gelu", PyTorch's default), not the
/// tanh approximation: the reference embeddings are computed with erf.
/// - bias: [columns], or nil when the GEMM before already added it
public func biasGELU(_ x: UnsafeMutablePointer<Float>, rows: Int, columns: Int, bias: UnsafePointer<Float>?,
                     threads: Int = 1) {
    parallelFor(rows, threads: threads, minimumChunk: max(1, 16_384 / max(columns, 1))) { range in
        hk_bias_gelu(x, range.lowerBound, range.upperBound, columns, bias)
    }
}

/// Exact (erf) GELU of one value.
@inline(__always)
public func gelu(_ x: Float) -> Float {
    0.5 * x * (1 + erff(x * 0.70710678118654752440))
}

/// `x = x · sigmoid(1.702 · x)` in place over [rows, columns]: the "quick_gelu" of OpenAI's CLIP
/// (Hendrycks & Gimpel 2016's sigmoid approximation), which CLIP checkpoints were trained with.
public func quickGELU(_ x: UnsafeMutablePointer<Float>, rows: Int, columns: Int, threads: Int = 1) {
    parallelFor(rows, threads: threads, minimumChunk: max(1, 16_384 / max(columns, 1))) { range in
        hk_quick_gelu(x, range.lowerBound * columns, range.upperBound * columns)
    }
}

/// quick_gelu of one value.
@inline(__always)
public func quickGELU(_ x: Float) -> Float {
    x / (1 + expf(-1.702 * x))
}
