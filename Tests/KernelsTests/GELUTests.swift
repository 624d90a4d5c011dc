import Foundation
import Testing
@testable import Kernels

@Suite struct GELUTests {
    @Test func matchesErfDefinition() {
        // Known values of x·Φ(x).
        #expect(gelu(0) == 0)
        #expect(abs(gelu(1) - 0.8413447) < 1e-6)
        #expect(abs(gelu(-1) - -0.1586553) < 1e-6)
        #expect(abs(gelu(3) - 2.9959502) < 1e-6)
        #expect(gelu(-10) == 0 || abs(gelu(-10)) < 1e-20)
    }

    @Test func biasGELUMatchesNaiveReference() {
        var random = SeededValues(seed: 11)
        let rows = 7, columns = 45
        // Spread over [-12, 12]: both tails, where erf saturates and exp underflows.
        let x = random.array(rows * columns).map { $0 * 12 }
        let bias = random.array(columns)
        var out = x
        biasGELU(&out, rows: rows, columns: columns, bias: bias, threads: 2)
        let expected = (0..<(rows * columns)).map { i -> Float in
            let v = Double(x[i]) + Double(bias[i % columns])
            return Float(0.5 * v * (1 + erf(v / 2.0.squareRoot())))
        }
        #expect(normalizedSquaredError(out, expected) < 1e-12)
        let worst = zip(out, expected).map { abs($0 - $1) / max(1, abs($1)) }.max()!
        #expect(worst < 1e-6, "max error \(worst)")
    }

    @Test func quickGELUMatchesSigmoidDefinition() {
        var random = SeededValues(seed: 12)
        let rows = 5, columns = 37
        // [-60, 60]: exp(-1.702 x) overflows a naive float formula below about -52; tails and zero.
        var x = random.array(rows * columns).map { $0 * 60 }
        x[0] = 0
        x[1] = -0.0
        x[2] = 1e-30
        let expected = x.map { v -> Float in Float(Double(v) / (1 + exp(-1.702 * Double(v)))) }
        var out = x
        quickGELU(&out, rows: rows, columns: columns, threads: 2)
        let worst = zip(out, expected).map { abs($0 - $1) / max(1, abs($1)) }.max()!
        #expect(worst < 1e-6, "max error \(worst)")
        #expect(out.allSatisfy { $0.isFinite })
    }
}
