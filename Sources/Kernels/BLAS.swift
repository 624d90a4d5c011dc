import COpenBLAS

/// Single-precision GEMM through OpenBLAS, loaded at run time so that its CPU kernels are chosen
/// correctly on VMs that OpenBLAS misdetects (see `COpenBLAS.h`).
public enum BLAS {
    /// Loads OpenBLAS once; later calls are free. Call it early to get a missing library as an error;
    /// `sgemm` otherwise loads on first use (and stops the process with the reason if it cannot).
    public static func load() throws(KernelsError) {
        var message = [CChar](repeating: 0, count: 512)
        if headtune_blas_load(&message, Int32(message.count)) != 0 {
            let bytes = message.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }
            throw .blasUnavailable(reason: String(decoding: bytes, as: UTF8.self))
        }
    }

    /// The kernel family OpenBLAS runs, e.g. "SkylakeX". Empty before `load()`.
    public static var coreName: String { String(cString: headtune_blas_core_name()) }

    /// The OPENBLAS_CORETYPE the loader set, or "" when the user's setting was kept or none applied.
    public static var chosenCoreType: String { String(cString: headtune_blas_chosen_coretype()) }

    /// OpenBLAS's own thread count: 1, set at load and never changed. headtune splits work across
    /// threads itself (`parallelFor`), so no model depends on, or changes, process-wide BLAS state.
    public static var threads: Int { Int(headtune_blas_get_threads()) }

    /// Row-major `C[m, n] = alpha * op(A)[m, k] * op(B)[k, n] + beta * C`.
    /// `transposeA`: A is stored [k, m]; `transposeB`: B is stored [n, k].
    @inline(__always)
    public static func sgemm(
        transposeA: Bool = false, transposeB: Bool = false, m: Int, n: Int, k: Int,
        alpha: Float = 1, a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int,
        beta: Float = 0, c: UnsafeMutablePointer<Float>, ldc: Int
    ) {
        headtune_sgemm(transposeA ? 1 : 0, transposeB ? 1 : 0, Int32(m), Int32(n), Int32(k), alpha, a, Int32(lda),
                       b, Int32(ldb), beta, c, Int32(ldc))
    }
}
