import Foundation

/// Errors from the kernels' runtime.
public enum KernelsError: Error, LocalizedError, Equatable {
    case blasUnavailable(reason: String)

    public var errorDescription: String? {
        switch self {
        case .blasUnavailable(let reason): return "BLAS unavailable: \(reason)"
        }
    }
}
