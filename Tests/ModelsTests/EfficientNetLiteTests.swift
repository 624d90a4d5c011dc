import Foundation
import Kernels
import Testing
import TestSupport
import Weights
@testable import Models

/// In-memory checkpoint for loader tests.
struct DictionaryTensorSource: TensorSource {
    var tensors: [String: (shape: [Int], values: [Float])]
    var sourceName: String { "memory.safetensors" }
    var tensorNames: [String] { Array(tensors.keys) }
    func shape(of name: String) throws -> [Int] { tensors[name]!.shape }
    func floats(_ name: String) throws -> [Float] { tensors[name]!.values }

    /// A complete, well-shaped Lite0 checkpoint with constant values.
    static func lite0() -> DictionaryTensorSource {
        var t: [String: (shape: [Int], values: [Float])] = [:]
        func add(_ name: String, _ shape: [Int]) { t[name] = (shape, [Float](repeating: 0.01, count: shape.reduce(1, *))) }
        func bn(_ p: String, _ c: Int) { for k in ["weight", "bias", "running_mean", "running_var"] { add("\(p).\(k)", [c]) } }
        let c = EfficientNetLiteConfiguration.lite0
        add("_conv_stem.weight", [32, 3, 3, 3]); bn("_bn0", 32)
        for (i, b) in c.blocks.enumerated() {
            let p = "_blocks.\(i)"
            if b.expandRatio != 1 { add("\(p)._expand_conv.weight", [b.expandedChannels, b.inChannels, 1, 1]); bn("\(p)._bn0", b.expandedChannels) }
            add("\(p)._depthwise_conv.weight", [b.expandedChannels, 1, b.kernel, b.kernel]); bn("\(p)._bn1", b.expandedChannels)
            add("\(p)._project_conv.weight", [b.outChannels, b.expandedChannels, 1, 1]); bn("\(p)._bn2", b.outChannels)
        }
        add("_conv_head.weight", [1280, 320, 1, 1]); bn("_bn1", 1280)
        add("_fc.weight", [1000, 1280]); add("_fc.bias", [1000])
        return DictionaryTensorSource(tensors: t)
    }
}

@Suite struct EfficientNetLiteLoaderTests {
    @Test func architectureMatchesReferenceTable() {
        let blocks = EfficientNetLiteConfiguration.lite0.blocks
        #expect(blocks.count == 16)
        #expect(blocks.filter(\.hasResidual).count == 9)
        #expect(blocks[11] == .init(kernel: 5, stride: 2, expandRatio: 6, inChannels: 112, outChannels: 192))
        let checkpoint = DictionaryTensorSource.lite0()
        let parameters = checkpoint.tensors.filter { !$0.key.contains("running_") }.values.map(\.values.count).reduce(0, +)
        #expect(parameters == 4_652_008)
    }

    @Test func strictLoadListsMissingAndUnexpectedKeys() {
        var checkpoint = DictionaryTensorSource.lite0()
        checkpoint.tensors["_blocks.3._bn1.running_var"] = nil
        checkpoint.tensors["_blocks.3._se_reduce.weight"] = ([8, 144, 1, 1], [Float](repeating: 0, count: 8 * 144))
        checkpoint.tensors["_bn0.num_batches_tracked"] = ([], [0])
        #expect(throws: ModelsError.keyMismatch(file: "memory.safetensors", missing: ["_blocks.3._bn1.running_var"],
                                                unexpected: ["_blocks.3._se_reduce.weight"])) {
            try EfficientNetLite(weights: checkpoint)
        }
    }

    @Test func strictLoadRejectsWrongShapes() {
        var checkpoint = DictionaryTensorSource.lite0()
        checkpoint.tensors["_fc.weight"] = ([1001, 1280], [Float](repeating: 0, count: 1001 * 1280))
        #expect(throws: ModelsError.shapeMismatch(file: "memory.safetensors", key: "_fc.weight", expected: [1000, 1280],
                                                  found: [1001, 1280])) {
            try EfficientNetLite(weights: checkpoint)
        }
    }

    @Test func batchNormIsFoldedIntoConvolution() throws {
        var checkpoint = DictionaryTensorSource.lite0()
        checkpoint.tensors["_bn0.weight"] = ([32], [Float](repeating: 2, count: 32))
        checkpoint.tensors["_bn0.bias"] = ([32], [Float](repeating: 0.5, count: 32))
        checkpoint.tensors["_bn0.running_mean"] = ([32], [Float](repeating: 1, count: 32))
        checkpoint.tensors["_bn0.running_var"] = ([32], [Float](repeating: 4 - 1e-3, count: 32))
        let model = try EfficientNetLite(weights: checkpoint)
        // scale = 2 / sqrt(4) = 1; bias = 0.5 - 1 * 1
        #expect(abs(model.stem.weight(output: 0, input: 0) - 0.01) < 1e-7)
        #expect(abs(model.stem.bias[0] - -0.5) < 1e-6)
    }
}

/// The real pretrained weights against the PyTorch reference (shared/reference/golden_effnet_lite0.json).
@Suite struct EfficientNetLiteGoldenTests {
    let model: EfficientNetLite
    let samples: [Golden.Sample]

    init() throws {
        try BLAS.load()
        let url = try Golden.asset("weights/efficientnet-lite0.safetensors", fetchWith: "make weights")
        model = try EfficientNetLite(weights: try SafeTensors(contentsOf: url))
        samples = try Golden.efficientNetSamples()
    }

    /// Reference input: uint8 [224, 224, 3] -> (x - 127) / 128, exact in fp32.
    func input(_ name: String) throws -> [Float] {
        try NumpyArray(contentsOf: Golden.efficientNetLite0.appendingPathComponent("\(name)_input_u8_hwc.npy"))
            .bytes().map { (Float($0) - 127) / 128 }
    }

    func reference(_ name: String, _ kind: String) throws -> [Float] {
        try NumpyArray(contentsOf: Golden.efficientNetLite0.appendingPathComponent("\(name)_\(kind).npy")).floats()
    }

    static func relativeL2(_ a: ArraySlice<Float>, _ b: [Float]) -> Double {
        var num = 0.0, den = 0.0
        for (x, y) in zip(a, b) {
            num += (Double(x) - Double(y)) * (Double(x) - Double(y))
            den += Double(y) * Double(y)
        }
        return (num / den).squareRoot()
    }

    /// All six photos in one batch on two threads: features within relative L2 1e-4 of the fp32
    /// reference and max abs 1e-4 of the fp64 one; logits within 1e-3 abs; identical top-5 classes.
    @Test func batchMatchesReference() throws {
        let batch = samples.count
        let inputs = try samples.flatMap { try input($0.name) }
        let (features, logits) = try model.forward(inputs, batch: batch, height: 224, width: 224, threads: 2)
        for (i, sample) in samples.enumerated() {
            let f = features[(i * 1280)..<((i + 1) * 1280)]
            let l = logits[(i * 1000)..<((i + 1) * 1000)]
            let refFeatures = try reference(sample.name, "feature1280")
            let ref64 = try reference(sample.name, "feature1280_fp64")
            let refLogits = try reference(sample.name, "logits1000")
            let rel = Self.relativeL2(f, refFeatures)
            #expect(rel < 1e-4, "\(sample.name): feature relative L2 error \(rel)")
            let maxAbs64 = zip(f, ref64).map { abs($0 - $1) }.max()!
            #expect(maxAbs64 < 1e-4, "\(sample.name): max abs feature error vs fp64 \(maxAbs64)")
            let maxLogit = zip(l, refLogits).map { abs($0 - $1) }.max()!
            #expect(maxLogit < 1e-3, "\(sample.name): max abs logit error \(maxLogit)")
            let top5 = l.indices.sorted { l[$0] > l[$1] }.prefix(5).map { $0 - i * 1000 }
            #expect(top5 == sample.top5.map(\.index), "\(sample.name): top-5 \(top5)")
        }
    }

    /// Batch composition must not change an image's result.
    @Test func singleImageEqualsBatch() throws {
        let name = samples[0].name
        let single = try model.forward(try input(name), batch: 1, height: 224, width: 224, threads: 1)
        let pair = try model.forward(try input(name) + input(samples[1].name), batch: 2, height: 224, width: 224, threads: 2)
        let rel = Self.relativeL2(pair.features[0..<1280], single.features)
        #expect(rel < 1e-6, "relative difference \(rel)")
    }

    /// Three images on two threads: two run on their own lanes, the third splits its layers across both
    /// threads. Every image must come out as it does alone, logits included.
    @Test func lanesAndLeftoverImageMatchSingleImages() throws {
        let names = samples.prefix(3).map(\.name)
        let inputs = try names.map { try input($0) }
        let batch = try model.forward(inputs.flatMap { $0 }, batch: 3, height: 224, width: 224, threads: 2)
        for (i, image) in inputs.enumerated() {
            let single = try model.forward(image, batch: 1, height: 224, width: 224, threads: 1)
            let features = Self.relativeL2(batch.features[(i * 1280)..<((i + 1) * 1280)], single.features)
            let logits = Self.relativeL2(batch.logits[(i * 1000)..<((i + 1) * 1000)], single.logits)
            #expect(features < 1e-6 && logits < 1e-6, "\(names[i]): features \(features), logits \(logits)")
        }
    }

    /// Stage-pooled features: 784 values per image, the same alone and in a batch, and asking for them
    /// leaves features and logits unchanged.
    @Test func stagePooledFeaturesAreConsistent() throws {
        #expect(model.stageEndBlocks == [0, 2, 4, 7, 10, 14, 15])
        #expect(model.stagePooledFeatureCount == 784)
        let first = try input(samples[0].name), second = try input(samples[1].name)
        func run(_ images: [Float], batch: Int) -> (features: [Float], stages: [Float]) {
            let workspace = model.makeWorkspace(batch: batch, threads: 2)
            var features = [Float](repeating: 0, count: batch * 1280)
            var logits = [Float](repeating: 0, count: batch * 1000)
            var stages = [Float](repeating: .nan, count: batch * 784)
            images.withUnsafeBufferPointer { x in
                features.withUnsafeMutableBufferPointer { f in
                    logits.withUnsafeMutableBufferPointer { l in
                        stages.withUnsafeMutableBufferPointer { s in
                            model.forward(input: x.baseAddress!, workspace: workspace, features: f.baseAddress!,
                                          logits: l.baseAddress!, stagePooled: s.baseAddress!)
                        }
                    }
                }
            }
            return (features, stages)
        }
        let single = run(first, batch: 1)
        let pair = run(first + second, batch: 2)
        #expect(single.stages.allSatisfy { $0.isFinite })
        #expect(Self.relativeL2(pair.stages[0..<784], single.stages) < 1e-6)
        let plain = try model.forward(first, batch: 1, height: 224, width: 224, threads: 2)
        #expect(single.features == plain.features)
        // Stage 1 ends in a linear projection (no ReLU6): its mean can be negative, unlike the head's.
        #expect(single.stages[0..<16].contains { $0 < 0 })
    }
}
