// EfficientNet-Lite as an ONNX graph: the same folded weights `forward` runs, in ONNX's NCHW layout.

import Kernels
import ONNX

extension EfficientNetLite: ONNXExportableImageModel {
    public func appendONNX(to graph: inout ONNXGraph, input: String, outputs: Set<ImageOutputName>) -> [ImageOutputName: String] {
        let c = configuration
        let plan = EfficientNetLitePlan(configuration: c, height: c.inputSize, width: c.inputSize)

        /// TF 'SAME' padding of a convolution over `geometry`'s input, (top, left, bottom, right).
        func samePads(_ geometry: ConvolutionGeometry) -> (top: Int, left: Int, bottom: Int, right: Int) {
            let vertical = SamePadding(input: geometry.height, kernel: geometry.kernel, stride: geometry.stride)
            let horizontal = SamePadding(input: geometry.width, kernel: geometry.kernel, stride: geometry.stride)
            return (vertical.before, horizontal.before, vertical.after, horizontal.after)
        }
        func pointwise(_ x: String, _ weights: PointwiseWeights, relu6: Bool, name: String) -> String {
            // [out, in] is OIHW for a 1x1 kernel.
            let y = graph.convolution(x, weight: rowMajor(weights), bias: weights.bias, outChannels: weights.outChannels, kernel: 1,
                                      stride: 1, pads: (0, 0, 0, 0), name: name)
            return relu6 ? graph.clip(y, low: 0, high: 6, name: "\(name).relu6") : y
        }

        // Stem: [out, k, k, in] (im2col's channels-last patches) -> [out, in, k, k].
        let stemWeight = permuteOHWItoOIHW(rowMajor(stem), out: stem.outChannels, in: 3, kernel: 3)
        var x = graph.convolution(input, weight: stemWeight, bias: stem.bias, outChannels: stem.outChannels, kernel: 3, stride: 2,
                                  pads: samePads(plan.stem), name: "stem")
        x = graph.clip(x, low: 0, high: 6, name: "stem.relu6")

        var stageOutputs: [String] = []
        for (b, block) in blocks.enumerated() {
            let a = block.arguments, name = "blocks.\(b)"
            var y = block.expand.map { pointwise(x, $0, relu6: true, name: "\(name).expand") } ?? x
            // Depthwise: [k, k, channels] -> [channels, 1, k, k].
            let k = a.kernel, channels = a.expandedChannels
            var depthwiseWeight = [Float](repeating: 0, count: channels * k * k)
            for ch in 0..<channels { for t in 0..<(k * k) { depthwiseWeight[ch * k * k + t] = block.depthwise.weight[t * channels + ch] } }
            y = graph.convolution(y, weight: depthwiseWeight, bias: block.depthwise.bias, outChannels: channels, kernel: k,
                                  stride: a.stride, pads: samePads(plan.blocks[b]), group: channels, name: "\(name).depthwise")
            y = graph.clip(y, low: 0, high: 6, name: "\(name).depthwise.relu6")
            y = pointwise(y, block.project, relu6: false, name: "\(name).project")
            if a.hasResidual { y = graph.node("Add", [y, x], output: "\(name).residual") }
            x = y
            if endsStage[b] { stageOutputs.append(x) }
        }
        x = pointwise(x, head, relu6: true, name: "head")
        var result: [ImageOutputName: String] = [:]
        // [N, headChannels]
        let features = graph.globalAveragePool(x, name: "features")
        if outputs.contains(.features) { result[.features] = features }
        if outputs.contains(.stages) {
            // [N, stagePooledFeatureCount]: each stage's output averaged, stage by stage.
            let pooled = stageOutputs.enumerated().map { s, output in graph.globalAveragePool(output, name: "stage\(s).pooled") }
            result[.stages] = graph.concatenate(pooled, axis: 1, name: "stages")
        }
        if outputs.contains(.logits) {
            result[.logits] = graph.linear(features, weight: rowMajor(classifier), bias: classifier.bias, name: "logits")
        }
        return result
    }
}
