import Foundation
import Kernels
import Testing
@testable import Training

@Suite struct LossGradientTests {
    /// Central differences in Double-free Float arithmetic need a loose but meaningful tolerance.
    func checkGradient(kind: HeadKind, smoothing: Float, l2: Float, weighted: Bool) throws {
        try BLAS.load()
        let (x, y) = gaussianBlobs(perClass: [4, 3, 5], dimension: 6, separation: 1, seed: 7)
        let architecture = HeadArchitecture(kind: kind, inputs: 6, hidden: 5, classes: 3)
        var generator = SeededGenerator(seed: 3)
        var parameters = ClassificationHead(initializing: architecture, generator: &generator).parameters
        for i in parameters.indices { parameters[i] += 0.3 * generator.gaussian() }
        let objective = HeadObjective(architecture: architecture, features: x, labels: y,
                                      rowWeights: weighted ? y.map { [0.5, 2, 1][$0] } : nil, smoothing: smoothing, l2: l2)
        var gradient: [Float] = []
        _ = objective.evaluate(parameters, gradient: &gradient)
        var worst = 0.0
        for i in parameters.indices {
            var plus = parameters, minus = parameters
            let h: Float = 1e-2
            plus[i] += h
            minus[i] -= h
            let numeric = (objective.value(plus) - objective.value(minus)) / Double(2 * h)
            worst = max(worst, abs(numeric - Double(gradient[i])) / max(1e-2, abs(numeric) + abs(Double(gradient[i]))))
        }
        #expect(worst < 2e-2, "largest relative gradient error \(worst)")
    }

    @Test func linearGradientMatchesFiniteDifferences() throws {
        try checkGradient(kind: .linear, smoothing: 0, l2: 0, weighted: false)
        try checkGradient(kind: .linear, smoothing: 0.1, l2: 0.05, weighted: true)
    }

    @Test func mlpGradientMatchesFiniteDifferences() throws {
        try checkGradient(kind: .mlp, smoothing: 0.1, l2: 0.01, weighted: true)
    }

    @Test func crossEntropyOfUniformLogitsIsLogC() {
        let logits = [Float](repeating: 0, count: 8)
        let loss = logits.withUnsafeBufferPointer {
            CrossEntropy.loss(logits: $0.baseAddress!, rows: 2, classes: 4, labels: [1, 3], weights: nil, smoothing: 0, gradient: nil)
        }
        #expect(abs(loss - log(4.0)) < 1e-6)
    }

    @Test func balancedWeightsEqualiseClasses() {
        let weights = balancedClassWeights(labels: [0, 0, 0, 1], classes: 3)
        #expect(weights == [Float(4.0 / 6.0), 2, 0])
    }
}

@Suite struct HeadTrainerTests {
    @Test(arguments: [HeadKind.linear, .mlp])
    func linearlySeparableToyReachesHundredPercent(kind: HeadKind) throws {
        let (x, y) = gaussianBlobs(perClass: [30, 30, 30], dimension: 8, separation: 6, seed: 1)
        var configuration = TrainingConfiguration()
        configuration.head = kind
        configuration.hiddenUnits = 16
        configuration.maxEpochs = 60
        let result = try HeadTrainer.train(configuration: configuration, classes: 3, train: x, trainLabels: y)
        var standardized = x
        result.standardization.apply(to: &standardized)
        let p = result.head.probabilities(standardized)
        let predicted = (0..<x.rows).map { r in (0..<3).max { p[r * 3 + $0] < p[r * 3 + $1] }! }
        #expect(predicted == y)
    }

    @Test(arguments: [HeadKind.linear, .mlp])
    func sameSeedSameBits(kind: HeadKind) throws {
        let (x, y) = gaussianBlobs(perClass: [20, 15, 25], dimension: 10, separation: 1.5, seed: 2)
        let (vx, vy) = gaussianBlobs(perClass: [5, 5, 5], dimension: 10, separation: 1.5, seed: 2)
        var configuration = TrainingConfiguration()
        configuration.head = kind
        configuration.hiddenUnits = 12
        configuration.maxEpochs = 15
        configuration.seed = 42
        let a = try HeadTrainer.train(configuration: configuration, classes: 3, train: x, trainLabels: y, validation: vx, validationLabels: vy)
        let b = try HeadTrainer.train(configuration: configuration, classes: 3, train: x, trainLabels: y, validation: vx, validationLabels: vy)
        #expect(a.head.parameters.map(\.bitPattern) == b.head.parameters.map(\.bitPattern))
        #expect(a.history == b.history)
        if kind == .mlp {
            configuration.seed = 43
            let c = try HeadTrainer.train(configuration: configuration, classes: 3, train: x, trainLabels: y, validation: vx, validationLabels: vy)
            #expect(c.head.parameters != a.head.parameters)
        }
    }

    /// 95:5 imbalance with overlapping classes: the unweighted head mostly ignores the minority, the
    /// balanced one recovers much of it.
    @Test func balancedClassWeightsRaiseMinorityRecall() throws {
        let (x, y) = gaussianBlobs(perClass: [190, 10], dimension: 4, separation: 0.7, seed: 5)
        let (vx, vy) = gaussianBlobs(perClass: [190, 10], dimension: 4, separation: 0.7, seed: 5)
        func minorityRecall(_ weighting: ClassWeighting) throws -> Double {
            var configuration = TrainingConfiguration()
            configuration.classWeights = weighting
            configuration.patience = 0
            let result = try HeadTrainer.train(configuration: configuration, classes: 2, train: x, trainLabels: y)
            var standardized = vx
            result.standardization.apply(to: &standardized)
            let p = result.head.probabilities(standardized)
            let report = ClassificationReport(probabilities: p, truth: vy, paths: vy.map { _ in "" }, labels: ["a", "b"])
            return report.perClass[1].recall
        }
        let plain = try minorityRecall(.none), balanced = try minorityRecall(.balanced)
        #expect(balanced > plain)
        #expect(balanced >= 0.7)
    }

    @Test func earlyStoppingKeepsTheBestValidationEpoch() throws {
        let (x, y) = gaussianBlobs(perClass: [8, 8], dimension: 40, separation: 0.4, seed: 9)
        let (vx, vy) = gaussianBlobs(perClass: [30, 30], dimension: 40, separation: 0.4, seed: 10)
        var configuration = TrainingConfiguration()
        configuration.l2 = 0
        configuration.labelSmoothing = 0
        configuration.patience = 5
        let result = try HeadTrainer.train(configuration: configuration, classes: 2, train: x, trainLabels: y, validation: vx, validationLabels: vy)
        let best = result.history.min { $0.validationLoss! < $1.validationLoss! }!
        #expect(result.bestEpoch == best.epoch)
        #expect(result.stoppedEarly)
    }

    @Test func invalidConfigurationIsRefused() {
        var configuration = TrainingConfiguration()
        configuration.dropout = 1
        #expect(throws: TrainingError.invalidConfiguration("dropout must be in [0, 1)")) {
            try configuration.validate()
        }
    }
}

@Suite struct ClassificationReportTests {
    @Test func metricsOfAKnownConfusion() {
        // truth: a a a b ; predicted: a a b b (third is a confident mistake)
        let p: [Float] = [0.9, 0.1, 0.8, 0.2, 0.3, 0.7, 0.4, 0.6]
        let report = ClassificationReport(probabilities: p, truth: [0, 0, 0, 1], paths: ["1", "2", "3", "4"], labels: ["a", "b"])
        #expect(report.accuracy == 0.75)
        #expect(report.confusionMatrix == [[2, 1], [0, 1]])
        #expect(abs(report.balancedAccuracy - (2.0 / 3 + 1) / 2) < 1e-12)
        #expect(abs(report.perClass[0].precision - 1) < 1e-12 && abs(report.perClass[1].precision - 0.5) < 1e-12)
        #expect(abs(report.macroF1 - (0.8 + 2.0 / 3) / 2) < 1e-12)
        let expectedLogLoss = -(log(0.9) + log(0.8) + log(0.3) + log(0.6)) / 4
        #expect(abs(report.logLoss - expectedLogLoss) < 1e-6)
        #expect(report.misclassified == [.init(path: "3", truth: "a", predicted: "b", confidence: Double(Float(0.7)))])
        // Bins: 0.9 (right), 0.8 (right), 0.7 (wrong), 0.6 (right): |1-0.9|+|1-0.8|+|0-0.7|+|1-0.6| over 4.
        #expect(abs(report.ece - (0.1 + 0.2 + 0.7 + 0.4) / 4) < 1e-6)
    }

    @Test func jsonUsesTheDocumentedKeys() throws {
        let report = ClassificationReport(probabilities: [1, 0], truth: [0], paths: ["x"], labels: ["a", "b"])
        let object = try JSONSerialization.jsonObject(with: JSONEncoder().encode(report)) as! [String: Any]
        for key in ["accuracy", "balanced_accuracy", "macro_f1", "log_loss", "ece", "per_class", "confusion_matrix", "misclassified"] {
            #expect(object[key] != nil, "missing \(key)")
        }
    }
}
