import Testing
@testable import Kernels

@Suite struct CholeskyTests {
    @Test func solvesAPositiveDefiniteSystem() {
        // A = MᵀM + I is positive definite; check A·X == B.
        var random = SeededValues(seed: 9)
        let n = 12, columns = 3
        let m = random.array(n * n).map(Double.init)
        var a = [Double](repeating: 0, count: n * n)
        for i in 0..<n { for j in 0..<n {
            a[i * n + j] = (0..<n).reduce(0.0) { $0 + m[$1 * n + i] * m[$1 * n + j] } + (i == j ? 1 : 0)
        } }
        let b = random.array(n * columns).map(Double.init)
        var factor = a, x = b
        #expect(choleskySolve(&factor, &x, n: n, columns: columns))
        for i in 0..<n { for c in 0..<columns {
            let product = (0..<n).reduce(0.0) { $0 + a[i * n + $1] * x[$1 * columns + c] }
            #expect(abs(product - b[i * columns + c]) < 1e-9)
        } }
    }

    @Test func rejectsAnIndefiniteMatrix() {
        var a: [Double] = [1, 2, 2, 1]
        var b: [Double] = [1, 1]
        #expect(!choleskySolve(&a, &b, n: 2, columns: 1))
    }
}
