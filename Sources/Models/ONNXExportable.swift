import ONNX

/// An image network that writes itself into an ONNX graph (`headtune export`), so a head trained
/// here runs in ONNX Runtime and the runtimes built on it. One extension per model file conforms.
public protocol ONNXExportableImageModel: ImageEncoderModel {
    /// Appends the network to `graph`, reading `input` [N, 3, size, size] float32 (RGB, NCHW,
    /// normalized as `preprocessing` says), and returns the tensor holding each of `outputs`,
    /// [N, width] as `outputWidths` gives the width.
    func appendONNX(to graph: inout ONNXGraph, input: String, outputs: Set<ImageOutputName>) -> [ImageOutputName: String]
}
