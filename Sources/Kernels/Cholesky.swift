/// Solves `A · X = B` for a symmetric positive-definite A by Cholesky factorization (A = L·Lᵀ), in double
/// precision: the normal equations of a ridge regression, `(XᵀX + λI) W = XᵀY`.
/// - a: [n, n] row-major (only the lower triangle is read); overwritten by L
/// - b: [n, columns] row-major; overwritten by X
/// - returns: false when A is not positive definite (a pivot <= 0), leaving a and b partly overwritten
public func choleskySolve(_ a: inout [Double], _ b: inout [Double], n: Int, columns: Int) -> Bool {
    precondition(a.count == n * n && b.count == n * columns, "choleskySolve: shapes do not match n = \(n)")
    for j in 0..<n {
        var pivot = a[j * n + j]
        for k in 0..<j { pivot -= a[j * n + k] * a[j * n + k] }
        guard pivot > 0 else { return false }
        let diagonal = pivot.squareRoot()
        a[j * n + j] = diagonal
        for i in (j + 1)..<max(j + 1, n) {
            var s = a[i * n + j]
            for k in 0..<j { s -= a[i * n + k] * a[j * n + k] }
            a[i * n + j] = s / diagonal
        }
    }
    // L · Z = B (forward), then Lᵀ · X = Z (backward), one column block at a time.
    for i in 0..<n {
        for k in 0..<i {
            let l = a[i * n + k]
            for c in 0..<columns { b[i * columns + c] -= l * b[k * columns + c] }
        }
        let inverse = 1 / a[i * n + i]
        for c in 0..<columns { b[i * columns + c] *= inverse }
    }
    for i in stride(from: n - 1, through: 0, by: -1) {
        for k in (i + 1)..<max(i + 1, n) {
            let l = a[k * n + i]
            for c in 0..<columns { b[i * columns + c] -= l * b[k * columns + c] }
        }
        let inverse = 1 / a[i * n + i]
        for c in 0..<columns { b[i * columns + c] *= inverse }
    }
    return true
}
