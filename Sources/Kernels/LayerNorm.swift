import Foundation

/// Layer normalization (Ba et al. 2016) over the last dimension, with an optional residual added first
/// (the post-norm `LayerNorm(x + sublayer(x))` of BERT):
/// `out[r, :] = (x - mean(x)) / sqrt(var(x) + epsilon) * gamma + beta`, `x = input[r, :] (+ residual[r, :])`.
/// - input, residual, output: [rows, columns]; `output` may be `input` or `residual` (each row is read
///   completely before it is written)
/// - gamma, beta: [columns]
/// Mean and (biased) variance are two passes over the row, in Float, like PyTorch's CPU kernel.
public func layerNorm(
    input: UnsafePointer<Float>, residual: UnsafePointer<Float>? = nil, rows: Int, columns: Int,
    gamma: UnsafePointer<Float>, beta: UnsafePointer<Float>, epsilon: Float,
    output: UnsafeMutablePointer<Float>, threads: Int = 1
) {
    let vectorEnd = columns & ~15
    parallelFor(rows, threads: threads, minimumChunk: max(1, 16_384 / max(columns, 1))) { range in
        for r in range {
            let x = input + r * columns
            let skip = residual.map { $0 + r * columns }
            let out = output + r * columns
            @inline(__always) func value(_ c: Int) -> SIMD16<Float> {
                var v = UnsafeRawPointer(x + c).loadUnaligned(as: SIMD16<Float>.self)
                if let skip { v += UnsafeRawPointer(skip + c).loadUnaligned(as: SIMD16<Float>.self) }
                return v
            }
            @inline(__always) func scalar(_ c: Int) -> Float { x[c] + (skip?[c] ?? 0) }

            var sum = SIMD16<Float>(repeating: 0)
            var c = 0
            while c < vectorEnd { sum += value(c); c += 16 }
            var total = sum.sum()
            while c < columns { total += scalar(c); c += 1 }
            let mean = total / Float(columns)

            var squares = SIMD16<Float>(repeating: 0)
            let meanVector = SIMD16<Float>(repeating: mean)
            c = 0
            while c < vectorEnd {
                let d = value(c) - meanVector
                squares += d * d  // not addProduct, which becomes per-lane fmaf calls
                c += 16
            }
            var variance = squares.sum()
            while c < columns { let d = scalar(c) - mean; variance += d * d; c += 1 }
            variance /= Float(columns)
            let inverse = 1 / (variance + epsilon).squareRoot()

            let inverseVector = SIMD16<Float>(repeating: inverse)
            c = 0
            while c < vectorEnd {
                let g = UnsafeRawPointer(gamma + c).loadUnaligned(as: SIMD16<Float>.self)
                let b = UnsafeRawPointer(beta + c).loadUnaligned(as: SIMD16<Float>.self)
                let normalized = (value(c) - meanVector) * inverseVector
                UnsafeMutableRawPointer(out + c).storeBytes(of: normalized * g + b, as: SIMD16<Float>.self)
                c += 16
            }
            while c < columns { out[c] = (scalar(c) - mean) * inverse * gamma[c] + beta[c]; c += 1 }
        }
    }
}
