import Foundation

/// Errors from the kernels' runtime.
public enum KernelsError: Error, LocalizedError, Equatable {
    case blasUnavailable(reason: String)
    /// Int8 weights that the int8 GEMM cannot take (a -128, a scale that is negative or not finite).
    case invalidQuantizedWeights(reason: String)

    public var errorDescription: String? {
        switch self {
        case .blasUnavailable(let reason): return "BLAS unavailable: \(reason)"
        case .invalidQuantizedWeights(let reason): return "invalid int8 weights: \(reason)"
        }
    }
}
