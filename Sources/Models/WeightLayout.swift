/// PyTorch convolution weights [out, in, k, k] -> [out, k, k, in]: each output's taps outer and input
/// channels inner, the order im2col writes channels-last patches in (EfficientNet's stem, a ViT's patch
/// embedding), so the convolution is one GEMM against the permuted weights.
func permuteOIHWtoOHWI(_ w: [Float], out: Int, in inChannels: Int, kernel: Int) -> [Float] {
    var result = [Float](repeating: 0, count: w.count)
    for o in 0..<out {
        for i in 0..<inChannels {
            for t in 0..<(kernel * kernel) {
                result[(o * kernel * kernel + t) * inChannels + i] = w[(o * inChannels + i) * kernel * kernel + t]
            }
        }
    }
    return result
}

/// The inverse of `permuteOIHWtoOHWI`: [out, k, k, in] -> [out, in, k, k] (an exported ONNX `Conv`).
func permuteOHWItoOIHW(_ w: [Float], out: Int, in inChannels: Int, kernel: Int) -> [Float] {
    var result = [Float](repeating: 0, count: w.count)
    for o in 0..<out {
        for i in 0..<inChannels {
            for t in 0..<(kernel * kernel) {
                result[(o * inChannels + i) * kernel * kernel + t] = w[(o * kernel * kernel + t) * inChannels + i]
            }
        }
    }
    return result
}
