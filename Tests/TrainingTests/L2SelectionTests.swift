import Foundation
import Testing
@testable import Training

@Suite struct L2SelectionTests {
    private func chosenL2(perClass: [Int], dimension: Int, separation: Float, seed: UInt64) throws -> TrainingResult {
        let (x, y) = gaussianBlobs(perClass: perClass, dimension: dimension, separation: separation, seed: seed)
        var configuration = TrainingConfiguration()
        configuration.maxEpochs = 100
        return try HeadTrainer.train(configuration: configuration, classes: perClass.count, train: x, trainLabels: y)
    }

    @Test func theChosenStrengthComesFromTheGridAndGrowsWithTheNeedForRegularization() throws {
        // Many samples, few well-separated dimensions: little regularization is needed.
        let easy = try chosenL2(perClass: [60, 60], dimension: 4, separation: 1.5, seed: 1)
        // Few samples, many dimensions that each carry a sliver of signal: strong shrinkage helps.
        let hard = try chosenL2(perClass: [12, 12], dimension: 300, separation: 0.12, seed: 2)
        let grid = TrainingConfiguration().l2Grid
        let easySelection = try #require(easy.l2Selection), hardSelection = try #require(hard.l2Selection)
        #expect(grid.contains(easySelection.chosen) && grid.contains(hardSelection.chosen))
        #expect(easy.l2 == easySelection.chosen && hard.l2 == hardSelection.chosen)
        #expect(hardSelection.chosen > easySelection.chosen)
        #expect(hardSelection.scores.map(\.l2) == grid)
        #expect(easySelection.folds == 5)
    }

    @Test func aGivenStrengthIsUsedAsIs() throws {
        let (x, y) = gaussianBlobs(perClass: [10, 10], dimension: 6, separation: 1, seed: 3)
        var configuration = TrainingConfiguration()
        configuration.l2 = 0.02
        let result = try HeadTrainer.train(configuration: configuration, classes: 2, train: x, trainLabels: y)
        #expect(result.l2 == 0.02)
        #expect(result.l2Selection == nil)
    }

    @Test func theChoiceIsReproducible() throws {
        let first = try chosenL2(perClass: [15, 9, 12], dimension: 30, separation: 0.5, seed: 4)
        let second = try chosenL2(perClass: [15, 9, 12], dimension: 30, separation: 0.5, seed: 4)
        #expect(first.l2Selection == second.l2Selection)
        #expect(first.head == second.head)
    }

    @Test func foldsAreStratifiedAndKeepAnImagesViewsTogether() throws {
        // 2 views per image; class 0 has 6 images, class 1 has 3.
        let labels = [Int](repeating: 0, count: 12) + [Int](repeating: 1, count: 6)
        let groups = (0..<18).map { $0 / 2 }
        let (folds, ofRow) = try #require(L2Selection.assignFolds(labels: labels, groups: groups, folds: 5, seed: 0))
        #expect(folds == 3)  // class 1 has only 3 images
        for image in 0..<9 { #expect(ofRow[2 * image] == ofRow[2 * image + 1]) }
        for fold in 0..<folds {
            #expect(Set(labels.indices.filter { ofRow[$0] == fold }.map { labels[$0] }) == [0, 1])
        }
        // A class with a single image cannot be cross-validated: the configured default is used.
        #expect(L2Selection.assignFolds(labels: [0, 0, 1], groups: nil, folds: 5, seed: 0) == nil)
    }

    @Test func headFilesWithoutTheNewFieldsStillLoad() throws {
        let old = #"{"head":"linear","hiddenUnits":512,"dropout":0.5,"l2":0.001,"learningRate":0.001,"weightDecay":0.01,"maxEpochs":200,"batchSize":64,"labelSmoothing":0,"classWeights":"none","patience":20,"seed":7}"#
        let configuration = try JSONDecoder().decode(TrainingConfiguration.self, from: Data(old.utf8))
        #expect(configuration.l2 == 0.001 && configuration.seed == 7)
        #expect(configuration.l2Grid == TrainingConfiguration().l2Grid && !configuration.initFromLabels)
        let roundTrip = try JSONDecoder().decode(TrainingConfiguration.self, from: JSONEncoder().encode(configuration))
        #expect(roundTrip == configuration)
    }

    @Test func aPriorHeadScoresWithItsDirectionsAndAnchorsTraining() throws {
        let (x, y) = gaussianBlobs(perClass: [20, 20, 20], dimension: 8, separation: 2, seed: 5)
        // Directions: the class means, which separate these blobs.
        var directions = FeatureMatrix(columns: 8)
        for c in 0..<3 {
            let rows = y.indices.filter { y[$0] == c }
            directions.append(row: (0..<8).map { j in rows.reduce(0) { $0 + x.values[$1 * 8 + j] } / Float(rows.count) })
        }
        let standardization = Standardization(fitting: x)
        var z = x
        standardization.apply(to: &z)
        let prior = ClassificationHead(prior: directions, standardization: standardization, fitting: z, labels: y)
        #expect(HeadTrainer.evaluate(prior, z, y).accuracy > 0.9)
        // With a very strong pull towards the prior, training stays at it (biases aside).
        var configuration = TrainingConfiguration()
        configuration.l2 = 1e4
        let anchored = try HeadTrainer.train(configuration: configuration, classes: 3, train: x, trainLabels: y, prior: directions)
        let weights = 3 * 8
        let drift = zip(anchored.head.parameters.prefix(weights), prior.parameters.prefix(weights)).map { abs($0 - $1) }.max()!
        #expect(drift < 1e-2)
    }
}
