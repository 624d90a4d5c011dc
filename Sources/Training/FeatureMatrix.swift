/// Row-major feature vectors: `values[row * columns + column]`, one row per image (view).
public struct FeatureMatrix: Sendable, Equatable {
    public private(set) var rows: Int
    public let columns: Int
    public var values: [Float]

    public init(rows: Int, columns: Int, values: [Float]) {
        precondition(values.count == rows * columns, "\(values.count) values for \(rows)x\(columns)")
        self.rows = rows
        self.columns = columns
        self.values = values
    }

    public init(columns: Int) { self.init(rows: 0, columns: columns, values: []) }

    public func row(_ r: Int) -> ArraySlice<Float> { values[(r * columns)..<((r + 1) * columns)] }

    public mutating func append<C: Collection>(row: C) where C.Element == Float {
        precondition(row.count == columns, "row of \(row.count), expected \(columns)")
        values.append(contentsOf: row)
        rows += 1
    }

    /// The given rows, in the given order.
    public func selecting(_ indices: [Int]) -> FeatureMatrix {
        var result = FeatureMatrix(columns: columns)
        result.values.reserveCapacity(indices.count * columns)
        for i in indices { result.append(row: row(i)) }
        return result
    }

    /// Each row followed by zeros up to `width` columns (at least `columns`).
    public func paddingColumns(to width: Int) -> FeatureMatrix {
        precondition(width >= columns, "cannot pad \(columns) columns to \(width)")
        guard width > columns else { return self }
        var result = FeatureMatrix(columns: width)
        result.values.reserveCapacity(rows * width)
        let zeros = [Float](repeating: 0, count: width - columns)
        for r in 0..<rows { result.append(row: row(r) + zeros) }
        return result
    }
}

/// Per-feature standardization `(x - mean) * inverseStd`, fitted on the training rows and stored in
/// the head, so logistic regression sees features of equal scale (L-BFGS converges in far fewer steps
/// and one L2 strength suits every feature).
public struct Standardization: Codable, Sendable, Equatable {
    public var mean: [Float]
    public var inverseStd: [Float]

    public init(mean: [Float], inverseStd: [Float]) {
        self.mean = mean
        self.inverseStd = inverseStd
    }

    /// Mean and 1 / sqrt(variance + 1e-6) per column, accumulated in Double.
    public init(fitting matrix: FeatureMatrix) {
        let n = max(matrix.rows, 1), d = matrix.columns
        var sum = [Double](repeating: 0, count: d), squares = [Double](repeating: 0, count: d)
        matrix.values.withUnsafeBufferPointer { x in
            for r in 0..<matrix.rows {
                for c in 0..<d {
                    let v = Double(x[r * d + c])
                    sum[c] += v
                    squares[c] += v * v
                }
            }
        }
        mean = sum.map { Float($0 / Double(n)) }
        inverseStd = (0..<d).map { c in
            let m = sum[c] / Double(n)
            let variance = max(squares[c] / Double(n) - m * m, 0)
            // The epsilon keeps a constant feature (a channel ReLU6 never lets through) finite.
            return Float(1 / (variance + 1e-6).squareRoot())
        }
    }

    public func apply(to matrix: inout FeatureMatrix) {
        precondition(matrix.columns == mean.count, "standardization for \(mean.count) features, matrix has \(matrix.columns)")
        let d = matrix.columns
        matrix.values.withUnsafeMutableBufferPointer { x in
            mean.withUnsafeBufferPointer { m in
                inverseStd.withUnsafeBufferPointer { s in
                    for r in 0..<(x.count / max(d, 1)) {
                        let row = x.baseAddress! + r * d
                        for c in 0..<d { row[c] = (row[c] - m[c]) * s[c] }
                    }
                }
            }
        }
    }
}
