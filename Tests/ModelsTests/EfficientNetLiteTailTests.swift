import Foundation
import Kernels
import Testing
import TestSupport
import Weights
@testable import Models

/// Partial fine-tuning of the real network: the frozen prefix and the trainable tail against PyTorch
/// autograd (scripts/make_tail_goldens.py: `--unfreeze 6`, float64, BatchNorm folded as headtune folds
/// it), and the adapters, the merged network and the stored-tail loader against the tail itself.
@Suite struct EfficientNetLiteTailTests {
    struct GoldenFile: Decodable {
        struct Tensor: Decodable { var shape: [Int]; var norm: Double; var indices: [Int]; var values: [Double] }
        var unfreeze: Int
        var samples: [String]
        var output_gradient: [Float]
        var output: [Double]
        var tensors: [String: Tensor]
    }

    let model: EfficientNetLite
    let golden: GoldenFile

    init() throws {
        try BLAS.load()
        let url = try Golden.asset("weights/efficientnet-lite0.safetensors", fetchWith: "make weights")
        model = try EfficientNetLite(weights: try SafeTensors(contentsOf: url))
        let file = try #require(Bundle.module.url(forResource: "efficientnet_tail_gradients", withExtension: "json",
                                                  subdirectory: "Resources"))
        golden = try JSONDecoder().decode(GoldenFile.self, from: Data(contentsOf: file))
    }

    func inputs() throws -> [Float] {
        try golden.samples.flatMap { name in
            try NumpyArray(contentsOf: Golden.efficientNetLite0.appendingPathComponent("\(name)_input_u8_hwc.npy"))
                .bytes().map { (Float($0) - 127) / 128 }
        }
    }

    /// The prefix's output for the golden images, [count, inputWidth].
    func prefixOutput(_ prefix: any ImageEncoderModel, _ input: [Float]) -> [Float] {
        let count = golden.samples.count, width = prefix.outputWidths[.features]!
        var out = [Float](repeating: 0, count: count * width)
        let session = prefix.makeSession(threads: 2)
        input.withUnsafeBufferPointer { i in
            out.withUnsafeMutableBufferPointer { o in session.encode(i.baseAddress!, count: count, outputs: [.features: o.baseAddress!]) }
        }
        return out
    }

    static func relativeError(_ a: [Float], _ b: [Double]) -> Double {
        var num = 0.0, den = 0.0
        for (x, y) in zip(a, b) {
            num += (Double(x) - y) * (Double(x) - y)
            den += y * y
        }
        return (num / max(den, 1e-300)).squareRoot()
    }

    /// Outputs within 1e-4 relative of fp64 PyTorch; every tensor's gradient norm within 1e-3 and its
    /// sampled values within relative L2 2e-3 (fp32 sums over 49-196 positions and up to 1152 channels).
    @Test func tailGradientsMatchPyTorchAutograd() throws {
        let prefix = try model.frozenPrefix(unfreeze: golden.unfreeze)
        let tail = try model.trainableTail(unfreeze: golden.unfreeze, loraRank: nil)
        let cut = prefixOutput(prefix, try inputs())
        #expect(cut.count == golden.samples.count * tail.inputWidth)
        let pass = cut.withUnsafeBufferPointer { tail.forward($0.baseAddress!, count: golden.samples.count, includeStages: true, threads: 2) }
        let outputError = Self.relativeError(pass.output, golden.output)
        #expect(outputError < 1e-4, "tail output vs PyTorch: relative L2 \(outputError)")

        var gradient = [Float](repeating: 0, count: tail.parameters.count)
        golden.output_gradient.withUnsafeBufferPointer { r in
            gradient.withUnsafeMutableBufferPointer { tail.backward(pass, outputGradient: r.baseAddress!, parameterGradient: $0.baseAddress!, threads: 2) }
        }
        #expect(Set(tail.tensors.map(\.name)) == Set(golden.tensors.keys))
        for tensor in tail.tensors {
            let reference = try #require(golden.tensors[tensor.name])
            #expect(tensor.shape == reference.shape, "\(tensor.name)")
            let values = Array(gradient[tensor.offset..<(tensor.offset + tensor.count)])
            let norm = values.reduce(0) { $0 + Double($1) * Double($1) }.squareRoot()
            #expect(abs(norm - reference.norm) <= 1e-3 * reference.norm, "\(tensor.name): norm \(norm) vs \(reference.norm)")
            let sampled = reference.indices.map { values[$0] }
            let error = Self.relativeError(sampled, reference.values)
            #expect(error < 2e-3, "\(tensor.name): sampled gradient relative L2 \(error)")
        }
    }

    /// Prefix then untouched tail = the frozen network's own features, for every cut.
    @Test(arguments: [1, 2, 3, 6, 17])
    func prefixThenPretrainedTailIsTheNetwork(unfreeze: Int) throws {
        let input = try inputs(), count = golden.samples.count
        let (features, _) = try model.forward(input, batch: count, height: 224, width: 224, threads: 1)
        let tail = try model.trainableTail(unfreeze: unfreeze, loraRank: unfreeze == 2 ? 4 : nil)
        let cut = prefixOutput(try model.frozenPrefix(unfreeze: unfreeze), input)
        let pass = cut.withUnsafeBufferPointer { tail.forward($0.baseAddress!, count: count, includeStages: false, threads: 1) }
        let error = Self.relativeError(pass.output, features.map(Double.init))
        #expect(error < 1e-5, "unfreeze \(unfreeze): relative L2 \(error)")
    }

    /// LoRA: the adapters' gradients against central differences of the tail's own forward pass, at
    /// coordinates with large gradients (away from ReLU6 kinks, in fp32: 2% agreement).
    @Test func loraGradientsMatchFiniteDifferences() throws {
        let tail = try model.trainableTail(unfreeze: 2, loraRank: 4)
        // B = 0 at the start makes dA zero: move B off zero first so both adapters have gradients.
        var values = SplitMix64(seed: 5)
        for t in tail.tensors where t.name.hasSuffix("lora_b") {
            for i in t.offset..<(t.offset + t.count) { tail.parameters[i] = 0.02 * (2 * values.unitFloat() - 1) }
        }
        let cut = prefixOutput(try model.frozenPrefix(unfreeze: 2), try inputs())
        let count = golden.samples.count
        let r = Array(golden.output_gradient.prefix(count * tail.outputWidth(includeStages: false)))
        func loss() -> Double {
            let pass = cut.withUnsafeBufferPointer { tail.forward($0.baseAddress!, count: count, includeStages: false, threads: 1) }
            return zip(pass.output, r).reduce(0) { $0 + Double($1.0) * Double($1.1) }
        }
        let pass = cut.withUnsafeBufferPointer { tail.forward($0.baseAddress!, count: count, includeStages: false, threads: 1) }
        var gradient = [Float](repeating: 0, count: tail.parameters.count)
        r.withUnsafeBufferPointer { r in
            gradient.withUnsafeMutableBufferPointer { tail.backward(pass, outputGradient: r.baseAddress!, parameterGradient: $0.baseAddress!, threads: 1) }
        }
        #expect(!tail.tensors.contains { $0.name.hasSuffix("depthwise.weight") }, "LoRA keeps the depthwise filters frozen")
        for t in tail.tensors where t.name.contains("lora") || t.name == "head.bias" {
            let range = t.offset..<(t.offset + t.count)
            let largest = range.sorted { abs(gradient[$0]) > abs(gradient[$1]) }.prefix(3)
            for i in largest {
                let saved = tail.parameters[i], step: Float = 5e-4
                tail.parameters[i] = saved + step
                let up = loss()
                tail.parameters[i] = saved - step
                let down = loss()
                tail.parameters[i] = saved
                let numeric = (up - down) / (2 * Double(step))
                #expect(abs(Double(gradient[i]) - numeric) <= 0.02 * abs(numeric) + 1e-3,
                        "\(t.name)[\(i - t.offset)]: analytic \(gradient[i]), numeric \(numeric)")
            }
        }
    }

    /// A changed tail, merged into the network (adapters folded into the weights), gives what the
    /// tail computes; and a tail read back from its tensors is the same tail.
    @Test(arguments: [nil, 4] as [Int?])
    func mergedNetworkAndStoredTailMatchTheTail(rank: Int?) throws {
        let tail = try model.trainableTail(unfreeze: 3, loraRank: rank)
        var values = SplitMix64(seed: 9)
        for i in tail.parameters.indices { tail.parameters[i] += 0.01 * (2 * values.unitFloat() - 1) }
        let input = try inputs(), count = golden.samples.count
        let cut = prefixOutput(try model.frozenPrefix(unfreeze: 3), input)
        let pass = cut.withUnsafeBufferPointer { tail.forward($0.baseAddress!, count: count, includeStages: true, threads: 1) }

        let merged = try #require(try model.applying(tail) as? EfficientNetLite)
        var features = [Float](repeating: 0, count: count * 1280), stages = [Float](repeating: 0, count: count * 784)
        let workspace = merged.makeWorkspace(batch: count)
        input.withUnsafeBufferPointer { i in
            features.withUnsafeMutableBufferPointer { f in
                stages.withUnsafeMutableBufferPointer { s in
                    merged.forward(input: i.baseAddress!, workspace: workspace, features: f.baseAddress!, logits: nil, stagePooled: s.baseAddress!)
                }
            }
        }
        var expected: [Float] = []
        for n in 0..<count {
            expected += features[(n * 1280)..<((n + 1) * 1280)]
            expected += stages[(n * 784)..<((n + 1) * 784)]
        }
        let error = Self.relativeError(pass.output, expected.map(Double.init))
        #expect(error < 1e-5, "merged network vs tail: relative L2 \(error)")

        var stored: [String: (shape: [Int], values: [Float])] = [:]
        for t in tail.tensors { stored[t.name] = (t.shape, Array(tail.parameters[t.offset..<(t.offset + t.count)])) }
        let reread = try model.trainableTail(unfreeze: 3, loraRank: rank, tensors: DictionaryTensorSource(tensors: stored))
        #expect(reread.parameters == tail.parameters)
        stored["head.bias"] = nil
        #expect(throws: ModelsError.self) { try model.trainableTail(unfreeze: 3, loraRank: rank, tensors: DictionaryTensorSource(tensors: stored)) }
    }

    @Test func refusesImpossibleCuts() {
        #expect(throws: ModelsError.invalidInput(reason: "cannot unfreeze 18 blocks: 16 blocks and the head convolution make 17 (0 trains the head alone)")) {
            try model.trainableTail(unfreeze: 18, loraRank: nil)
        }
        #expect(throws: ModelsError.self) { try model.trainableTail(unfreeze: 0, loraRank: nil) }
        #expect(throws: ModelsError.invalidInput(reason: "a LoRA rank must be at least 1 (got 0)")) {
            try model.trainableTail(unfreeze: 2, loraRank: 0)
        }
    }
}
