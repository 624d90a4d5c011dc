import Foundation

/// Mean over the positions whose mask is non-zero (sentence-transformers' mean pooling):
/// `out[b, :] = Σ_t mask[b, t] · x[b, t, :] / max(Σ_t mask[b, t], 1)`.
/// - input: [batch, sequence, channels]; mask: [batch, sequence], nil = all positions
/// - output: [batch, channels]
public func maskedMeanPool(
    input: UnsafePointer<Float>, mask: UnsafePointer<UInt8>?, batch: Int, sequence: Int, channels: Int,
    output: UnsafeMutablePointer<Float>
) {
    for b in 0..<batch {
        let out = output + b * channels
        out.update(repeating: 0, count: channels)
        var count = 0
        for t in 0..<sequence {
            if let mask, mask[b * sequence + t] == 0 { continue }
            count += 1
            let row = input + (b * sequence + t) * channels
            for c in 0..<channels { out[c] += row[c] }
        }
        // sentence-transformers clamps the token count at 1e-9; with no tokens the sum is zero anyway.
        let scale = 1 / Float(max(count, 1))
        for c in 0..<channels { out[c] *= scale }
    }
}

/// Divides each row by its L2 norm, `x / max(‖x‖, epsilon)` (torch.nn.functional.normalize), in place.
/// - x: [rows, columns]
public func normalizeRows(_ x: UnsafeMutablePointer<Float>, rows: Int, columns: Int, epsilon: Float = 1e-12) {
    for r in 0..<rows {
        let row = x + r * columns
        var squares: Float = 0
        for c in 0..<columns { squares += row[c] * row[c] }
        let inverse = 1 / max(squares.squareRoot(), epsilon)
        for c in 0..<columns { row[c] *= inverse }
    }
}
