// Builds ONNX models (https://onnx.ai/onnx/repo-docs/IR.html) in memory: a graph of operator nodes
// over named tensors, with the weights as initializers. Knows ONNX operators, never a model: each
// model describes its own network through these calls (Models/*+ONNX.swift).
//
// Every tensor is float32 unless said otherwise; spatial tensors are NCHW, as ONNX operators define
// them. Node and tensor names are made unique here, so callers name tensors after what they hold.

import Foundation
import SwiftProtobuf

/// One dimension of a graph input or output: a fixed size, or a named size given at run time.
public enum ONNXDimension: Sendable, Equatable {
    case fixed(Int)
    case symbolic(String)
}

/// A node attribute (the operator's static settings: kernel shape, strides, axis, ...).
public enum ONNXAttribute: Sendable, Equatable {
    case int(String, Int)
    case ints(String, [Int])
    case float(String, Float)

    var proto: Onnx_AttributeProto {
        var attribute = Onnx_AttributeProto()
        switch self {
        case .int(let name, let value):
            attribute.name = name
            attribute.type = .int
            attribute.i = Int64(value)
        case .ints(let name, let values):
            attribute.name = name
            attribute.type = .ints
            attribute.ints = values.map(Int64.init)
        case .float(let name, let value):
            attribute.name = name
            attribute.type = .float
            attribute.f = value
        }
        return attribute
    }
}

/// A graph being built: nodes in topological order (each reads tensors made before it), initializers,
/// and the graph's inputs and outputs.
public struct ONNXGraph: Sendable {
    /// The ONNX operator set the nodes follow (13: `Clip` bounds and `Slice` ranges are inputs,
    /// `ReduceMean` axes an attribute). ONNX Runtime 1.8 and later run it.
    public static let operatorSetVersion = 13
    /// IR version 7 goes with operator set 13.
    public static let irVersion = 7

    private var graph = Onnx_GraphProto()
    private var usedNames: Set<String> = []
    /// Output names kept free for `output(_:as:)`, so a node inside the network named the same way
    /// (a model's "features") gets a suffix instead.
    private var reservedOutputs: Set<String>

    public init(name: String, outputs: [String] = []) {
        graph.name = name
        reservedOutputs = Set(outputs)
        usedNames = reservedOutputs
    }

    /// A tensor name not used yet, `base` itself when free (`base_1`, `base_2`, ... otherwise).
    private mutating func uniqueName(_ base: String) -> String {
        var name = base, suffix = 0
        while usedNames.contains(name) {
            suffix += 1
            name = "\(base)_\(suffix)"
        }
        usedNames.insert(name)
        return name
    }

    private static func valueInfo(_ name: String, shape: [ONNXDimension], elementType: Onnx_TensorProto.DataType) -> Onnx_ValueInfoProto {
        var info = Onnx_ValueInfoProto()
        info.name = name
        var tensor = Onnx_TypeProto.Tensor()
        tensor.elemType = Int32(elementType.rawValue)
        tensor.shape.dim = shape.map { dimension in
            var d = Onnx_TensorShapeProto.Dimension()
            switch dimension {
            case .fixed(let size): d.dimValue = Int64(size)
            case .symbolic(let name): d.dimParam = name
            }
            return d
        }
        info.type.tensorType = tensor
        return info
    }

    /// Declares a float32 graph input; returns its name.
    @discardableResult
    public mutating func input(_ name: String, shape: [ONNXDimension], documentation: String = "") -> String {
        let name = uniqueName(name)
        var info = Self.valueInfo(name, shape: shape, elementType: .float)
        info.docString = documentation
        graph.input.append(info)
        return name
    }

    /// Makes `tensor` a float32 graph output named `name`, one of the names reserved at `init`
    /// (through an `Identity` node, so the network's own tensor names never collide with it).
    public mutating func output(_ tensor: String, as name: String, shape: [ONNXDimension], documentation: String = "") {
        precondition(reservedOutputs.remove(name) != nil, "output name \(name) was not reserved in init(name:outputs:)")
        appendNode("Identity", inputs: [tensor], outputs: [name])
        var info = Self.valueInfo(name, shape: shape, elementType: .float)
        info.docString = documentation
        graph.output.append(info)
    }

    /// A float32 initializer (a weight) of `shape`, stored little-endian; returns its name.
    public mutating func constant(_ name: String, _ values: [Float], shape: [Int]) -> String {
        precondition(values.count == shape.reduce(1, *), "\(name): \(values.count) values for shape \(shape)")
        var tensor = Onnx_TensorProto()
        tensor.name = uniqueName(name)
        tensor.dataType = Int32(Onnx_TensorProto.DataType.float.rawValue)
        tensor.dims = shape.map(Int64.init)
        tensor.rawData = values.withUnsafeBufferPointer { Data(buffer: $0) }
        graph.initializer.append(tensor)
        return tensor.name
    }

    /// An int64 initializer (shapes, axes, slice bounds); returns its name.
    public mutating func constant(_ name: String, int64s values: [Int64], shape: [Int]? = nil) -> String {
        var tensor = Onnx_TensorProto()
        tensor.name = uniqueName(name)
        tensor.dataType = Int32(Onnx_TensorProto.DataType.int64.rawValue)
        tensor.dims = (shape ?? [values.count]).map(Int64.init)
        tensor.rawData = values.withUnsafeBufferPointer { Data(buffer: $0) }
        graph.initializer.append(tensor)
        return tensor.name
    }

    private mutating func appendNode(_ operatorType: String, inputs: [String], outputs: [String], attributes: [ONNXAttribute] = []) {
        var node = Onnx_NodeProto()
        node.opType = operatorType
        node.name = "\(operatorType)_\(graph.node.count)"
        node.input = inputs
        node.output = outputs
        node.attribute = attributes.map(\.proto)
        graph.node.append(node)
    }

    /// Appends a node of `operatorType` (an operator of the default domain at `operatorSetVersion`)
    /// reading `inputs`; returns the name of its one output, `output` made unique.
    public mutating func node(_ operatorType: String, _ inputs: [String], attributes: [ONNXAttribute] = [],
                              output: String) -> String {
        let name = uniqueName(output)
        appendNode(operatorType, inputs: inputs, outputs: [name], attributes: attributes)
        return name
    }

    /// The model: this graph, the operator set, producer and `metadata` (ONNX `metadata_props`).
    public func model(producer: String, version: String, documentation: String, metadata: [(String, String)]) -> Onnx_ModelProto {
        var model = Onnx_ModelProto()
        model.irVersion = Int64(Self.irVersion)
        var operatorSet = Onnx_OperatorSetIdProto()
        operatorSet.domain = ""
        operatorSet.version = Int64(Self.operatorSetVersion)
        model.opsetImport = [operatorSet]
        model.producerName = producer
        model.producerVersion = version
        model.docString = documentation
        model.graph = graph
        model.metadataProps = metadata.map { key, value in
            var entry = Onnx_StringStringEntryProto()
            entry.key = key
            entry.value = value
            return entry
        }
        return model
    }

    /// The model file's bytes (protobuf binary encoding).
    public func serializedModel(producer: String, version: String, documentation: String, metadata: [(String, String)]) -> Data {
        // Serializing a message built from these fields cannot fail: it has no required fields left unset.
        try! model(producer: producer, version: version, documentation: documentation, metadata: metadata).serializedData()
    }

    /// Nodes so far (for tests and summaries).
    public var nodeCount: Int { graph.node.count }
    /// Floats held as weights.
    public var initializerBytes: Int { graph.initializer.reduce(0) { $0 + $1.rawData.count } }
}

// MARK: - Operators

extension ONNXGraph {
    /// `Conv` with bias: x [N, C, H, W] -> [N, out, H', W'].
    /// - weight: [out, C / group, k, k] row-major (OIHW)
    /// - pads: (top, left, bottom, right), explicit (TF 'SAME' padding is asymmetric)
    public mutating func convolution(_ x: String, weight: [Float], bias: [Float], outChannels: Int, kernel: Int, stride: Int,
                                     pads: (top: Int, left: Int, bottom: Int, right: Int), group: Int = 1,
                                     name: String) -> String {
        let inPerGroup = weight.count / (outChannels * kernel * kernel)
        let w = constant("\(name).weight", weight, shape: [outChannels, inPerGroup, kernel, kernel])
        let b = constant("\(name).bias", bias, shape: [outChannels])
        return node("Conv", [x, w, b], attributes: [
            .ints("kernel_shape", [kernel, kernel]), .ints("strides", [stride, stride]),
            .ints("pads", [pads.top, pads.left, pads.bottom, pads.right]), .ints("dilations", [1, 1]), .int("group", group),
        ], output: name)
    }

    /// `Clip` to [low, high] (ReLU6 is [0, 6]).
    public mutating func clip(_ x: String, low: Float, high: Float, name: String) -> String {
        let lowName = constant("\(name).min", [low], shape: [])
        let highName = constant("\(name).max", [high], shape: [])
        return node("Clip", [x, lowName, highName], output: name)
    }

    /// x [N, C, H, W] -> [N, C]: the mean over the spatial positions.
    public mutating func globalAveragePool(_ x: String, name: String) -> String {
        let pooled = node("GlobalAveragePool", [x], output: "\(name).pooled")
        return node("Flatten", [pooled], attributes: [.int("axis", 1)], output: name)
    }

    /// `Gemm`: x [N, in] · weightᵀ + bias -> [N, out]; weight [out, in] row-major.
    public mutating func linear(_ x: String, weight: [Float], bias: [Float], name: String) -> String {
        let inputs = weight.count / bias.count
        let w = constant("\(name).weight", weight, shape: [bias.count, inputs])
        let b = constant("\(name).bias", bias, shape: [bias.count])
        return node("Gemm", [x, w, b], attributes: [.int("transB", 1)], output: name)
    }

    /// Reverses `axis` (a left-right mirror of an NCHW image is axis 3).
    public mutating func reverse(_ x: String, axis: Int, name: String) -> String {
        let starts = constant("\(name).starts", int64s: [-1])
        let ends = constant("\(name).ends", int64s: [Int64.min])
        let axes = constant("\(name).axes", int64s: [Int64(axis)])
        let steps = constant("\(name).steps", int64s: [-1])
        return node("Slice", [x, starts, ends, axes, steps], output: name)
    }

    public mutating func concatenate(_ xs: [String], axis: Int, name: String) -> String {
        xs.count == 1 ? xs[0] : node("Concat", xs, attributes: [.int("axis", axis)], output: name)
    }

    /// `Reshape` to `shape` (0 keeps a dimension, -1 infers one).
    public mutating func reshape(_ x: String, to shape: [Int], name: String) -> String {
        let target = constant("\(name).shape", int64s: shape.map(Int64.init))
        return node("Reshape", [x, target], output: name)
    }

    /// The mean over `axis`, which is removed.
    public mutating func mean(_ x: String, axis: Int, name: String) -> String {
        node("ReduceMean", [x], attributes: [.ints("axes", [axis]), .int("keepdims", 0)], output: name)
    }

    /// (x - mean) · scale per column: x [N, D], mean and scale [D].
    public mutating func standardize(_ x: String, mean: [Float], scale: [Float], name: String) -> String {
        let m = constant("\(name).mean", mean, shape: [mean.count])
        let s = constant("\(name).scale", scale, shape: [scale.count])
        let centred = node("Sub", [x, m], output: "\(name).centred")
        return node("Mul", [centred, s], output: name)
    }
}

// MARK: - Transformer operators

extension ONNXGraph {
    /// x [..., in] · W + bias -> [..., out] for any leading dimensions (`MatMul`, then `Add`).
    /// - weight: [out, in] row-major (PyTorch's `nn.Linear` layout); bias: [out] or nil
    public mutating func matmul(_ x: String, weight: [Float], bias: [Float]?, outputs: Int, name: String) -> String {
        let inputs = weight.count / outputs
        var transposed = [Float](repeating: 0, count: weight.count)
        for o in 0..<outputs { for i in 0..<inputs { transposed[i * outputs + o] = weight[o * inputs + i] } }
        let w = constant("\(name).weight", transposed, shape: [inputs, outputs])
        let product = node("MatMul", [x, w], output: bias == nil ? name : "\(name).product")
        guard let bias else { return product }
        return node("Add", [product, constant("\(name).bias", bias, shape: [outputs])], output: name)
    }

    public mutating func transpose(_ x: String, permutation: [Int], name: String) -> String {
        node("Transpose", [x], attributes: [.ints("perm", permutation)], output: name)
    }

    /// x · value (a scalar broadcast over x).
    public mutating func scale(_ x: String, by value: Float, name: String) -> String {
        node("Mul", [x, constant("\(name).factor", [value], shape: [])], output: name)
    }

    /// LayerNorm over the last axis: (x - mean) / sqrt(variance + epsilon) · gamma + beta, written out
    /// in operator set 13 (LayerNormalization is operator set 17).
    public mutating func layerNorm(_ x: String, gamma: [Float], beta: [Float], epsilon: Float, name: String) -> String {
        let mean = node("ReduceMean", [x], attributes: [.ints("axes", [-1]), .int("keepdims", 1)], output: "\(name).mean")
        let centred = node("Sub", [x, mean], output: "\(name).centred")
        let squares = node("Mul", [centred, centred], output: "\(name).squares")
        let variance = node("ReduceMean", [squares], attributes: [.ints("axes", [-1]), .int("keepdims", 1)], output: "\(name).variance")
        let shifted = node("Add", [variance, constant("\(name).epsilon", [epsilon], shape: [])], output: "\(name).shifted")
        let deviation = node("Sqrt", [shifted], output: "\(name).deviation")
        let normalized = node("Div", [centred, deviation], output: "\(name).normalized")
        let scaled = node("Mul", [normalized, constant("\(name).gamma", gamma, shape: [gamma.count])], output: "\(name).scaled")
        return node("Add", [scaled, constant("\(name).beta", beta, shape: [beta.count])], output: name)
    }

    /// x · sigmoid(1.702 x), the GELU approximation of OpenAI's CLIP.
    public mutating func quickGELU(_ x: String, name: String) -> String {
        let gate = node("Sigmoid", [scale(x, by: 1.702, name: "\(name).scaled")], output: "\(name).gate")
        return node("Mul", [x, gate], output: name)
    }

    /// The exact GELU, x · (1 + erf(x / √2)) / 2.
    public mutating func gelu(_ x: String, name: String) -> String {
        let error = node("Erf", [scale(x, by: Float(0.5.squareRoot()), name: "\(name).scaled")], output: "\(name).erf")
        let onePlus = node("Add", [error, constant("\(name).one", [1], shape: [])], output: "\(name).one_plus")
        return scale(node("Mul", [x, onePlus], output: "\(name).product"), by: 0.5, name: name)
    }

    /// [N, 1, width] copies of `row` [width], N taken from the first dimension of `like`.
    public mutating func broadcastRow(_ row: [Float], batchOf like: String, name: String) -> String {
        let shape = node("Shape", [like], output: "\(name).input_shape")
        let batch = node("Slice", [shape, constant("\(name).start", int64s: [0]), constant("\(name).end", int64s: [1])],
                         output: "\(name).batch")
        let target = concatenate([batch, constant("\(name).row_shape", int64s: [1, Int64(row.count)])], axis: 0,
                                 name: "\(name).shape")
        return node("Expand", [constant("\(name).row", row, shape: [1, 1, row.count]), target], output: name)
    }

    /// x [..., n, ...] -> the `index`th slice along `axis`, which is removed.
    public mutating func select(_ x: String, index: Int, axis: Int, name: String) -> String {
        node("Gather", [x, constant("\(name).index", int64s: [Int64(index)], shape: [])], attributes: [.int("axis", axis)], output: name)
    }
}
