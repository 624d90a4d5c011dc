import CKernels
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
    // One job per (batch item, head, block of queries); each job transposes its head's keys once, so
    // blocks are large: 12 heads already give two cores enough jobs at batch 1.
    let queryBlock = 64
    let blocks = (sequence + queryBlock - 1) / queryBlock
    let scratchCount = hk_attention_scratch_count(sequence, headDimension)
    parallelFor(batch * heads * blocks, threads: threads) { jobs in
        withUnsafeTemporaryAllocation(of: Float.self, capacity: max(scratchCount, 1)) { scratch in
            for job in jobs {
                let b = job / (heads * blocks), h = job / blocks % heads, block = job % blocks
                let offset = b * sequence * rowStride + h * headDimension
                hk_attention_head(query + offset, key + offset, value + offset, rowStride, sequence, headDimension,
                                  keyMask.map { $0 + b * sequence }, causal ? 1 : 0, scale,
                                  output + b * sequence * width + h * headDimension, width,
                                  block * queryBlock, min(sequence, (block + 1) * queryBlock), scratch.baseAddress!)
            }
        }
    }
}

/// The same attention for one query per batch item: `output[b, h, :]` is query row `queryPositions[b]`
/// of item b attending to that item's keys (masked and, when causal, only keys up to its own position),
/// exactly as `multiHeadAttention` computes that row. For a pooled output that reads one token per
/// sequence (CLIP's class token, its text tower's end-of-text token), the last layer needs no other query.
/// - queryPositions: [batch], each in `0..<sequence`
/// - output: [batch, heads · headDimension]
public func multiHeadAttention(
    query: UnsafePointer<Float>, key: UnsafePointer<Float>, value: UnsafePointer<Float>, rowStride: Int,
    batch: Int, sequence: Int, heads: Int, headDimension: Int, keyMask: UnsafePointer<UInt8>?, causal: Bool = false,
    scale: Float, queryPositions: [Int], output: UnsafeMutablePointer<Float>, threads: Int = 1
) {
    precondition(queryPositions.count == batch && queryPositions.allSatisfy { (0..<sequence).contains($0) })
    let width = heads * headDimension
    let scratchCount = hk_attention_scratch_count(sequence, headDimension)
    parallelFor(batch * heads, threads: threads) { jobs in
        withUnsafeTemporaryAllocation(of: Float.self, capacity: max(scratchCount, 1)) { scratch in
            for job in jobs {
                let b = job / heads, h = job % heads, position = queryPositions[b]
                let offset = b * sequence * rowStride + h * headDimension
                // One query: an output stride of 0 puts its row at `output`, whatever its position.
                hk_attention_head(query + offset, key + offset, value + offset, rowStride, sequence, headDimension,
                                  keyMask.map { $0 + b * sequence }, causal ? 1 : 0, scale,
                                  output + b * width + h * headDimension, 0, position, position + 1,
                                  scratch.baseAddress!)
            }
        }
    }
}
