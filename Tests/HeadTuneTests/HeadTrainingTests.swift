import Foundation
import Imaging
import Testing
import TestSupport
import Training
@testable import HeadTune

/// Training end to end on four real photos (plus junk) with the real backbone: small enough for a
/// debug build, real enough to exercise decoding, views, the cache, the head file and prediction.
@Suite(.serialized) final class HeadTrainingPipelineTests {
    let backbone: ImageEncoder
    let root: String

    init() throws {
        backbone = try ImageEncoder.load(weightsDirectory: try Golden.asset("weights/efficientnet-lite0.safetensors", fetchWith: "make weights")
                .deletingLastPathComponent())
        root = NSTemporaryDirectory() + "headtune-train-\(UUID().uuidString)"
        let layout = ["animal/chelsea.png": "samples/chelsea.png", "animal/astronaut.png": "samples/astronaut.png",
                      "object/coffee.png": "samples/coffee.png", "object/rocket.jpg": "samples/rocket.jpg"]
        for (target, source) in layout {
            try FileManager.default.createDirectory(atPath: root + "/" + (target as NSString).deletingLastPathComponent,
                                                    withIntermediateDirectories: true)
            try FileManager.default.copyItem(atPath: try Golden.asset(source, fetchWith: "make samples").path, toPath: root + "/" + target)
        }
        // What real folders contain besides images: a corrupt image, an empty one, notes, Finder files.
        try Data("<html>not a photo".utf8).write(to: URL(fileURLWithPath: root + "/object/broken.jpg"))
        FileManager.default.createFile(atPath: root + "/animal/empty.png", contents: Data())
        try Data("notes".utf8).write(to: URL(fileURLWithPath: root + "/animal/README.txt"))
        try Data([0]).write(to: URL(fileURLWithPath: root + "/animal/.DS_Store"))
    }

    deinit { try? FileManager.default.removeItem(atPath: root) }

    @Test func corruptFilesAreSkippedCacheHitsOnRerunAndTheHeadRoundTrips() throws {
        let cache = try FeatureCache(path: root + "/cache.sqlite")
        let extractor = FeatureExtractor(encoder: backbone, cache: cache, batchSize: 4, threads: 2)
        var request = HeadTrainingRequest(data: root)
        request.validationSplit = 0
        request.augment = [.flip]
        request.testTimeFlip = false
        var skipped: [String] = []
        var events = HeadTrainingEvents()
        events.skipped = { path, error in skipped.append(path + " | " + ((error as? LocalizedError)?.errorDescription ?? "")) }

        let first = try HeadTraining.run(request, encoder: backbone, extractor: extractor, events: events)
        #expect(skipped.count == 2)
        #expect(skipped.contains { $0.hasPrefix(root + "/object/broken.jpg") && $0.contains("3C 68 74 6D") })
        #expect(skipped.contains { $0.hasPrefix(root + "/animal/empty.png") })
        #expect(first.statistics.trainCounts == [2, 2])
        #expect(first.statistics.extracted == 8)  // 4 images x (plain + mirrored)
        #expect(first.data.train.rows == 8 && first.data.trainImages == [0, 1, 2, 3, 0, 1, 2, 3])
        #expect(first.headFile.metadata.dataset.skippedFiles == 2)

        skipped = []
        let second = try HeadTraining.run(request, encoder: backbone, extractor: extractor, events: events)
        #expect(second.statistics.cacheHits == 8 && second.statistics.extracted == 0)
        #expect(second.headFile.head == first.headFile.head)  // same features, same seed: same head

        let headPath = root + "/pets.head"
        try first.headFile.write(to: headPath)

        // The model card of that head: file and hash, data per class with an example of each, curves.
        var epochs: [EpochRecord] = []
        var recording = events
        recording.epoch = { epochs.append($0) }
        let recorded = try HeadTraining.run(request, encoder: backbone, extractor: extractor, events: recording)
        #expect(!epochs.isEmpty)
        let card = try ModelCard(outcome: recorded, epochs: epochs, headPath: headPath)
        #expect(card.headFile == "pets.head")
        let sha256sum = Process(), pipe = Pipe()
        sha256sum.executableURL = URL(fileURLWithPath: "/usr/bin/sha256sum")
        sha256sum.arguments = [headPath]
        sha256sum.standardOutput = pipe
        try sha256sum.run()
        sha256sum.waitUntilExit()
        #expect(card.headSHA256 == String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self).prefix(64).description)
        #expect(card.classes.map(\.label) == ["animal", "object"] && card.classes.map(\.train) == [2, 2])
        #expect(card.classes[0].example?.hasPrefix(root + "/animal/") == true)
        #expect(card.classes[1].example?.hasPrefix(root + "/object/") == true)
        #expect(card.epochs.count == epochs.count && card.unknownFlag == nil)  // no validation images to score
        #expect(card.charts().map(\.name) == ["loss.svg", "accuracy.svg"] + (card.l2Curve.isEmpty ? [] : ["l2.svg"]))
        #expect(card.charts()[0].svg.contains("<polyline"))
        let json = try JSONSerialization.jsonObject(with: JSONEncoder().encode(card)) as? [String: Any]
        let keys = Set(json.map { Array($0.keys) } ?? [])
        #expect(keys.isSuperset(of: ["head_file", "head_sha256", "settings", "epochs", "classes", "l2_curve", "best_epoch"]))
        let predictor = try HeadPredictor.load(path: headPath, encoder: backbone)
        let images = ["animal/chelsea.png", "object/coffee.png", "object/broken.jpg"].map { root + "/" + $0 }
        let results = try predictor.predict(paths: images, extractor: FeatureExtractor(encoder: backbone, cache: nil, threads: 2))
        let top = results.map { result in (try? result.get()).map { p in p.indices.max { p[$0] < p[$1] }! } }
        #expect(top == [0, 1, nil])
        let report = try HeadEvaluation.run(predictor: predictor, data: root, extractor: extractor)
        #expect(report.accuracy == 1 && report.count == 4)
    }

    @Test func aHeadFromOtherWeightsIsRefused() throws {
        let cache = try FeatureCache(path: root + "/cache.sqlite")
        var request = HeadTrainingRequest(data: root)
        request.validationSplit = 0
        let outcome = try HeadTraining.run(request, encoder: backbone,
                                           extractor: FeatureExtractor(encoder: backbone, cache: cache, threads: 2))
        let other = backbone.withWeightsSHA256("0123456789abcdef")
        #expect(throws: TrainingError.self) { try HeadPredictor(head: outcome.headFile, path: "pets.head", encoder: other) }
        // A head whose width is not its feature set's on this backbone is refused too.
        var mislabelled = outcome.headFile
        #expect(mislabelled.metadata.backbone.featureSet == .headAndStages, "the default")
        mislabelled.metadata.backbone.features = .head
        #expect(throws: TrainingError.self) { try HeadPredictor(head: mislabelled, path: "pets.head", encoder: backbone) }
    }

    @Test func headAndStagesRowsExtendTheHeadFeaturesAndAreCachedApart() throws {
        let cache = try FeatureCache(path: root + "/stages.sqlite")
        let extractor = FeatureExtractor(encoder: backbone, cache: cache, batchSize: 2, threads: 2)
        let paths = ["animal/chelsea.png", "object/coffee.png", "object/rocket.jpg"].map { root + "/" + $0 }
        let requests = paths.map { FeatureRequest(path: $0, view: ImageView(policy: .resize)) }
        let head = try extractor.extract(requests, featureSet: .head).results.map { try $0.get() }

        let stages = try extractor.extract(requests, featureSet: .headAndStages)
        #expect(stages.cacheHits == 0 && stages.extracted == 3)  // the cached head rows are not answers
        let rows = try stages.results.map { try $0.get() }
        #expect(rows.map(\.count) == [2064, 2064, 2064])
        // Same batches (2 + 1 images), same arithmetic: the first 1280 values are the head features, bit for bit.
        #expect(rows.map { Array($0.prefix(1280)) } == head)
        // The other 784 are the network's stage-pooled output for the same batches.
        for batch in [[0, 1], [2]] {
            let expected = try stagePooled(paths: batch.map { paths[$0] })
            #expect(batch.flatMap { Array(rows[$0].suffix(784)) } == expected)
        }
        #expect(rows[0].suffix(784) != rows[1].suffix(784))

        // Each set is found again under its own key.
        let again = try extractor.extract(requests, featureSet: .headAndStages)
        #expect(again.cacheHits == 3 && again.extracted == 0)
        #expect(try again.results.map { try $0.get() } == rows)
        let headAgain = try extractor.extract(requests, featureSet: .head)
        #expect(headAgain.cacheHits == 3 && headAgain.extracted == 0)
        #expect(try headAgain.results.map { try $0.get() } == head)
    }

    /// [paths.count, 784] stage-pooled features of one batch of resized images, straight from an encoder session.
    func stagePooled(paths: [String]) throws -> [Float] {
        let floats = backbone.inputFloats
        var input = [Float](repeating: 0, count: paths.count * floats)
        try input.withUnsafeMutableBufferPointer { buffer in
            for (i, path) in paths.enumerated() {
                try backbone.prepare(.file(path: path), views: [ImageView(policy: .resize)], into: buffer.baseAddress! + i * floats)
            }
        }
        let session = backbone.makeSession(threads: 2)
        return session.encode(input, count: paths.count, outputs: [.stages]).flatMap { $0[.stages]! }
    }

    /// A head on all four sample images (no validation split) without a cache.
    func trainWithoutValidation(on featureSet: FeatureSet) throws -> HeadTrainingOutcome {
        var request = HeadTrainingRequest(data: root)
        request.validationSplit = 0
        request.featureSet = featureSet
        return try HeadTraining.run(request, encoder: backbone, extractor: FeatureExtractor(encoder: backbone, cache: nil, threads: 2))
    }

    @Test func aHeadOnHeadAndStagesRecordsItAndEveryPathExtractsIt() throws {
        let outcome = try trainWithoutValidation(on: .headAndStages)
        let metadata = outcome.headFile.metadata
        #expect(metadata.backbone.featureSet == .headAndStages && metadata.backbone.featureCount == 2064)
        #expect(outcome.headFile.head.architecture.inputs == 2064 && outcome.data.train.columns == 2064)
        // The out-of-distribution bank holds the same features the head reads.
        #expect(outcome.headFile.outOfDistribution?.bank.columns == 2064)

        let headPath = root + "/stages.head"
        try outcome.headFile.write(to: headPath)
        let predictor = try HeadPredictor.load(path: headPath, encoder: backbone)
        #expect(predictor.featureSet == .headAndStages)
        let images = ["animal/chelsea.png", "object/coffee.png"].map { root + "/" + $0 }
        let probabilities = try predictor.predict(paths: images, extractor: FeatureExtractor(encoder: backbone, cache: nil, threads: 2))
            .map { try $0.get() }
        #expect(probabilities.map { p in p.indices.max { p[$0] < p[$1] }! } == [0, 1])

        // classify streams through BatchRunner rather than the extractor: same features, same answer.
        var classifier = BatchClassifier(encoder: backbone, classifier: .head(predictor), topK: 2)
        classifier.includeEmbedding = true
        var records: [ClassificationRecord] = []
        try classifier.run(paths: images) { records.append($0) }
        for (record, expected) in zip(records, probabilities) {
            for prediction in record.predictions ?? [] { #expect(abs(prediction.score - expected[prediction.index]) < 1e-5) }
            #expect(record.embedding?.count == 1280)  // the embedding stays the pooled head features
        }
        #expect(records.allSatisfy { $0.unknown != nil })
    }

    @Test func aHeadFileFromBeforeFeatureSetsStillPredicts() throws {
        let outcome = try trainWithoutValidation(on: .head)
        #expect(outcome.headFile.metadata.backbone.featureSet == .head && outcome.data.train.columns == 1280)
        var old = outcome.headFile
        old.metadata.backbone.features = nil
        // Such heads held the k-NN detector alone (format 5 came later).
        var bank = outcome.data.train
        old.standardization.apply(to: &bank)
        old = HeadFile(metadata: old.metadata, head: old.head, standardization: old.standardization,
                       outOfDistribution: OutOfDistributionDetector.fit(train: bank, validation: nil))
        try old.write(to: root + "/old.head")
        let predictor = try HeadPredictor.load(path: root + "/old.head", encoder: backbone)
        #expect(predictor.featureSet == .head && predictor.head.metadata.formatVersion == 2)
        let report = try HeadEvaluation.run(predictor: predictor, data: root,
                                            extractor: FeatureExtractor(encoder: backbone, cache: nil, threads: 2))
        #expect(report.accuracy == 1 && report.count == 4)
    }

    /// A folder of out-of-scope images: uniform noise (nothing like a photo), and a broken file.
    func outOfScopeFolder(images: Int) throws -> String {
        let folder = root + "-outside"
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        var generator = SeededGenerator(seed: 9)
        for i in 0..<images {
            let noise = RGBImage(width: 96, height: 96, pixels: (0..<(96 * 96 * 3)).map { _ in UInt8(generator.next() & 0xFF) })
            try Data(PNGEncoder.encode(noise)).write(to: URL(fileURLWithPath: folder + "/noise\(i).png"))
        }
        try Data("<html>".utf8).write(to: URL(fileURLWithPath: folder + "/broken.jpg"))
        return folder
    }

    @Test func evaluateMeasuresTheFlagAgainstAFolderOfOutOfScopeImages() throws {
        let outcome = try trainWithoutValidation(on: .head)
        let outside = try outOfScopeFolder(images: 3)
        defer { try? FileManager.default.removeItem(atPath: outside) }
        try outcome.headFile.write(to: root + "/ood.head")
        let predictor = try HeadPredictor.load(path: root + "/ood.head", encoder: backbone)
        let extractor = FeatureExtractor(encoder: backbone, cache: nil, threads: 2)
        var skipped: [String] = []
        let result = try HeadEvaluation.evaluate(predictor: predictor, data: root, outOfDistribution: outside, extractor: extractor,
                                                 skipped: { path, _ in skipped.append(path) })
        #expect(Set(skipped) == [root + "/animal/empty.png", root + "/object/broken.jpg", outside + "/broken.jpg"])
        #expect(result.report.count == 4)
        let ood = try #require(result.outOfDistribution)
        #expect(ood.inDistributionImages == 4 && ood.outOfDistributionImages == 3 && ood.calibratedFalseAlarmRate == 0.05)
        #expect(ood.rows.map(\.score) == OutOfDistributionScore.allCases.map(\.rawValue))
        #expect(ood.rows.filter(\.isDefault).map(\.score) == ["combined"])
        // Every figure follows from the per-image scores and the head's thresholds.
        let detector = try #require(predictor.head.outOfDistribution)
        #expect(result.imageScores.count == 7 && result.imageScores.filter(\.outOfScope).count == 3)
        for row in ood.rows {
            let score = try #require(OutOfDistributionScore(rawValue: row.score))
            let threshold = try #require(detector.threshold(of: score))
            let inside = result.imageScores.filter { !$0.outOfScope }.map { $0.scores[score]! }
            let outsideScores = result.imageScores.filter(\.outOfScope).map { $0.scores[score]! }
            #expect(row.threshold == threshold)
            #expect(row.falseAlarmRate == Double(inside.filter { $0 > threshold }.count) / 4)
            #expect(row.catchRate == Double(outsideScores.filter { $0 > threshold }.count) / 3)
            #expect(row.auroc == areaUnderROC(negatives: inside, positives: outsideScores))
        }
        #expect(ood.text().contains("combined *") && ood.text().contains("4 evaluation images against 3 in \(outside)"))

        // A head with the k-NN detector alone (from before format 5) reports that score only.
        var bank = outcome.data.train
        outcome.headFile.standardization.apply(to: &bank)
        let old = HeadFile(metadata: outcome.headFile.metadata, head: outcome.headFile.head, standardization: outcome.headFile.standardization,
                           outOfDistribution: OutOfDistributionDetector.fit(train: bank, validation: nil))
        try old.write(to: root + "/old-ood.head")
        let oldResult = try HeadEvaluation.evaluate(predictor: try HeadPredictor.load(path: root + "/old-ood.head", encoder: backbone),
                                                    data: root, outOfDistribution: outside, extractor: extractor)
        #expect(oldResult.outOfDistribution?.rows.map(\.score) == ["knn"] && oldResult.outOfDistribution?.rows[0].isDefault == true)

        // A folder without images is refused by name.
        let empty = outside + "/empty"
        try FileManager.default.createDirectory(atPath: empty, withIntermediateDirectories: true)
        #expect {
            try HeadEvaluation.evaluate(predictor: predictor, data: root, outOfDistribution: empty, extractor: extractor)
        } throws: { ($0 as? LocalizedError)?.errorDescription == "\(empty): no images (.jpg, .jpeg, .png) to score" }
    }

    @Test func classifyRecordsCarryEveryScoreWhenAsked() throws {
        let outcome = try trainWithoutValidation(on: .head)
        try outcome.headFile.write(to: root + "/scores.head")
        let predictor = try HeadPredictor.load(path: root + "/scores.head", encoder: backbone)
        var job = BatchClassifier(encoder: backbone, classifier: .head(predictor), topK: 1)
        job.batchSize = 2
        var plain: [ClassificationRecord] = []
        try job.run(paths: [root + "/animal/chelsea.png"]) { plain.append($0) }
        #expect(plain[0].oodScores == nil && plain[0].oodScore != nil, "only when asked for")
        job.includeOutOfDistributionScores = true
        var records: [ClassificationRecord] = []
        try job.run(paths: [root + "/animal/chelsea.png", root + "/object/coffee.png"]) { records.append($0) }
        for record in records {
            let scores = try #require(record.oodScores)
            #expect(scores.map(\.name) == OutOfDistributionScore.allCases.map(\.rawValue))
            // The record's own score is the default (combined) one, and its verdict that score's.
            #expect(scores.first { $0.name == "combined" }?.score == record.oodScore)
            #expect(record.unknown == (record.oodScore! > predictor.head.outOfDistribution!.settings.threshold))
            #expect(record.json.serialized().contains(#""ood_scores": {"knn": "#))
        }
    }

    @Test func areaUnderROCCountsTiesAsHalf() {
        #expect(areaUnderROC(negatives: [1, 2], positives: [3, 4]) == 1)
        #expect(areaUnderROC(negatives: [3, 4], positives: [1, 2]) == 0)
        #expect(areaUnderROC(negatives: [1, 2], positives: [2, 3]) == 0.875)
        #expect(areaUnderROC(negatives: [5], positives: []).isNaN)
    }

    @Test func viewsCropThenMirrorTheNetworkInput() throws {
        let image = RGBImage(width: 4, height: 2, pixels: (0..<24).map(UInt8.init))
        #expect(image.mirrored().pixel(x: 0, y: 1) == image.pixel(x: 3, y: 1))
        let view = ImageView(policy: .resize, crop: .init(anchorX: 1, anchorY: 0, scale: 0.5), mirrored: true)
        #expect(view.name == "resize+crop(1,0,0.5)+mirror")
        let window = view.window(image)
        #expect(window.width == 2 && window.height == 1)
        #expect(window.pixel(x: 0, y: 0) == image.pixel(x: 2, y: 0))
        #expect(view.unmirrored == ImageView(policy: .resize, crop: view.crop))
        // The mirrored view's input is the plain view's input flipped, value for value (what an
        // exported graph's test-time flip computes), even where a centre crop's margin is odd.
        // Widths 300 and 301: one of them leaves an odd margin beside the centre crop.
        for width in [300, 301] {
            let photo = RGBImage(width: width, height: 200,
                                 pixels: (0..<(width * 200 * 3)).map { UInt8(truncatingIfNeeded: ($0 &* 2654435761) >> 7) })
            let preprocessor = Preprocessor(PreprocessingSpec(inputSize: 32, centerCrop: .fraction(margin: 4),
                                                              normalization: .scaleOffset(offset: 127, scale: 128), defaultPolicy: .centerCrop))
            var inputs = [Float](repeating: .nan, count: 2 * 32 * 32 * 3)
            try inputs.withUnsafeMutableBufferPointer {
                try preprocessor.prepare(ImageSource.bytes(PNGEncoder.encode(photo), name: "photo.png"),
                                         views: [ImageView(policy: .centerCrop), ImageView(policy: .centerCrop, mirrored: true)],
                                         maxPixels: 1 << 20, into: $0.baseAddress!)
            }
            var mirroredPlain = [Float](repeating: .nan, count: 32 * 32 * 3)
            for y in 0..<32 {
                for x in 0..<32 {
                    for c in 0..<3 { mirroredPlain[(y * 32 + x) * 3 + c] = inputs[(y * 32 + 31 - x) * 3 + c] }
                }
            }
            #expect(Array(inputs[3072...]) == mirroredPlain, "width \(width)")
        }
        #expect(Augmentation.trainingViews(policy: .letterbox, augment: [.flip, .crop, .flip]).map(\.name)
                == ["letterbox", "letterbox+mirror", "letterbox+crop(0,0,0.85)", "letterbox+crop(1,1,0.85)"])
    }
}
