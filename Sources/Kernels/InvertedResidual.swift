import CKernels
import Foundation

/// Scratch floats `invertedResidual` needs per thread for a block with this depthwise geometry
/// (`geometry.channels` = the expanded width).
public func invertedResidualScratchCount(geometry g: ConvolutionGeometry) -> Int {
    hk_inverted_residual_scratch_count(g.width, g.channels, g.kernel, g.outWidth, g.outHeight)
}

/// Whether `invertedResidual` can run these weights (it needs the packed AVX-512 GEMM).
public func invertedResidualAvailable(expand: PointwiseWeights?, project: PointwiseWeights) -> Bool {
    PointwiseWeights.fusedBlockAvailable && project.usesPackedKernel && (expand?.usesPackedKernel ?? true)
}

/// An inverted-residual block of one image in one pass over its output rows (CKernels'
/// hk_inverted_residual): `project(relu6(depthwise(relu6(expand(input)))))` (+ input when `residual`),
/// the expanded activations never leaving cache.
/// - input: [height, width, inChannels]; output: [outHeight, outWidth, project.outChannels]
/// - geometry: the depthwise convolution's (batch 1, channels = expanded width)
/// - depthwiseWeight: [kernel, kernel, channels]
/// - scratch: `threads · invertedResidualScratchCount(geometry:)` floats
public func invertedResidual(
    input: UnsafePointer<Float>, inChannels: Int, expand: PointwiseWeights?, geometry g: ConvolutionGeometry,
    depthwiseWeight: UnsafePointer<Float>, depthwiseBias: UnsafePointer<Float>, project: PointwiseWeights,
    residual: Bool, output: UnsafeMutablePointer<Float>, scratch: UnsafeMutablePointer<Float>, threads: Int
) {
    precondition(g.batch == 1 && g.kernel <= 7 && invertedResidualAvailable(expand: expand, project: project))
    precondition(!residual || (g.stride == 1 && inChannels == project.outChannels))
    let scratchCount = invertedResidualScratchCount(geometry: g)
    // Few, large row chunks: each chunk re-expands the kernel - stride input rows it shares with the
    // previous one.
    let chunks = max(1, min(threads, g.outHeight / 2))
    runOnPool(chunks: chunks, participants: chunks) { chunk, participant in
        let begin = g.outHeight * chunk / chunks, end = g.outHeight * (chunk + 1) / chunks
        hk_inverted_residual(input, g.height, g.width, inChannels, expand?.packed, expand?.packedBias, g.channels,
                             depthwiseWeight, depthwiseBias, g.kernel, g.stride, g.padTop, g.padLeft,
                             g.outHeight, g.outWidth, project.packed, project.packedBias, project.outChannels,
                             residual ? 1 : 0, output, begin, end, scratch + participant * scratchCount)
    }
}
