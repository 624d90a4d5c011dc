import Foundation
import Kernels
import Testing
@testable import Training

/// The out-of-distribution detector's scores on synthetic features where the answer is known, its
/// Mahalanobis distance against the textbook formula, and its head-file round trip (old and new formats).
@Suite struct OutOfDistributionTests {
    /// Two known classes that differ along feature 0 only (at -1 and 1, spread 0.1), around a common
    /// level of 2 (spread 0.5) along the 63 others, as image features share a common direction. Near
    /// outliers sit between the classes on feature 0 (a new class of the same domain: hardly farther
    /// from the training images than those are from each other); far ones are class-0 points shifted
    /// by 8 along feature 5 (another domain, where the head reads the same).
    struct Scene {
        var generator = SeededGenerator(seed: 21)
        let dimension = 64

        mutating func points(_ count: Int, first: Float, shift: Float = 0) -> FeatureMatrix {
            var m = FeatureMatrix(columns: dimension)
            for _ in 0..<count {
                m.append(row: (0..<dimension).map { c in
                    c == 0 ? first + 0.1 * generator.gaussian() : (c == 5 ? shift : 0) + 2 + 0.5 * generator.gaussian()
                })
            }
            return m
        }

        mutating func known(_ perClass: Int) -> (FeatureMatrix, [Int]) {
            var m = points(perClass, first: -1)
            let other = points(perClass, first: 1)
            for r in 0..<other.rows { m.append(row: other.row(r)) }
            return (m, [Int](repeating: 0, count: perClass) + [Int](repeating: 1, count: perClass))
        }

        /// A head that reads feature 0 only, as a trained one would: logits ±4·x0.
        func logits(_ m: FeatureMatrix) -> [Float] { (0..<m.rows).flatMap { r in [-4 * m.values[r * dimension], 4 * m.values[r * dimension]] } }
    }

    func auroc(_ negatives: [Float], _ positives: [Float]) -> Double {
        var above = 0.0
        for p in positives { for n in negatives { above += p > n ? 1 : p == n ? 0.5 : 0 } }
        return above / Double(positives.count * negatives.count)
    }

    @Test func confidenceCatchesNewClassesDistanceCatchesOtherDomainsTheCombinationBoth() throws {
        var scene = Scene()
        let (train, labels) = scene.known(200)
        let (validation, _) = scene.known(500)
        let (test, _) = scene.known(500)
        let near = scene.points(200, first: 0), far = scene.points(200, first: -1, shift: 8)
        let detector = try #require(OutOfDistributionDetector.fit(
            train: train, trainLabels: labels, trainLogits: scene.logits(train), classes: 2,
            validation: validation, validationLogits: scene.logits(validation)))
        #expect(detector.settings.method == "combined" && detector.settings.combine == [.relativeMahalanobis, .msp]
                && detector.settings.combination == "mean")
        #expect(detector.settings.calibration == "validation" && detector.settings.calibrationImages == 1000)
        #expect(detector.availableScores == OutOfDistributionScore.allCases)

        let inside = detector.scores(test, logits: scene.logits(test))
        let nearScores = detector.scores(near, logits: scene.logits(near))
        let farScores = detector.scores(far, logits: scene.logits(far))
        func auc(_ s: OutOfDistributionScore, _ outside: [OutOfDistributionScore: [Float]]) -> Double { auroc(inside[s]!, outside[s]!) }
        #expect(auc(.knn, nearScores) < auc(.msp, nearScores) - 0.2, "between the classes is not far from the training images")
        #expect(auc(.msp, nearScores) > 0.95 && auc(.energy, nearScores) > 0.95)
        #expect(auc(.knn, farScores) > 0.99 && auc(.classKNN, farScores) > 0.99 && auc(.mahalanobis, farScores) > 0.99,
                "\(auc(.knn, farScores)) \(auc(.classKNN, farScores)) \(auc(.mahalanobis, farScores))")
        #expect(auc(.msp, farScores) < 0.75, "the head reads feature 0 only: as confident as ever")
        #expect(auc(.combined, nearScores) > 0.95 && auc(.combined, farScores) > 0.99)

        // Each threshold flags about 5% of new in-distribution images (1,000 of them: a point or two of noise).
        for score in OutOfDistributionScore.allCases {
            let threshold = try #require(detector.threshold(of: score))
            let rate = Double(inside[score]!.filter { $0 > threshold }.count) / 1000
            let onValidation = detector.scores(validation, logits: scene.logits(validation))[score]!.filter { $0 > threshold }.count
            #expect(rate > 0.01 && rate < 0.1, "\(score): \(rate), validation \(onValidation)")
        }
        // The verdict follows the default (combined) score and its threshold.
        let defaults = detector.defaultScores(near, logits: scene.logits(near))
        #expect(defaults == nearScores[.combined]!)
        #expect(detector.settings.threshold == detector.threshold(of: .combined))
        #expect(Double(defaults.filter(detector.isUnknown).count) / 200 > 0.8)
    }

    @Test func theFalseAlarmRateSetsEveryThreshold() throws {
        var scene = Scene()
        let (train, labels) = scene.known(100)
        let (validation, _) = scene.known(100)
        var options = OutOfDistributionDetector.Options()
        options.falseAlarmRate = 0.2
        options.method = .msp
        let detector = try #require(OutOfDistributionDetector.fit(
            train: train, trainLabels: labels, trainLogits: scene.logits(train), classes: 2,
            validation: validation, validationLogits: scene.logits(validation), options: options))
        #expect(detector.settings.percentile == 80)
        let table = detector.scores(validation, logits: scene.logits(validation))
        for score in OutOfDistributionScore.allCases {
            let flagged = table[score]!.filter { $0 > detector.threshold(of: score)! }.count
            #expect(flagged <= 40 && flagged >= 38, "\(score): 20% of 200 validation images (ties aside), got \(flagged)")
        }
        #expect(detector.settings.threshold == detector.threshold(of: .msp))
        #expect(detector.defaultScores(validation, logits: scene.logits(validation)) == table[.msp]!)
    }

    @Test func withoutValidationTheTrainingImagesCalibrateLeavingEachOut() throws {
        var scene = Scene()
        let (train, labels) = scene.known(50)
        let detector = try #require(OutOfDistributionDetector.fit(
            train: train, trainLabels: labels, trainLogits: scene.logits(train), classes: 2, validation: nil, validationLogits: []))
        #expect(detector.settings.calibration == "leave-one-out" && detector.settings.calibrationImages == 100)
        // The k-NN threshold by hand: each training row's 5th nearest other row, then the 95th percentile.
        var bank = train
        OutOfDistributionDetector.normalize(&bank)
        let leaveOneOut = (0..<bank.rows).map { r -> Float in
            let distances = (0..<bank.rows).filter { $0 != r }.map { o in
                (0..<64).reduce(Float(0)) { $0 + pow(bank.values[r * 64 + $1] - bank.values[o * 64 + $1], 2) }.squareRoot()
            }.sorted()
            return distances[4]
        }.sorted()
        let threshold = try #require(detector.threshold(of: .knn))
        #expect(abs(threshold - leaveOneOut[94]) < 1e-4, "\(threshold) against \(leaveOneOut[94])")
    }

    @Test func mahalanobisMatchesTheShrunkCovarianceFormula() throws {
        // Full rank in 6 dims: the low-rank form must equal (x - m)^T ((1-a) S + a tr(S)/d I)^-1 (x - m).
        let (raw, labels) = gaussianBlobs(perClass: [20, 25], dimension: 6, separation: 2, seed: 5)
        let (queries, _) = gaussianBlobs(perClass: [3, 3], dimension: 6, separation: 3, seed: 6)
        var bank = raw, q = queries
        OutOfDistributionDetector.normalize(&bank)
        OutOfDistributionDetector.normalize(&q)
        let a: Float = 0.1
        let fitted = OutOfDistributionDetector.fitClassModel(bank: bank, labels: labels, classes: 2, rank: 6, shrinkage: a, seed: 1)
        #expect(fitted.model.basis.rows == 6)
        var settings = OutOfDistributionDetector.Settings(k: 1, percentile: 95, threshold: 0, calibration: "", calibrationImages: 0,
                                                          bankImages: bank.rows)
        settings.residualVariance = fitted.residualVariance
        let detector = OutOfDistributionDetector(settings: settings, bank: bank, classModel: fitted.model)
        let fast = detector.mahalanobis(q)

        let rows = (0..<bank.rows).map { bank.row($0).map(Double.init) }
        for r in 0..<q.rows {
            let best = textbookNearestMahalanobis(q.row(r).map(Double.init), rows: rows, labels: labels, classes: 2, shrinkage: Double(a))
            #expect(abs(Double(fast[r]) - best) < 1e-3 * max(best, 1), "row \(r): \(fast[r]) against \(best)")
        }
    }

    /// The textbook squared Mahalanobis distance to the nearest class mean under (1-a) S + a tr(S)/d I,
    /// S the covariance of `rows` around their own class mean (labels), in Double.
    func textbookNearestMahalanobis(_ query: [Double], rows: [[Double]], labels: [Int], classes: Int, shrinkage a: Double) -> Double {
        let d = query.count
        var means = [[Double]](repeating: [Double](repeating: 0, count: d), count: classes)
        for (r, row) in rows.enumerated() {
            let count = Double(labels.filter { $0 == labels[r] }.count)
            for j in 0..<d { means[labels[r]][j] += row[j] / count }
        }
        var covariance = [Double](repeating: 0, count: d * d)
        for (r, row) in rows.enumerated() {
            for i in 0..<d { for j in 0..<d {
                covariance[i * d + j] += (row[i] - means[labels[r]][i]) * (row[j] - means[labels[r]][j]) / Double(rows.count)
            } }
        }
        let trace = (0..<d).reduce(0.0) { $0 + covariance[$1 * d + $1] }
        for i in 0..<(d * d) { covariance[i] *= 1 - a }
        for i in 0..<d { covariance[i * d + i] += a * trace / Double(d) }
        return Set(labels).map { c -> Double in
            let v = (0..<d).map { query[$0] - means[c][$0] }
            var system = covariance, solution = v
            precondition(choleskySolve(&system, &solution, n: d, columns: 1))
            return zip(v, solution).reduce(0) { $0 + $1.0 * $1.1 }
        }.min()!
    }

    @Test func relativeMahalanobisIsTheNearestClassDistanceMinusTheBackgroundsOnItsOwnColumns() throws {
        // 3 + 5 features; the score reads the last 5 (first column 3), each row's 5 re-normalized on
        // their own, at full rank: it must equal the textbook class distance minus the textbook distance
        // to one Gaussian of all rows.
        let (raw, labels) = gaussianBlobs(perClass: [20, 25, 18], dimension: 8, separation: 2, seed: 15)
        let (queries, _) = gaussianBlobs(perClass: [2, 2, 2], dimension: 8, separation: 3, seed: 16)
        var bank = raw, q = queries
        OutOfDistributionDetector.normalize(&bank)
        OutOfDistributionDetector.normalize(&q)
        let fitted = OutOfDistributionDetector.fitClassModel(bank: bank, labels: labels, classes: 3, rank: 8, shrinkage: 0.1, seed: 1)
        var settings = OutOfDistributionDetector.Settings(k: 1, percentile: 95, threshold: 0, calibration: "", calibrationImages: 0,
                                                          bankImages: bank.rows)
        settings.relativeMahalanobis = .init(firstColumn: 3, rank: 5, shrinkage: 0.3)
        func fittedDetector(rank: Int) -> OutOfDistributionDetector {
            settings.relativeMahalanobis?.rank = rank
            let model = OutOfDistributionDetector.fitRelativeModel(bank: bank, labels: labels, classes: 3,
                                                                   settings: settings.relativeMahalanobis!, seed: 3)
            return OutOfDistributionDetector(settings: settings, bank: bank, classModel: fitted.model, relativeModel: model)
        }
        let detector = fittedDetector(rank: 5)
        #expect(detector.relativeModel?.classes.basis.rows == 5 && detector.relativeModel?.background.basis.rows == 5)
        let fast = try #require(detector.relativeMahalanobis(q))

        func unitTail(_ m: FeatureMatrix, _ r: Int) -> [Double] {
            let tail = m.row(r).dropFirst(3).map(Double.init)
            let norm = tail.reduce(0) { $0 + $1 * $1 }.squareRoot()
            return tail.map { $0 / norm }
        }
        let rows = (0..<bank.rows).map { unitTail(bank, $0) }
        for r in 0..<q.rows {
            let x = unitTail(q, r)
            let expected = textbookNearestMahalanobis(x, rows: rows, labels: labels, classes: 3, shrinkage: 0.3)
                - textbookNearestMahalanobis(x, rows: rows, labels: labels.map { _ in 0 }, classes: 1, shrinkage: 0.3)
            #expect(abs(Double(fast[r]) - expected) < 1e-3 * max(abs(expected), 1), "row \(r): \(fast[r]) against \(expected)")
        }
        // Truncated to 2 leading directions it is no longer the full formula, but still finite and different.
        let truncated = try #require(fittedDetector(rank: 2).relativeMahalanobis(q))
        #expect(truncated.allSatisfy(\.isFinite) && truncated != fast)
    }

    @Test func subspaceIterationFindsTheLeadingEigenvalues() throws {
        let (raw, labels) = gaussianBlobs(perClass: [60, 60], dimension: 10, separation: 1, seed: 8)
        // Stretch two directions so the leading variances stand out.
        var bank = raw
        for r in 0..<bank.rows { bank.values[r * 10 + 3] *= 5; bank.values[r * 10 + 7] *= 3 }
        let model = OutOfDistributionDetector.fitClassModel(bank: bank, labels: labels, classes: 2, rank: 2, shrinkage: 0, seed: 2).model
        // The exact within-class covariance's eigenvalues, from Jacobi on the full 10 x 10 matrix.
        var centred = bank
        for r in 0..<bank.rows { for j in 0..<10 { centred.values[r * 10 + j] -= model.means.values[labels[r] * 10 + j] } }
        var covariance = [Double](repeating: 0, count: 100)
        for r in 0..<bank.rows { for i in 0..<10 { for j in 0..<10 {
            covariance[i * 10 + j] += Double(centred.values[r * 10 + i] * centred.values[r * 10 + j]) / Double(bank.rows)
        } } }
        let exact = OutOfDistributionDetector.symmetricEigen(covariance, size: 10).values
        #expect(abs(Double(model.variances[0]) - exact[0]) < 1e-3 * exact[0])
        #expect(abs(Double(model.variances[1]) - exact[1]) < 1e-2 * exact[1])
        // The basis is orthonormal.
        let gram = multiply(model.basis, model.basis, transposeB: true)
        #expect(abs(gram.values[0] - 1) < 1e-4 && abs(gram.values[3] - 1) < 1e-4 && abs(gram.values[1]) < 1e-4)
    }

    @Test func jacobiDiagonalizesASymmetricMatrix() {
        // [[2, 1], [1, 2]]: eigenvalues 3 and 1, eigenvectors (1, 1)/√2 and (1, -1)/√2.
        let (values, vectors) = OutOfDistributionDetector.symmetricEigen([2, 1, 1, 2], size: 2)
        #expect(abs(values[0] - 3) < 1e-12 && abs(values[1] - 1) < 1e-12)
        #expect(abs(abs(vectors[0]) - 0.5.squareRoot()) < 1e-12 && abs(vectors[0] - vectors[1]) < 1e-12)
        #expect(abs(vectors[2] + vectors[3]) < 1e-12)
    }

    // MARK: Head files

    func headFile(detector: OutOfDistributionDetector?, features: Int, classes: Int) -> HeadFile {
        let architecture = HeadArchitecture(kind: .linear, inputs: features, classes: classes)
        var generator = SeededGenerator(seed: 4)
        let metadata = HeadFile.Metadata(
            labels: (0..<classes).map { "c\($0)" }, backbone: .init(id: "net@1", weightsSHA256: "ff", featureCount: features),
            preprocessing: .init(policy: .resize, inputSize: 224, testTimeFlip: true, augment: []),
            architecture: architecture, training: TrainingConfiguration(), bestEpoch: 1,
            dataset: .init(source: "data/", imagesPerClass: [1, 1], trainImages: 2, validationImages: 0, trainRows: 2, skippedFiles: 0),
            validation: nil, createdAt: "2026-01-01T00:00:00Z", headtuneVersion: "test")
        return HeadFile(metadata: metadata, head: ClassificationHead(initializing: architecture, generator: &generator),
                        standardization: Standardization(mean: [Float](repeating: 0, count: features),
                                                         inverseStd: [Float](repeating: 1, count: features)),
                        outOfDistribution: detector)
    }

    func temporaryPath(_ name: String) throws -> String {
        let directory = NSTemporaryDirectory() + "headtune-ood-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        return directory + "/" + name
    }

    @Test func theFullDetectorRoundTripsAsFormat6WithItsRelativeModel() throws {
        var scene = Scene()
        let (train, labels) = scene.known(30)
        let (validation, _) = scene.known(10)
        var options = OutOfDistributionDetector.Options()
        options.relativeMahalanobis?.firstColumn = 40
        let detector = try #require(OutOfDistributionDetector.fit(
            train: train, trainLabels: labels, trainLogits: scene.logits(train), classes: 2,
            validation: validation, validationLogits: scene.logits(validation), options: options))
        #expect(detector.availableScores == OutOfDistributionScore.allCases && detector.settings.relativeMahalanobis?.firstColumn == 40)
        #expect(detector.settings.components?.map(\.score) == OutOfDistributionScore.components + [.combined])
        let file = headFile(detector: detector, features: 64, classes: 2)
        #expect(file.metadata.formatVersion == 6)
        let fitted = try #require(detector.settings.relativeMahalanobis?.fitted)
        #expect(fitted.classRank == 24 && fitted.backgroundRank == 24, "the 24 columns from 40 on bound both ranks below 128")
        let path = try temporaryPath("full.head")
        try file.write(to: path)
        let loaded = try HeadFile.read(path: path)
        #expect(loaded.outOfDistribution == detector && loaded.metadata == file.metadata)
        let scores = try #require(loaded.outOfDistribution?.scores(validation, logits: scene.logits(validation)))
        #expect(scores == detector.scores(validation, logits: scene.logits(validation)))
        #expect(scores[.relativeMahalanobis]?.count == 20)
    }

    @Test func aFormat5DetectorHasNoRelativeScoreAndStaysFormat5() throws {
        var scene = Scene()
        let (train, labels) = scene.known(30)
        let (validation, _) = scene.known(10)
        var options = OutOfDistributionDetector.Options()
        options.relativeMahalanobis = nil
        options.combine = [.mahalanobis, .msp]
        let detector = try #require(OutOfDistributionDetector.fit(
            train: train, trainLabels: labels, trainLogits: scene.logits(train), classes: 2,
            validation: validation, validationLogits: scene.logits(validation), options: options))
        #expect(detector.relativeModel == nil && !detector.availableScores.contains(.relativeMahalanobis))
        #expect(detector.scores(validation, logits: scene.logits(validation))[.relativeMahalanobis] == nil)
        let file = headFile(detector: detector, features: 64, classes: 2)
        #expect(file.metadata.formatVersion == 5)
        let path = try temporaryPath("full.head")
        try file.write(to: path)
        let loaded = try HeadFile.read(path: path)
        #expect(loaded.outOfDistribution == detector && loaded.metadata == file.metadata)
        #expect(loaded.outOfDistribution!.scores(validation, logits: scene.logits(validation))
                == detector.scores(validation, logits: scene.logits(validation)))
    }

    @Test func aKNNOnlyDetectorStaysFormat2AndScoresAsBefore() throws {
        var scene = Scene()
        let (train, _) = scene.known(30)
        let (validation, _) = scene.known(10)
        let detector = try #require(OutOfDistributionDetector.fit(train: train, validation: validation, k: 3))
        #expect(detector.settings.components == nil && detector.classModel == nil && detector.availableScores == [.knn])
        let file = headFile(detector: detector, features: 64, classes: 2)
        #expect(file.metadata.formatVersion == 2)
        let path = try temporaryPath("old.head")
        try file.write(to: path)
        // What a build from before format 5 wrote: no format-5 keys in the detector's settings.
        let data = try Data(contentsOf: URL(fileURLWithPath: path))
        #expect(!String(decoding: data.prefix(4096), as: UTF8.self).contains("components"))
        let loaded = try #require(try HeadFile.read(path: path).outOfDistribution)
        #expect(loaded == detector && loaded.settings.score == .knn)
        let scores = try #require(loaded.scores(validation, logits: [])[.knn])
        #expect(scores.count == 20 && loaded.threshold(of: .msp) == nil && loaded.threshold(of: .knn) == loaded.settings.threshold)
        #expect(scores.filter(loaded.isUnknown).count == 1, "95th percentile of 20 validation rows: 1 above")
    }

    @Test func relativeSettingsOutsideTheFeaturesAreRefusedWithThePath() throws {
        var scene = Scene()
        let (train, labels) = scene.known(10)
        let detector = try #require(OutOfDistributionDetector.fit(
            train: train, trainLabels: labels, trainLogits: scene.logits(train), classes: 2, validation: nil, validationLogits: []))
        var outside = detector, unfitted = detector
        outside.settings.relativeMahalanobis?.firstColumn = 64
        unfitted.settings.relativeMahalanobis?.fitted = nil
        for (bad, reason) in [(outside, "relative Mahalanobis settings first column 64"), (unfitted, "unexpected tensors ood.relative.")] {
            let path = try temporaryPath("bad-relative.head")
            try headFile(detector: bad, features: 64, classes: 2).write(to: path)
            #expect {
                try HeadFile.read(path: path)
            } throws: { error in
                let message = (error as? LocalizedError)?.errorDescription ?? ""
                return message.hasPrefix(path) && message.contains(reason)
            }
        }
    }

    @Test func badClassLabelsInTheFileAreRefusedWithThePath() throws {
        var scene = Scene()
        let (train, labels) = scene.known(10)
        var detector = try #require(OutOfDistributionDetector.fit(
            train: train, trainLabels: labels, trainLogits: scene.logits(train), classes: 2, validation: nil, validationLogits: []))
        detector.classModel!.bankLabels[3] = 7
        let path = try temporaryPath("bad.head")
        try headFile(detector: detector, features: 64, classes: 2).write(to: path)
        #expect {
            try HeadFile.read(path: path)
        } throws: { error in
            let message = (error as? LocalizedError)?.errorDescription ?? ""
            return message.hasPrefix(path) && message.contains("ood.bank_labels holds 7.0, not a class index 0..<2")
        }
    }
}

