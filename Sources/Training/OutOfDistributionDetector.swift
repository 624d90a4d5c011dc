import Foundation
import Kernels

/// The ways an image's "unknownness" is scored; larger always means more out of distribution.
///
/// No single score wins both kinds of outlier (OpenOOD v1.5, Zhang et al. 2023): distances in feature
/// space catch images from another domain (an X-ray given to a car head), the head's own confidence
/// catches new classes of the same domain (a car model it was never trained on).
public enum OutOfDistributionScore: String, CaseIterable, Codable, Sendable {
    /// Distance to the k-th nearest training image (Sun et al. 2022, "Out-of-Distribution Detection
    /// with Deep Nearest Neighbors"; github.com/deeplearning-wisc/knn-ood), 0...2.
    case knn
    /// The same distance, to the training images of the predicted class only.
    case classKNN = "class-knn"
    /// Squared Mahalanobis distance to the nearest class mean under one shared covariance (Lee et al.
    /// 2018), shrunk towards the identity and kept to its leading directions plus an isotropic rest.
    case mahalanobis
    /// The nearest class's squared Mahalanobis distance minus the distance to one Gaussian fitted to
    /// all training images, on the encoder's stage features where the head has them (Ren et al. 2021,
    /// "A Simple Fix to Mahalanobis Distance for Improving Near-OOD Detection"): directions in which
    /// every image varies, known class or not, stop counting, and what is left tells a new class apart.
    case relativeMahalanobis = "relative-mahalanobis"
    /// Maximum softmax probability (Hendrycks & Gimpel 2017), as -log(max p): 0 for a certain head.
    case msp
    /// Energy, -T·logsumexp(logits / T) (Liu et al. 2020).
    case energy
    /// Several of the above, each put on the scale of its validation scores, combined by max or mean.
    case combined

    /// The scores a combination can use.
    public static let components: [OutOfDistributionScore] = [.knn, .classKNN, .mahalanobis, .relativeMahalanobis, .msp, .energy]
}

/// Flags images that look like none of a head's training images. Features are the head's
/// standardized features, L2-normalized for the distance scores; the head's logits feed `msp` and
/// `energy`. Every score's threshold is a percentile of its scores on held-out in-distribution
/// images (the validation split), so each flags a stated share of images like the training ones
/// (5% by default); `settings.method` says which score gives a record its `unknown` and `ood_score`.
///
/// Heads from before format 5 hold the k-NN detector alone (`settings.components == nil`); they keep
/// scoring and flagging exactly as before.
public struct OutOfDistributionDetector: Sendable, Equatable {
    /// How one score is put on a common scale and thresholded.
    public struct Calibration: Codable, Sendable, Equatable {
        public var score: OutOfDistributionScore
        /// Median of the calibration scores.
        public var median: Float
        /// Percentile value minus median: the combination divides by it, so 1 is the own threshold.
        public var scale: Float
        /// The percentile value: above it, this score alone flags an image.
        public var threshold: Float
    }

    public struct Settings: Codable, Sendable, Equatable {
        /// The score behind `unknown` and `ood_score` (a raw value of `OutOfDistributionScore`).
        public var method = "knn"
        public var k: Int
        /// Percentile of the calibration scores used as threshold (95: about 5% of in-distribution
        /// images are flagged).
        public var percentile: Double
        /// The threshold of `method`'s score.
        public var threshold: Float
        /// "validation" (held-out images) or "leave-one-out" (training images against the others,
        /// when there is no validation split).
        public var calibration: String
        public var calibrationImages: Int
        public var bankImages: Int
        /// Format 5: every score's calibration (absent: a k-NN-only detector).
        public var components: [Calibration]? = nil
        /// Format 5: the scores `combined` joins, and how ("max" or "mean" of the calibrated scores).
        public var combine: [OutOfDistributionScore]? = nil
        public var combination: String? = nil
        /// Format 5: energy temperature (the head has no temperature of its own: 1).
        public var energyTemperature: Float? = nil
        /// Format 5: Mahalanobis leading directions, shrinkage towards the identity, and the variance
        /// left for every other direction (after shrinkage).
        public var mahalanobisRank: Int? = nil
        public var mahalanobisShrinkage: Float? = nil
        public var residualVariance: Float? = nil
        /// Format 6: the relative Mahalanobis score's settings (absent: a detector without that score).
        public var relativeMahalanobis: RelativeMahalanobisSettings? = nil

        public var score: OutOfDistributionScore { OutOfDistributionScore(rawValue: method) ?? .knn }
    }

    /// Which features the relative Mahalanobis score reads and how its two Gaussians are fitted.
    public struct RelativeMahalanobisSettings: Codable, Sendable, Equatable {
        /// The first feature column it reads (the stage features of `head+stages`; 0: all of them); the
        /// columns from here to the end are L2-normalized on their own.
        public var firstColumn: Int
        /// Leading directions kept of each covariance (the rest share one variance).
        public var rank: Int
        /// Shrinkage of both covariances towards the identity.
        public var shrinkage: Float
        /// What fitting found (set by `fit`; the head file's `ood.relative.*` tensors have these ranks).
        public var fitted: Fitted? = nil

        public struct Fitted: Codable, Sendable, Equatable {
            /// Leading directions kept: at most `rank`, fewer when the bank has fewer images.
            public var classRank: Int
            public var backgroundRank: Int
            /// The variance every other direction gets (after shrinkage).
            public var classResidualVariance: Float
            public var backgroundResidualVariance: Float
        }

        public init(firstColumn: Int, rank: Int, shrinkage: Float) {
            self.firstColumn = firstColumn
            self.rank = rank
            self.shrinkage = shrinkage
        }
    }

    /// The two Gaussians behind the relative Mahalanobis score, on the unit-length columns
    /// `firstColumn...` of the bank (stored as the head file's `ood.relative.*` tensors, so reading a
    /// head fits nothing).
    public struct RelativeMahalanobisModel: Sendable, Equatable {
        /// Class means and the within-class covariance (`bankLabels`: the bank's labels).
        public var classes: ClassModel
        public var classResidualVariance: Float
        /// One class: the mean and covariance of all bank rows (`bankLabels`: all 0).
        public var background: ClassModel
        public var backgroundResidualVariance: Float

        public init(classes: ClassModel, classResidualVariance: Float, background: ClassModel, backgroundResidualVariance: Float) {
            self.classes = classes
            self.classResidualVariance = classResidualVariance
            self.background = background
            self.backgroundResidualVariance = backgroundResidualVariance
        }
    }

    /// What the class-conditional scores need beside the bank (format 5).
    public struct ClassModel: Sendable, Equatable {
        /// [bankImages] class of each bank row.
        public var bankLabels: [Int]
        /// [classes, features] mean of each class's unit-length bank rows (zeros for a class without rows).
        public var means: FeatureMatrix
        /// [rank, features] orthonormal leading directions of the within-class covariance.
        public var basis: FeatureMatrix
        /// [rank] shrunk variances along `basis`.
        public var variances: [Float]

        public init(bankLabels: [Int], means: FeatureMatrix, basis: FeatureMatrix, variances: [Float]) {
            self.bankLabels = bankLabels
            self.means = means
            self.basis = basis
            self.variances = variances
        }
    }

    /// How `fit` builds a detector.
    public struct Options: Sendable, Equatable {
        public var k = OutOfDistributionDetector.defaultK
        /// Share of in-distribution images each threshold flags (0.05: the 95th percentile).
        public var falseAlarmRate = 0.05
        public var method = OutOfDistributionDetector.defaultMethod
        public var combine = OutOfDistributionDetector.defaultCombine
        public var combination = OutOfDistributionDetector.defaultCombination
        public var mahalanobisRank = 64
        public var mahalanobisShrinkage: Float = 0.1
        /// The relative Mahalanobis score's first column (`RelativeMahalanobisSettings.firstColumn`),
        /// rank and shrinkage; nil: a detector without that score.
        public var relativeMahalanobis: RelativeMahalanobisSettings? = RelativeMahalanobisSettings(firstColumn: 0, rank: 128, shrinkage: 0.5)
        public var seed: UInt64 = 0

        public init() {}
    }

    public var settings: Settings
    /// [bankImages, features] unit-length standardized features of training images.
    public var bank: FeatureMatrix
    public var classModel: ClassModel?
    /// Format 6: what the relative Mahalanobis score needs (nil: a detector without it).
    public var relativeModel: RelativeMahalanobisModel?

    public static let defaultK = 5
    public static let defaultPercentile = 95.0
    public static let defaultMethod = OutOfDistributionScore.combined
    public static let defaultCombine: [OutOfDistributionScore] = [.relativeMahalanobis, .msp]
    public static let defaultCombination = "mean"
    public static let combinations = ["max", "mean"]
    /// Caps the bank (and the head file: 4096 x 2064 floats = 34 MB); larger training sets keep an
    /// evenly spaced subset.
    public static let maximumBank = 4096

    public init(settings: Settings, bank: FeatureMatrix, classModel: ClassModel? = nil, relativeModel: RelativeMahalanobisModel? = nil) {
        self.settings = settings
        self.bank = bank
        self.classModel = classModel
        self.relativeModel = relativeModel
    }

    /// The scores this detector computes: k-NN alone for heads from before format 5, no relative
    /// Mahalanobis for those from before format 6.
    public var availableScores: [OutOfDistributionScore] {
        guard settings.components != nil else { return [.knn] }
        return OutOfDistributionScore.allCases.filter { $0 != .relativeMahalanobis || relativeModel != nil }
    }

    /// The threshold of one score (nil when this detector lacks it).
    public func threshold(of score: OutOfDistributionScore) -> Float? {
        guard let components = settings.components else { return score == .knn ? settings.threshold : nil }
        if score == settings.score { return settings.threshold }
        return components.first { $0.score == score }?.threshold
    }

    // MARK: Fitting

    /// A k-NN-only detector (the one heads before format 5 hold): fitted on standardized features of
    /// training images (one row per image, not per augmented view: near-duplicate rows would make every
    /// distance small) and calibrated on held-out ones. Returns nil with fewer than 2 training images.
    public static func fit(train: FeatureMatrix, validation: FeatureMatrix?, k: Int = defaultK,
                           percentile: Double = defaultPercentile) -> OutOfDistributionDetector? {
        guard train.rows >= 2 else { return nil }
        var bank = train.selecting(bankRows(train.rows))
        normalize(&bank)
        var settings = Settings(k: k, percentile: percentile, threshold: 0, calibration: "", calibrationImages: 0, bankImages: bank.rows)
        let calibrationScores: [Float]
        if let validation, validation.rows > 0 {
            settings.calibration = "validation"
            settings.k = min(k, bank.rows)
            calibrationScores = OutOfDistributionDetector(settings: settings, bank: bank).scores(validation, logits: [])[.knn]!
        } else {
            settings.calibration = "leave-one-out"
            settings.k = min(k, bank.rows - 1)
            calibrationScores = nearestDistances(queries: bank, bank: bank, k: settings.k, leaveOneOut: true).global
        }
        settings.calibrationImages = calibrationScores.count
        settings.threshold = percentileValue(calibrationScores, percentile)
        return OutOfDistributionDetector(settings: settings, bank: bank)
    }

    /// The full detector (format 5): every score, each calibrated on the validation images, the
    /// combination calibrated on the same images (in-distribution images only: nothing here sees an
    /// outlier). Without validation images, the training images calibrate (leave-one-out for the
    /// distances; the confidence scores are then optimistic, training images being fitted).
    /// - train: [images, features] standardized; trainLabels: [images]; trainLogits: [images, classes]
    /// - validation / validationLogits: the same for held-out images (nil or empty: none)
    public static func fit(train: FeatureMatrix, trainLabels: [Int], trainLogits: [Float], classes: Int,
                           validation: FeatureMatrix?, validationLogits: [Float], options: Options = Options())
        -> OutOfDistributionDetector?
    {
        guard train.rows >= 2, trainLabels.count == train.rows, trainLogits.count == train.rows * classes else { return nil }
        let keep = bankRows(train.rows)
        var bank = train.selecting(keep)
        normalize(&bank)
        let labels = keep.map { trainLabels[$0] }
        let classModel = fitClassModel(bank: bank, labels: labels, classes: classes, rank: options.mahalanobisRank,
                                       shrinkage: options.mahalanobisShrinkage, seed: options.seed)
        let percentile = 100 * (1 - options.falseAlarmRate)
        var settings = Settings(method: options.method.rawValue, k: options.k, percentile: percentile, threshold: 0,
                                calibration: "", calibrationImages: 0, bankImages: bank.rows)
        settings.combine = options.combine
        settings.combination = options.combination
        settings.energyTemperature = 1
        settings.mahalanobisRank = classModel.model.basis.rows
        settings.mahalanobisShrinkage = options.mahalanobisShrinkage
        settings.residualVariance = classModel.residualVariance
        var relativeModel: RelativeMahalanobisModel?
        if let requested = options.relativeMahalanobis {
            var relative = RelativeMahalanobisSettings(firstColumn: requested.firstColumn < bank.columns ? requested.firstColumn : 0,
                                                       rank: requested.rank, shrinkage: requested.shrinkage)
            let model = fitRelativeModel(bank: bank, labels: labels, classes: classes, settings: relative, seed: options.seed)
            relative.fitted = .init(classRank: model.classes.basis.rows, backgroundRank: model.background.basis.rows,
                                    classResidualVariance: model.classResidualVariance,
                                    backgroundResidualVariance: model.backgroundResidualVariance)
            settings.relativeMahalanobis = relative
            relativeModel = model
        }
        settings.components = []
        var detector = OutOfDistributionDetector(settings: settings, bank: bank, classModel: classModel.model, relativeModel: relativeModel)
        let table: [OutOfDistributionScore: [Float]]
        if let validation, validation.rows > 0 {
            detector.settings.calibration = "validation"
            detector.settings.k = min(options.k, bank.rows)
            var rows = validation
            normalize(&rows)
            table = detector.componentScores(rows, logits: validationLogits, leaveOneOut: false)
        } else {
            detector.settings.calibration = "leave-one-out"
            detector.settings.k = min(options.k, bank.rows - 1)
            var rows = train
            normalize(&rows)
            table = detector.componentScores(rows, logits: trainLogits, leaveOneOut: true)
        }
        detector.settings.calibrationImages = table[.knn]!.count
        detector.settings.components = OutOfDistributionScore.components.filter { table[$0] != nil }.map { score in
            let values = table[score]!
            let median = percentileValue(values, 50), threshold = percentileValue(values, percentile)
            return Calibration(score: score, median: median, scale: max(threshold - median, 1e-6 * max(abs(median), 1)),
                               threshold: threshold)
        }
        let combined = detector.combined(table)
        detector.settings.components!.append(Calibration(score: .combined, median: percentileValue(combined, 50), scale: 1,
                                                         threshold: percentileValue(combined, percentile)))
        detector.settings.threshold = detector.settings.components!.first { $0.score == options.method }!.threshold
        return detector
    }

    /// Evenly spaced rows when the training set is larger than the bank cap.
    static func bankRows(_ count: Int) -> [Int] {
        count <= maximumBank ? Array(0..<count) : (0..<maximumBank).map { $0 * count / maximumBank }
    }

    // MARK: Scoring

    /// Every available score [rows] for standardized features [rows, features] and the head's logits
    /// [rows, classes] of the same rows (unused by a k-NN-only detector).
    public func scores(_ standardized: FeatureMatrix, logits: [Float]) -> [OutOfDistributionScore: [Float]] {
        var queries = standardized
        Self.normalize(&queries)
        guard settings.components != nil else {
            return [.knn: Self.nearestDistances(queries: queries, bank: bank, k: settings.k, leaveOneOut: false).global]
        }
        var table = componentScores(queries, logits: logits, leaveOneOut: false)
        table[.combined] = combined(table)
        return table
    }

    /// The score behind `unknown` and `ood_score`.
    public func defaultScores(_ standardized: FeatureMatrix, logits: [Float]) -> [Float] {
        scores(standardized, logits: logits)[settings.score] ?? []
    }

    /// Whether `score` (of `method`) marks an unknown image.
    public func isUnknown(_ score: Float) -> Bool { score > settings.threshold }

    /// The five component scores for unit-length rows (`leaveOneOut`: the rows are the bank itself).
    func componentScores(_ queries: FeatureMatrix, logits: [Float], leaveOneOut: Bool) -> [OutOfDistributionScore: [Float]] {
        let classes = classModel!.means.rows
        precondition(logits.count == queries.rows * classes, "\(logits.count) logits for \(queries.rows) rows of \(classes) classes")
        let predicted = (0..<queries.rows).map { r in
            (0..<classes).max { logits[r * classes + $0] < logits[r * classes + $1] } ?? 0
        }
        let distances = Self.nearestDistances(queries: queries, bank: bank, k: settings.k, leaveOneOut: leaveOneOut,
                                              bankLabels: classModel!.bankLabels, predicted: predicted)
        let temperature = settings.energyTemperature ?? 1
        var msp = [Float](), energy = [Float]()
        for r in 0..<queries.rows {
            let z = logits[(r * classes)..<((r + 1) * classes)]
            let topIndex = z.indices.max { z[$0] < z[$1] } ?? z.startIndex
            let top = z[topIndex]
            // -log(max softmax) = log(1 + sum over the other classes of exp(z - max z)): log1p keeps
            // confident images apart (log of 1 + 1e-9 in Float is 0 for all of them).
            msp.append(log1p(z.indices.reduce(Float(0)) { $1 == topIndex ? $0 : $0 + exp(z[$1] - top) }))
            energy.append(-top - temperature * log(z.reduce(Float(0)) { $0 + exp(($1 - top) / temperature) }))
        }
        var table: [OutOfDistributionScore: [Float]] = [.knn: distances.global, .classKNN: distances.ofClass,
                                                        .mahalanobis: mahalanobis(queries), .msp: msp, .energy: energy]
        if let relative = relativeMahalanobis(queries) { table[.relativeMahalanobis] = relative }
        return table
    }

    /// Each component on the scale of its calibration ((score - median) / (threshold - median): 0 at
    /// the median, 1 at its own threshold), then the max or mean over `combine`.
    func combined(_ table: [OutOfDistributionScore: [Float]]) -> [Float] {
        let parts = (settings.combine ?? Self.defaultCombine).compactMap { score -> [Float]? in
            guard let values = table[score], let c = settings.components?.first(where: { $0.score == score }) else { return nil }
            return values.map { ($0 - c.median) / c.scale }
        }
        guard let first = parts.first else { return table[.knn] ?? [] }
        let useMean = settings.combination == "mean"
        return first.indices.map { r in
            let values = parts.map { $0[r] }
            return useMean ? values.reduce(0, +) / Float(values.count) : values.max()!
        }
    }

    /// Per unit-length row, min over classes of the squared Mahalanobis distance to the class mean:
    /// sum_i (v_i.(x - m))² / var_i over the leading directions, plus the rest's squared length over
    /// the residual variance.
    func mahalanobis(_ queries: FeatureMatrix) -> [Float] {
        guard let model = classModel, queries.rows > 0 else { return [] }
        return Self.nearestSquaredMahalanobis(queries, model: model, residualVariance: settings.residualVariance ?? 1)
    }

    /// Per unit-length row, the nearest class's squared Mahalanobis distance minus the background's,
    /// on the relative model's columns (nil for a detector without the score).
    func relativeMahalanobis(_ queries: FeatureMatrix) -> [Float]? {
        guard let model = relativeModel, let first = settings.relativeMahalanobis?.firstColumn else { return nil }
        guard queries.rows > 0 else { return [] }
        let columns = Self.unitColumns(queries, from: first)
        let nearest = Self.nearestSquaredMahalanobis(columns, model: model.classes, residualVariance: model.classResidualVariance)
        let background = Self.nearestSquaredMahalanobis(columns, model: model.background, residualVariance: model.backgroundResidualVariance)
        return zip(nearest, background).map { $0 - $1 }
    }

    /// Columns `first...` of every row, each row L2-normalized on its own.
    static func unitColumns(_ matrix: FeatureMatrix, from first: Int) -> FeatureMatrix {
        guard first > 0 else { return matrix }
        let width = matrix.columns - first
        var values = [Float]()
        values.reserveCapacity(matrix.rows * width)
        for r in 0..<matrix.rows { values += matrix.values[(r * matrix.columns + first)..<((r + 1) * matrix.columns)] }
        var result = FeatureMatrix(rows: matrix.rows, columns: width, values: values)
        normalize(&result)
        return result
    }

    static func nearestSquaredMahalanobis(_ queries: FeatureMatrix, model: ClassModel, residualVariance: Float) -> [Float] {
        let residual = max(residualVariance, 1e-12)
        let present = (0..<model.means.rows).filter { c in model.bankLabels.contains(c) }
        let dots = multiply(queries, model.means, transposeB: true)          // [rows, classes] x.m
        let queryProjections = multiply(queries, model.basis, transposeB: true)  // [rows, rank] V x
        let meanProjections = multiply(model.means, model.basis, transposeB: true)  // [classes, rank] V m
        let rank = model.basis.rows, classes = model.means.rows
        let meanNorms = (0..<classes).map { c in model.means.row(c).reduce(Float(0)) { $0 + $1 * $1 } }
        return (0..<queries.rows).map { r in
            let queryNorm = queries.row(r).reduce(Float(0)) { $0 + $1 * $1 }
            var best = Float.infinity
            for c in present {
                let squared = max(queryNorm - 2 * dots.values[r * classes + c] + meanNorms[c], 0)
                var inBasis: Float = 0, weighted: Float = 0
                for i in 0..<rank {
                    let p = queryProjections.values[r * rank + i] - meanProjections.values[c * rank + i]
                    inBasis += p * p
                    weighted += p * p / model.variances[i]
                }
                best = min(best, weighted + max(squared - inBasis, 0) / residual)
            }
            return best
        }
    }

    /// Per query row, the distance to its k-th nearest bank row (rows are unit length, so
    /// |q - b| = sqrt(2 - 2 q.b)), and, with bank labels, to its k-th nearest row of its predicted
    /// class (fewer rows: the farthest). `leaveOneOut`: query r is bank row r, which is skipped.
    static func nearestDistances(queries: FeatureMatrix, bank: FeatureMatrix, k: Int, leaveOneOut: Bool,
                                 bankLabels: [Int]? = nil, predicted: [Int] = []) -> (global: [Float], ofClass: [Float]) {
        let n = bank.rows
        guard queries.rows > 0, n > 0 else { return ([], []) }
        // Bounded memory: similarities for a block of queries at a time ([block, n]).
        let block = 256
        var global: [Float] = [], ofClass: [Float] = []
        var similarities = [Float](repeating: 0, count: min(block, queries.rows) * n)
        for start in stride(from: 0, to: queries.rows, by: block) {
            let rows = min(block, queries.rows - start)
            queries.values.withUnsafeBufferPointer { q in
                bank.values.withUnsafeBufferPointer { b in
                    similarities.withUnsafeMutableBufferPointer { s in
                        // [rows, n] = Q [rows, d] B^T
                        BLAS.sgemm(transposeB: true, m: rows, n: n, k: bank.columns, a: q.baseAddress! + start * bank.columns,
                                   lda: bank.columns, b: b.baseAddress!, ldb: bank.columns, c: s.baseAddress!, ldc: n)
                    }
                }
            }
            for local in 0..<rows {
                let r = start + local
                let skip = leaveOneOut ? r : -1
                let offset = local * n
                global.append(distance(kthLargest(similarities, offset: offset, count: n, rank: k, skip: skip)))
                if let bankLabels {
                    let label = predicted[r]
                    let similarity = kthLargest(similarities, offset: offset, count: n, rank: k, skip: skip) { bankLabels[$0] == label }
                    ofClass.append(distance(similarity))
                }
            }
        }
        return (global, ofClass)
    }

    private static func distance(_ similarity: Float?) -> Float { similarity.map { max(0, 2 - 2 * $0).squareRoot() } ?? 2 }

    /// The rank-th largest of `values[offset ..< offset + count]` among the admitted indices (the
    /// smallest admitted when fewer), kept in a small descending list; nil when none is admitted.
    private static func kthLargest(_ values: [Float], offset: Int, count: Int, rank: Int, skip: Int,
                                   admit: (Int) -> Bool = { _ in true }) -> Float? {
        let rank = max(1, rank)
        var best: [Float] = []
        best.reserveCapacity(rank + 1)
        for j in 0..<count where j != skip && admit(j) {
            let s = values[offset + j]
            if best.count == rank, s <= best[rank - 1] { continue }
            let position = best.firstIndex { s > $0 } ?? best.count
            best.insert(s, at: position)
            if best.count > rank { best.removeLast() }
        }
        return best.last
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

// MARK: - The class model behind the Mahalanobis score

extension OutOfDistributionDetector {
    /// The relative Mahalanobis score's class Gaussians and background Gaussian, both fitted as
    /// `fitClassModel` fits the Mahalanobis score's, on the bank's columns `settings.firstColumn...`.
    static func fitRelativeModel(bank: FeatureMatrix, labels: [Int], classes: Int, settings: RelativeMahalanobisSettings,
                                 seed: UInt64) -> RelativeMahalanobisModel
    {
        let seed = seed ^ 0x5245_4C41
        let columns = unitColumns(bank, from: settings.firstColumn)
        let perClass = fitClassModel(bank: columns, labels: labels, classes: classes, rank: settings.rank,
                                     shrinkage: settings.shrinkage, seed: seed)
        let background = fitClassModel(bank: columns, labels: [Int](repeating: 0, count: columns.rows), classes: 1,
                                       rank: settings.rank, shrinkage: settings.shrinkage, seed: seed)
        return RelativeMahalanobisModel(classes: perClass.model, classResidualVariance: perClass.residualVariance,
                                        background: background.model, backgroundResidualVariance: background.residualVariance)
    }

    /// Class means of the unit-length bank rows and the shared within-class covariance
    /// S = (1/n) sum (x - m_label)(x - m_label)^T, shrunk as (1 - a) S + a (tr S / d) I (Ledoit & Wolf's
    /// target; with a few hundred images in 2,064 dimensions S alone is singular). Its `rank` leading
    /// directions come from subspace iteration (seeded start, GEMMs only: no d x d matrix is formed); the
    /// other directions share the remaining variance.
    static func fitClassModel(bank: FeatureMatrix, labels: [Int], classes: Int, rank: Int, shrinkage: Float, seed: UInt64)
        -> (model: ClassModel, residualVariance: Float)
    {
        let n = bank.rows, d = bank.columns
        var means = FeatureMatrix(rows: classes, columns: d, values: [Float](repeating: 0, count: classes * d))
        var counts = [Int](repeating: 0, count: classes)
        for (r, label) in labels.enumerated() {
            counts[label] += 1
            for j in 0..<d { means.values[label * d + j] += bank.values[r * d + j] }
        }
        for c in 0..<classes where counts[c] > 0 {
            for j in 0..<d { means.values[c * d + j] /= Float(counts[c]) }
        }
        var centred = bank
        for (r, label) in labels.enumerated() {
            for j in 0..<d { centred.values[r * d + j] -= means.values[label * d + j] }
        }
        let trace = Double(centred.values.reduce(Float(0)) { $0 + $1 * $1 }) / Double(n)
        let isotropic = trace / Double(d)
        let rank = max(0, min(rank, n - counts.filter { $0 > 0 }.count, d))
        var basis = FeatureMatrix(rows: 0, columns: d, values: [])
        var variances: [Double] = []
        if rank > 0 {
            var generator = SeededGenerator(seed: seed ^ 0x4D41_4841)
            var omega = FeatureMatrix(rows: rank, columns: d, values: (0..<(rank * d)).map { _ in
                Float(Double(generator.next() >> 11) / Double(1 << 53)) - 0.5
            })
            orthonormalizeRows(&omega)
            for _ in 0..<6 {
                let projected = multiply(centred, omega, transposeB: true)            // [n, rank]
                omega = multiply(projected, centred, transposeA: true)                // [rank, d] = (X W^T)^T X
                orthonormalizeRows(&omega)
            }
            let projected = multiply(centred, omega, transposeB: true)                // [n, rank]
            let small = multiply(projected, projected, transposeA: true)              // [rank, rank] n·W S W^T
            let (values, vectors) = symmetricEigen(small.values.map { Double($0) / Double(n) }, size: rank)
            // Rows of the basis: eigenvectors expressed in feature space.
            let rotation = FeatureMatrix(rows: rank, columns: rank, values: vectors.map(Float.init))
            basis = multiply(rotation, omega)
            variances = values
        }
        let leftover = max(trace - variances.reduce(0, +), 0) / Double(max(d - rank, 1))
        let a = Double(shrinkage)
        let shrunk = variances.map { Float(max((1 - a) * max($0, 0) + a * isotropic, 1e-12)) }
        let residual = Float(max((1 - a) * leftover + a * isotropic, 1e-12))
        return (ClassModel(bankLabels: labels, means: means, basis: basis, variances: shrunk), residual)
    }

    /// Modified Gram-Schmidt over the rows, in Double; a row that collapses becomes zero.
    static func orthonormalizeRows(_ matrix: inout FeatureMatrix) {
        let d = matrix.columns
        var rows = (0..<matrix.rows).map { matrix.row($0).map(Double.init) }
        for i in rows.indices {
            for j in 0..<i {
                let dot = zip(rows[i], rows[j]).reduce(0) { $0 + $1.0 * $1.1 }
                for t in 0..<d { rows[i][t] -= dot * rows[j][t] }
            }
            let norm = rows[i].reduce(0) { $0 + $1 * $1 }.squareRoot()
            rows[i] = norm > 1e-12 ? rows[i].map { $0 / norm } : [Double](repeating: 0, count: d)
        }
        matrix = FeatureMatrix(rows: rows.count, columns: d, values: rows.flatMap { $0.map(Float.init) })
    }

    /// Eigenvalues (descending) and eigenvectors (row i belongs to value i) of a symmetric
    /// [size, size] matrix, by cyclic Jacobi rotations (Golub & Van Loan, 8.5).
    static func symmetricEigen(_ matrix: [Double], size: Int) -> (values: [Double], vectors: [Double]) {
        var a = matrix
        var v = [Double](repeating: 0, count: size * size)
        for i in 0..<size { v[i * size + i] = 1 }
        for _ in 0..<50 {
            var off = 0.0, diagonal = 0.0
            for p in 0..<size {
                diagonal += a[p * size + p] * a[p * size + p]
                for q in (p + 1)..<size { off += a[p * size + q] * a[p * size + q] }
            }
            if off <= 1e-24 * diagonal { break }
            for p in 0..<size {
                for q in (p + 1)..<size where a[p * size + q] != 0 {
                    let apq = a[p * size + q]
                    let theta = (a[q * size + q] - a[p * size + p]) / (2 * apq)
                    let t = (theta >= 0 ? 1 : -1) / (abs(theta) + (theta * theta + 1).squareRoot())
                    let c = 1 / (t * t + 1).squareRoot(), s = t * c
                    for k in 0..<size {
                        let akp = a[k * size + p], akq = a[k * size + q]
                        a[k * size + p] = c * akp - s * akq
                        a[k * size + q] = s * akp + c * akq
                    }
                    for k in 0..<size {
                        let apk = a[p * size + k], aqk = a[q * size + k]
                        a[p * size + k] = c * apk - s * aqk
                        a[q * size + k] = s * apk + c * aqk
                    }
                    for k in 0..<size {
                        let vpk = v[p * size + k], vqk = v[q * size + k]
                        v[p * size + k] = c * vpk - s * vqk
                        v[q * size + k] = s * vpk + c * vqk
                    }
                }
            }
        }
        let order = (0..<size).sorted { a[$0 * size + $0] > a[$1 * size + $1] }
        return (order.map { a[$0 * size + $0] }, order.flatMap { i in v[(i * size)..<((i + 1) * size)] })
    }
}

/// op(A) op(B) for row-major matrices (`transposeA`: A is [k, m]; `transposeB`: B is [n, k]).
func multiply(_ a: FeatureMatrix, _ b: FeatureMatrix, transposeA: Bool = false, transposeB: Bool = false) -> FeatureMatrix {
    let m = transposeA ? a.columns : a.rows, k = transposeA ? a.rows : a.columns
    let n = transposeB ? b.rows : b.columns
    precondition(k == (transposeB ? b.columns : b.rows), "inner dimensions \(k) and \(transposeB ? b.columns : b.rows)")
    var c = [Float](repeating: 0, count: m * n)
    if m > 0, n > 0, k > 0 {
        a.values.withUnsafeBufferPointer { pa in
            b.values.withUnsafeBufferPointer { pb in
                c.withUnsafeMutableBufferPointer { pc in
                    BLAS.sgemm(transposeA: transposeA, transposeB: transposeB, m: m, n: n, k: k, a: pa.baseAddress!, lda: a.columns,
                               b: pb.baseAddress!, ldb: b.columns, c: pc.baseAddress!, ldc: n)
                }
            }
        }
    }
    return FeatureMatrix(rows: m, columns: n, values: c)
}
