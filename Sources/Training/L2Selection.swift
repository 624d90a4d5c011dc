/// The L2 strength of a linear (L-BFGS) head, chosen by stratified k-fold cross-validation on the
/// training rows: for each candidate, fit on k-1 folds and score the held-out fold; the candidate with
/// the best held-out accuracy wins (ties: lower held-out log loss). This is what scikit-learn's tuned C
/// does, so both learners get the same chance to choose their regularization.
public struct L2Selection: Sendable, Equatable {
    public struct Score: Codable, Sendable, Equatable {
        public var l2: Float
        /// Pooled over all held-out rows of all folds.
        public var accuracy: Double
        public var logLoss: Double
    }

    public var chosen: Float
    public var folds: Int
    /// One per grid value, in the grid's order.
    public var scores: [Score]

    /// Fold (0..<k) of each row: stratified by label, rows of one group (image) together, seeded.
    /// nil when some class has fewer than 2 groups (no fold could hold it out and train on it).
    /// - groups: per row its group; nil: every row is its own group
    public static func assignFolds(labels: [Int], groups: [Int]?, folds k: Int, seed: UInt64) -> (folds: Int, ofRow: [Int])? {
        let groupOfRow = groups ?? Array(labels.indices)
        precondition(groupOfRow.count == labels.count, "\(groupOfRow.count) groups for \(labels.count) rows")
        // Groups per class, in order of first appearance (the label of a group is that of its first row).
        var seen = Set<Int>(), groupsOfClass: [Int: [Int]] = [:]
        for (row, group) in groupOfRow.enumerated() where seen.insert(group).inserted {
            groupsOfClass[labels[row], default: []].append(group)
        }
        let smallest = groupsOfClass.values.map(\.count).min() ?? 0
        let used = min(k, smallest)
        guard used >= 2 else { return nil }
        var generator = SeededGenerator(seed: seed ^ 0x6C32_666F_6C64)
        var foldOfGroup: [Int: Int] = [:], next = 0
        for label in groupsOfClass.keys.sorted() {
            var members = groupsOfClass[label]!
            generator.shuffle(&members)
            for group in members {
                foldOfGroup[group] = next % used
                next += 1
            }
        }
        return (used, groupOfRow.map { foldOfGroup[$0]! })
    }

    /// Cross-validates `grid` on standardized `features`. nil when the data are too small for 2 folds.
    /// Each fold walks the grid from the strongest penalty to the weakest, starting every fit from the
    /// previous solution (a regularization path: far fewer L-BFGS iterations, same optima).
    static func crossValidate(grid: [Float], folds k: Int, seed: UInt64, architecture: HeadArchitecture,
                              features x: FeatureMatrix, labels: [Int], groups: [Int]?, rowWeights: [Float]?,
                              smoothing: Float, anchor: [Float]?, maxIterations: Int) -> L2Selection? {
        guard architecture.kind == .linear, let (used, foldOfRow) = assignFolds(labels: labels, groups: groups, folds: k, seed: seed)
        else { return nil }
        let path = grid.indices.sorted { grid[$0] > grid[$1] }
        var correct = [Double](repeating: 0, count: grid.count), loss = [Double](repeating: 0, count: grid.count)
        for fold in 0..<used {
            let fitRows = labels.indices.filter { foldOfRow[$0] != fold }
            let heldRows = labels.indices.filter { foldOfRow[$0] == fold }
            let heldX = x.selecting(heldRows), heldLabels = heldRows.map { labels[$0] }
            var parameters = anchor ?? [Float](repeating: 0, count: architecture.parameterCount)
            for g in path {
                let objective = HeadObjective(architecture: architecture, features: x.selecting(fitRows),
                                              labels: fitRows.map { labels[$0] }, rowWeights: rowWeights.map { w in fitRows.map { w[$0] } },
                                              smoothing: smoothing, l2: grid[g], anchor: anchor)
                parameters = LBFGS(maxIterations: maxIterations).minimize(
                    from: parameters, objective: { objective.evaluate($0, gradient: &$1) }, afterIteration: { _, _, _ in true })
                let score = HeadTrainer.evaluate(ClassificationHead(architecture: architecture, parameters: parameters), heldX, heldLabels)
                correct[g] += score.accuracy * Double(heldRows.count)
                loss[g] += score.loss * Double(heldRows.count)
            }
        }
        let n = Double(labels.count)
        let scores = grid.indices.map { Score(l2: grid[$0], accuracy: correct[$0] / n, logLoss: loss[$0] / n) }
        let best = scores.indices.min { a, b in
            let (sa, sb) = (scores[a], scores[b])
            if abs(sa.accuracy - sb.accuracy) > 1e-9 { return sa.accuracy > sb.accuracy }
            return sa.logLoss < sb.logLoss
        }!
        return L2Selection(chosen: grid[best], folds: used, scores: scores)
    }
}
