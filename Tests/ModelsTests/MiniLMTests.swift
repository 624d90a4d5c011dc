import Foundation
import Testing
import TestSupport
import Kernels
import Weights
@testable import Models

/// all-MiniLM-L6-v2 in Swift against the sentence-transformers reference (Tests/Golden/minilm).
/// Tolerance: max abs difference per dimension of the normalized 384-d embedding < 1e-6 (measured: at most
/// 1.4e-7 on AVX-512 OpenBLAS, the size of the reference's own fp32-vs-fp64 spread of 1.5e-7).
@Suite struct MiniLMTests {
    static let tolerance: Float = 1e-6

    let model: MiniLM
    let tokenizer: WordPieceTokenizer

    init() throws {
        try BLAS.load()
        let weights = try Golden.asset("weights/all-minilm-l6-v2.safetensors", fetchWith: "make weights")
        let config = try Golden.asset("weights/all-minilm-l6-v2/config.json", fetchWith: "make weights")
        let configuration = try MiniLMConfiguration.load(contentsOf: config)
        #expect(configuration == .allMiniLML6v2)
        model = try MiniLM(configuration: configuration, weights: try SafeTensors(contentsOf: weights))
        tokenizer = try WordPieceTokenizer(
            vocabularyFile: try Golden.asset("weights/all-minilm-l6-v2/vocab.txt", fetchWith: "make weights"))
    }

    static func maxAbsDifference(_ a: ArraySlice<Float>, _ b: [Float]) -> Float {
        zip(a, b).map { abs($0 - $1) }.max() ?? .infinity
    }

    /// One test for both properties, so the debug-build test run computes each embedding once.
    @Test func embeddingsMatchSentenceTransformersAloneAndInAPaddedBatch() throws {
        let sentences = try Golden.miniLMSentences()
        #expect(sentences.count == 6)
        let ids = sentences.map { tokenizer.encode($0.text) }
        let workspace = model.makeWorkspace(tokens: ids.count * 256, threads: 2)
        let batched = try model.embed(ids, workspace: workspace)
        for (i, sentence) in sentences.enumerated() {
            let expected = try Golden.miniLMEmbedding(sentence)
            #expect(expected.count == 384)
            let alone = try model.embed([ids[i]], workspace: workspace)
            let error = Self.maxAbsDifference(alone[...], expected)
            #expect(error < Self.tolerance, "sentence \(i): max abs error \(error)")
            let row = batched[(i * 384)..<((i + 1) * 384)]
            #expect(Self.maxAbsDifference(row, alone) < 1e-6, "sentence \(i) differs between batch and alone")
            #expect(Self.maxAbsDifference(row, expected) < Self.tolerance)
        }
    }

    @Test func strictLoaderNamesMissingAndUnexpectedKeys() throws {
        struct Source: TensorSource {
            var sourceName = "fake.safetensors"
            var tensorNames: [String]
            func shape(of name: String) throws -> [Int] { [1] }
            func floats(_ name: String) throws -> [Float] { [0] }
        }
        var names = ["embeddings.word_embeddings.weight", "surprise.weight"]
        names.append("pooler.dense.bias")
        #expect {
            _ = try MiniLM(weights: Source(tensorNames: names))
        } throws: { error in
            guard case ModelsError.keyMismatch(let file, let missing, let unexpected) = error else { return false }
            return file == "fake.safetensors" && missing.contains("encoder.layer.5.output.LayerNorm.bias")
                && unexpected == ["surprise.weight"]
        }
    }

    @Test func unsupportedActivationIsRejected() {
        var configuration = MiniLMConfiguration.allMiniLML6v2
        configuration.hiddenActivation = "relu"
        #expect(throws: ModelsError.self) { try configuration.validate(source: "config.json") }
    }
}
