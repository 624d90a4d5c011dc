import Foundation
import Kernels
import Testing
@testable import Training

/// The symmetric InfoNCE loss, the contrastive map fit, ASIF and Recall@K on small synthetic data.
@Suite struct ContrastiveTests {
    init() throws { try BLAS.load() }

    /// Seeded uniform values in [-1, 1).
    static func values(_ count: Int, seed: UInt64) -> [Float] {
        var generator = SeededGenerator(seed: seed)
        return (0..<count).map { _ in 2 * generator.unitFloat() - 1 }
    }

    static func unitRows(_ values: [Float], columns: Int) -> FeatureMatrix {
        var v = values
        let rows = values.count / columns
        v.withUnsafeMutableBufferPointer { normalizeRows($0.baseAddress!, rows: rows, columns: columns) }
        return FeatureMatrix(rows: values.count / columns, columns: columns, values: v)
    }

    @Test func infoNCEMatchesItsDefinition() {
        // Two images; image 0 has captions 0 and 1, image 1 has caption 2. Computed by hand in Double.
        let s: [Float] = [0.9, 0.2, -0.1,
                          0.1, 0.3, 0.8]
        let owner = [0, 0, 1], logScale: Float = 1.5
        let e = exp(Double(logScale))
        func sim(_ i: Int, _ c: Int) -> Double { Double(s[i * 3 + c]) }
        var text = 0.0
        for c in 0..<3 {
            let lse = log((0..<2).map { exp(e * sim($0, c)) }.reduce(0, +))
            text += lse - e * sim(owner[c], c)
        }
        text /= 3
        var image = 0.0
        for i in 0..<2 {
            let lse = log((0..<3).map { exp(e * sim(i, $0)) }.reduce(0, +))
            let positives = (0..<3).filter { owner[$0] == i }
            image += positives.map { lse - e * sim(i, $0) }.reduce(0, +) / Double(positives.count)
        }
        image /= 2
        let value = s.withUnsafeBufferPointer {
            InfoNCE.loss(similarities: $0.baseAddress!, images: 2, captions: 3, owner: owner, logScale: logScale,
                         similarityGradient: nil).loss
        }
        #expect(abs(value - (text + image) / 2) < 1e-5)
    }

    @Test func infoNCEGradientMatchesFiniteDifferences() {
        let images = 4, captions = 7
        let owner = [0, 0, 1, 2, 2, 2, 3]
        var s = Self.values(images * captions, seed: 11)
        let logScale: Float = 1.2
        func loss(_ s: [Float], _ logScale: Float) -> Double {
            s.withUnsafeBufferPointer {
                InfoNCE.loss(similarities: $0.baseAddress!, images: images, captions: captions, owner: owner, logScale: logScale,
                             similarityGradient: nil).loss
            }
        }
        var gradient = [Float](repeating: 0, count: s.count)
        let (_, dScale) = s.withUnsafeBufferPointer { ss in
            gradient.withUnsafeMutableBufferPointer {
                InfoNCE.loss(similarities: ss.baseAddress!, images: images, captions: captions, owner: owner, logScale: logScale,
                             similarityGradient: $0.baseAddress!)
            }
        }
        let h: Float = 1e-2
        for j in 0..<s.count {
            let saved = s[j]
            s[j] = saved + h; let up = loss(s, logScale)
            s[j] = saved - h; let down = loss(s, logScale)
            s[j] = saved
            let numeric = (up - down) / Double(2 * h)
            #expect(abs(numeric - Double(gradient[j])) < 2e-3 + 1e-2 * abs(numeric), "dS[\(j)]: \(numeric) vs \(gradient[j])")
        }
        let numeric = (loss(s, logScale + h) - loss(s, logScale - h)) / Double(2 * h)
        #expect(abs(numeric - dScale) < 2e-3 + 1e-2 * abs(numeric), "ds: \(numeric) vs \(dScale)")
        #expect(abs(dScale) > 1e-3)
    }

    /// The whole objective (map, normalization, InfoNCE) against central differences, with and without
    /// a base embedding, on a minibatch of the images.
    @Test(arguments: [false, true]) func objectiveGradientMatchesFiniteDifferences(withBase: Bool) {
        let n = 5, f = 6, d = 4
        let owner = [0, 1, 1, 2, 3, 3, 3, 4]
        let x = FeatureMatrix(rows: n, columns: f, values: Self.values(n * f, seed: 3))
        let texts = Self.unitRows(Self.values(owner.count * d, seed: 4), columns: d)
        let base = withBase ? Self.unitRows(Self.values(n * d, seed: 5), columns: d) : nil
        let objective = ContrastiveObjective(features: x, base: base, texts: texts, owner: owner)
        var p = Self.values(objective.parameterCount, seed: 6).map { $0 * 0.5 }
        p[p.count - 1] = 1.0
        let batch = [0, 2, 3, 4]
        var gradient = [Float](repeating: 0, count: p.count)
        _ = gradient.withUnsafeMutableBufferPointer { objective.evaluate(p, images: batch, gradient: $0.baseAddress!) }
        let h: Float = 1e-2
        for j in 0..<p.count {
            let saved = p[j]
            p[j] = saved + h; let up = objective.evaluate(p, images: batch, gradient: nil)
            p[j] = saved - h; let down = objective.evaluate(p, images: batch, gradient: nil)
            p[j] = saved
            let numeric = (up - down) / Double(2 * h)
            #expect(abs(numeric - Double(gradient[j])) < 3e-3 + 2e-2 * abs(numeric), "parameter \(j): \(numeric) vs \(gradient[j])")
        }
        #expect(gradient.contains { abs($0) > 1e-3 })
    }

    /// Captions are noisy views of a known linear map of the image features; the fit must find a map
    /// whose images point where the true map sends them, on images it never saw.
    @Test func fitRecoversAKnownMapOnSyntheticPairs() throws {
        let f = 10, d = 6, trainImages = 120, testImages = 40, captionsPerImage = 3
        let truth = Self.values(d * f, seed: 21)
        var generator = SeededGenerator(seed: 22)
        func pairs(_ count: Int) -> (ContrastiveMapTrainer.Pairs, FeatureMatrix) {
            let x = FeatureMatrix(rows: count, columns: f, values: (0..<(count * f)).map { _ in generator.gaussian() + 2 })
            var clean = [Float](repeating: 0, count: count * d)
            for r in 0..<count { for j in 0..<d { for k in 0..<f { clean[r * d + j] += truth[j * f + k] * (x.values[r * f + k] - 2) } } }
            var captions: [Float] = [], owner: [Int] = []
            for r in 0..<count {
                for _ in 0..<captionsPerImage {
                    captions += (0..<d).map { clean[r * d + $0] + 0.3 * generator.gaussian() }
                    owner.append(r)
                }
            }
            return (.init(features: x, base: nil, texts: Self.unitRows(captions, columns: d), owner: owner), Self.unitRows(clean, columns: d))
        }
        let (train, _) = pairs(trainImages)
        let (validation, _) = pairs(30)
        let (test, testTruth) = pairs(testImages)
        var configuration = ContrastiveMapConfiguration()
        configuration.learningRate = 1e-2
        configuration.weightDecay = 0
        configuration.batchImages = 40
        configuration.maxEpochs = 300
        let result = try ContrastiveMapTrainer.train(configuration: configuration, train: train, validation: validation)
        let mapped = result.map.embed(test.features, base: nil)
        var meanCosine: Float = 0
        for r in 0..<testImages { for j in 0..<d { meanCosine += mapped.values[r * d + j] * testTruth.values[r * d + j] / Float(testImages) } }
        #expect(meanCosine > 0.95, "mean cosine to the true map \(meanCosine)")
        // The learned temperature sharpened from CLIP's 0.07.
        #expect(result.map.logScale > configuration.initialLogScale)
        // Its held-out loss fell and early stopping kept the best epoch.
        #expect(result.bestEpoch >= 1 && result.history[result.bestEpoch - 1].validationLoss! < result.history[0].validationLoss!)
        // Same seed, same map.
        let again = try ContrastiveMapTrainer.train(configuration: configuration, train: train, validation: validation)
        #expect(again.map == result.map)
    }

    @Test func mapStartsAtItsBaseEmbedding() throws {
        // With a base the map starts at zero: one epoch of tiny steps leaves the images at their base embedding.
        let n = 6, f = 4, d = 3
        let x = FeatureMatrix(rows: n, columns: f, values: Self.values(n * f, seed: 1))
        let base = Self.unitRows(Self.values(n * d, seed: 2), columns: d)
        let texts = Self.unitRows(Self.values(n * d, seed: 3), columns: d)
        var configuration = ContrastiveMapConfiguration()
        configuration.learningRate = 1e-7
        let result = try ContrastiveMapTrainer.train(configuration: configuration, train: .init(features: x, base: base, texts: texts,
                                                                                                owner: Array(0..<n)), epochs: 1)
        let mapped = result.map.embed(x, base: base)
        #expect(zip(mapped.values, base.values).allSatisfy { abs($0 - $1) < 1e-4 })
    }

    @Test func asifWeightsTheNearestAnchorsCaptions() {
        // Anchors along three axes; captions point along the text axes they stand for.
        let images = FeatureMatrix(rows: 3, columns: 3, values: [3, 0, 0, 0, 3, 0, 0, 0, 3])
        let captions = FeatureMatrix(rows: 4, columns: 2, values: [1, 0, 1, 0, 0, 1, 0.6, 0.8])
        let anchors = ASIFAnchors(images: images, captions: captions, owner: [0, 0, 1, 2], neighbours: 1, power: 1)
        // An image like anchor 1 takes anchor 1's caption; like anchor 2, anchor 2's.
        let e = anchors.embed(FeatureMatrix(rows: 2, columns: 3, values: [0, 5, 0, 0, 0, 4]))
        #expect(abs(e.values[0]) < 1e-6 && abs(e.values[1] - 1) < 1e-6)
        #expect(abs(e.values[2] - 0.6) < 1e-6 && abs(e.values[3] - 0.8) < 1e-6)
        // With two neighbours and equal similarity the two anchors' texts are mixed.
        var two = anchors
        two.neighbours = 2
        let mixed = two.embed(FeatureMatrix(rows: 1, columns: 3, values: [1, 1, 0]))
        #expect(abs(mixed.values[0] - mixed.values[1]) < 1e-5)
    }

    @Test func recallCountsRanksInBothDirections() {
        // 3 images, 4 captions (image 0 has captions 0 and 1).
        let s: [Float] = [0.9, 0.1, 0.5, 0.0,
                          0.2, 0.8, 0.4, 0.1,
                          0.1, 0.0, 0.6, 0.7]
        let r = RetrievalRecall(similarities: s, images: 3, captions: 4, owner: [0, 0, 1, 2])
        // text->image rank: c0 -> image 0 first; c1 -> image 1 beats 0 (rank 1); c2 -> image 2 beats 1 (rank 1); c3 first.
        #expect(r.textToImage == [0.5, 1, 1])
        // image->text: image 0's best caption c0 first; image 1's c2 behind c1 (rank 1); image 2's c3 first.
        #expect(abs(r.imageToText[0] - 2.0 / 3) < 1e-12 && r.imageToText[1] == 1)
        // A constant score retrieves nothing at rank 1 (ties count against the match).
        let flat = RetrievalRecall(similarities: [Float](repeating: 0.5, count: 12), images: 3, captions: 4, owner: [0, 0, 1, 2])
        #expect(flat.textToImage[0] == 0 && flat.imageToText[0] == 0)
    }
}

/// Reading image-caption CSVs: layouts, bad rows and errors.
@Suite struct ImageCaptionPairsTests {
    func folder() throws -> String {
        let root = NSTemporaryDirectory() + "pairs-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: root + "/images", withIntermediateDirectories: true)
        for name in ["images/a.jpg", "images/b.jpg", "c.jpg"] {
            FileManager.default.createFile(atPath: root + "/" + name, contents: Data([0xFF, 0xD8]))
        }
        return root
    }

    @Test func readsRowsResolvesFoldersAndReportsBadRows() throws {
        let root = try folder()
        defer { try? FileManager.default.removeItem(atPath: root) }
        let csv = root + "/captions.csv"
        try """
            image,caption_index,caption
            a.jpg,0,A dog runs .
            a.jpg,1,"A dog, running"
            c.jpg,0,A cat .
            missing.jpg,0,Nothing here .
            b.jpg,0,
            b.jpg,1,  A bird .
            """.write(toFile: csv, atomically: true, encoding: .utf8)
        let pairs = try ImageCaptionPairs.load(csvFiles: [csv])
        #expect(pairs.images.map(\.path) == [root + "/images/a.jpg", root + "/c.jpg", root + "/images/b.jpg"])
        #expect(pairs.captions == ["A dog runs .", "A dog, running", "A cat .", "A bird ."])
        #expect(pairs.owner == [0, 0, 1, 2])
        #expect(pairs.skippedRows.count == 2)
        #expect(pairs.skippedRows[0].hasPrefix("\(csv):5: image missing.jpg not found"))
        #expect(pairs.skippedRows[1] == "\(csv):6: empty caption for b.jpg")
        #expect(pairs.images[2].firstRow == "\(csv):7")
        // Dropping an image (it would not decode) drops its captions and says why, naming its row.
        let kept = pairs.keepingImages([true, false, true], reasons: [nil, "not a JPEG or PNG", nil])
        #expect(kept.captions == ["A dog runs .", "A dog, running", "A bird ."] && kept.owner == [0, 0, 1])
        #expect(kept.skippedRows.last == "\(csv):4: \(root)/c.jpg: not a JPEG or PNG")
        // A split by image keeps every caption of an image on one side.
        let (train, held) = ImageCaptionPairs.splitImages(count: 3, heldOutFraction: 0.34, seed: 1)
        #expect(Set(train + held) == [0, 1, 2] && held.count == 1)
        let heldPairs = pairs.selectingImages(held)
        #expect(heldPairs.owner.allSatisfy { $0 == 0 } && heldPairs.count == pairs.owner.filter { $0 == held[0] }.count)
    }

    @Test func aFileWithoutImageAndCaptionColumnsIsAnError() throws {
        let root = try folder()
        defer { try? FileManager.default.removeItem(atPath: root) }
        let csv = root + "/wrong.csv"
        try "path,label\na.jpg,dog\n".write(toFile: csv, atomically: true, encoding: .utf8)
        #expect(throws: TrainingError.invalidManifest(path: csv, line: 1, reason: "expected a header row with columns image,caption")) {
            try ImageCaptionPairs.load(csvFiles: [csv])
        }
        #expect(throws: TrainingError.self) { try ImageCaptionPairs.load(csvFiles: [root + "/absent.csv"]) }
    }
}
