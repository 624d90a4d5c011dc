import Kernels

/// Flags images that look like none of a head's training images: k-nearest-neighbour distance in
/// the head's feature space, after Sun et al. 2022 ("Out-of-Distribution Detection with Deep Nearest
/// Neighbors", ICML; reference implementation github.com/deeplearning-wisc/knn-ood). Features are
/// standardized with the head's own standardization, then L2-normalized; the score is the Euclidean
/// distance to the k-th nearest training image (0...2, larger = farther). An image is unknown when its
/// score is above the threshold, set at a percentile of the scores of held-out in-distribution images.
///
/// Chosen over Mahalanobis: with 1280 features and a few hundred images the covariance needs heavy
/// shrinkage and a 1280x1280 factorization, while k-NN needs no fitting and no distribution assumption.
public struct OutOfDistributionDetector: Sendable, Equatable {
    public struct Settings: Codable, Sendable, Equatable {
        public var method = "knn"
        public var k: Int
        /// Percentile of the calibration scores used as threshold (95: about 5% of in-distribution
        /// images are flagged).
        public var percentile: Double
        public var threshold: Float
        /// "validation" (held-out images) or "leave-one-out" (training images against the others,
        /// when there is no validation split).
        public var calibration: String
        public var calibrationImages: Int
        public var bankImages: Int
    }

    public var settings: Settings
    /// [bankImages, features] unit-length standardized features of training images.
    public var bank: FeatureMatrix

    public static let defaultK = 5
    public static let defaultPercentile = 95.0
    /// Caps the bank (and the head file: 4096 x 1280 floats = 20 MB); larger training sets keep an
    /// evenly spaced subset.
    public static let maximumBank = 4096

    public init(settings: Settings, bank: FeatureMatrix) {
        self.settings = settings
        self.bank = bank
    }

    /// Fits on standardized features of training images (one row per image, not per augmented view:
    /// near-duplicate rows would make every distance small) and calibrates on held-out ones.
    /// Returns nil with fewer than 2 training images.
    public static func fit(train: FeatureMatrix, validation: FeatureMatrix?, k: Int = defaultK,
                           percentile: Double = defaultPercentile) -> OutOfDistributionDetector? {
        guard train.rows >= 2 else { return nil }
        let keep = train.rows <= maximumBank ? Array(0..<train.rows) : (0..<maximumBank).map { $0 * train.rows / maximumBank }
        var bank = train.selecting(keep)
        normalize(&bank)
        let calibrationScores: [Float]
        let calibration: String
        var settings = Settings(k: k, percentile: percentile, threshold: 0, calibration: "", calibrationImages: 0,
                                bankImages: bank.rows)
        if let validation, validation.rows > 0 {
            calibration = "validation"
            settings.k = min(k, bank.rows)
            calibrationScores = OutOfDistributionDetector(settings: settings, bank: bank).scores(validation)
        } else {
            // Each bank image is its own nearest neighbour: skip it by taking the (k+1)-th.
            calibration = "leave-one-out"
            settings.k = min(k, bank.rows - 1)
            calibrationScores = distances(queries: bank, bank: bank, rank: settings.k + 1)
        }
        settings.calibration = calibration
        settings.calibrationImages = calibrationScores.count
        settings.threshold = percentileValue(calibrationScores, percentile)
        return OutOfDistributionDetector(settings: settings, bank: bank)
    }

    /// Scores [rows] for standardized features [rows, features].
    public func scores(_ standardized: FeatureMatrix) -> [Float] {
        var queries = standardized
        Self.normalize(&queries)
        return Self.distances(queries: queries, bank: bank, rank: settings.k)
    }

    /// Whether `score` marks an unknown image.
    public func isUnknown(_ score: Float) -> Bool { score > settings.threshold }

    /// Per query row, the distance to its `rank`-th nearest bank row (rows are unit length, so
    /// |q - b| = sqrt(2 - 2 q.b)).
    static func distances(queries: FeatureMatrix, bank: FeatureMatrix, rank: Int) -> [Float] {
        let n = bank.rows, rank = max(1, min(rank, n))
        guard queries.rows > 0, n > 0 else { return [] }
        var similarities = [Float](repeating: 0, count: queries.rows * n)
        queries.values.withUnsafeBufferPointer { q in
            bank.values.withUnsafeBufferPointer { b in
                similarities.withUnsafeMutableBufferPointer { s in
                    // [queries, n] = Q [queries, d] B^T
                    BLAS.sgemm(transposeB: true, m: queries.rows, n: n, k: bank.columns, a: q.baseAddress!, lda: bank.columns,
                               b: b.baseAddress!, ldb: bank.columns, c: s.baseAddress!, ldc: n)
                }
            }
        }
        return (0..<queries.rows).map { r in
            // The rank-th largest similarity, kept in a small descending list.
            var best: [Float] = []
            best.reserveCapacity(rank + 1)
            for j in 0..<n {
                let s = similarities[r * n + j]
                if best.count == rank, s <= best[rank - 1] { continue }
                let position = best.firstIndex { s > $0 } ?? best.count
                best.insert(s, at: position)
                if best.count > rank { best.removeLast() }
            }
            return max(0, 2 - 2 * best[rank - 1]).squareRoot()
        }
    }

    static func normalize(_ matrix: inout FeatureMatrix) {
        let rows = matrix.rows, columns = matrix.columns
        guard rows > 0 else { return }
        matrix.values.withUnsafeMutableBufferPointer { normalizeRows($0.baseAddress!, rows: rows, columns: columns) }
    }

    /// Nearest-rank percentile.
    static func percentileValue(_ values: [Float], _ percentile: Double) -> Float {
        guard !values.isEmpty else { return .infinity }
        let sorted = values.sorted()
        let rank = Int((percentile / 100 * Double(sorted.count)).rounded(.up))
        return sorted[min(max(rank, 1), sorted.count) - 1]
    }
}
