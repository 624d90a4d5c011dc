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
    /// dispatcher picks the AVX-512 one): row counts around its 6-row blocks, half and partial panels,
    /// several k and row blocks, weights large enough for the panel prefetch.
    @Test(.enabled(if: hk_gemm_avx2_available() != 0, "the CPU has no AVX2 + FMA"),
          arguments: [(1, 3, 5), (7, 16, 17), (13, 64, 40), (61, 96, 33), (130, 320, 1280), (9, 1152, 40), (250, 600, 70), (60, 700, 800)])
    func avx2KernelMatchesNaive(rows: Int, inChannels: Int, outChannels: Int) {
        var rng = SeededValues(seed: UInt64(rows * 11 + inChannels * 5 + outChannels))
        let input = rng.array(rows * inChannels), weight = rng.array(outChannels * inChannels).map { $0 * 3 }
        let bias = rng.array(outChannels).map { $0 * 3 }, residual = rng.array(rows * outChannels).map { $0 * 3 }
        let count = hk_gemm_packed_count(outChannels, inChannels)
        let raw = UnsafeMutableRawPointer.allocate(byteCount: count * 4, alignment: 64)
        defer { raw.deallocate() }
        let packed = raw.bindMemory(to: Float.self, capacity: count)
        hk_gemm_pack_avx2(weight, outChannels, inChannels, packed)
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
                                hk_gemm_strided_avx2(input, inChannels, begin, end, inChannels, packed, outChannels, bias,
                                                     withResidual ? res.baseAddress! : nil, relu6 ? 1 : 0,
                                                     out.baseAddress!, outChannels, p0, p1)
                            }
                        }
                    }
                }
                #expect(normalizedSquaredError(output, expected) < 1e-11, "residual \(withResidual) relu6 \(relu6)")
                #expect(!output.contains { $0.isNaN }, "every output written")
            }
        }
    }

    /// What CLIP's MLP asks of the GEMM: rows further apart than their width (lda, ldc), quick_gelu in
    /// the epilogue, and the residual added in place (output == residual), on the dispatcher's kernel,
    /// the BLAS path and the AVX2 kernel. The input's padding holds NaN (never read) and the output's
    /// padding a sentinel (never written).
    @Test(arguments: [(1, 3, 5), (13, 48, 40), (61, 96, 70), (130, 320, 288), (160, 1700, 48)])
    func stridedInPlaceAndQuickGELU(rows: Int, inChannels: Int, outChannels: Int) {
        var rng = SeededValues(seed: UInt64(rows * 5 + inChannels * 13 + outChannels))
        let lda = inChannels + 5, ldc = outChannels + 19, sentinel: Float = -12345
        let values = rng.array(rows * inChannels), weight = rng.array(outChannels * inChannels).map { $0 * 3 }
        let bias = rng.array(outChannels).map { $0 * 3 }, residualValues = rng.array(rows * outChannels).map { $0 * 3 }
        var input = [Float](repeating: .nan, count: rows * lda)
        for r in 0..<rows { for i in 0..<inChannels { input[r * lda + i] = values[r * inChannels + i] } }
        func padded(_ matrix: [Float]?) -> [Float] {
            var out = [Float](repeating: sentinel, count: rows * ldc)
            for r in 0..<rows { for o in 0..<outChannels { out[r * ldc + o] = matrix?[r * outChannels + o] ?? .nan } }
            return out
        }
        let count = hk_gemm_packed_count(outChannels, inChannels)
        let raw = UnsafeMutableRawPointer.allocate(byteCount: count * 4, alignment: 64)
        defer { raw.deallocate() }
        let packedAVX2 = raw.bindMemory(to: Float.self, capacity: count)
        hk_gemm_pack_avx2(weight, outChannels, inChannels, packedAVX2)
        enum Residual: CaseIterable { case none, separate, inPlace }
        for activation in [Activation.identity, .relu6, .quickGELU] {
            for residual in Residual.allCases {
                var expected = [Float](repeating: 0, count: rows * outChannels)
                for r in 0..<rows {
                    for o in 0..<outChannels {
                        var acc = Double(bias[o]) + (residual == .none ? 0 : Double(residualValues[r * outChannels + o]))
                        for i in 0..<inChannels { acc += Double(values[r * inChannels + i]) * Double(weight[o * inChannels + i]) }
                        expected[r * outChannels + o] = activation.apply(Float(acc))
                    }
                }
                let separate = padded(residualValues)
                var paths: [(String, (UnsafeMutablePointer<Float>) -> Void)] = []
                for packed in [true, false] {
                    let weights = PointwiseWeights(weight: weight, bias: bias, outChannels: outChannels,
                                                   inChannels: inChannels, usePackedKernel: packed)
                    paths.append(("packed \(weights.usesPackedKernel)", { out in
                        separate.withUnsafeBufferPointer { res in
                            let skip: UnsafePointer<Float>? = residual == .none ? nil
                                : residual == .separate ? res.baseAddress! : UnsafePointer(out)
                            pointwiseConvolution(input: input, rows: rows, weights: weights, activation: activation,
                                                 residual: skip, output: out, inputStride: lda, outputStride: ldc,
                                                 threads: 2)
                        }
                    }))
                }
                if hk_gemm_avx2_available() != 0 {
                    paths.append(("AVX2 kernel", { out in
                        separate.withUnsafeBufferPointer { res in
                            let skip: UnsafePointer<Float>? = residual == .none ? nil
                                : residual == .separate ? res.baseAddress! : UnsafePointer(out)
                            let panels = (outChannels + 31) / 32, middle = rows / 2
                            for (begin, end) in [(0, middle), (middle, rows)] {
                                hk_gemm_strided_avx2(input, lda, begin, end, inChannels, packedAVX2, outChannels, bias, skip,
                                                     activation.kernelCode, out, ldc, 0, panels)
                            }
                        }
                    }))
                }
                for (name, run) in paths {
                    var output = residual == .inPlace ? padded(residualValues) : padded(nil)
                    output.withUnsafeMutableBufferPointer { run($0.baseAddress!) }
                    var compact = [Float](repeating: 0, count: rows * outChannels)
                    for r in 0..<rows { for o in 0..<outChannels { compact[r * outChannels + o] = output[r * ldc + o] } }
                    #expect(normalizedSquaredError(compact, expected) < 1e-11, "\(name) \(activation) residual \(residual)")
                    let untouched = (0..<rows).allSatisfy { r in (outChannels..<ldc).allSatisfy { output[r * ldc + $0] == sentinel } }
                    #expect(untouched, "\(name) \(activation) residual \(residual): padding written")
                }
            }
        }
    }

    /// A range of output columns (keys and values of a fused projection) equals those columns of the
    /// whole product (bit for bit on the packed kernel) and leaves the others as they were, on the packed
    /// and BLAS paths.
    @Test(arguments: [(1, 40, 96, 32..<96), (21, 64, 200, 64..<200), (70, 33, 130, 0..<64), (9, 16, 48, 0..<48)])
    func columnRangeEqualsThoseColumnsOfTheWholeProduct(rows: Int, inChannels: Int, outChannels: Int, columns: Range<Int>) {
        var rng = SeededValues(seed: UInt64(rows + inChannels * 3 + outChannels * 7))
        let input = rng.array(rows * inChannels), weight = rng.array(outChannels * inChannels), bias = rng.array(outChannels)
        let sentinel: Float = 777
        for packed in [true, false] {
            let weights = PointwiseWeights(weight: weight, bias: bias, outChannels: outChannels, inChannels: inChannels,
                                           usePackedKernel: packed)
            #expect(weights.computesColumns(columns))
            var whole = [Float](repeating: .nan, count: rows * outChannels)
            whole.withUnsafeMutableBufferPointer { out in
                pointwiseConvolution(input: input, rows: rows, weights: weights, activation: .identity,
                                     output: out.baseAddress!, threads: 2)
            }
            var part = [Float](repeating: sentinel, count: rows * outChannels)
            part.withUnsafeMutableBufferPointer { out in
                pointwiseConvolution(input: input, rows: rows, weights: weights, activation: .identity,
                                     output: out.baseAddress!, columns: columns, threads: 2)
            }
            for r in 0..<rows {
                for c in 0..<outChannels {
                    let index = r * outChannels + c
                    if columns.contains(c) {
                        // The packed kernel sums each output the same way whatever the range; OpenBLAS may
                        // block a narrower product differently.
                        let tolerance: Float = weights.usesPackedKernel ? 0 : 1e-5
                        #expect(abs(part[index] - whole[index]) <= tolerance, "packed \(weights.usesPackedKernel) row \(r) column \(c)")
                    } else {
                        #expect(part[index] == sentinel, "packed \(weights.usesPackedKernel) column \(c) written")
                    }
                }
            }
        }
        let packedWeights = PointwiseWeights(weight: weight, bias: bias, outChannels: outChannels, inChannels: inChannels,
                                             usePackedKernel: true)
        if packedWeights.usesPackedKernel { #expect(!packedWeights.computesColumns(5..<outChannels)) }
    }
}
