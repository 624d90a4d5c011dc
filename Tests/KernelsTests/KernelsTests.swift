import Foundation
import Testing
@testable import Kernels

/// Deterministic pseudo-random values in [-1, 1) (xorshift), so failures reproduce.
struct SeededValues {
    var state: UInt64
    init(seed: UInt64) { state = seed | 1 }
    mutating func next() -> Float {
        state ^= state << 13; state ^= state >> 7; state ^= state << 17
        return Float(state >> 40) / Float(1 << 23) - 1
    }
    mutating func array(_ count: Int) -> [Float] { (0..<count).map { _ in next() } }
}

/// Normalized squared error, as ggml's test-backend-ops uses: sum((a-b)^2) / sum(b^2).
func normalizedSquaredError(_ a: [Float], _ b: [Float]) -> Double {
    precondition(a.count == b.count)
    var num = 0.0, den = 0.0
    for i in a.indices {
        let d = Double(a[i]) - Double(b[i])
        num += d * d
        den += Double(b[i]) * Double(b[i])
    }
    return num / max(den, 1e-30)
}

/// Naive grouped convolution over NHWC with TF 'SAME' padding. weight: [outC, k, k, inC / groups].
func naiveConvolution(input: [Float], batch: Int, height: Int, width: Int, inChannels: Int,
                      weight: [Float], bias: [Float], outChannels: Int, kernel: Int, stride: Int, groups: Int,
                      activation: Activation) -> (output: [Float], outHeight: Int, outWidth: Int) {
    let ph = SamePadding(input: height, kernel: kernel, stride: stride)
    let pw = SamePadding(input: width, kernel: kernel, stride: stride)
    let inPerGroup = inChannels / groups, outPerGroup = outChannels / groups
    var out = [Float](repeating: 0, count: batch * ph.output * pw.output * outChannels)
    for n in 0..<batch {
        for oy in 0..<ph.output {
            for ox in 0..<pw.output {
                for oc in 0..<outChannels {
                    let g = oc / outPerGroup
                    var acc = Double(bias[oc])
                    for ky in 0..<kernel {
                        for kx in 0..<kernel {
                            let iy = oy * stride - ph.before + ky, ix = ox * stride - pw.before + kx
                            guard iy >= 0, iy < height, ix >= 0, ix < width else { continue }
                            for ic in 0..<inPerGroup {
                                let x = input[((n * height + iy) * width + ix) * inChannels + g * inPerGroup + ic]
                                let w = weight[((oc * kernel + ky) * kernel + kx) * inPerGroup + ic]
                                acc += Double(x) * Double(w)
                            }
                        }
                    }
                    out[((n * ph.output + oy) * pw.output + ox) * outChannels + oc] = activation.apply(Float(acc))
                }
            }
        }
    }
    return (out, ph.output, pw.output)
}

@Suite struct KernelsTests {
    init() throws { try BLAS.load() }

    @Test func samePaddingMatchesTensorFlow() {
        // Values from the reference's per-layer table at 224 input.
        let stem = SamePadding(input: 224, kernel: 3, stride: 2)
        #expect((stem.before, stem.after, stem.output) == (0, 1, 112))
        let k5s2 = SamePadding(input: 56, kernel: 5, stride: 2)
        #expect((k5s2.before, k5s2.after, k5s2.output) == (1, 2, 28))
        let k5s2odd = SamePadding(input: 14, kernel: 5, stride: 2)
        #expect((k5s2odd.before, k5s2odd.after, k5s2odd.output) == (1, 2, 7))
        let k5s1 = SamePadding(input: 7, kernel: 5, stride: 1)
        #expect((k5s1.before, k5s1.after, k5s1.output) == (2, 2, 7))
    }

    @Test func blasRunsFastKernelsOnThisCPU() {
        // The loader must override OpenBLAS's "Prescott" misdetection on AVX2/AVX-512 machines.
        let flags = (try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8)) ?? ""
        if ProcessInfo.processInfo.environment["OPENBLAS_CORETYPE"] == nil || !BLAS.chosenCoreType.isEmpty {
            if flags.contains(" avx512f ") && flags.contains(" avx512bw ") && flags.contains(" avx512vl ") {
                #expect(BLAS.coreName.lowercased() == "skylakex")
            } else if flags.contains(" avx2 ") && flags.contains(" fma ") {
                #expect(BLAS.coreName.lowercased() == "haswell")
            }
        }
        #expect(!BLAS.coreName.lowercased().contains("prescott"))
    }

    @Test(arguments: [(false, false), (false, true), (true, false), (true, true)])
    func sgemmMatchesNaive(transposeA: Bool, transposeB: Bool) {
        let m = 37, n = 29, k = 53
        var rng = SeededValues(seed: 7)
        let a = rng.array(m * k), b = rng.array(k * n)
        var c = rng.array(m * n)
        let c0 = c
        var expected = [Float](repeating: 0, count: m * n)
        for i in 0..<m {
            for j in 0..<n {
                var acc = 0.0
                for p in 0..<k {
                    let av = transposeA ? a[p * m + i] : a[i * k + p]
                    let bv = transposeB ? b[j * k + p] : b[p * n + j]
                    acc += Double(av) * Double(bv)
                }
                expected[i * n + j] = Float(0.5 * acc + 2 * Double(c0[i * n + j]))
            }
        }
        a.withUnsafeBufferPointer { a in
            b.withUnsafeBufferPointer { b in
                c.withUnsafeMutableBufferPointer { c in
                    BLAS.sgemm(transposeA: transposeA, transposeB: transposeB, m: m, n: n, k: k, alpha: 0.5,
                               a: a.baseAddress!, lda: transposeA ? m : k, b: b.baseAddress!,
                               ldb: transposeB ? k : n, beta: 2, c: c.baseAddress!, ldc: n)
                }
            }
        }
        #expect(normalizedSquaredError(c, expected) < 1e-12)
    }

    /// The last cases are one short map (7x7, as at the end of EfficientNet) with many channels: two
    /// threads split its channels instead of its few rows.
    @Test(arguments: [(3, 1, 19, 2, 11), (3, 2, 16, 2, 11), (5, 1, 33, 2, 11), (5, 2, 48, 2, 11), (3, 2, 7, 2, 11),
                      (5, 1, 100, 1, 7), (3, 2, 144, 1, 7)])
    func depthwiseMatchesNaive(kernel: Int, stride: Int, channels: Int, batch: Int, height: Int) {
        let width = height == 7 ? 7 : 9
        var rng = SeededValues(seed: UInt64(kernel * 100 + stride * 10 + channels))
        let input = rng.array(batch * height * width * channels)
        let weightOIHW = rng.array(channels * kernel * kernel)  // [C, k, k] as PyTorch stores it
        let bias = rng.array(channels)
        let reference = naiveConvolution(input: input, batch: batch, height: height, width: width,
                                         inChannels: channels, weight: weightOIHW, bias: bias, outChannels: channels,
                                         kernel: kernel, stride: stride, groups: channels, activation: .relu6)
        // Kernel layout is [k, k, C].
        var weight = [Float](repeating: 0, count: weightOIHW.count)
        for c in 0..<channels { for t in 0..<(kernel * kernel) { weight[t * channels + c] = weightOIHW[c * kernel * kernel + t] } }
        let g = ConvolutionGeometry(batch: batch, height: height, width: width, channels: channels, kernel: kernel, stride: stride)
        #expect((g.outHeight, g.outWidth) == (reference.outHeight, reference.outWidth))
        for threads in [1, 2] {
            var output = [Float](repeating: .nan, count: g.outputCount)
            output.withUnsafeMutableBufferPointer { out in
                depthwiseConvolution(input: input, geometry: g, weight: weight, bias: bias, activation: .relu6,
                                     output: out.baseAddress!, threads: threads)
            }
            #expect(normalizedSquaredError(output, reference.output) < 1e-12, "threads \(threads)")
        }
    }

    @Test func stemConvolutionMatchesNaive() {
        let batch = 2, height = 13, width = 10, inC = 3, outC = 32, kernel = 3, stride = 2
        var rng = SeededValues(seed: 99)
        let input = rng.array(batch * height * width * inC)
        let weight = rng.array(outC * kernel * kernel * inC)  // [out, k, k, in]
        let bias = rng.array(outC)
        let reference = naiveConvolution(input: input, batch: batch, height: height, width: width, inChannels: inC,
                                         weight: weight, bias: bias, outChannels: outC, kernel: kernel, stride: stride,
                                         groups: 1, activation: .relu6)
        let g = ConvolutionGeometry(batch: batch, height: height, width: width, channels: inC, kernel: kernel, stride: stride)
        for packed in [true, false] {
            let weights = PointwiseWeights(weight: weight, bias: bias, outChannels: outC, inChannels: kernel * kernel * inC,
                                           usePackedKernel: packed)
            var columns = [Float](repeating: .nan, count: batch * g.outHeight * g.outWidth * kernel * kernel * inC)
            var output = [Float](repeating: .nan, count: batch * g.outHeight * g.outWidth * outC)
            columns.withUnsafeMutableBufferPointer { cols in
                output.withUnsafeMutableBufferPointer { out in
                    convolution(input: input, geometry: g, weights: weights, activation: .relu6,
                                columns: cols.baseAddress!, output: out.baseAddress!, threads: 2)
                }
            }
            #expect(normalizedSquaredError(output, reference.output) < 1e-12, "packed \(weights.usesPackedKernel)")
        }
    }

    @Test func pointwiseWithResidualMatchesNaive() {
        let rows = 45, inC = 24, outC = 40
        var rng = SeededValues(seed: 5)
        let input = rng.array(rows * inC), weight = rng.array(outC * inC), bias = rng.array(outC)
        let residual = rng.array(rows * outC)
        var expected = [Float](repeating: 0, count: rows * outC)
        for r in 0..<rows {
            for o in 0..<outC {
                var acc = Double(bias[o]) + Double(residual[r * outC + o])
                for i in 0..<inC { acc += Double(input[r * inC + i]) * Double(weight[o * inC + i]) }
                expected[r * outC + o] = Float(acc)
            }
        }
        var output = [Float](repeating: .nan, count: rows * outC)
        output.withUnsafeMutableBufferPointer { out in
            pointwiseConvolution(input: input, rows: rows, inChannels: inC, weight: weight, bias: bias, outChannels: outC,
                                 activation: .identity, residual: residual, output: out.baseAddress!, threads: 2)
        }
        #expect(normalizedSquaredError(output, expected) < 1e-12)
        // ReLU6 clamps at both ends.
        var clamped: [Float] = [-3, 0.5, 7, 6]
        clamped.withUnsafeMutableBufferPointer { biasActivation($0.baseAddress!, rows: 1, columns: 4, bias: [0, 0, 0, 0], activation: .relu6) }
        #expect(clamped == [0, 0.5, 6, 6])
    }

    @Test func poolingAndSoftmax() {
        let input: [Float] = [1, 2, 3, 4, 5, 6,  // image 0: 3 positions x 2 channels
                              0, 0, 0, 0, 3, 9]
        var pooled = [Float](repeating: .nan, count: 4)
        pooled.withUnsafeMutableBufferPointer { globalAveragePool(input: input, batch: 2, positions: 3, channels: 2, output: $0.baseAddress!) }
        #expect(pooled == [3, 4, 1, 3])
        var logits: [Float] = [1000, 1000, 0, log(3)]
        logits.withUnsafeMutableBufferPointer { softmaxRows($0.baseAddress!, rows: 2, columns: 2) }
        #expect(logits[0] == 0.5 && logits[1] == 0.5)
        #expect(abs(logits[2] - 0.25) < 1e-6 && abs(logits[3] - 0.75) < 1e-6)
    }
}
