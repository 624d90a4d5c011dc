import Foundation
import Imaging
import Testing
import TestSupport
@testable import HeadTune

/// A CLIP folder through the same pipeline as the bundled networks: `--model DIR` for embeddings, the
/// native text space, and heads trained on its features (the tiny seeded fixture of ModelsTests).
@Suite(.serialized) struct CLIPPipelineTests {
    let folder: URL

    init() throws {
        let bpe = try Golden.asset("weights/clip-bpe/vocab.json", fetchWith: "make weights").deletingLastPathComponent()
        folder = FileManager.default.temporaryDirectory.appendingPathComponent("headtune-clip-pipeline-\(UUID().uuidString)")
        try FileManager.default.copyItem(at: Golden.repositoryRoot.appendingPathComponent("Tests/ModelsTests/Resources/tiny-clip"), to: folder)
        for name in ["vocab.json", "merges.txt"] {
            try FileManager.default.copyItem(at: bpe.appendingPathComponent(name), to: folder.appendingPathComponent(name))
        }
    }

    @Test func jointSpaceEmbeddingsAndHeads() throws {
        defer { try? FileManager.default.removeItem(at: folder) }
        let encoder = try ImageEncoder.load(model: folder.path)
        #expect(encoder.embeddingOutput == .embedding && encoder.classCount == 0 && encoder.featureCount == 32)
        #expect(encoder.featureCount(for: .headAndStages) == nil && encoder.featureCount(for: .head) == 32)
        #expect(encoder.preprocessing.centerCrop == .shortestSide)
        let text = try TextEncoder.load(for: encoder, threads: 2)
        #expect(text.pairedImageModel == encoder.identifier && text.dimension == 16)

        // The text space is native: no bridge file, the image embedding normalized, CLIP's own scale.
        let space = try TextSpace.load(imageEncoder: encoder, text: text, alignmentPath: nil)
        #expect(space.bridge.method == .native && space.requiredOutputs == [.embedding])
        #expect(abs(space.defaultTemperature - 14.298523) < 1e-3)
        #expect(throws: HeadTuneError.self) {
            try TextSpace.load(imageEncoder: encoder, text: text, alignmentPath: nil, method: .conse)
        }
        let samples = ["chelsea.png", "coffee.png", "rocket.jpg", "astronaut.png"].map {
            (try? Golden.asset("samples/\($0)", fetchWith: "make samples").path) ?? ""
        }
        var vectors: [[Float]] = []
        try BatchRunner(encoder: encoder, batchSize: 3, threads: 2, outputs: space.requiredOutputs).run(paths: samples) { _, r in
            vectors.append(try space.imageVector(try r.get()))
        }
        #expect(vectors.count == 4 && vectors.allSatisfy { abs($0.reduce(0) { $0 + $1 * $1 } - 1) < 1e-5 })
        let classes = try space.labelEmbeddings(["cat", "rocket"])
        #expect(space.zeroShot(vectors[0], classes: classes, temperature: space.defaultTemperature, topK: 2).count == 2)

        // A head on its pooled features, written, read back and run by the classifier.
        let root = NSTemporaryDirectory() + "headtune-clip-head-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: root) }
        for (label, paths) in [("animal", [samples[0], samples[3]]), ("thing", [samples[1], samples[2]])] {
            try FileManager.default.createDirectory(atPath: "\(root)/data/\(label)", withIntermediateDirectories: true)
            for path in paths { try FileManager.default.copyItem(atPath: path, toPath: "\(root)/data/\(label)/\((path as NSString).lastPathComponent)") }
        }
        var request = HeadTrainingRequest(data: root + "/data")
        request.validationSplit = 0
        request.featureSet = .head
        request.configuration.l2 = 0.1
        let outcome = try HeadTraining.run(request, encoder: encoder, extractor: FeatureExtractor(encoder: encoder, cache: nil, threads: 2))
        #expect(outcome.headFile.metadata.backbone.id == encoder.identifier && outcome.headFile.metadata.backbone.featureCount == 32)
        try outcome.headFile.write(to: root + "/clip.head")
        let predictor = try HeadPredictor.load(path: root + "/clip.head", encoder: encoder)
        var records: [ClassificationRecord] = []
        try BatchClassifier(encoder: encoder, classifier: .head(predictor), topK: 1).run(paths: samples) { records.append($0) }
        #expect(records.count == 4 && records.allSatisfy { $0.predictions?.count == 1 })
        // It predicts what `predict` (the extractor path) predicts.
        let probabilities = try predictor.predict(paths: samples, extractor: FeatureExtractor(encoder: encoder, cache: nil, threads: 2))
        for (record, p) in zip(records, probabilities) {
            let p = try p.get()
            #expect(record.predictions?.first?.index == p.indices.max { p[$0] < p[$1] })
        }
        // A head needs the encoder it was trained on.
        let effnet = try ImageEncoder.load(weightsDirectory: try Golden.asset("weights/efficientnet-lite0.safetensors", fetchWith: "make weights").deletingLastPathComponent())
        #expect(throws: Error.self) { try HeadPredictor.load(path: root + "/clip.head", encoder: effnet) }
    }
}
