import Testing
@testable import Kernels

@Suite struct InvertedResidualTests {
    init() throws { try BLAS.load() }

    /// The fused block against the same three layers run one after another, on 1 and 2 threads (two
    /// threads re-expand the rows their halves share), with and without expansion and residual.
    @Test(arguments: [(3, 1, 16, 6, 16, 12, 13), (3, 2, 16, 6, 24, 15, 15), (5, 1, 24, 6, 24, 10, 9),
                      (5, 2, 24, 6, 40, 11, 16), (3, 1, 32, 1, 16, 9, 10)])
    func matchesLayerByLayer(kernel: Int, stride: Int, inChannels: Int, expandRatio: Int, outChannels: Int,
                             height: Int, width: Int) throws {
        let mid = inChannels * expandRatio
        var rng = SeededValues(seed: UInt64(kernel * 1000 + stride * 100 + inChannels + outChannels * 7))
        let input = rng.array(height * width * inChannels).map { $0 * 2 }
        let expand = expandRatio == 1 ? nil : PointwiseWeights(weight: rng.array(mid * inChannels), bias: rng.array(mid),
                                                               outChannels: mid, inChannels: inChannels)
        let depthwiseWeight = rng.array(kernel * kernel * mid), depthwiseBias = rng.array(mid)
        let project = PointwiseWeights(weight: rng.array(outChannels * mid), bias: rng.array(outChannels),
                                       outChannels: outChannels, inChannels: mid)
        guard invertedResidualAvailable(expand: expand, project: project) else { return }  // no AVX-512 here
        let g = ConvolutionGeometry(batch: 1, height: height, width: width, channels: mid, kernel: kernel, stride: stride)
        let residual = stride == 1 && inChannels == outChannels

        var expanded = [Float](repeating: 0, count: height * width * mid)
        var filtered = [Float](repeating: 0, count: g.outHeight * g.outWidth * mid)
        var expected = [Float](repeating: 0, count: g.outHeight * g.outWidth * outChannels)
        if let expand {
            pointwiseConvolution(input: input, rows: height * width, weights: expand, activation: .relu6,
                                 output: &expanded, threads: 1)
        } else {
            expanded = input
        }
        depthwiseConvolution(input: expanded, geometry: g, weight: depthwiseWeight, bias: depthwiseBias,
                             activation: .relu6, output: &filtered, threads: 1)
        input.withUnsafeBufferPointer { x in
            pointwiseConvolution(input: filtered, rows: g.outHeight * g.outWidth, weights: project, activation: .identity,
                                 residual: residual ? x.baseAddress! : nil, output: &expected, threads: 1)
        }

        for threads in [1, 2] {
            var scratch = [Float](repeating: .nan, count: threads * invertedResidualScratchCount(geometry: g))
            var output = [Float](repeating: .nan, count: expected.count)
            invertedResidual(input: input, inChannels: inChannels, expand: expand, geometry: g,
                             depthwiseWeight: depthwiseWeight, depthwiseBias: depthwiseBias, project: project,
                             residual: residual, output: &output, scratch: &scratch, threads: threads)
            #expect(normalizedSquaredError(output, expected) < 1e-12, "threads \(threads)")
        }
    }
}
