import Testing
@testable import Kernels

@Suite struct PointwiseWeightsTests {
    init() throws { try BLAS.load() }

    /// Both paths (packed AVX-512 kernel where the CPU has it, and BLAS) against a float64 reference,
    /// on shapes with partial row blocks and partial 32-channel panels.
    @Test(arguments: [(1, 3, 5), (13, 16, 24), (64, 96, 24), (77, 144, 40), (9, 1152, 320), (130, 320, 1280)])
    func matchesNaive(rows: Int, inChannels: Int, outChannels: Int) {
        var rng = SeededValues(seed: UInt64(rows * 7 + inChannels * 3 + outChannels))
        let input = rng.array(rows * inChannels), weight = rng.array(outChannels * inChannels)
        let bias = rng.array(outChannels), residual = rng.array(rows * outChannels)
        for withResidual in [false, true] {
            for activation in [Activation.identity, .relu6] {
                var expected = [Float](repeating: 0, count: rows * outChannels)
                for r in 0..<rows {
                    for o in 0..<outChannels {
                        var acc = Double(bias[o]) + (withResidual ? Double(residual[r * outChannels + o]) : 0)
                        for i in 0..<inChannels { acc += Double(input[r * inChannels + i]) * Double(weight[o * inChannels + i]) }
                        expected[r * outChannels + o] = activation.apply(Float(acc * 3))  // scaled: exercises the clamp
                    }
                }
                let scaled = weight.map { $0 * 3 }, scaledBias = bias.map { $0 * 3 }
                let scaledResidual = residual.map { $0 * 3 }
                for packed in [true, false] {
                    let weights = PointwiseWeights(weight: scaled, bias: scaledBias, outChannels: outChannels,
                                                   inChannels: inChannels, usePackedKernel: packed)
                    var output = [Float](repeating: .nan, count: rows * outChannels)
                    output.withUnsafeMutableBufferPointer { out in
                        scaledResidual.withUnsafeBufferPointer { res in
                            pointwiseConvolution(input: input, rows: rows, weights: weights, activation: activation,
                                                 residual: withResidual ? res.baseAddress! : nil,
                                                 output: out.baseAddress!, threads: 2)
                        }
                    }
                    #expect(normalizedSquaredError(output, expected) < 1e-11,
                            "packed \(weights.usesPackedKernel) residual \(withResidual) \(activation)")
                }
            }
        }
    }
}
