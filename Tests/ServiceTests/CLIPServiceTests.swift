import Foundation
import HeadTune
import Hummingbird
import HummingbirdTesting
import Testing
import TestSupport
@testable import Service

/// `serve --model CLIP_DIR`: the same routes on a jointly trained model (the tiny seeded fixture).
@Suite struct CLIPServiceTests {
    @Test func routesUseTheJointSpace() async throws {
        let bpe = try Golden.asset("weights/clip-bpe/vocab.json", fetchWith: "make weights").deletingLastPathComponent()
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("headtune-clip-serve-\(UUID().uuidString)")
        try FileManager.default.copyItem(at: Golden.repositoryRoot.appendingPathComponent("Tests/ModelsTests/Resources/tiny-clip"), to: folder)
        for name in ["vocab.json", "merges.txt"] {
            try FileManager.default.copyItem(at: bpe.appendingPathComponent(name), to: folder.appendingPathComponent(name))
        }
        defer { try? FileManager.default.removeItem(at: folder) }
        let encoder = try ImageEncoder.load(model: folder.path)
        let text = try TextEncoder.load(for: encoder, threads: 2)
        let space = try TextSpace.load(imageEncoder: encoder, text: text, alignmentPath: nil)
        // What the library computes for the cat photo.
        var image: EncodedImage?
        try BatchRunner(encoder: encoder, batchSize: 1, threads: 2, outputs: [.embedding])
            .run(paths: [try Fixture.sample("chelsea.png").path]) { _, r in image = try r.get() }
        let vector = encoder.embeddingVector(try #require(image))
        let classes = try space.labelEmbeddings(["cat", "rocket"])

        var models = ModelSpecification(model: folder.path, heads: [], textEncoder: true)
        models.preloadedEncoder = encoder
        models.preloadedTextEncoder = text
        let configuration = ServerConfiguration(models: models, batching: BatchingSettings(maxBatch: 4, maxDelay: .milliseconds(5), threads: 2))
        try await Fixture.withServer(configuration) { client, _ in
            let embedded = try await client.execute(uri: "/v1/embed/image", method: .post, headers: [.contentType: "image/png"],
                                                    body: ByteBuffer(bytes: try Fixture.sampleBytes("chelsea.png")))
            #expect(embedded.status == .ok)
            let got = (embedded.results.first?["embedding"] as? [Double] ?? []).map(Float.init)
            #expect(got.count == 16 && zip(got, vector).allSatisfy { abs($0 - $1) < 1e-6 })

            let zeroShot = try await client.execute(uri: "/v1/zero-shot?labels=cat,rocket", method: .post,
                                                    headers: [.contentType: "image/png"],
                                                    body: ByteBuffer(bytes: try Fixture.sampleBytes("chelsea.png")))
            #expect(zeroShot.status == .ok)
            let predictions = zeroShot.results.first?["predictions"] as? [[String: Any]] ?? []
            let want = space.zeroShot(vector, classes: classes, temperature: space.defaultTemperature, topK: 2)
            #expect(predictions.map { $0["label"] as? String } == want.map { ["cat", "rocket"][$0.index] })
            for (p, w) in zip(predictions, want) { #expect(abs((p["score"] as? Double ?? -1) - Double(w.score)) < 1e-5) }

            // No ImageNet classifier on CLIP: classify says which heads there are.
            let classify = try await client.execute(uri: "/v1/classify", method: .post, headers: [.contentType: "image/png"],
                                                    body: ByteBuffer(bytes: try Fixture.sampleBytes("chelsea.png")))
            #expect(classify.status == .notFound)
        }
    }
}
