// `headtune export`: a head and the network under it (or the bundled ImageNet classifier) as one
// ONNX model, so it runs where headtune does not (ONNX Runtime, Triton, browsers).
//
// The graph reads what `headtune preprocess` writes: [N, 3, size, size] float32, RGB, NCHW, after the
// head's geometry policy and the encoder's normalization. Decoding, orientation and the geometry stay
// outside the graph (they are the caller's image library's job); the metadata says exactly which.

import Foundation
import Imaging
import Models
import ONNX
import Training
import Weights

/// An exported model: the file's bytes and what it holds.
public struct ONNXExport: Sendable {
    public var model: Data
    /// Name and shape of each graph input and output, e.g. ("probabilities", ["N", "10"]).
    public var inputs: [(name: String, shape: [String])]
    public var outputs: [(name: String, shape: [String])]
    public var nodeCount: Int
    /// The `metadata_props` written into the model.
    public var metadata: [(String, String)]

    /// Names of the graph's tensors, for callers and tests.
    public static let inputName = "pixels"
    public static let probabilitiesName = "probabilities"
    public static let featuresName = "features"
    public static let logitsName = "logits"

    /// The head on its encoder (with a fine-tuned tail in place when the head has one), test-time
    /// flip averaging inside the graph when the head predicts with it.
    /// - Outputs: `probabilities` [N, classes] (softmax, or per-class sigmoid for a multi-label head)
    ///   and `features` [N, width]: the pooled encoder features averaged over the views (what
    ///   `classify --embeddings` prints), whatever else the head reads; and `logits` [N, classes]
    ///   (what `classify --logits` prints).
    public static func head(_ predictor: HeadPredictor, headFile: URL) throws -> ONNXExport {
        let head = predictor.head
        let exportable = try exportableModel(predictor.encoder)
        let size = predictor.encoder.inputSize
        var graph = ONNXGraph(name: "headtune_head", outputs: outputNames)
        let pixels = declarePixels(&graph, size: size)
        let flip = predictor.views.contains { $0.mirrored }
        precondition(predictor.views.allSatisfy { $0.crop == nil && $0.policy == predictor.policy },
                     "prediction views are the plain view and its mirror")
        // Test-time flip: the batch and its mirror images run as one batch of 2N, features averaged.
        var batch = pixels
        if flip {
            let mirrored = graph.reverse(pixels, axis: 3, name: "pixels.mirrored")
            batch = graph.concatenate([pixels, mirrored], axis: 0, name: "pixels.views")
        }
        let names = predictor.encoder.outputs(for: predictor.featureSet)
        let tensors = exportable.appendONNX(to: &graph, input: batch, outputs: Set(names))
        // [2N, width] -> [N, width]: row i and row N + i are an image and its mirror.
        let averaged = names.map { name -> String in
            guard flip else { return tensors[name]! }
            let views = graph.reshape(tensors[name]!, to: [2, -1, predictor.encoder.width(of: name)!], name: "\(name.rawValue).views")
            return graph.mean(views, axis: 0, name: "\(name.rawValue).mean")
        }
        let features = graph.concatenate(averaged, axis: 1, name: "head.input")
        let standardized = graph.standardize(features, mean: head.standardization.mean, scale: head.standardization.inverseStd,
                                             name: "features.standardized")
        let logits = appendHead(head.head, to: &graph, input: standardized)
        let probabilities = graph.node(predictor.isMultiLabel ? "Sigmoid" : "Softmax", [logits],
                                       attributes: predictor.isMultiLabel ? [] : [.int("axis", 1)], output: "head.probabilities")
        let classes = head.metadata.labels.count
        graph.output(probabilities, as: probabilitiesName, shape: [.symbolic("N"), .fixed(classes)],
                     documentation: predictor.isMultiLabel ? "per-class sigmoid" : "softmax over the labels")
        graph.output(averaged[0], as: featuresName, shape: [.symbolic("N"), .fixed(predictor.encoder.featureCount)],
                     documentation: "pooled encoder features" + (flip ? ", averaged over the image and its mirror" : ""))
        graph.output(logits, as: logitsName, shape: [.symbolic("N"), .fixed(classes)], documentation: "the head's logits")

        var metadata = commonMetadata(encoder: predictor.encoder, policy: predictor.policy, labels: head.metadata.labels,
                                      testTimeFlip: flip)
        metadata += [
            ("headtune.head_file", headFile.lastPathComponent),
            ("headtune.head_sha256", try SHA256.hex(fileAt: headFile.path)),
            ("headtune.feature_set", predictor.featureSet.rawValue),
            ("headtune.multi_label", predictor.isMultiLabel ? "true" : "false"),
            ("headtune.head_architecture", head.head.architecture.kind.rawValue),
        ]
        if let tail = head.metadata.tail {
            metadata.append(("headtune.tuned_tail", "last \(tail.unfreeze) blocks" + (tail.loraRank.map { ", LoRA rank \($0)" } ?? "")))
        }
        if head.outOfDistribution != nil {
            metadata.append(("headtune.unknown_detection", "not in this graph: the head's out-of-distribution detector runs in headtune classify and serve"))
        }
        let documentation = "headtune head \(headFile.lastPathComponent): \(classes) classes on \(predictor.encoder.identifier)"
            + (flip ? ", test-time flip averaged in the graph" : "")
        return finish(graph, documentation: documentation, metadata: metadata, classes: classes,
                      width: predictor.encoder.featureCount, size: size)
    }

    /// The encoder's own pretrained classifier (EfficientNet-Lite0: the 1000 ImageNet classes), as
    /// `headtune classify --imagenet` runs it: one view, softmax over the logits.
    /// - Outputs: `probabilities` [N, classes], `features` [N, width] (the pooled features) and `logits` [N, classes].
    public static func pretrainedClassifier(_ encoder: ImageEncoder, labels: [String]) throws -> ONNXExport {
        let exportable = try exportableModel(encoder)
        guard encoder.classCount == labels.count, encoder.classCount > 0 else {
            throw HeadTuneError.exportUnsupported(model: encoder.identifier, reason: "it has no pretrained classifier with \(labels.count) labels")
        }
        let size = encoder.inputSize
        var graph = ONNXGraph(name: "headtune_pretrained_classifier", outputs: outputNames)
        let pixels = declarePixels(&graph, size: size)
        let tensors = exportable.appendONNX(to: &graph, input: pixels, outputs: [.features, .logits])
        let probabilities = graph.node("Softmax", [tensors[.logits]!], attributes: [.int("axis", 1)], output: "classifier.probabilities")
        graph.output(probabilities, as: probabilitiesName, shape: [.symbolic("N"), .fixed(labels.count)],
                     documentation: "softmax over the labels")
        graph.output(tensors[.features]!, as: featuresName, shape: [.symbolic("N"), .fixed(encoder.featureCount)],
                     documentation: "pooled encoder features")
        graph.output(tensors[.logits]!, as: logitsName, shape: [.symbolic("N"), .fixed(labels.count)],
                     documentation: "the pretrained classifier's logits")
        let metadata = commonMetadata(encoder: encoder, policy: encoder.preprocessor.policy, labels: labels, testTimeFlip: false)
        return finish(graph, documentation: "\(encoder.identifier) pretrained classifier, \(labels.count) classes",
                      metadata: metadata, classes: labels.count, width: encoder.featureCount, size: size)
    }

    /// The graph outputs every export has, in order.
    static let outputNames = [probabilitiesName, featuresName, logitsName]

    /// Declares the `pixels` input [N, 3, size, size]; returns its name.
    static func declarePixels(_ graph: inout ONNXGraph, size: Int) -> String {
        graph.input(inputName, shape: [.symbolic("N"), .fixed(3), .fixed(size), .fixed(size)],
                    documentation: "RGB images, NCHW, preprocessed as the metadata's headtune.preprocessing says")
    }

    static func exportableModel(_ encoder: ImageEncoder) throws -> any ONNXExportableImageModel {
        guard let model = encoder.model as? any ONNXExportableImageModel else {
            throw HeadTuneError.exportUnsupported(model: encoder.identifier, reason: "this network has no ONNX graph writer yet")
        }
        return model
    }

    /// Logits [N, classes] of `head` on `input` [N, inputs].
    static func appendHead(_ head: ClassificationHead, to graph: inout ONNXGraph, input: String) -> String {
        let a = head.architecture, t = a.tensors
        func values(_ tensor: HeadArchitecture.Tensor) -> [Float] { Array(head.parameters[tensor.offset..<(tensor.offset + tensor.count)]) }
        switch a.kind {
        case .linear:
            return graph.linear(input, weight: values(t[0]), bias: values(t[1]), name: "head.logits")
        case .mlp:
            let hidden = graph.linear(input, weight: values(t[0]), bias: values(t[1]), name: "head.hidden")
            let activated = graph.node("Relu", [hidden], output: "head.hidden.relu")
            return graph.linear(activated, weight: values(t[2]), bias: values(t[3]), name: "head.logits")
        }
    }

    /// What a caller needs to feed the graph and read its answer, as `metadata_props`.
    static func commonMetadata(encoder: ImageEncoder, policy: CropPolicy, labels: [String], testTimeFlip: Bool) -> [(String, String)] {
        let spec = encoder.preprocessing
        var preprocessing: [String: Any] = [
            "layout": "NCHW", "channels": "RGB", "input_size": spec.inputSize, "geometry": policy.rawValue,
            "geometry_description": geometryDescription(spec, policy: policy),
            "test_time_flip_in_graph": testTimeFlip,
            "exact_inputs": "headtune preprocess writes these inputs (.npy), bit for bit what headtune classifies",
        ]
        switch spec.normalization {
        case .scaleOffset(let offset, let scale):
            preprocessing["normalization"] = ["formula": "(pixel - offset) / scale, pixel in 0...255", "offset": offset, "scale": scale]
        case .meanStd(let mean, let std):
            preprocessing["normalization"] = ["formula": "(pixel / 255 - mean[c]) / std[c]", "mean": mean, "std": std]
        }
        return [
            ("headtune.labels", jsonText(labels)),
            ("headtune.preprocessing", jsonText(preprocessing)),
            ("headtune.encoder", encoder.identifier),
            ("headtune.encoder_weights_sha256", encoder.weightsSHA256),
        ]
    }

    static func geometryDescription(_ spec: PreprocessingSpec, policy: CropPolicy) -> String {
        let size = spec.inputSize
        switch (policy, spec.centerCrop) {
        case (.centerCrop, .fraction(let margin)):
            return "centre square of \(size)/\(size + margin) of the shorter side, resized to \(size)x\(size) (bicubic, antialiased)"
        case (.centerCrop, .shortestSide):
            return "shorter side resized to \(size) (bicubic, antialiased), centre \(size)x\(size) crop"
        case (.resize, _):
            return "the whole image resized to \(size)x\(size) (bicubic, antialiased), aspect ratio not kept"
        case (.letterbox, _):
            return "longer side resized to \(size) (bicubic, antialiased), centred on a \(size)x\(size) canvas of the neutral colour"
        }
    }

    static func finish(_ graph: ONNXGraph, documentation: String, metadata: [(String, String)], classes: Int, width: Int,
                       size: Int) -> ONNXExport {
        ONNXExport(model: graph.serializedModel(producer: "headtune", version: HeadTuneVersion.current, documentation: documentation,
                                                metadata: metadata),
                   inputs: [(inputName, ["N", "3", "\(size)", "\(size)"])],
                   outputs: [(probabilitiesName, ["N", "\(classes)"]), (featuresName, ["N", "\(width)"]),
                             (logitsName, ["N", "\(classes)"])],
                   nodeCount: graph.nodeCount, metadata: metadata)
    }

    static func jsonText(_ value: Any) -> String {
        let data = try! JSONSerialization.data(withJSONObject: value, options: [.sortedKeys, .withoutEscapingSlashes])
        return String(decoding: data, as: UTF8.self)
    }
}
