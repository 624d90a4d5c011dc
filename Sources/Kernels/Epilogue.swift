/// `out[r, c] = activation(out[r, c] + bias[c] (+ residual[r, c]))` over a row-major [rows, columns]
/// matrix: the bias/activation/skip step that follows a GEMM.
public func biasActivation(
    _ out: UnsafeMutablePointer<Float>, rows: Int, columns: Int, bias: UnsafePointer<Float>,
    activation: Activation, residual: UnsafePointer<Float>? = nil, threads: Int = 1
) {
    parallelFor(rows, threads: threads, minimumChunk: max(1, 16_384 / max(columns, 1))) { range in
        let vectorEnd = columns & ~15
        for r in range {
            let row = out + r * columns
            let skip = residual.map { $0 + r * columns }
            var c = 0
            while c < vectorEnd {
                var v = UnsafeRawPointer(row + c).loadUnaligned(as: SIMD16<Float>.self)
                v += UnsafeRawPointer(bias + c).loadUnaligned(as: SIMD16<Float>.self)
                if let skip { v += UnsafeRawPointer(skip + c).loadUnaligned(as: SIMD16<Float>.self) }
                UnsafeMutableRawPointer(row + c).storeBytes(of: activation.apply(v), as: SIMD16<Float>.self)
                c += 16
            }
            while c < columns {
                var v = row[c] + bias[c]
                if let skip { v += skip[c] }
                row[c] = activation.apply(v)
                c += 1
            }
        }
    }
}
