import Foundation
import HTTPTypes
import HeadTune
import Hummingbird
import HummingbirdTesting
import Imaging
import NIOCore
import Testing
import Training
@testable import Service

/// Every route on a server with the real backbone, a trained head and the text encoder, compared with
/// what the library computes for the same files.
@Suite(.serialized) struct RouteTests {
    @Test func healthReadyAndHeads() async throws {
        try await Fixture.withServer(try Fixture.configuration()) { client, _ in
            let health = try await client.execute(uri: "/healthz", method: .get)
            #expect(health.status == .ok)
            #expect(health.object["status"] as? String == "ok")

            let ready = try await client.execute(uri: "/readyz", method: .get)
            #expect(ready.status == .ok)
            #expect(ready.object["heads"] as? [String] == ["imagenet", "pets"])

            let heads = try await client.execute(uri: "/v1/heads", method: .get)
            #expect(heads.status == .ok)
            let list = heads.object["heads"] as? [[String: Any]] ?? []
            #expect(list.map { $0["name"] as? String } == ["imagenet", "pets"])
            #expect(list.first?["classes"] as? Int == 1000)
            #expect((list.first?["labels"] as? [String])?[281] == "tabby")
            #expect(list.last?["labels"] as? [String] == ["feline", "other"])
            #expect(list.last?["test_time_flip"] as? Bool == true)
            #expect(list.last?["features"] as? String == "head")
            let validation = list.last?["validation"] as? [String: Any]
            #expect(validation?["accuracy"] as? Double == 1)
            #expect(validation?["images"] as? Int == 2)
        }
    }

    @Test func classifyOneImageEqualsTheLibrary() async throws {
        let expected = try libraryImageNetProbabilities(try Fixture.sample("chelsea.png"))
        try await Fixture.withServer(try Fixture.configuration()) { client, _ in
            let response = try await client.execute(uri: "/v1/classify?top_k=3&name=chelsea.png", method: .post,
                                                    headers: [.contentType: "image/png"],
                                                    body: ByteBuffer(bytes: try Fixture.sampleBytes("chelsea.png")))
            #expect(response.status == .ok)
            #expect(response.headers[.contentType] == "application/json; charset=utf-8")
            #expect(response.object["head"] as? String == "imagenet")
            let record = try #require(response.results.first)
            #expect(record["path"] as? String == "chelsea.png")
            let predictions = record["predictions"] as? [[String: Any]] ?? []
            #expect(predictions.map { $0["label"] as? String } == ["tiger cat", "Egyptian cat", "tabby"])
            let best = expected.withUnsafeBufferPointer { largestEntries($0, k: 3) }
            #expect(predictions.map { $0["index"] as? Int } == best.map(\.index))
            for (got, want) in zip(predictions, best) {
                #expect(abs(Float((got["score"] as? Double) ?? -1) - want.score) < 1e-5)
            }
            // The record keeps the CLI's jsonl key order.
            #expect(response.text.hasPrefix(#"{"head": "imagenet", "results": [{"path": "chelsea.png", "predictions": [{"label": "tiger cat", "index": 282, "score": "#))
        }
    }

    @Test func classifyMultipartKeepsOrderAndNames() async throws {
        var form = Multipart()
        for name in ["coffee.png", "rocket.jpg", "chelsea.png"] {
            form.parts.append(("image", name, name.hasSuffix(".png") ? "image/png" : "image/jpeg", try Fixture.sampleBytes(name)))
        }
        let body = form.body, contentType = form.contentType
        try await Fixture.withServer(try Fixture.configuration()) { client, _ in
            let response = try await client.execute(uri: "/v1/classify?top_k=1", method: .post,
                                                    headers: [.contentType: contentType], body: body)
            #expect(response.status == .ok)
            #expect(response.results.map { $0["path"] as? String } == ["coffee.png", "rocket.jpg", "chelsea.png"])
            let top = response.results.map { (($0["predictions"] as? [[String: Any]])?.first?["label"] as? String) }
            #expect(top == ["espresso", "missile", "tiger cat"])
            // The ImageNet classifier has no out-of-distribution detector: no verdict, as in the CLI.
            #expect(response.results.allSatisfy { $0["unknown"] == nil && $0["ood_score"] == nil })
        }
    }

    /// Both feature sets: a head on head+stages gets the stage-pooled features from the batching worker;
    /// a head with a tuned tail runs on its own worker with the tuned network, as the CLI runs it.
    @Test(arguments: [("pets", FeatureSet.head), ("pets-stages", .headAndStages), ("pets-tuned", .headAndStages)])
    func classifyWithTrainedHeadEqualsTheCLI(head: String, features: FeatureSet) async throws {
        let url = try Fixture.sample("motorcycle_left.png")
        let path = try (head == "pets-tuned" ? Fixture.tunedHeadPath : features == .head ? Fixture.headPath : Fixture.stagesHeadPath).get()
        let predictor = try HeadPredictor.load(path: path, encoder: try Fixture.backbone.get())
        #expect(predictor.featureSet == features)
        #expect((predictor.head.tail != nil) == (head == "pets-tuned"))
        var records: [ClassificationRecord] = []
        try BatchClassifier(encoder: try Fixture.backbone.get(), classifier: .head(predictor), topK: 2)
            .run(paths: [url.path]) { records.append($0) }
        let expected = try #require(records.first)
        let expectedScores = Dictionary(uniqueKeysWithValues: (expected.predictions ?? []).map { ($0.index, $0.score) })
        try await Fixture.withServer(try Fixture.configuration(stagesHead: true)) { client, _ in
            let response = try await client.execute(uri: "/v1/classify?head=\(head)", method: .post, headers: [.contentType: "image/png"],
                                                    body: ByteBuffer(bytes: try Fixture.sampleBytes("motorcycle_left.png")))
            #expect(response.status == .ok)
            #expect(response.object["head"] as? String == head)
            let record = try #require(response.results.first)
            let predictions = record["predictions"] as? [[String: Any]] ?? []
            #expect(predictions.count == 2)
            for prediction in predictions {
                let index = try #require(prediction["index"] as? Int)
                #expect(prediction["label"] as? String == ["feline", "other"][index])
                #expect(abs(Float((prediction["score"] as? Double) ?? -1) - (expectedScores[index] ?? 9)) < 1e-5)
            }
            // The head's out-of-distribution verdict, as the CLI reports it.
            let expectedScore = try #require(expected.oodScore)
            #expect(record["unknown"] as? Bool == expected.unknown)
            #expect(abs(Float((record["ood_score"] as? Double) ?? -1) - expectedScore) < 1e-4)
        }
    }

    @Test func embedImageEqualsTheBackboneFeatures() async throws {
        var features: [Float] = []
        try BatchRunner(encoder: try Fixture.backbone.get(), batchSize: 1, threads: 2)
            .run(paths: [try Fixture.sample("coffee.png").path]) { _, output in features = try output.get().features }
        let expected = features
        try await Fixture.withServer(try Fixture.configuration(heads: false)) { client, _ in
            let response = try await client.execute(uri: "/v1/embed/image", method: .post, headers: [.contentType: "image/png"],
                                                    body: ByteBuffer(bytes: try Fixture.sampleBytes("coffee.png")))
            #expect(response.status == .ok)
            let embedding = (response.results.first?["embedding"] as? [Double] ?? []).map(Float.init)
            #expect(embedding.count == 1280)
            #expect(zip(embedding, expected).allSatisfy { abs($0 - $1) < 1e-4 })
        }
    }

    @Test func textRoutes() async throws {
        let encoder = try Fixture.textEncoder.get()
        let expected = try encoder.embed(["a photo of a cat", "a rocket"])
        try await Fixture.withServer(try Fixture.configuration(heads: false, text: true, alignment: true)) { client, _ in
            // embed/text
            let embedded = try await client.execute(uri: "/v1/embed/text", method: .post, headers: [.contentType: "application/json"],
                                                    body: ByteBuffer(string: #"["a photo of a cat", "a rocket"]"#))
            #expect(embedded.status == .ok)
            #expect(embedded.results.map { $0["text"] as? String } == ["a photo of a cat", "a rocket"])
            for (result, want) in zip(embedded.results, expected) {
                let got = (result["embedding"] as? [Double] ?? []).map(Float.init)
                #expect(got.count == 384)
                #expect(zip(got, want).allSatisfy { abs($0 - $1) < 1e-5 })
            }
            let notJSON = try await client.execute(uri: "/v1/embed/text", method: .post, headers: [.contentType: "text/plain"],
                                                   body: ByteBuffer(string: "a cat"))
            #expect(notJSON.status == .unsupportedMediaType)
            let badJSON = try await client.execute(uri: "/v1/embed/text", method: .post, headers: [.contentType: "application/json"],
                                                   body: ByteBuffer(string: #"{"text": 1}"#))
            #expect(badJSON.status == .badRequest)
            #expect(badJSON.errorCode == "bad_request")

            // zero-shot and match, against the library's own computation on the same alignment
            let alignment = try ImageTextAlignment.read(path: try Fixture.alignmentPath.get(), encoder: try Fixture.backbone.get(),
                                                        textEncoder: encoder)
            var output: EncodedImage?
            try BatchRunner(encoder: try Fixture.backbone.get(), batchSize: 1, threads: 2)
                .run(paths: [try Fixture.sample("chelsea.png").path]) { _, o in output = try o.get() }
            let image = try alignment.embed(features: output!.features, logits: output!.logits, method: .conse)
            let labels = ["cat", "rocket", "coffee"]
            let classes = try encoder.embed(labels.map { "a photo of a \($0)." })
            let similarities = classes.map { dot(image, $0) }

            let zeroShot = try await client.execute(uri: "/v1/zero-shot?labels=cat,rocket,coffee&top_k=3", method: .post,
                                                    headers: [.contentType: "image/png"],
                                                    body: ByteBuffer(bytes: try Fixture.sampleBytes("chelsea.png")))
            #expect(zeroShot.status == .ok)
            let predictions = zeroShot.results.first?["predictions"] as? [[String: Any]] ?? []
            #expect(predictions.count == 3)
            for prediction in predictions {
                let index = try #require(prediction["index"] as? Int)
                #expect(prediction["label"] as? String == labels[index])
                #expect(abs(Float((prediction["similarity"] as? Double) ?? -9) - similarities[index]) < 1e-4)
            }
            let scores = predictions.compactMap { $0["score"] as? Double }
            #expect(abs(scores.reduce(0, +) - 1) < 1e-4)

            let match = try await client.execute(uri: "/v1/match?text=a%20cat&text=a%20rocket", method: .post,
                                                 headers: [.contentType: "image/png"],
                                                 body: ByteBuffer(bytes: try Fixture.sampleBytes("chelsea.png")))
            #expect(match.status == .ok)
            #expect(match.object["texts"] as? [String] == ["a cat", "a rocket"])
            let row = (match.results.first?["similarities"] as? [Double] ?? []).map(Float.init)
            let want = try encoder.embed(["a cat", "a rocket"]).map { dot(image, $0) }
            #expect(row.count == 2)
            #expect(zip(row, want).allSatisfy { abs($0 - $1) < 1e-4 })
        }
    }

    @Test func textRoutesWithoutEncoderAnswer404() async throws {
        try await Fixture.withServer(try Fixture.configuration(heads: false, text: false)) { client, _ in
            let response = try await client.execute(uri: "/v1/embed/text", method: .post, headers: [.contentType: "application/json"],
                                                    body: ByteBuffer(string: #"["x"]"#))
            #expect(response.status == .notFound)
            #expect(response.errorCode == "text_encoder_unavailable")
        }
        try await Fixture.withServer(try Fixture.configuration(heads: false, text: true, alignment: false)) { client, _ in
            let response = try await client.execute(uri: "/v1/zero-shot?labels=a,b", method: .post, headers: [.contentType: "image/png"],
                                                    body: ByteBuffer(bytes: try Fixture.sampleBytes("chelsea.png")))
            #expect(response.status == .notFound)
            #expect(response.errorMessage?.contains("headtune align") == true)
        }
    }

    @Test func metricsCountRoutesAndBatches() async throws {
        try await Fixture.withServer(try Fixture.configuration(heads: false)) { client, _ in
            _ = try await client.execute(uri: "/v1/classify", method: .post, headers: [.contentType: "image/png"],
                                         body: ByteBuffer(bytes: try Fixture.sampleBytes("coffee.png")))
            _ = try await client.execute(uri: "/v1/classify?head=nope", method: .post, headers: [.contentType: "image/png"],
                                         body: ByteBuffer(bytes: try Fixture.sampleBytes("coffee.png")))
            let metrics = try await client.execute(uri: "/metrics", method: .get)
            #expect(metrics.status == .ok)
            #expect(metrics.headers[.contentType]?.hasPrefix("text/plain; version=0.0.4") == true)
            let text = metrics.text
            #expect(text.contains(#"headtune_http_requests_total{route="/v1/classify",method="POST",status="200"} 1"#))
            #expect(text.contains(#"headtune_http_requests_total{route="/v1/classify",method="POST",status="404"} 1"#))
            #expect(BatchingTests.value(of: "headtune_queue_wait_seconds_count", in: text) == 1)
            #expect(BatchingTests.value(of: #"headtune_inference_seconds_count{model="backbone"}"#, in: text) == 1)
            #expect(BatchingTests.value(of: "headtune_batch_size_sum", in: text) == 1)
            #expect(BatchingTests.value(of: "headtune_queue_depth", in: text) == 0)
            #expect(text.contains("headtune_http_request_duration_seconds_bucket"))
        }
    }
}
