import Foundation
import Kernels
import Testing
import TestSupport
@testable import HeadTune

/// The image-text bridge's math and the image index, on small synthetic data (no weights needed).
@Suite struct ImageTextTests {
    // The GEMMs need OpenBLAS loaded; without this the suite relied on another suite loading a
    // network first, and crashed on a null sgemm when it ran before them.
    init() throws { try BLAS.load() }

    /// A tiny alignment: 3 classes, 2-d text space, 3 features.
    static func tinyAlignment() -> ImageTextAlignment {
        ImageTextAlignment(classEmbeddings: [1, 0, 0, 1, 0.6, 0.8], projection: [1, 0, 0, 0, 1, 0],
                           classCount: 3, textDimension: 2, featureCount: 3, backbone: "b", textEncoder: "t",
                           ridgeLambda: 1, classTemplate: "a photo of a {}.")
    }

    @Test func conseIsTheProbabilityWeightedMeanOfTheTopClasses() throws {
        let alignment = Self.tinyAlignment()
        // Logits favour class 0 strongly; with top 1 the embedding is class 0's.
        let top1 = try alignment.embed(features: [0, 0, 0], logits: [10, 0, 0], method: .conse, top: 1)
        #expect(top1 == [1, 0])
        // Equal logits for classes 0 and 1, top 2: the normalized mean of [1, 0] and [0, 1].
        let mixed = try alignment.embed(features: [0, 0, 0], logits: [5, 5, -50], method: .conse, top: 2)
        #expect(abs(mixed[0] - 0.70710677) < 1e-6 && abs(mixed[1] - 0.70710677) < 1e-6)
        #expect(throws: HeadTuneError.self) { try alignment.embed(features: [0, 0, 0], logits: nil, method: .conse) }
    }

    @Test func deviseProjectsFeaturesAndNormalizes() throws {
        let e = try Self.tinyAlignment().embed(features: [3, 4, 100], logits: nil, method: .devise)
        #expect(abs(e[0] - 0.6) < 1e-6 && abs(e[1] - 0.8) < 1e-6)
    }

    @Test func ridgeRecoversAnExactLinearMap() throws {
        // W = T · M exactly; with a tiny lambda the fit returns M.
        let n = 40, d = 3, f = 4
        var state: UInt64 = 1
        func next() -> Float {
            state = state &* 6364136223846793005 &+ 1442695040888963407
            return Float(state >> 40) / Float(1 << 24) - 0.5
        }
        let text = (0..<(n * d)).map { _ in next() }
        let m = (0..<(d * f)).map { _ in next() }
        var weights = [Float](repeating: 0, count: n * f)
        for r in 0..<n { for j in 0..<f { for i in 0..<d { weights[r * f + j] += text[r * d + i] * m[i * f + j] } } }
        let fitted = try ImageTextAlignment.fitRidge(text: text, weights: weights, rows: n, textDimension: d,
                                                     featureCount: f, lambda: 1e-6)
        #expect(zip(fitted, m).allSatisfy { abs($0 - $1) < 1e-3 })
    }

    @Test func alignmentFileRoundTripsThroughSafetensors() throws {
        let path = NSTemporaryDirectory() + "alignment-\(UUID().uuidString).safetensors"
        defer { try? FileManager.default.removeItem(atPath: path) }
        let alignment = Self.tinyAlignment()
        try alignment.write(to: path)
        let data = try Data(contentsOf: URL(fileURLWithPath: path))
        #expect(data.count > 8 + 24 + 24)
        // Not readable as an alignment for other models: read() checks the ids (needs real models), so
        // here the header is checked for the format marker and both tensors.
        let header = String(decoding: data.dropFirst(8).prefix(600), as: UTF8.self)
        #expect(header.contains("headtune-image-text-alignment"))
        #expect(header.contains("\"class_embeddings\"") && header.contains("\"projection\""))
    }

    @Test func indexSkipsUnchangedEntriesAndFiltersOtherModels() throws {
        let path = NSTemporaryDirectory() + "index-\(UUID().uuidString).db"
        defer { try? FileManager.default.removeItem(atPath: path) }
        let index = try ImageIndex(path: path)
        let models = ImageIndex.Models(backbone: "b", textEncoder: "t", alignment: "a", method: .conse)
        #expect(try !index.isCurrent(path: "x.jpg", contentSHA256: "h1", models: models))
        try index.upsert(path: "x.jpg", contentSHA256: "h1", models: models, features: [1, 2], logits: [3],
                         embedding: [0.6, 0.8])
        #expect(try index.isCurrent(path: "x.jpg", contentSHA256: "h1", models: models))
        #expect(try !index.isCurrent(path: "x.jpg", contentSHA256: "h2", models: models))
        var devise = models
        devise.method = .devise
        #expect(try !index.isCurrent(path: "x.jpg", contentSHA256: "h1", models: devise))
        try index.upsert(path: "y.jpg", contentSHA256: "h3", models: devise, features: [1, 2], logits: [3],
                         embedding: [1, 0])
        let (entries, skipped) = try index.entries(models: models)
        #expect(entries.map(\.path) == ["x.jpg"] && skipped == 1)
        #expect(entries[0].embedding == [0.6, 0.8])
        #expect(index.count == 2)
    }
}
