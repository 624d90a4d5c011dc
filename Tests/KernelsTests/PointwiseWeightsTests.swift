import CKernels
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

    /// The AVX2 kernel itself, called directly so it is tested on AVX-512 machines too (where the
    /// dispatcher picks the AVX-512 one): row counts around its 6-row blocks, half and partial panels.
    @Test(.enabled(if: hk_gemm_avx2_available() != 0, "the CPU has no AVX2 + FMA"),
          arguments: [(1, 3, 5), (7, 16, 17), (13, 64, 40), (61, 96, 33), (130, 320, 1280), (9, 1152, 40), (250, 600, 70)])
    func avx2KernelMatchesNaive(rows: Int, inChannels: Int, outChannels: Int) {
        var rng = SeededValues(seed: UInt64(rows * 11 + inChannels * 5 + outChannels))
        let input = rng.array(rows * inChannels), weight = rng.array(outChannels * inChannels).map { $0 * 3 }
        let bias = rng.array(outChannels).map { $0 * 3 }, residual = rng.array(rows * outChannels).map { $0 * 3 }
        let count = hk_gemm_packed_count(outChannels, inChannels)
        let raw = UnsafeMutableRawPointer.allocate(byteCount: count * 4, alignment: 64)
        defer { raw.deallocate() }
        let packed = raw.bindMemory(to: Float.self, capacity: count)
        hk_gemm_pack(weight, outChannels, inChannels, packed)
        for withResidual in [false, true] {
            for relu6 in [false, true] {
                var expected = [Float](repeating: 0, count: rows * outChannels)
                for r in 0..<rows {
                    for o in 0..<outChannels {
                        var acc = Double(bias[o]) + (withResidual ? Double(residual[r * outChannels + o]) : 0)
                        for i in 0..<inChannels { acc += Double(input[r * inChannels + i]) * Double(weight[o * inChannels + i]) }
                        expected[r * outChannels + o] = relu6 ? Activation.relu6.apply(Float(acc)) : Float(acc)
                    }
                }
                // Rows split in two calls and panels in two ranges, as the threads split them.
                var output = [Float](repeating: .nan, count: rows * outChannels)
                let panels = (outChannels + 31) / 32, middle = rows / 2
                output.withUnsafeMutableBufferPointer { out in
                    residual.withUnsafeBufferPointer { res in
                        for (begin, end) in [(0, middle), (middle, rows)] {
                            for (p0, p1) in [(0, panels / 2), (panels / 2, panels)] where p1 > p0 {
                                hk_gemm_bias_activation_panels_avx2(input, begin, end, inChannels, packed, outChannels, bias,
                                                                    withResidual ? res.baseAddress! : nil, relu6 ? 1 : 0,
                                                                    out.baseAddress!, p0, p1)
                            }
                        }
                    }
                }
                #expect(normalizedSquaredError(output, expected) < 1e-11, "residual \(withResidual) relu6 \(relu6)")
                #expect(!output.contains { $0.isNaN }, "every output written")
            }
        }
    }
}
