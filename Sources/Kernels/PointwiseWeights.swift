import Foundation
import CKernels

/// Weights of a 1x1 convolution (or a linear layer), prepared once at load for the fastest path this
/// CPU has: packed panels for the AVX-512 or AVX2 GEMM with fused epilogue, else row-major for OpenBLAS.
public final class PointwiseWeights: @unchecked Sendable {
    public let outChannels: Int
    public let inChannels: Int
    /// [outChannels, inChannels] for the BLAS path; empty when the packed copy is used (no second copy
    /// of the model in memory).
    public let weight: [Float]
    /// [outChannels]
    public let bias: [Float]
    /// 64-byte aligned panels, or nil when the BLAS path is used. Immutable after init.
    let packed: UnsafeMutablePointer<Float>?
    /// A copy of `bias` with a stable address for the C kernels, alongside `packed`.
    let packedBias: UnsafeMutablePointer<Float>?

    /// - usePackedKernel: false forces the BLAS path (tests compare the two).
    public init(weight: [Float], bias: [Float], outChannels: Int, inChannels: Int,
                usePackedKernel: Bool = PointwiseWeights.packedKernelAvailable) {
        precondition(weight.count == outChannels * inChannels && bias.count == outChannels)
        self.bias = bias
        self.outChannels = outChannels
        self.inChannels = inChannels
        if usePackedKernel && Self.packedKernelAvailable {
            let count = hk_gemm_packed_count(outChannels, inChannels)
            let raw = UnsafeMutableRawPointer.allocate(byteCount: count * MemoryLayout<Float>.size, alignment: 64)
            let packed = raw.bindMemory(to: Float.self, capacity: count)
            hk_gemm_pack(weight, outChannels, inChannels, packed)
            self.packed = packed
            self.weight = []
            let packedBias = UnsafeMutablePointer<Float>.allocate(capacity: outChannels)
            packedBias.initialize(from: bias, count: outChannels)
            self.packedBias = packedBias
        } else {
            self.weight = weight
            packed = nil
            packedBias = nil
        }
    }

    deinit {
        packed.map { UnsafeMutableRawPointer($0).deallocate() }
        packedBias?.deallocate()
    }

    /// Whether the packed GEMM runs: on AVX-512 and on AVX2 + FMA. HEADTUNE_GEMM=blas forces OpenBLAS
    /// (for comparisons and as an escape hatch). On a Zen 2 the AVX2 kernel measured 1.2-3x OpenBLAS on
    /// few rows (EfficientNet batch 1 79 -> 146 images/s, CLIP text batch 1 62 -> 108 sentences/s) and
    /// the same or better on many (EfficientNet batch 32 134 -> 155; CLIP image batch 32 equal), since
    /// it blocks for the caches like OpenBLAS does (BENCHMARKS.md, 2026-12-02, Zen 2).
    public static let packedKernelAvailable: Bool = {
        switch ProcessInfo.processInfo.environment["HEADTUNE_GEMM"] {
        case "blas": return false
        default: return hk_gemm_packed_available() != 0
        }
    }()

    /// Which GEMM runs the 1x1 convolutions and linear layers here, for `headtune info`.
    public static var gemmDescription: String {
        if !packedKernelAvailable {
            return hk_gemm_packed_available() != 0 ? "OpenBLAS (HEADTUNE_GEMM=blas)" : "OpenBLAS (no AVX2 + FMA on this CPU)"
        }
        return hk_gemm_available() != 0 ? "headtune packed AVX-512 (8x32 blocks)" : "headtune packed AVX2 + FMA (6x16 blocks)"
    }

    /// Whether the AVX-512 kernels that read packed weights directly (the fused inverted-residual
    /// block) run here; with the AVX2 GEMM that block goes layer by layer.
    public static let fusedBlockAvailable: Bool = packedKernelAvailable && hk_gemm_available() != 0

    public var usesPackedKernel: Bool { packed != nil }

    /// One weight, from whichever layout is kept (for inspection and tests).
    public func weight(output o: Int, input i: Int) -> Float {
        precondition(o >= 0 && o < outChannels && i >= 0 && i < inChannels)
        guard let packed else { return weight[o * inChannels + i] }
        return packed[hk_gemm_packed_offset(o, i, inChannels)]
    }
}

/// 1x1 convolution with prepared weights:
/// `out[m, :] = activation(in[m, :] · weightᵀ + bias (+ residual[m, :]))`.
/// - input: [rows, inChannels], rows `inputStride` floats apart (default inChannels)
/// - residual, output: [rows, outChannels], rows `outputStride` floats apart (default outChannels);
///   residual may be output itself (`out += in · weightᵀ + bias`)
/// - columns: only these output channels, written where the whole product puts them (the others are
///   not touched), e.g. the keys and values of a fused q/k/v projection for rows whose queries are not
///   needed; `weights.computesColumns(columns)` must hold. nil: all.
public func pointwiseConvolution(
    input: UnsafePointer<Float>, rows: Int, weights: PointwiseWeights, activation: Activation,
    residual: UnsafePointer<Float>? = nil, output: UnsafeMutablePointer<Float>, inputStride: Int? = nil,
    outputStride: Int? = nil, columns: Range<Int>? = nil, threads: Int
) {
    let columns = columns ?? 0..<weights.outChannels
    precondition(weights.computesColumns(columns), "columns \(columns) do not start and end on 32-channel panels")
    guard let packed = weights.packed else {
        weights.weight.withUnsafeBufferPointer { w in
            weights.bias.withUnsafeBufferPointer { b in
                pointwiseConvolution(input: input, rows: rows, inChannels: weights.inChannels, weight: w.baseAddress!,
                                     bias: b.baseAddress!, outChannels: weights.outChannels, activation: activation,
                                     residual: residual, output: output, inputStride: inputStride,
                                     outputStride: outputStride, columns: columns, threads: threads)
            }
        }
        return
    }
    let lda = inputStride ?? weights.inChannels, ldc = outputStride ?? weights.outChannels
    precondition(lda >= weights.inChannels && ldc >= weights.outChannels)
    guard !columns.isEmpty, rows > 0 else { return }
    let code = activation.kernelCode
    let bias = weights.packedBias!
    let blocks = (rows + 7) / 8
    let firstPanel = columns.lowerBound / 32, endPanel = (columns.upperBound + 31) / 32
    if threads > 1 && blocks < 4 * threads && endPanel - firstPanel >= 2 {
        // Few rows (a 7x7 map, one image's logits): split the output columns, 32 at a time.
        parallelFor(endPanel - firstPanel, threads: threads) { range in
            hk_gemm_strided(input, lda, 0, rows, weights.inChannels, packed, weights.outChannels, bias,
                            residual, code, output, ldc, firstPanel + range.lowerBound, firstPanel + range.upperBound)
        }
        return
    }
    // Chunks of 8-row multiples so the kernel's full-height blocks line up.
    parallelFor(blocks, threads: threads, minimumChunk: 4) { range in
        let first = range.lowerBound * 8, last = min(range.upperBound * 8, rows)
        hk_gemm_strided(input, lda, first, last, weights.inChannels, packed, weights.outChannels, bias,
                        residual, code, output, ldc, firstPanel, endPanel)
    }
}

/// A row stride of at least `columns` floats for a matrix that GEMMs read or write: rows exactly a
/// multiple of 4 KiB apart put the 8 rows of a register block in the same L1 sets, so such a width
/// gets 16 floats (64 bytes) more.
public func gemmRowStride(columns: Int) -> Int {
    columns * MemoryLayout<Float>.size % 4096 == 0 ? columns + 16 : columns
}

extension PointwiseWeights {
    /// Whether `pointwiseConvolution(..., columns:)` computes exactly these columns here: any range on
    /// the BLAS path; whole 32-channel panels (the last may be partial) on the packed kernel.
    public func computesColumns(_ columns: Range<Int>) -> Bool {
        guard columns.lowerBound >= 0 && columns.upperBound <= outChannels else { return false }
        return packed == nil || (columns.lowerBound % 32 == 0 && (columns.upperBound % 32 == 0 || columns.upperBound == outChannels))
    }
}

