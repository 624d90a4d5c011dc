import Foundation
import Testing
import TestSupport
@testable import Models

/// The strict checkpoint reader every loader uses, and the registry's answers for names and folders.
@Suite struct CheckpointReaderTests {
    @Test func collectsEveryProblemAndNamesThemAll() throws {
        let source = DictionaryTensorSource(tensors: [
            "a.weight": ([2, 3], [Float](repeating: 1, count: 6)),
            "b.weight": ([4], [Float](repeating: 2, count: 4)),
            "stray.weight": ([1], [0]),
            "counter.num_batches_tracked": ([], [0]),
        ])
        let reader = CheckpointReader(source, ignoring: { $0.hasSuffix(".num_batches_tracked") })
        #expect(try reader.floats("a.weight", shape: [2, 3]) == [1, 1, 1, 1, 1, 1])
        // Missing and misshapen tensors read as zeros so loading goes on and finds the rest.
        #expect(try reader.floats("c.weight", shape: [2]) == [0, 0])
        #expect(try reader.floats("b.weight", shape: [5]) == [0, 0, 0, 0, 0])
        reader.expectUnused(["pooler.weight"])
        #expect(throws: ModelsError.keyMismatch(file: "memory.safetensors", missing: ["c.weight", "pooler.weight"],
                                                unexpected: ["stray.weight"])) { try reader.finish() }
    }

    @Test func shapeMismatchIsReportedWhenKeysAgree() throws {
        let source = DictionaryTensorSource(tensors: ["a.weight": ([2, 3], [Float](repeating: 1, count: 6))])
        let reader = CheckpointReader(source)
        _ = try reader.floats("a.weight", shape: [3, 2])
        #expect(throws: ModelsError.shapeMismatch(file: "memory.safetensors", key: "a.weight", expected: [3, 2], found: [2, 3])) {
            try reader.finish()
        }
    }

    @Test func aCompleteReadFinishes() throws {
        let source = DictionaryTensorSource(tensors: ["a.weight": ([1], [7])])
        let reader = CheckpointReader(source)
        #expect(try reader.floats("a.weight", shape: [1]) == [7])
        try reader.finish()
    }
}

@Suite struct ModelRegistryTests {
    static func folder(config: String?) throws -> URL {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("headtune-model-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        if let config { try Data(config.utf8).write(to: url.appendingPathComponent("config.json")) }
        return url
    }

    @Test func unknownNamesAndKindsAreRefusedWithTheChoices() throws {
        #expect(throws: ModelsError.self) { try ModelRegistry.imageEncoder("no-such-model") }
        do {
            _ = try ModelRegistry.imageEncoder("all-minilm-l6-v2")
            Issue.record("a text encoder loaded as an image encoder")
        } catch let error as ModelsError {
            #expect(error.errorDescription?.contains("text encoder") == true, "\(error)")
        }
        do {
            _ = try ModelRegistry.textEncoder("no-such-model")
            Issue.record("an unknown name loaded")
        } catch let error as ModelsError {
            #expect(error.errorDescription?.contains("efficientnet-lite0") == true, "lists the bundled models: \(error)")
        }
    }

    @Test func foldersAreRecognizedByModelType() throws {
        let empty = try Self.folder(config: nil)
        defer { try? FileManager.default.removeItem(at: empty) }
        #expect(throws: ModelsError.self) { try ModelRegistry.imageEncoder(empty.path) }
        do {
            _ = try ModelRegistry.imageEncoder(empty.path)
        } catch let error as ModelsError {
            #expect(error.errorDescription?.contains("config.json") == true, "\(error)")
        }

        let unknown = try Self.folder(config: #"{"model_type": "resnet"}"#)
        defer { try? FileManager.default.removeItem(at: unknown) }
        do {
            _ = try ModelRegistry.imageEncoder(unknown.path)
            Issue.record("an unknown architecture loaded")
        } catch let error as ModelsError {
            #expect(error.errorDescription?.contains("\"resnet\"") == true, "\(error)")
        }

        let broken = try Self.folder(config: "[1, 2")
        defer { try? FileManager.default.removeItem(at: broken) }
        #expect(throws: ModelsError.invalidConfiguration(file: broken.appendingPathComponent("config.json").path,
                                                        reason: "not a JSON object")) {
            try ModelRegistry.textEncoder(broken.path)
        }
    }

    @Test func bundledModelsLoadWithTheirIdentifiers() throws {
        let weights = try Golden.asset("weights/efficientnet-lite0.safetensors", fetchWith: "make weights").deletingLastPathComponent()
        let image = try ModelRegistry.imageEncoder(nil, weightsDirectory: weights)
        #expect(image.identifier == "efficientnet-lite0@579344248a93")
        #expect(image.model.outputWidths == [.features: 1280, .stages: 784, .logits: 1000])
        #expect(image.model.preprocessing.inputSize == 224)
        let text = try ModelRegistry.textEncoder(nil, weightsDirectory: weights)
        #expect(text.identifier.hasPrefix("all-minilm-l6-v2@"))
        #expect(text.model.dimension == 384 && text.tokenizer.maxLength == 256)
        #expect(text.tokenizer.encode("a cat") == [101, 1037, 4937, 102])
    }
}
