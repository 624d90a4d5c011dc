import Foundation
import Imaging
import Testing
import TestSupport
import Training
@testable import HeadTune

/// `train --unfreeze K` end to end on six real photos with the real network: the cut activations are
/// cached (and reused by a run with other options), the head file carries the tuned tail, and every
/// path that runs the head (the predictor, batch classification) runs that tail.
@Suite(.serialized) final class PartialFineTuningTests {
    let encoder: ImageEncoder
    let root: String
    /// The six photos' paths as the run lists them.
    var imagePaths: [String] = []

    init() throws {
        encoder = try ImageEncoder.load(weightsDirectory: try Golden.asset("weights/efficientnet-lite0.safetensors", fetchWith: "make weights")
                .deletingLastPathComponent())
        root = NSTemporaryDirectory() + "headtune-unfreeze-\(UUID().uuidString)"
        let layout = ["scene/chelsea.png": "samples/chelsea.png", "scene/astronaut.png": "samples/astronaut.png",
                      "scene/motorcycle_left.png": "samples/motorcycle_left.png",
                      "object/coffee.png": "samples/coffee.png", "object/rocket.jpg": "samples/rocket.jpg",
                      "object/retina.jpg": "samples/retina.jpg"]
        for (target, source) in layout {
            try FileManager.default.createDirectory(atPath: root + "/" + (target as NSString).deletingLastPathComponent,
                                                    withIntermediateDirectories: true)
            try FileManager.default.copyItem(atPath: try Golden.asset(source, fetchWith: "make samples").path, toPath: root + "/" + target)
            imagePaths.append(root + "/" + target)
        }
        try Data("<html>not a photo".utf8).write(to: URL(fileURLWithPath: root + "/object/broken.jpg"))
    }

    deinit { try? FileManager.default.removeItem(atPath: root) }

    func request(unfreeze: Int, lora: Int? = nil, epochs: Int = 2) -> HeadTrainingRequest {
        var request = HeadTrainingRequest(data: root)
        request.validationSplit = 0
        request.configuration.unfreeze = unfreeze
        request.configuration.loraRank = lora
        request.configuration.randomViews = 1
        request.configuration.fineTuneEpochs = epochs
        request.configuration.fineTuneBatchSize = 4
        request.configuration.maxEpochs = 50
        return request
    }

    @Test func aTunedTailIsCachedAtTheCutStoredInTheHeadAndRunByEveryPredictor() throws {
        let cache = try FeatureCache(path: root + "/cache.sqlite")
        let extractor = FeatureExtractor(encoder: encoder, cache: cache, batchSize: 4, threads: 2)
        var skipped: [String] = [], epochs: [Int] = []
        var events = HeadTrainingEvents()
        events.skipped = { path, _ in skipped.append(path) }
        events.epoch = { epochs.append($0.epoch) }

        let first = try HeadTraining.run(request(unfreeze: 2), encoder: encoder, extractor: extractor, events: events)
        #expect(skipped == [root + "/object/broken.jpg"])
        #expect(epochs == [0, 1, 2])
        // 6 images x (plain + mirror) + 6 random views, all at the cut; a random view that rounds to the
        // whole image (scale >= 0.995, about 1 in 80 views: the paths, and so the views, change with the
        // temporary folder's name) is one of the plain ones and is not extracted twice.
        let plain = request(unfreeze: 2)
        let predictionViews = HeadTune.predictionViews(policy: plain.policy, testTimeFlip: plain.testTimeFlip)
        let randomRows = imagePaths.map { path in
            Augmentation.randomViews(count: 1, policy: plain.policy, seed: plain.configuration.seed, path: path)
                .filter { !predictionViews.contains($0) }.count
        }.reduce(0, +)
        let rowCount = imagePaths.count * predictionViews.count + randomRows
        #expect(predictionViews.count == 2 && randomRows >= 4, "the views this test is about")
        #expect(first.statistics.extracted == rowCount && first.statistics.cacheHits == 0)
        #expect(first.headFile.metadata.dataset.trainRows == rowCount)
        let tail = try #require(first.headFile.tail)
        #expect(tail.settings.unfreeze == 2 && tail.settings.loraRank == nil)
        #expect(tail.tensors.map(\.name).contains("blocks.15.project.weight") && tail.tensors.map(\.name).contains("head.weight"))
        let pretrained = try encoder.trainableTail(unfreeze: 2, loraRank: nil).tunedTail()
        #expect(tail.tensors.map(\.name) == pretrained.tensors.map(\.name))
        #expect(tail.tensors != pretrained.tensors, "fine-tuning moved the tail's weights")

        // Another run with other options reads every cut activation from the cache.
        let second = try HeadTraining.run(request(unfreeze: 2, lora: 2, epochs: 1), encoder: encoder, extractor: extractor)
        #expect(second.statistics.extracted == 0 && second.statistics.cacheHits == rowCount)
        let adapters = try #require(second.headFile.tail)
        #expect(adapters.settings.loraRank == 2 && adapters.tensors.contains { $0.name == "head.lora_a" })
        #expect(!adapters.tensors.contains { $0.name.hasSuffix("depthwise.weight") })

        // The file round-trips, says format 6 (a tail, and the class-aware out-of-distribution detector
        // with its relative Mahalanobis score: builds that read up to 3 refuse the tail, up to 5 the
        // detector), and predicts with the tail.
        let path = root + "/tuned.head"
        try first.headFile.write(to: path)
        let read = try HeadFile.read(path: path)
        #expect(read.metadata.formatVersion == 6 && read.tail == first.headFile.tail)
        #expect(read.outOfDistribution == first.headFile.outOfDistribution && read.outOfDistribution?.settings.components != nil)
        let predictor = try HeadPredictor.load(path: path, encoder: encoder)
        #expect(predictor.encoder.cacheIdentity != encoder.cacheIdentity)
        let paths = ["scene/chelsea.png", "object/coffee.png"].map { root + "/" + $0 }
        let predicted = try predictor.predict(paths: paths, extractor: FeatureExtractor(encoder: encoder, cache: nil, batchSize: 2, threads: 2))
        // What training computed for those images through the tail (its train rows are the images, in
        // dataset order: object/coffee is image 0, scene/chelsea image 3).
        let trained = first.data.train
        var expected = trained.selecting([3, 0])
        first.headFile.standardization.apply(to: &expected)
        let probabilities = first.headFile.head.probabilities(expected)
        let got = try predicted.flatMap { try $0.get() }
        #expect(zip(got, probabilities).allSatisfy { abs($0 - $1) < 1e-4 }, "predictor \(got) vs training \(probabilities)")

        // Batch classification runs the tuned network too.
        let classifier = BatchClassifier(encoder: encoder, classifier: .head(predictor), topK: 2)
        var records: [ClassificationRecord] = []
        try classifier.run(paths: paths) { records.append($0) }
        #expect(records.count == 2 && records.allSatisfy { $0.error == nil })
        #expect(abs(Double(records[0].predictions?.first?.score ?? 0) - Double(got[0..<2].max()!)) < 1e-4)
    }

    @Test func impossibleRequestsAreRefusedBeforeAnyImageIsRead() throws {
        let extractor = FeatureExtractor(encoder: encoder, cache: nil, batchSize: 4, threads: 1)
        #expect {
            try HeadTraining.run(request(unfreeze: 18), encoder: encoder, extractor: extractor)
        } throws: { ($0 as? LocalizedError)?.errorDescription?.contains("cannot unfreeze 18 blocks") == true }
        var lora = request(unfreeze: 2, lora: 0)
        #expect(throws: TrainingError.self) { try HeadTraining.run(lora, encoder: encoder, extractor: extractor) }
        // More cut activations than the memory limit allows: refused before extraction, saying how much.
        setenv("HEADTUNE_TAIL_MEMORY_GB", "0.01", 1)
        defer { unsetenv("HEADTUNE_TAIL_MEMORY_GB") }
        #expect {
            try HeadTraining.run(request(unfreeze: 17), encoder: extractor.encoder, extractor: extractor)
        } throws: { ($0 as? LocalizedError)?.errorDescription?.contains("over the 0.01 GB limit; ask for fewer --views") == true }
        lora = request(unfreeze: 0, lora: 4)
        #expect {
            try HeadTraining.run(lora, encoder: encoder, extractor: extractor)
        } throws: { ($0 as? LocalizedError)?.errorDescription?.contains("give --unfreeze") == true }
    }
}
