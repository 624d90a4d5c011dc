import CKernels

/// Element-wise activations that convolution and GEMM epilogues apply.
public enum Activation: Sendable, Equatable {
    case identity
    /// min(max(x, 0), 6), as in MobileNetV2 / EfficientNet-Lite.
    case relu6
    /// x · sigmoid(1.702 x), CLIP's quick_gelu (GEMM epilogues only).
    case quickGELU

    @inline(__always)
    func apply(_ x: Float) -> Float {
        switch self {
        case .identity: return x
        case .relu6: return min(max(x, 0), 6)
        case .quickGELU: return Kernels.quickGELU(x)
        }
    }

    /// The HK_ACTIVATION_* code of the GEMM epilogues.
    var kernelCode: Int32 {
        switch self {
        case .identity: return HK_ACTIVATION_IDENTITY
        case .relu6: return HK_ACTIVATION_RELU6
        case .quickGELU: return HK_ACTIVATION_QUICK_GELU
        }
    }

    /// The ReLU6 flag of the kernels that apply only identity or ReLU6 (depthwise, int8).
    var relu6Flag: Int32 {
        precondition(self != .quickGELU, "quick_gelu runs in GEMM epilogues only")
        return self == .relu6 ? 1 : 0
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
