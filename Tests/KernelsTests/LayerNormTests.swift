import Foundation
import Testing
@testable import Kernels

/// Double-precision reference of `layerNorm`.
func naiveLayerNorm(_ x: [Float], residual: [Float]?, rows: Int, columns: Int, gamma: [Float], beta: [Float],
                    epsilon: Double) -> [Float] {
    var out = [Float](repeating: 0, count: x.count)
    for r in 0..<rows {
        let row = (0..<columns).map { Double(x[r * columns + $0]) + Double(residual?[r * columns + $0] ?? 0) }
        let mean = row.reduce(0, +) / Double(columns)
        let variance = row.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Double(columns)
        for c in 0..<columns {
            out[r * columns + c] = Float((row[c] - mean) / (variance + epsilon).squareRoot() * Double(gamma[c]) + Double(beta[c]))
        }
    }
    return out
}

@Suite struct LayerNormTests {
    @Test(arguments: [(rows: 5, columns: 384), (rows: 3, columns: 37), (rows: 1, columns: 8)])
    func matchesNaiveReference(shape: (rows: Int, columns: Int)) {
        var random = SeededValues(seed: 7)
        let x = random.array(shape.rows * shape.columns).map { $0 * 3 + 0.5 }
        let residual = random.array(x.count)
        let gamma = random.array(shape.columns), beta = random.array(shape.columns)
        for skip in [nil, residual] {
            let expected = naiveLayerNorm(x, residual: skip, rows: shape.rows, columns: shape.columns, gamma: gamma,
                                          beta: beta, epsilon: 1e-12)
            var out = [Float](repeating: .nan, count: x.count)
            if let skip {
                layerNorm(input: x, residual: skip, rows: shape.rows, columns: shape.columns, gamma: gamma, beta: beta,
                          epsilon: 1e-12, output: &out, threads: 2)
            } else {
                layerNorm(input: x, rows: shape.rows, columns: shape.columns, gamma: gamma, beta: beta,
                          epsilon: 1e-12, output: &out, threads: 2)
            }
            #expect(normalizedSquaredError(out, expected) < 1e-12)
        }
    }

    @Test func worksInPlaceAndOnConstantRows() {
        var x: [Float] = Array(repeating: 2, count: 16) + (0..<16).map(Float.init)
        let gamma = [Float](repeating: 2, count: 16), beta = [Float](repeating: 1, count: 16)
        let expected = naiveLayerNorm(x, residual: nil, rows: 2, columns: 16, gamma: gamma, beta: beta, epsilon: 1e-5)
        x.withUnsafeMutableBufferPointer { p in
            layerNorm(input: p.baseAddress!, rows: 2, columns: 16, gamma: gamma, beta: beta, epsilon: 1e-5,
                      output: p.baseAddress!)
        }
        // A constant row normalizes to beta (no division by zero thanks to epsilon).
        #expect(x.prefix(16).allSatisfy { $0 == 1 })
        #expect(zip(x, expected).allSatisfy { abs($0 - $1) < 1e-5 })
    }
}
