import Foundation
import Testing
@testable import Kernels

/// Double-precision multi-head attention over separate q, k, v arrays of [batch, sequence, heads · dim].
func naiveAttention(q: [Float], k: [Float], v: [Float], batch: Int, sequence: Int, heads: Int, dim: Int,
                    mask: [UInt8]?, scale: Double, causal: Bool = false) -> [Float] {
    let width = heads * dim
    var out = [Float](repeating: 0, count: batch * sequence * width)
    for b in 0..<batch {
        for h in 0..<heads {
            for i in 0..<sequence {
                let keys = (0..<sequence).filter { mask?[b * sequence + $0] != 0 && (!causal || $0 <= i) }
                var scores: [Double] = keys.map { j in
                    var dot = 0.0
                    for d in 0..<dim {
                        let qi = (b * sequence + i) * width + h * dim + d
                        let kj = (b * sequence + j) * width + h * dim + d
                        dot += Double(q[qi]) * Double(k[kj])
                    }
                    return dot * scale
                }
                let peak = scores.max() ?? 0
                scores = scores.map { exp($0 - peak) }
                let total = scores.reduce(0, +)
                for d in 0..<dim {
                    var acc = 0.0
                    for (n, j) in keys.enumerated() {
                        let index = (b * sequence + j) * width + h * dim + d
                        acc += scores[n] * Double(v[index])
                    }
                    let index = (b * sequence + i) * width + h * dim + d
                    out[index] = keys.isEmpty ? 0 : Float(acc / total)
                }
            }
        }
    }
    return out
}

@Suite struct AttentionTests {
    /// q, k, v interleaved in one [tokens, 3 · width] buffer, as a fused projection produces them.
    static func fused(_ q: [Float], _ k: [Float], _ v: [Float], tokens: Int, width: Int) -> [Float] {
        var out: [Float] = []
        for t in 0..<tokens {
            let row = (t * width)..<((t + 1) * width)
            out += q[row]
            out += k[row]
            out += v[row]
        }
        return out
    }

    @Test(arguments: [(batch: 2, sequence: 19, heads: 3, dim: 32), (batch: 1, sequence: 40, heads: 2, dim: 20),
                      (batch: 3, sequence: 1, heads: 4, dim: 16)])
    func matchesNaiveReferenceWithMask(shape: (batch: Int, sequence: Int, heads: Int, dim: Int)) {
        var random = SeededValues(seed: 3)
        let width = shape.heads * shape.dim, tokens = shape.batch * shape.sequence
        let q = random.array(tokens * width).map { $0 * 2 }
        let k = random.array(tokens * width).map { $0 * 2 }
        let v = random.array(tokens * width)
        // Each batch item keeps a different prefix of real tokens (at least one).
        let mask: [UInt8] = (0..<tokens).map { t in
            let position = t % shape.sequence, item = t / shape.sequence
            return position < max(1, shape.sequence - 5 * item) ? 1 : 0
        }
        let scale = 1 / Double(shape.dim).squareRoot()
        for useMask in [false, true] {
            let expected = naiveAttention(q: q, k: k, v: v, batch: shape.batch, sequence: shape.sequence, heads: shape.heads,
                                          dim: shape.dim, mask: useMask ? mask : nil, scale: scale)
            let packed = Self.fused(q, k, v, tokens: tokens, width: width)
            var out = [Float](repeating: .nan, count: tokens * width)
            packed.withUnsafeBufferPointer { p in
                multiHeadAttention(query: p.baseAddress!, key: p.baseAddress! + width, value: p.baseAddress! + 2 * width,
                                   rowStride: 3 * width, batch: shape.batch, sequence: shape.sequence, heads: shape.heads,
                                   headDimension: shape.dim, keyMask: useMask ? mask : nil, scale: Float(scale),
                                   output: &out, threads: 2)
            }
            #expect(normalizedSquaredError(out, expected) < 1e-12, "mask \(useMask)")
        }
    }

    /// Longer sequences than one block of queries (64) or one step of keys (64), head widths with and
    /// without a tail beyond whole 16-float vectors, causal and masked, 1 and 2 threads.
    @Test(arguments: [(batch: 2, sequence: 77, heads: 2, dim: 64), (batch: 1, sequence: 130, heads: 3, dim: 20),
                      (batch: 2, sequence: 50, heads: 4, dim: 48), (batch: 1, sequence: 5, heads: 1, dim: 80)])
    func longSequencesCausalAndMasked(shape: (batch: Int, sequence: Int, heads: Int, dim: Int)) {
        var random = SeededValues(seed: UInt64(shape.sequence * 31 + shape.dim))
        let width = shape.heads * shape.dim, tokens = shape.batch * shape.sequence
        let q = random.array(tokens * width).map { $0 * 3 }
        let k = random.array(tokens * width).map { $0 * 3 }
        let v = random.array(tokens * width)
        // Item 0 keeps every token; item 1 masks a middle run and the last 7 (padding), so some causal
        // queries see no key at all.
        let mask: [UInt8] = (0..<tokens).map { t in
            let position = t % shape.sequence
            return t / shape.sequence == 0 || (position >= 3 && position < shape.sequence - 7) ? 1 : 0
        }
        let scale = 1 / Double(shape.dim).squareRoot()
        let packed = Self.fused(q, k, v, tokens: tokens, width: width)
        for causal in [false, true] {
            let expected = naiveAttention(q: q, k: k, v: v, batch: shape.batch, sequence: shape.sequence, heads: shape.heads,
                                          dim: shape.dim, mask: mask, scale: scale, causal: causal)
            for threads in [1, 2] {
                var out = [Float](repeating: .nan, count: tokens * width)
                packed.withUnsafeBufferPointer { p in
                    multiHeadAttention(query: p.baseAddress!, key: p.baseAddress! + width, value: p.baseAddress! + 2 * width,
                                       rowStride: 3 * width, batch: shape.batch, sequence: shape.sequence,
                                       heads: shape.heads, headDimension: shape.dim, keyMask: mask, causal: causal,
                                       scale: Float(scale), output: &out, threads: threads)
                }
                #expect(normalizedSquaredError(out, expected) < 1e-12, "causal \(causal) threads \(threads)")
                let worst = zip(out, expected).map { abs($0 - $1) }.max()!
                #expect(worst < 1e-5, "causal \(causal) threads \(threads): max error \(worst)")
            }
        }
    }

    /// One query per batch item (the pooled token a CLIP tower's last layer needs) gives exactly that
    /// row of the full attention: first, last and middle positions, causal and masked, 1 and 2 threads.
    @Test(arguments: [(batch: 3, sequence: 50, heads: 4, dim: 48), (batch: 2, sequence: 77, heads: 2, dim: 64),
                      (batch: 1, sequence: 1, heads: 3, dim: 20)])
    func oneQueryPerItemEqualsItsRowOfTheFullAttention(shape: (batch: Int, sequence: Int, heads: Int, dim: Int)) {
        var random = SeededValues(seed: UInt64(shape.sequence * 7 + shape.batch))
        let width = shape.heads * shape.dim, tokens = shape.batch * shape.sequence
        let packed = Self.fused(random.array(tokens * width).map { $0 * 3 }, random.array(tokens * width).map { $0 * 3 },
                                random.array(tokens * width), tokens: tokens, width: width)
        // Item 1 pads its last 9 tokens away, as a short caption in a padded batch.
        let mask: [UInt8] = (0..<tokens).map { t in t / shape.sequence != 1 || t % shape.sequence < shape.sequence - 9 ? 1 : 0 }
        let positions = (0..<shape.batch).map { b in [0, shape.sequence - 1, max(0, shape.sequence - 10)][b % 3] }
        let scale = 1 / Float(shape.dim).squareRoot()
        for causal in [false, true] {
            var full = [Float](repeating: .nan, count: tokens * width)
            packed.withUnsafeBufferPointer { p in
                multiHeadAttention(query: p.baseAddress!, key: p.baseAddress! + width, value: p.baseAddress! + 2 * width,
                                   rowStride: 3 * width, batch: shape.batch, sequence: shape.sequence, heads: shape.heads,
                                   headDimension: shape.dim, keyMask: mask, causal: causal, scale: scale, output: &full)
            }
            for threads in [1, 2] {
                var pooled = [Float](repeating: .nan, count: shape.batch * width)
                packed.withUnsafeBufferPointer { p in
                    multiHeadAttention(query: p.baseAddress!, key: p.baseAddress! + width, value: p.baseAddress! + 2 * width,
                                       rowStride: 3 * width, batch: shape.batch, sequence: shape.sequence,
                                       heads: shape.heads, headDimension: shape.dim, keyMask: mask, causal: causal,
                                       scale: scale, queryPositions: positions, output: &pooled, threads: threads)
                }
                for b in 0..<shape.batch {
                    let row = (b * shape.sequence + positions[b]) * width
                    #expect(Array(pooled[(b * width)..<((b + 1) * width)]) == Array(full[row..<(row + width)]),
                            "item \(b) position \(positions[b]) causal \(causal) threads \(threads)")
                }
            }
        }
    }

    @Test func paddingDoesNotChangeRealTokens() {
        // One sequence of 5 alone, and the same 5 tokens padded to 9 with garbage keys/values.
        var random = SeededValues(seed: 5)
        let width = 32, real = 5, padded = 9
        let alone = random.array(real * 3 * width)
        let garbage = random.array((padded - real) * 3 * width).map { $0 * 100 }
        var single = [Float](repeating: 0, count: real * width)
        var batched = [Float](repeating: 0, count: padded * width)
        alone.withUnsafeBufferPointer { p in
            multiHeadAttention(query: p.baseAddress!, key: p.baseAddress! + width, value: p.baseAddress! + 2 * width,
                               rowStride: 3 * width, batch: 1, sequence: real, heads: 2, headDimension: 16, keyMask: nil,
                               scale: 0.25, output: &single)
        }
        let mask = [UInt8](repeating: 1, count: real) + [UInt8](repeating: 0, count: padded - real)
        (alone + garbage).withUnsafeBufferPointer { p in
            multiHeadAttention(query: p.baseAddress!, key: p.baseAddress! + width, value: p.baseAddress! + 2 * width,
                               rowStride: 3 * width, batch: 1, sequence: padded, heads: 2, headDimension: 16, keyMask: mask,
                               scale: 0.25, output: &batched)
        }
        #expect(Array(batched.prefix(real * width)) == single)
    }
}
