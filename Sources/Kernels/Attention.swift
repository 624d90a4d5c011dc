import Foundation

/// Multi-head scaled dot-product attention (Vaswani et al. 2017) without projections:
/// for each batch item b, head h and query position i,
/// `out[b, i, h, :] = Σ_j softmax_j(scale · q[b, i, h, :] · k[b, j, h, :]) · v[b, j, h, :]`,
/// the softmax running only over keys j with `keyMask[b, j] != 0` (padding gets exactly zero weight, so a
/// padded batch gives the same numbers as one sequence at a time).
/// - query, key, value: token rows of `rowStride` floats, [batch, sequence, rowStride]; head h of a
///   token is the `headDimension` floats at offset `h · headDimension` (so q, k and v can be slices of one
///   fused [tokens, 3 · heads · headDimension] projection)
/// - keyMask: [batch, sequence], nil = attend to every position
/// - causal: query i attends to keys 0...i only (a decoder's or CLIP's text tower's mask)
/// - output: [batch, sequence, heads · headDimension]
/// A query whose keys are all masked gets zeros.
public func multiHeadAttention(
    query: UnsafePointer<Float>, key: UnsafePointer<Float>, value: UnsafePointer<Float>, rowStride: Int,
    batch: Int, sequence: Int, heads: Int, headDimension: Int, keyMask: UnsafePointer<UInt8>?, causal: Bool = false,
    scale: Float, output: UnsafeMutablePointer<Float>, threads: Int = 1
) {
    let width = heads * headDimension
    let vectorEnd = headDimension & ~15
    // One job per (batch item, head, block of queries): enough jobs for the cores even at batch 1.
    let queryBlock = 16
    let blocks = (sequence + queryBlock - 1) / queryBlock
    parallelFor(batch * heads * blocks, threads: threads) { jobs in
        withUnsafeTemporaryAllocation(of: Float.self, capacity: max(sequence, 1)) { scores in
            let scores = scores.baseAddress!
            for job in jobs {
                let b = job / (heads * blocks), h = job / blocks % heads, block = job % blocks
                let mask = keyMask.map { $0 + b * sequence }
                let keys = key + b * sequence * rowStride + h * headDimension
                let values = value + b * sequence * rowStride + h * headDimension
                for i in (block * queryBlock)..<min(sequence, (block + 1) * queryBlock) {
                    let q = query + (b * sequence + i) * rowStride + h * headDimension
                    let out = output + (b * sequence + i) * width + h * headDimension
                    let keyEnd = causal ? i + 1 : sequence
                    // scores[j] = scale · q · k_j
                    var peak = -Float.infinity
                    for j in 0..<keyEnd {
                        if let mask, mask[j] == 0 { continue }
                        let k = keys + j * rowStride
                        var acc = SIMD16<Float>(repeating: 0)
                        var d = 0
                        while d < vectorEnd {
                            // `a += x * y`, not addProduct: Swift lowers SIMD16 addProduct to 16 fmaf calls.
                            acc += UnsafeRawPointer(q + d).loadUnaligned(as: SIMD16<Float>.self)
                                * UnsafeRawPointer(k + d).loadUnaligned(as: SIMD16<Float>.self)
                            d += 16
                        }
                        var dot = acc.sum()
                        while d < headDimension { dot += q[d] * k[d]; d += 1 }
                        scores[j] = dot * scale
                        peak = max(peak, scores[j])
                    }
                    out.update(repeating: 0, count: headDimension)
                    guard peak > -Float.infinity else { continue }
                    var total: Float = 0
                    for j in 0..<keyEnd {
                        if let mask, mask[j] == 0 { continue }
                        scores[j] = expf(scores[j] - peak)
                        total += scores[j]
                    }
                    // out = Σ_j p_j · v_j, normalized once at the end.
                    for j in 0..<keyEnd {
                        if let mask, mask[j] == 0 { continue }
                        let v = values + j * rowStride
                        let p = SIMD16<Float>(repeating: scores[j])
                        var d = 0
                        while d < vectorEnd {
                            var o = UnsafeRawPointer(out + d).loadUnaligned(as: SIMD16<Float>.self)
                            o += p * UnsafeRawPointer(v + d).loadUnaligned(as: SIMD16<Float>.self)
                            UnsafeMutableRawPointer(out + d).storeBytes(of: o, as: SIMD16<Float>.self)
                            d += 16
                        }
                        while d < headDimension { out[d] += scores[j] * v[d]; d += 1 }
                    }
                    let inverse = 1 / total
                    for d in 0..<headDimension { out[d] *= inverse }
                }
            }
        }
    }
}
