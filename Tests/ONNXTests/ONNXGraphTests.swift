import Foundation
import SwiftProtobuf
import Testing
@testable import ONNX

@Suite struct ONNXGraphTests {
    /// A small network through the builder, read back from its bytes with the generated messages.
    func smallModel() throws -> Onnx_ModelProto {
        var graph = ONNXGraph(name: "small", outputs: ["probabilities"])
        let x = graph.input("pixels", shape: [.symbolic("N"), .fixed(3), .fixed(4), .fixed(4)])
        let weight = (0..<(2 * 3 * 3 * 3)).map { Float($0) / 10 }
        var y = graph.convolution(x, weight: weight, bias: [0.5, -0.5], outChannels: 2, kernel: 3, stride: 2,
                                  pads: (0, 0, 1, 1), name: "stem")
        y = graph.clip(y, low: 0, high: 6, name: "stem.relu6")
        // A node inside the network named like an output: it gets a suffix, the output keeps its name.
        y = graph.globalAveragePool(y, name: "probabilities")
        let mirrored = graph.reverse(x, axis: 3, name: "mirrored")
        _ = graph.concatenate([x, mirrored], axis: 0, name: "views")
        y = graph.node("Softmax", [y], attributes: [.int("axis", 1)], output: "softmax")
        graph.output(y, as: "probabilities", shape: [.symbolic("N"), .fixed(2)])
        let bytes = graph.serializedModel(producer: "headtune", version: "test", documentation: "a test",
                                          metadata: [("headtune.labels", "[\"a\", \"b\"]")])
        return try Onnx_ModelProto(serializedBytes: bytes)
    }

    @Test func modelDeclaresItsOperatorSetAndMetadata() throws {
        let model = try smallModel()
        #expect(model.irVersion == 7)
        #expect(model.opsetImport.map(\.version) == [13] && model.opsetImport[0].domain == "")
        #expect(model.producerName == "headtune" && model.producerVersion == "test")
        #expect(model.metadataProps.map { [$0.key, $0.value] } == [["headtune.labels", "[\"a\", \"b\"]"]])
        let input = model.graph.input[0]
        #expect(input.name == "pixels")
        #expect(input.type.tensorType.elemType == Int32(Onnx_TensorProto.DataType.float.rawValue))
        #expect(input.type.tensorType.shape.dim.map { $0.dimParam.isEmpty ? "\($0.dimValue)" : $0.dimParam } == ["N", "3", "4", "4"])
    }

    @Test func nodesReadTensorsMadeBeforeThemAndNamesAreUnique() throws {
        let graph = try smallModel().graph
        #expect(graph.node.map(\.opType) == ["Conv", "Clip", "GlobalAveragePool", "Flatten", "Slice", "Concat", "Softmax", "Identity"])
        var known = Set(graph.input.map(\.name) + graph.initializer.map(\.name))
        for node in graph.node {
            for input in node.input { #expect(known.contains(input), "\(node.name) reads \(input) before it is made") }
            for output in node.output { #expect(!known.contains(output), "\(output) is made twice") }
            known.formUnion(node.output)
        }
        #expect(graph.node[3].output == ["probabilities_1"])
        #expect(graph.output.map(\.name) == ["probabilities"] && graph.node.last?.output == ["probabilities"])
    }

    @Test func convolutionCarriesItsWeightsAndGeometry() throws {
        let graph = try smallModel().graph
        let conv = graph.node[0]
        let attributes = Dictionary(uniqueKeysWithValues: conv.attribute.map { ($0.name, $0) })
        #expect(attributes["kernel_shape"]?.ints == [3, 3] && attributes["strides"]?.ints == [2, 2])
        #expect(attributes["pads"]?.ints == [0, 0, 1, 1] && attributes["group"]?.i == 1)
        let weight = try #require(graph.initializer.first { $0.name == conv.input[1] })
        #expect(weight.dims == [2, 3, 3, 3])
        #expect(weight.dataType == Int32(Onnx_TensorProto.DataType.float.rawValue))
        let values = weight.rawData.withUnsafeBytes { Array($0.bindMemory(to: Float.self)) }
        #expect(values == (0..<54).map { Float($0) / 10 })
        // Slice bounds are int64 initializers: from the last element to before the first, step -1.
        let slice = graph.node[4]
        let bounds = slice.input.dropFirst().map { name in
            graph.initializer.first { $0.name == name }!.rawData.withUnsafeBytes { Array($0.bindMemory(to: Int64.self)) }
        }
        #expect(bounds == [[-1], [Int64.min], [3], [-1]])
    }
}
