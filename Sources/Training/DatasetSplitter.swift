/// Stratified, seeded train/validation split: every class keeps its share in both parts.
public enum DatasetSplitter {
    /// Indices into `labels` for training and validation. Per class, the images are shuffled with a
    /// generator seeded by `seed` and the class name (so adding a class leaves the other classes'
    /// splits unchanged) and round(fraction * count) of them (at least one) go to validation.
    /// Throws `tooFewImages` when a class has fewer than 2 images (it could not be in both parts).
    public static func stratified(labels: [Int], classNames: [String], fraction: Double, seed: UInt64) throws
        -> (train: [Int], validation: [Int])
    {
        precondition(fraction > 0 && fraction < 1, "fraction \(fraction)")
        var byClass = [[Int]](repeating: [], count: classNames.count)
        for (i, label) in labels.enumerated() { byClass[label].append(i) }
        var train: [Int] = [], validation: [Int] = []
        for (label, var members) in byClass.enumerated() {
            if members.isEmpty { continue }
            guard members.count >= 2 else {
                throw TrainingError.tooFewImages(label: classNames[label], count: members.count, needed: 2)
            }
            var generator = SeededGenerator(seed: seed ^ FNV1a.hash(Array(classNames[label].utf8)))
            generator.shuffle(&members)
            let held = min(members.count - 1, max(1, Int((fraction * Double(members.count)).rounded())))
            validation += members[..<held]
            train += members[held...]
        }
        return (train.sorted(), validation.sorted())
    }
}
