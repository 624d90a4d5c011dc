import Foundation
import HTTPTypes
import HeadTune
import Hummingbird
import HummingbirdTesting
import Imaging
import Logging
import NIOCore
import TestSupport
import Training
import Weights
@testable import Service

/// Networks loaded once per test process and shared by every server the tests start.
enum Fixture {
    static let backbone: Result<ImageEncoder, Error> = Result {
        try ImageEncoder.load(weightsDirectory: Golden.asset("weights/efficientnet-lite0.safetensors",
                                                                      fetchWith: "make weights").deletingLastPathComponent())
    }

    static let textEncoder: Result<TextEncoder, Error> = Result {
        try TextEncoder.load(weightsDirectory: Golden.asset("weights/all-minilm-l6-v2.safetensors",
                                                                     fetchWith: "make weights").deletingLastPathComponent())
    }

    static func sample(_ name: String) throws -> URL {
        try Golden.asset("samples/\(name)", fetchWith: "make samples")
    }

    static func sampleBytes(_ name: String) throws -> [UInt8] {
        [UInt8](try Data(contentsOf: sample(name)))
    }

    /// A scratch directory that lives for the test process.
    static let directory: URL = {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("headtune-service-tests-\(getpid())")
        try? FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }()

    /// A two-class linear head on this backbone with seeded weights and test-time flip, written to a
    /// head file: enough to check that the service runs heads exactly as the library does.
    static let headPath: Result<String, Error> = Result { try writeHead(features: .head, name: "pets.head") }
    /// The same on the head and stage-pooled features (served as `pets-stages`).
    static let stagesHeadPath: Result<String, Error> = Result { try writeHead(features: .headAndStages, name: "pets-stages.head") }
    /// The stages head with a tuned tail (`train --unfreeze 2`: the last block and the head convolution,
    /// their weights moved off the pretrained ones), served as `pets-tuned` on its own worker.
    static let tunedHeadPath: Result<String, Error> = Result { try writeHead(features: .headAndStages, name: "pets-tuned.head", tuned: true) }

    private static func writeHead(features: FeatureSet, name: String, tuned: Bool = false) throws -> String {
        let backbone = try Fixture.backbone.get()
        let f = backbone.featureCount(for: features)!
        var generator = SeededGenerator(seed: 6)
        let architecture = HeadArchitecture(kind: .linear, inputs: f, classes: 2)
        let parameters = (0..<(architecture.inputs * 2 + 2)).map { _ in generator.gaussian() * 0.05 }
        let report = ClassificationReport(probabilities: [0.8, 0.2, 0.3, 0.7], truth: [0, 1], paths: ["a.png", "b.png"],
                                          labels: ["feline", "other"])
        let metadata = HeadFile.Metadata(
            labels: ["feline", "other"],
            backbone: .init(id: backbone.identifier, weightsSHA256: backbone.weightsSHA256, featureCount: f, features: features),
            preprocessing: .init(policy: .centerCrop, inputSize: backbone.inputSize, testTimeFlip: true, augment: []),
            architecture: architecture, training: TrainingConfiguration(), bestEpoch: 1,
            dataset: .init(source: "test", imagesPerClass: [1, 1], trainImages: 2, validationImages: 2, trainRows: 2, skippedFiles: 0),
            validation: report, createdAt: "2026-01-01T00:00:00Z", headtuneVersion: "test")
        // A k-NN out-of-distribution detector over a few seeded feature rows, so records carry
        // `unknown` and `ood_score` as the CLI's do.
        let bank = FeatureMatrix(rows: 8, columns: f, values: (0..<(8 * f)).map { _ in abs(generator.gaussian()) })
        let detector = OutOfDistributionDetector.fit(train: bank, validation: nil, k: 2)
        let file = HeadFile(metadata: metadata, head: ClassificationHead(architecture: architecture, parameters: parameters),
                            standardization: Standardization(mean: [Float](repeating: 0, count: f),
                                                             inverseStd: [Float](repeating: 1, count: f)),
                            outOfDistribution: detector, tail: tuned ? try perturbedTail(backbone) : nil)
        let path = directory.appendingPathComponent(name).path
        try file.write(to: path)
        return path
    }

    private static func perturbedTail(_ backbone: ImageEncoder) throws -> HeadFile.TunedTail {
        let pretrained = try backbone.trainableTail(unfreeze: 2, loraRank: nil).tunedTail()
        var generator = SeededGenerator(seed: 11)
        let tensors = pretrained.tensors.map { t in
            HeadFile.TunedTail.Tensor(name: t.name, shape: t.shape, values: t.values.map { $0 * (1 + 0.3 * generator.gaussian()) })
        }
        return HeadFile.TunedTail(unfreeze: 2, loraRank: nil, tensors: tensors)
    }

    /// An image-text alignment file for these two networks with seeded class embeddings and map (what
    /// the service computes from it is compared with the library's own computation).
    static let alignmentPath: Result<String, Error> = Result {
        let backbone = try Fixture.backbone.get(), encoder = try Fixture.textEncoder.get()
        var generator = SeededGenerator(seed: 7)
        let c = backbone.classCount, d = encoder.dimension, f = backbone.featureCount
        var classes = (0..<(c * d)).map { _ in generator.gaussian() }
        classes.withUnsafeMutableBufferPointer { normalizeRowsForTest($0, rows: c, columns: d) }
        let projection = (0..<(d * f)).map { _ in generator.gaussian() * 0.01 }
        let data = SafeTensorsWriter.serialize([
            .init(name: "class_embeddings", shape: [c, d], values: classes),
            .init(name: "projection", shape: [d, f], values: projection),
        ], metadata: ["format": "headtune-image-text-alignment", "backbone": backbone.identifier,
                      "text_encoder": encoder.identifier, "ridge_lambda": "1", "class_template": "a photo of a {}."])
        let path = directory.appendingPathComponent("alignment.safetensors").path
        try data.write(to: URL(fileURLWithPath: path))
        return path
    }

    static func normalizeRowsForTest(_ x: UnsafeMutableBufferPointer<Float>, rows: Int, columns: Int) {
        for r in 0..<rows {
            var sum: Float = 0
            for j in 0..<columns { sum += x[r * columns + j] * x[r * columns + j] }
            let scale = 1 / max(sum.squareRoot(), 1e-12)
            for j in 0..<columns { x[r * columns + j] *= scale }
        }
    }

    static var logger: Logger {
        var logger = Logger(label: "headtune.serve.test")
        logger.logLevel = .warning
        return logger
    }

    /// A server configuration on the shared networks.
    /// - stagesHead: also serve `pets-stages`, the head on head+stages features
    static func configuration(heads: Bool = true, stagesHead: Bool = false, text: Bool = false, alignment: Bool = false,
                              batching: BatchingSettings = BatchingSettings(maxBatch: 8, maxDelay: .milliseconds(20), threads: 2),
                              limits: RequestLimits = RequestLimits(), maxPixels: Int = DecodeOptions().maxPixels) throws -> ServerConfiguration {
        var served = heads ? [("pets", try headPath.get())] : []
        if stagesHead { served += [("pets-stages", try stagesHeadPath.get()), ("pets-tuned", try tunedHeadPath.get())] }
        var models = ModelSpecification(heads: served, maxPixels: maxPixels,
                                        textEncoder: text, alignmentPath: alignment ? try alignmentPath.get() : "/nonexistent/alignment.safetensors")
        models.preloadedEncoder = try backbone.get()
        if maxPixels != DecodeOptions().maxPixels {
            models.preloadedEncoder = try backbone.get().withMaxPixels(maxPixels)
        }
        if text { models.preloadedTextEncoder = try textEncoder.get() }
        return ServerConfiguration(models: models, batching: batching, limits: limits)
    }

    /// Runs `test` against a server on the router test framework once its models are loaded.
    /// - bodyBudget: the request bodies' budget (nil: the server makes its own), for tests that watch it
    static func withServer<Value: Sendable>(
        _ configuration: ServerConfiguration, metrics: ServiceMetrics = ServiceMetrics(), bodyBudget: MemoryBudget? = nil,
        _ test: @escaping @Sendable (any TestClientProtocol, ModelHost) async throws -> Value
    ) async throws -> Value {
        let host = ModelHost(specification: configuration.models, batching: configuration.batching, metrics: metrics, logger: logger)
        let app = buildApplication(configuration, host: host, metrics: metrics, logger: logger, bodyBudget: bodyBudget)
        return try await app.test(.router) { client in
            let started = ContinuousClock.now
            while !host.isReady {
                guard ContinuousClock.now - started < .seconds(120) else { throw ServiceError.notReady }
                try await Task.sleep(for: .milliseconds(10))
            }
            return try await test(client, host)
        }
    }
}

extension TestResponse {
    /// The body parsed as JSON.
    var json: Any? { try? JSONSerialization.jsonObject(with: Data(buffer: body)) }
    var object: [String: Any] { json as? [String: Any] ?? [:] }
    var errorCode: String? { (object["error"] as? [String: Any])?["code"] as? String }
    var errorMessage: String? { (object["error"] as? [String: Any])?["message"] as? String }
    var results: [[String: Any]] { object["results"] as? [[String: Any]] ?? [] }
    var text: String { String(buffer: body) }
}

/// A multipart/form-data body.
struct Multipart {
    let boundary = "headtune-test-boundary-7f3a"
    var parts: [(name: String, filename: String?, contentType: String?, bytes: [UInt8])] = []

    var contentType: String { "multipart/form-data; boundary=\(boundary)" }

    var body: ByteBuffer {
        var out: [UInt8] = []
        for part in parts {
            out += Array("--\(boundary)\r\n".utf8)
            var disposition = "Content-Disposition: form-data; name=\"\(part.name)\""
            if let filename = part.filename { disposition += "; filename=\"\(filename)\"" }
            out += Array("\(disposition)\r\n".utf8)
            if let type = part.contentType { out += Array("Content-Type: \(type)\r\n".utf8) }
            out += Array("\r\n".utf8) + part.bytes + Array("\r\n".utf8)
        }
        out += Array("--\(boundary)--\r\n".utf8)
        return ByteBuffer(bytes: out)
    }
}

/// The library's own answer for a file: what `headtune classify --imagenet` computes.
func libraryImageNetProbabilities(_ url: URL) throws -> [Float] {
    var result: [Float] = []
    try BatchRunner(encoder: Fixture.backbone.get(), batchSize: 1, threads: 2).run(paths: [url.path]) { _, output in
        result = probabilities(fromLogits: try output.get().logits ?? [])
    }
    return result
}
