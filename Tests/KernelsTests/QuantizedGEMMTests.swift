import CKernels
import Testing
@testable import Kernels

/// (rows, k, n): partial 8-row blocks, partial 32-channel panels (and half panels), k not a multiple of 4
/// (k % 4 = 3: the stem's im2col, 1, 2), few rows with many panels (the column split), and
/// EfficientNet-Lite0's 1x1 shapes.
private let shapes = [(1, 27, 32), (7, 16, 24), (13, 40, 240), (64, 144, 24), (49, 1152, 320), (3, 1280, 1000), (9, 5, 33), (10, 30, 64)]

private let noVNNI = "the CPU has no AVX-512 VNNI: only the reference kernel is tested"

/// Σₖ a[m, k] · w[n, k] in Int, [rows, n]: the integer reference.
private func naiveSums(_ a: [UInt8], _ w: [Int8], rows: Int, k: Int, n: Int) -> [Int] {
    var sums = [Int](repeating: 0, count: rows * n)
    a.withUnsafeBufferPointer { a in
        w.withUnsafeBufferPointer { w in
            for m in 0..<rows {
                for o in 0..<n {
                    var sum = 0
                    for i in 0..<k { sum += Int(a[m * k + i]) * Int(w[o * k + i]) }
                    sums[m * n + o] = sum
                }
            }
        }
    }
    return sums
}

/// The uint8 rounding the kernels document, written independently: round half to even in Double,
/// + zero point, clamped; NaN -> zero point.
private func naiveQuantize(_ x: Float, _ p: QuantizationParameters) -> UInt8 {
    let t = x * (1 / p.scale)
    if t.isNaN { return UInt8(p.zeroPoint) }
    return UInt8(min(max(Double(t).rounded(.toNearestOrEven) + Double(p.zeroPoint), 0), 255))
}

/// nil when equal, else how many elements differ and the first: a readable failure, not two dumped arrays.
private func difference<T: Equatable>(_ actual: [T], _ expected: [T]) -> String? {
    guard actual.count == expected.count else { return "\(actual.count) values, expected \(expected.count)" }
    let differing = actual.indices.filter { actual[$0] != expected[$0] }
    guard let first = differing.first else { return nil }
    return "\(differing.count) of \(actual.count) differ, first at \(first): \(actual[first]) instead of \(expected[first])"
}

private extension SeededValues {
    mutating func bytes(_ count: Int) -> [UInt8] { (0..<count).map { _ in UInt8(min(Int((next() + 1) * 128), 255)) } }
    mutating func weights(_ count: Int) -> [Int8] { (0..<count).map { _ in Int8(max(min((next() * 128).rounded(.down), 127), -127)) } }
}

/// Runs the GEMM through the Swift API.
private func run(_ input: [UInt8], rows: Int, _ weights: QuantizedPointwiseWeights, activation: Activation = .identity,
                 residual: [Float]? = nil, threads: Int, kernel: QuantizedKernel) -> [Float] {
    var out = [Float](repeating: .nan, count: rows * weights.outChannels)
    out.withUnsafeMutableBufferPointer { out in
        withOptionalPointer(residual) { residual in
            quantizedPointwiseConvolution(input: input, rows: rows, weights: weights, activation: activation, residual: residual,
                                          output: .float(out.baseAddress!), threads: threads, kernel: kernel)
        }
    }
    return out
}

private func runUInt8(_ input: [UInt8], rows: Int, _ weights: QuantizedPointwiseWeights, activation: Activation,
                      residual: [Float]?, output parameters: QuantizationParameters, threads: Int, kernel: QuantizedKernel) -> [UInt8] {
    var out = [UInt8](repeating: 0xA5, count: rows * weights.outChannels)
    out.withUnsafeMutableBufferPointer { out in
        withOptionalPointer(residual) { residual in
            quantizedPointwiseConvolution(input: input, rows: rows, weights: weights, activation: activation, residual: residual,
                                          output: .uint8(out.baseAddress!, parameters), threads: threads, kernel: kernel)
        }
    }
    return out
}

private func withOptionalPointer<R>(_ array: [Float]?, _ body: (UnsafePointer<Float>?) -> R) -> R {
    guard let array else { return body(nil) }
    return array.withUnsafeBufferPointer { body($0.baseAddress!) }
}

@Suite struct QuantizedGEMMTests {
    // MARK: exact int32 sums

    @Test(arguments: shapes) func referenceSumsAreExact(rows: Int, k: Int, n: Int) { checkSums(rows: rows, k: k, n: n, kernel: .reference) }

    @Test(.enabled(if: QuantizedPointwiseWeights.available, Comment(rawValue: noVNNI)), arguments: shapes)
    func vnniSumsAreExact(rows: Int, k: Int, n: Int) { checkSums(rows: rows, k: k, n: n, kernel: .vnni) }

    /// With input scale 1, zero point 0, weight scales 1 and bias 0 the float output is the int32 sum
    /// itself (exact in float below 2^24), through the Swift API with 1 and 2 threads (2 threads split
    /// few rows by panels) and through the C entry with rows and panels split at odd places.
    func checkSums(rows: Int, k: Int, n: Int, kernel: QuantizedKernel) {
        var rng = SeededValues(seed: UInt64(rows * 7919 + k * 31 + n))
        let a = rng.bytes(rows * k), w = rng.weights(n * k)
        let expected = naiveSums(a, w, rows: rows, k: k, n: n)
        #expect(expected.allSatisfy { abs($0) < 1 << 24 }, "sums exact in float")
        let weights = try! QuantizedPointwiseWeights(quantizedWeight: w, weightScales: .init(repeating: 1, count: n),
                                                     bias: .init(repeating: 0, count: n), outChannels: n, inChannels: k,
                                                     input: .init(scale: 1, zeroPoint: 0))
        for threads in [1, 2] {
            let out = run(a, rows: rows, weights, threads: threads, kernel: kernel)
            #expect(difference(out.map { Int($0) }, expected) == nil, "\(kernel) threads \(threads)")
        }
        var out = [Float](repeating: .nan, count: rows * n)
        let panels = (n + 31) / 32, middle = rows / 2 + 1
        out.withUnsafeMutableBufferPointer { out in
            var epilogue = hk_qgemm_epilogue(offset: weights.offset, scale: weights.scale, bias: weights.packedBias, residual: nil,
                                             relu6: 0, output: out.baseAddress!, output_u8: nil, output_inv_scale: 1,
                                             output_zero_point: 0)
            for (begin, end) in [(0, min(middle, rows)), (min(middle, rows), rows)] {
                for (p0, p1) in [(0, panels / 2), (panels / 2, panels)] where p1 > p0 {
                    (kernel == .vnni ? hk_qgemm_vnni : hk_qgemm_reference)(a, begin, end, k, weights.packed, n, &epilogue, p0, p1)
                }
            }
        }
        #expect(difference(out.map { Int($0) }, expected) == nil, "\(kernel) split at row \(middle) and panel \(panels / 2)")
    }

    // MARK: the epilogue

    @Test(arguments: shapes) func referenceEpilogueMatchesNaive(rows: Int, k: Int, n: Int) { checkEpilogue(rows: rows, k: k, n: n, kernel: .reference) }

    @Test(.enabled(if: QuantizedPointwiseWeights.available, Comment(rawValue: noVNNI)), arguments: shapes)
    func vnniEpilogueMatchesNaive(rows: Int, k: Int, n: Int) { checkEpilogue(rows: rows, k: k, n: n, kernel: .vnni) }

    /// Realistic quantization (weights quantized from fp32 by the class, input scale 0.02 and zero point
    /// 20, bias and residual of the outputs' size): the float output equals, bit for bit, the documented
    /// float operations on the exact sums (float(sum + offset) fused-multiplied by the scale, + bias,
    /// + residual, ReLU6), and is within 1e-6 relative (of |Σ x w| + |bias| + |residual|) of a Double
    /// reference on the dequantized values; the uint8 output (covering the output range, as calibration
    /// would choose it) equals the documented rounding of that float exactly.
    func checkEpilogue(rows: Int, k: Int, n: Int, kernel: QuantizedKernel) {
        var rng = SeededValues(seed: UInt64(rows * 131 + k * 17 + n))
        let a = rng.bytes(rows * k), fp32 = rng.array(n * k), bias = rng.array(n).map { $0 * 4 }
        let residual = rng.array(rows * n).map { $0 * 4 }
        let input = QuantizationParameters(scale: 0.02, zeroPoint: 20)
        let weights = QuantizedPointwiseWeights(weight: fp32, bias: bias, outChannels: n, inChannels: k, input: input)
        let w = (0..<n * k).map { weights.quantizedWeight(output: $0 / k, input: $0 % k) }
        let sums = naiveSums(a, w, rows: rows, k: k, n: n)
        let columnSums = (0..<n).map { o in (0..<k).reduce(0) { $0 + Int(w[o * k + $1]) } }
        // Σ x w on the dequantized values in Double, and Σ |x w| (the tolerance's scale).
        var dots = [Double](repeating: 0, count: rows * n), absolutes = dots
        for m in 0..<rows {
            for o in 0..<n {
                var dot = 0.0, absolute = 0.0
                for i in 0..<k {
                    let term = Double(input.scale) * Double(Int(a[m * k + i]) - input.zeroPoint) *
                        Double(weights.weightScales[o]) * Double(w[o * k + i])
                    dot += term
                    absolute += abs(term)
                }
                dots[m * n + o] = dot
                absolutes[m * n + o] = absolute
            }
        }
        for withResidual in [false, true] {
            for activation in [Activation.identity, .relu6] {
                var expected = [Float](repeating: 0, count: rows * n), magnitude = [Double](repeating: 0, count: rows * n)
                var exact = [Double](repeating: 0, count: rows * n)
                for m in 0..<rows {
                    for o in 0..<n {
                        let scale = input.scale * weights.weightScales[o]
                        var y = bias[o].addingProduct(Float(sums[m * n + o] - input.zeroPoint * columnSums[o]), scale)
                        if withResidual { y += residual[m * n + o] }
                        expected[m * n + o] = activation.apply(y)
                        let skip = withResidual ? Double(residual[m * n + o]) : 0
                        let value = dots[m * n + o] + Double(bias[o]) + skip
                        exact[m * n + o] = activation == .relu6 ? min(max(value, 0), 6) : value
                        magnitude[m * n + o] = absolutes[m * n + o] + abs(Double(bias[o])) + abs(skip)
                    }
                }
                let lowest = expected.min()!, highest = expected.max()!
                let outputQuantization = QuantizationParameters(minimum: lowest, maximum: highest)
                let expectedBytes = expected.map { naiveQuantize($0, outputQuantization) }
                for threads in [1, 2] {
                    let label = "\(kernel) residual \(withResidual) \(activation) threads \(threads)"
                    let out = run(a, rows: rows, weights, activation: activation, residual: withResidual ? residual : nil,
                                  threads: threads, kernel: kernel)
                    #expect(difference(out.map(\.bitPattern), expected.map(\.bitPattern)) == nil, "float output, \(label)")
                    let worst = out.indices.map { abs(Double(out[$0]) - exact[$0]) / max(magnitude[$0], 1e-30) }.max()!
                    #expect(worst < 1e-6, "float output vs Double, \(label)")
                    let bytes = runUInt8(a, rows: rows, weights, activation: activation, residual: withResidual ? residual : nil,
                                         output: outputQuantization, threads: threads, kernel: kernel)
                    #expect(difference(bytes, expectedBytes) == nil, "uint8 output, \(label)")
                }
                #expect(Set(expectedBytes).count >= min(rows * n / 4, 64), "the uint8 outputs spread over the range")
            }
        }
    }

    @Test func referenceRoundsTiesToEven() { checkTies(kernel: .reference) }

    @Test(.enabled(if: QuantizedPointwiseWeights.available, Comment(rawValue: noVNNI)))
    func vnniRoundsTiesToEven() { checkTies(kernel: .vnni) }

    /// Small integer sums requantized with output scale 2: every odd sum is a tie (y / 2 = n + 0.5),
    /// which the uint8 epilogue rounds to even, as hk_quantize_u8 does.
    func checkTies(kernel: QuantizedKernel) {
        let rows = 13, k = 27, n = 40
        var rng = SeededValues(seed: 77)
        let a = rng.bytes(rows * k).map { $0 / 64 }, w = rng.weights(n * k).map { $0 / 43 }
        let sums = naiveSums(a, w, rows: rows, k: k, n: n)
        let weights = try! QuantizedPointwiseWeights(quantizedWeight: w, weightScales: .init(repeating: 1, count: n),
                                                     bias: .init(repeating: 0, count: n), outChannels: n, inChannels: k,
                                                     input: .init(scale: 1, zeroPoint: 0))
        let output = QuantizationParameters(scale: 2, zeroPoint: 128)
        #expect(sums.filter { $0 % 2 != 0 }.count > 100 && sums.allSatisfy { abs($0) < 250 }, "many ties, none clamped")
        let bytes = runUInt8(a, rows: rows, weights, activation: .identity, residual: nil, output: output, threads: 1, kernel: kernel)
        #expect(difference(bytes, sums.map { naiveQuantize(Float($0), output) }) == nil)
        #expect(difference(bytes, sums.map { UInt8(128 + Int((Double($0) / 2).rounded(.toNearestOrEven))) }) == nil, "half to even, spelled out")
    }

    @Test func referenceNaNFollowsThePolicy() { checkNaN(kernel: .reference) }

    @Test(.enabled(if: QuantizedPointwiseWeights.available, Comment(rawValue: noVNNI)))
    func vnniNaNFollowsThePolicy() { checkNaN(kernel: .vnni) }

    /// A NaN bias (or residual) stays NaN in float output without ReLU6 and becomes 0 with it (as
    /// max(y, 0) does), and becomes the output zero point in uint8 output either way.
    func checkNaN(kernel: QuantizedKernel) {
        let rows = 3, k = 8, n = 20
        var rng = SeededValues(seed: 3)
        let a = rng.bytes(rows * k)
        var bias = rng.array(n)
        bias[5] = .nan
        let weights = QuantizedPointwiseWeights(weight: rng.array(n * k), bias: bias, outChannels: n, inChannels: k,
                                                input: .init(scale: 0.01, zeroPoint: 9))
        let output = QuantizationParameters(scale: 0.1, zeroPoint: 17)
        for activation in [Activation.identity, .relu6] {
            let floats = run(a, rows: rows, weights, activation: activation, threads: 1, kernel: kernel)
            let bytes = runUInt8(a, rows: rows, weights, activation: activation, residual: nil, output: output, threads: 1, kernel: kernel)
            for m in 0..<rows {
                #expect(activation == .relu6 ? floats[m * n + 5] == 0 : floats[m * n + 5].isNaN, "\(kernel) \(activation)")
                #expect(bytes[m * n + 5] == 17, "\(kernel) \(activation)")
                #expect(!floats[m * n + 4].isNaN && !floats[m * n + 6].isNaN, "other channels unaffected")
            }
        }
    }

    // MARK: extremes

    @Test(arguments: [4096, 65536]) func referenceExtremesAreExact(k: Int) { checkExtremes(k: k, kernel: .reference) }

    @Test(.enabled(if: QuantizedPointwiseWeights.available, Comment(rawValue: noVNNI)), arguments: [4096, 65536])
    func vnniExtremesAreExact(k: Int) { checkExtremes(k: k, kernel: .vnni) }

    /// All activations 255 times all weights +127 (even channels) or -127 (odd channels): sums of
    /// ±32385 · k, 2,122,383,360 at k = 65536 (the documented limit, just below 2^31), with no saturation
    /// (vpmaddubsw's int16 pairs would saturate at 32767); exactly representable in float. Zero point 255
    /// cancels them to 0 exactly, zero point 254 leaves ±127 · k.
    func checkExtremes(k: Int, kernel: QuantizedKernel) {
        let rows = 9, n = 40
        let a = [UInt8](repeating: 255, count: rows * k)
        let w = (0..<n * k).map { ($0 / k) % 2 == 0 ? Int8(127) : Int8(-127) }
        for (zeroPoint, perUnit) in [(0, 255), (255, 0), (254, 1)] {
            let weights = try! QuantizedPointwiseWeights(quantizedWeight: w, weightScales: .init(repeating: 1, count: n),
                                                         bias: .init(repeating: 0, count: n), outChannels: n, inChannels: k,
                                                         input: .init(scale: 1, zeroPoint: zeroPoint))
            let expected = (0..<rows * n).map { Float(($0 % n) % 2 == 0 ? 127 * perUnit * k : -127 * perUnit * k) }
            #expect(difference(run(a, rows: rows, weights, threads: 2, kernel: kernel), expected) == nil, "\(kernel) k \(k) zero point \(zeroPoint)")
        }
    }

    // MARK: weight quantization

    @Test func quantizesWeightsPerChannel() throws {
        // Channel 0: step exactly 1 (max 127), with ties that round to even; channel 1: the same times
        // 0.25 (exact); channel 2: zeros; channel 3: random.
        let ties: [Float] = [127, 0.5, 1.5, 2.5, -2.5, -127, 3.49, -0.5]
        let expectedTies: [Int8] = [127, 0, 2, 2, -2, -127, 3, 0]
        var rng = SeededValues(seed: 99)
        let random = rng.array(8)
        let weight = ties + ties.map { $0 * 0.25 } + [Float](repeating: 0, count: 8) + random
        let (values, scales) = QuantizedPointwiseWeights.quantizePerChannel(weight: weight, outChannels: 4, inChannels: 8)
        #expect(Array(values[0..<8]) == expectedTies && Array(values[8..<16]) == expectedTies)
        #expect(Array(values[16..<24]) == [Int8](repeating: 0, count: 8))
        #expect(scales[0] == 1 && scales[1] == 0.25 && scales[2] == 0)
        let largest = random.map(abs).max()!
        #expect(scales[3] == largest / 127)
        #expect(values[24..<32].map { abs(Int($0)) }.max() == 127)
        for i in 0..<8 { #expect(abs(random[i] - scales[3] * Float(values[24 + i])) <= scales[3] / 2) }

        let weights = QuantizedPointwiseWeights(weight: weight, bias: [1, 2, 3, 4], outChannels: 4, inChannels: 8,
                                                input: .init(scale: 0.5, zeroPoint: 7))
        #expect((0..<32).map { weights.quantizedWeight(output: $0 / 8, input: $0 % 8) } == values, "packed weights read back")
        #expect(weights.weightScales == scales && weights.bias == [1, 2, 3, 4])
        #expect((0..<4).map { weights.offset[$0] } == (0..<4).map { o in Int32(-7 * values[o * 8..<(o + 1) * 8].reduce(0) { $0 + Int($1) }) })
        #expect((0..<4).map { weights.scale[$0] } == scales.map { 0.5 * $0 })
    }

    @Test func rejectsInvalidQuantizedWeights() {
        let input = QuantizationParameters(scale: 1, zeroPoint: 0)
        #expect(throws: KernelsError.invalidQuantizedWeights(reason: "weights [2, 3]: channel 1 input 2 is -128 (symmetric int8 weights are in -127...127; requantize the model)")) {
            try QuantizedPointwiseWeights(quantizedWeight: [1, 2, 3, 4, 5, -128], weightScales: [1, 1], bias: [0, 0],
                                          outChannels: 2, inChannels: 3, input: input)
        }
        for bad: Float in [-1, .nan, .infinity] {
            #expect(throws: KernelsError.self) {
                try QuantizedPointwiseWeights(quantizedWeight: [1, 2, 3, 4, 5, 6], weightScales: [1, bad], bias: [0, 0],
                                              outChannels: 2, inChannels: 3, input: input)
            }
        }
    }

    // MARK: activation quantization

    /// hk_quantize_u8 against the documented rounding: ties (x / s exactly n + 0.5, with a power-of-two
    /// scale) to even, clamping of large values and infinities, NaN -> zero point, -0; then random
    /// values with a scale that is not a power of two, over a count with vector tails, 1 and 2 threads.
    @Test func quantizeMatchesScalarRounding() {
        let halves = QuantizationParameters(scale: 0.5, zeroPoint: 100)
        let special: [Float] = [0.25, 0.75, 1.25, -0.25, -0.75, -1.25, 1e30, -1e30, .infinity, -.infinity, .nan, -0.0,
                                63.75, 63.25, 64.0, -50.25, -49.25, -48.75, 77.25, 77.75]
        let expected: [UInt8] = [100, 102, 102, 100, 98, 98, 255, 0, 255, 0, 100, 100,
                                 228, 226, 228, 0, 2, 2, 254, 255]
        #expect(special.map { naiveQuantize($0, halves) } == expected, "the reference itself")
        var out = [UInt8](repeating: 0, count: special.count)
        quantize(input: special, count: special.count, parameters: halves, output: &out, threads: 1)
        #expect(out == expected)

        var rng = SeededValues(seed: 5)
        let count = 50_003
        let values = rng.array(count).map { $0 * 3 }
        let parameters = QuantizationParameters(minimum: -2.5, maximum: 2.5)
        let reference = values.map { naiveQuantize($0, parameters) }
        for threads in [1, 2] {
            var bytes = [UInt8](repeating: 0, count: count)
            quantize(input: values, count: count, parameters: parameters, output: &bytes, threads: threads)
            #expect(difference(bytes, reference) == nil, "threads \(threads)")
        }
        #expect(reference.contains(0) && reference.contains(255), "clamped at both ends")

        var back = [Float](repeating: .nan, count: count)
        dequantize(input: reference, count: count, parameters: parameters, output: &back, threads: 2)
        #expect(difference(back, reference.map { Float(Int($0) - parameters.zeroPoint) * parameters.scale }) == nil)
        let inside = values.indices.filter { abs(values[$0]) < 2.4 }
        #expect(inside.allSatisfy { abs(back[$0] - values[$0]) <= parameters.scale / 2 * 1.0001 }, "round trip within half a step")
    }

    /// The stem's quantized patches equal quantizing the float patches, byte for byte, padding included,
    /// for strides 1 and 2, odd sizes and a zero point that is not 0.
    @Test(arguments: [(9, 7, 3, 3, 2), (8, 8, 4, 3, 1), (5, 11, 3, 5, 2)])
    func im2colQuantizedEqualsQuantizedPatches(height: Int, width: Int, channels: Int, kernel: Int, stride: Int) {
        var random = SeededValues(seed: UInt64(height * 31 + width * 7 + kernel))
        let batch = 2
        let input = random.array(batch * height * width * channels).map { $0 * 3 }
        let g = ConvolutionGeometry(batch: batch, height: height, width: width, channels: channels, kernel: kernel, stride: stride)
        let count = batch * g.outHeight * g.outWidth * kernel * kernel * channels
        let parameters = QuantizationParameters(minimum: -2.5, maximum: 3.5)
        var patches = [Float](repeating: .nan, count: count)
        var expected = [UInt8](repeating: 0, count: count), fused = [UInt8](repeating: 7, count: count)
        var image = [UInt8](repeating: 0, count: input.count)
        input.withUnsafeBufferPointer { x in
            patches.withUnsafeMutableBufferPointer { im2col(input: x.baseAddress!, geometry: g, columns: $0.baseAddress!, threads: 1) }
            image.withUnsafeMutableBufferPointer { i in
                fused.withUnsafeMutableBufferPointer {
                    im2colQuantized(input: x.baseAddress!, geometry: g, parameters: parameters, image: i.baseAddress!,
                                    columns: $0.baseAddress!, threads: 2)
                }
            }
        }
        patches.withUnsafeBufferPointer { p in
            expected.withUnsafeMutableBufferPointer { quantize(input: p.baseAddress!, count: count, parameters: parameters, output: $0.baseAddress!, threads: 1) }
        }
        #expect(fused == expected)
        #expect(g.padTop > 0 || g.padLeft > 0 ? expected.contains(UInt8(parameters.zeroPoint)) : true, "padding is the zero point")
    }

    /// The depthwise convolution's uint8 output equals quantizing its float output, byte for byte: 3x3
    /// and 5x5, strides 1 and 2, a map split by rows and one split by channels (few rows), 1 and 2 threads.
    @Test(arguments: [(14, 13, 48, 3, 1), (15, 15, 40, 5, 2), (3, 3, 96, 3, 1), (7, 7, 64, 5, 1)])
    func depthwiseQuantizedEqualsQuantizedDepthwise(height: Int, width: Int, channels: Int, kernel: Int, stride: Int) {
        var random = SeededValues(seed: UInt64(height * 131 + channels * 3 + kernel))
        let input = random.array(height * width * channels).map { $0 * 4 }
        let weight = random.array(kernel * kernel * channels), bias = random.array(channels)
        let g = ConvolutionGeometry(batch: 1, height: height, width: width, channels: channels, kernel: kernel, stride: stride)
        let count = g.outHeight * g.outWidth * channels
        let parameters = QuantizationParameters(minimum: 0, maximum: 6)
        for threads in [1, 2] {
            var float = [Float](repeating: .nan, count: count)
            var expected = [UInt8](repeating: 0, count: count), fused = [UInt8](repeating: 7, count: count)
            var scratch = [Float](repeating: .nan, count: depthwiseQuantizedScratchCount(geometry: g, threads: threads))
            depthwiseConvolution(input: input, geometry: g, weight: weight, bias: bias, activation: .relu6, output: &float,
                                 threads: threads)
            quantize(input: float, count: count, parameters: parameters, output: &expected, threads: 1)
            depthwiseConvolutionQuantized(input: input, geometry: g, weight: weight, bias: bias, activation: .relu6,
                                          parameters: parameters, output: &fused, rowScratch: &scratch, threads: threads)
            #expect(fused == expected, "threads \(threads)")
        }
    }

    @Test func parametersCoverTheRangeAndZero() {
        let a = QuantizationParameters(minimum: -1, maximum: 3)
        #expect(a.scale == Float(4) / 255 && a.zeroPoint == 64)
        let b = QuantizationParameters(minimum: 0.5, maximum: 2)
        #expect(b.scale == Float(2) / 255 && b.zeroPoint == 0)
        let c = QuantizationParameters(minimum: -2, maximum: -1)
        #expect(c.scale == Float(2) / 255 && c.zeroPoint == 255)
        #expect(QuantizationParameters(minimum: 0, maximum: 0) == QuantizationParameters(scale: 1, zeroPoint: 0))
        // 0 quantizes to the zero point exactly.
        for p in [a, b, c] { #expect(naiveQuantize(0, p) == UInt8(p.zeroPoint)) }
    }
}
