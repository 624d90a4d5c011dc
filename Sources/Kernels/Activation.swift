/// Element-wise activations that convolution and GEMM epilogues apply.
public enum Activation: Sendable, Equatable {
    case identity
    /// min(max(x, 0), 6), as in MobileNetV2 / EfficientNet-Lite.
    case relu6

    @inline(__always)
    func apply(_ x: Float) -> Float {
        switch self {
        case .identity: return x
        case .relu6: return min(max(x, 0), 6)
        }
    }
}

/// TensorFlow 'SAME' padding for one spatial dimension: output = ceil(input / stride), and the
/// extra padding goes after (bottom/right) when the total is odd.
public struct SamePadding: Sendable, Equatable {
    public let before: Int
    public let after: Int
    public let output: Int

    public init(input: Int, kernel: Int, stride: Int) {
        output = (input + stride - 1) / stride
        let total = max((output - 1) * stride + kernel - input, 0)
        before = total / 2
        after = total - before
    }
}
