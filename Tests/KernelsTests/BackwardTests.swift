import Foundation
import Testing
@testable import Kernels

/// The backward kernels against central finite differences of their forward kernels, on
/// L = Σ y ⊙ R for a fixed random R (so dL/dy = R). The forward kernels are linear in each of
/// their inputs, so a difference step of 0.5 is exact up to float rounding; in double precision
/// the sums would be tighter, but the point is to check the kernels as they run.
@Suite struct BackwardTests {
    /// The tensors a loss reads, held by reference so a difference can nudge one while the loss reads all.
    final class Tensors {
        var x: [Float], w: [Float], b: [Float]
        init(x: [Float], w: [Float] = [], b: [Float] = []) { self.x = x; self.w = w; self.b = b }
    }

    /// Central difference of `loss` at `tensors[keyPath: tensor][i]`.
    static func difference(_ tensors: Tensors, _ tensor: ReferenceWritableKeyPath<Tensors, [Float]>, _ i: Int, step: Float = 0.5,
                           _ loss: () -> Double) -> Double {
        let saved = tensors[keyPath: tensor][i]
        tensors[keyPath: tensor][i] = saved + step
        let up = loss()
        tensors[keyPath: tensor][i] = saved - step
        let down = loss()
        tensors[keyPath: tensor][i] = saved
        return (up - down) / (2 * Double(step))
    }

    static func dot(_ a: [Float], _ b: [Float]) -> Double { zip(a, b).reduce(0) { $0 + Double($1.0) * Double($1.1) } }

    static func expectClose(_ analytic: Float, _ numeric: Double, scale: Double, _ what: String) {
        #expect(abs(Double(analytic) - numeric) <= 1e-4 * max(scale, 1), "\(what): analytic \(analytic), numeric \(numeric)")
    }

    /// Threads 1-4 cover every split of dX and dW between them (one each, two each, 1 + 2).
    @Test(arguments: [1, 2, 3, 4])
    func pointwiseBackwardMatchesFiniteDifferences(threads: Int) throws {
        try BLAS.load()
        var values = SeededValues(seed: 7)
        let rows = 37, inputs = 19, outputs = 23
        let t = Tensors(x: values.array(rows * inputs), w: values.array(outputs * inputs), b: values.array(outputs))
        let (x, w, b) = (t.x, t.w, t.b)
        let r = values.array(rows * outputs)
        func loss() -> Double {
            var y = [Float](repeating: 0, count: rows * outputs)
            pointwiseConvolution(input: t.x, rows: rows, inChannels: inputs, weight: t.w, bias: t.b, outChannels: outputs,
                                 activation: .identity, output: &y, threads: 1)
            return Self.dot(y, r)
        }
        // Gradients accumulate: start from a known value and subtract it after.
        var dx = [Float](repeating: 1, count: x.count), dw = [Float](repeating: 1, count: w.count)
        var db = [Float](repeating: 1, count: b.count)
        pointwiseConvolutionBackward(input: x, rows: rows, inChannels: inputs, weight: w, outChannels: outputs, outputGradient: r,
                                     inputGradient: &dx, weightGradient: &dw, biasGradient: &db, threads: threads)
        for i in stride(from: 0, to: x.count, by: 13) { Self.expectClose(dx[i] - 1, Self.difference(t, \.x, i, loss), scale: 10, "dx[\(i)]") }
        for i in stride(from: 0, to: w.count, by: 11) { Self.expectClose(dw[i] - 1, Self.difference(t, \.w, i, loss), scale: 10, "dw[\(i)]") }
        for i in b.indices { Self.expectClose(db[i] - 1, Self.difference(t, \.b, i, loss), scale: 10, "db[\(i)]") }
    }

    /// Without dX (the first trained block's input is frozen) all threads split dW.
    @Test(arguments: [1, 2, 3])
    func pointwiseWeightGradientAloneEqualsTheFullBackward(threads: Int) throws {
        try BLAS.load()
        var values = SeededValues(seed: 11)
        let rows = 70, inputs = 9, outputs = 13
        let x = values.array(rows * inputs), w = values.array(outputs * inputs), r = values.array(rows * outputs)
        var dx = [Float](repeating: 0, count: x.count), dwFull = [Float](repeating: 0, count: w.count)
        var dwAlone = dwFull
        pointwiseConvolutionBackward(input: x, rows: rows, inChannels: inputs, weight: w, outChannels: outputs, outputGradient: r,
                                     inputGradient: &dx, weightGradient: &dwFull, biasGradient: nil, threads: 1)
        pointwiseConvolutionBackward(input: x, rows: rows, inChannels: inputs, weight: w, outChannels: outputs, outputGradient: r,
                                     inputGradient: nil, weightGradient: &dwAlone, biasGradient: nil, threads: threads)
        for i in w.indices { #expect(abs(dwAlone[i] - dwFull[i]) <= 1e-5 * max(1, abs(dwFull[i])), "dw[\(i)]") }
        #expect(dwFull.contains { $0 != 0 })
    }

    /// The training forward (one GEMM per thread, epilogue after) equals the inference kernel, with
    /// residual and ReLU6.
    @Test(arguments: [1, 2])
    func batchPointwiseEqualsThePointwiseKernel(threads: Int) throws {
        try BLAS.load()
        var values = SeededValues(seed: 5)
        let rows = 300, inputs = 17, outputs = 21
        let x = values.array(rows * inputs).map { $0 * 8 }, w = values.array(outputs * inputs), b = values.array(outputs)
        let skip = values.array(rows * outputs)
        var expected = [Float](repeating: 0, count: rows * outputs), batch = expected
        pointwiseConvolution(input: x, rows: rows, inChannels: inputs, weight: w, bias: b, outChannels: outputs,
                             activation: .relu6, residual: skip, output: &expected, threads: 1)
        pointwiseConvolutionBatch(input: x, rows: rows, inChannels: inputs, weight: w, bias: b, outChannels: outputs,
                                  activation: .relu6, residual: skip, output: &batch, threads: threads)
        for i in expected.indices { #expect(abs(batch[i] - expected[i]) <= 1e-5, "y[\(i)]") }
        #expect(expected.contains(0) && expected.contains(6) && expected.contains { $0 > 0 && $0 < 6 })
    }

    /// Stride 2 with TF 'SAME' padding (extra row/column after), an odd map, several images, 5x5 taps,
    /// and a channel count that is not a multiple of the 16-channel split.
    @Test(arguments: [(3, 1, 1), (5, 2, 1), (5, 2, 2), (3, 2, 2)])
    func depthwiseBackwardMatchesFiniteDifferences(kernel: Int, stride: Int, threads: Int) {
        var values = SeededValues(seed: UInt64(kernel * 10 + stride))
        let g = ConvolutionGeometry(batch: 2, height: 9, width: 7, channels: 35, kernel: kernel, stride: stride)
        let t = Tensors(x: values.array(g.batch * g.height * g.width * g.channels), w: values.array(kernel * kernel * g.channels),
                        b: values.array(g.channels))
        let (x, w, b) = (t.x, t.w, t.b)
        let r = values.array(g.batch * g.outHeight * g.outWidth * g.channels)
        func loss() -> Double {
            var z = [Float](repeating: 0, count: r.count)
            depthwiseConvolution(input: t.x, geometry: g, weight: t.w, bias: t.b, activation: .identity, output: &z, threads: 1)
            return Self.dot(z, r)
        }
        var dx = [Float](repeating: 0, count: x.count), dw = [Float](repeating: 0, count: w.count)
        var db = [Float](repeating: 0, count: b.count)
        depthwiseConvolutionBackward(input: x, geometry: g, weight: w, outputGradient: r, inputGradient: &dx, weightGradient: &dw,
                                     biasGradient: &db, threads: threads)
        for i in Swift.stride(from: 0, to: x.count, by: 17) { Self.expectClose(dx[i], Self.difference(t, \.x, i, loss), scale: 10, "dx[\(i)]") }
        for i in w.indices { Self.expectClose(dw[i], Self.difference(t, \.w, i, loss), scale: 30, "dw[\(i)]") }
        for i in b.indices { Self.expectClose(db[i], Self.difference(t, \.b, i, loss), scale: 30, "db[\(i)]") }
        // Padding taps: the corner input of the first image gets gradient only from the taps that reach it.
        #expect(dx.contains { $0 != 0 })
    }

    @Test func averagePoolBackwardSpreadsEvenly() {
        var values = SeededValues(seed: 3)
        let batch = 2, positions = 5, channels = 6
        let t = Tensors(x: values.array(batch * positions * channels))
        let x = t.x
        let r = values.array(batch * channels)
        func loss() -> Double {
            var y = [Float](repeating: 0, count: batch * channels)
            globalAveragePool(input: t.x, batch: batch, positions: positions, channels: channels, output: &y)
            return Self.dot(y, r)
        }
        var dx = [Float](repeating: 0, count: x.count)
        globalAveragePoolBackward(outputGradient: r, batch: batch, positions: positions, channels: channels, inputGradient: &dx)
        for i in x.indices { Self.expectClose(dx[i], Self.difference(t, \.x, i, step: 0.25, loss), scale: 1, "dx[\(i)]") }
        #expect(dx[channels + 2] == r[2] / 5)
    }

    /// The fused pooling + ReLU6 backward equals the two passes it replaces, reading pooled gradients
    /// from wider rows, over an uninitialized (here: garbage-filled) output.
    @Test(arguments: [1, 2])
    func fusedPoolReLU6BackwardEqualsTheTwoPasses(threads: Int) {
        var values = SeededValues(seed: 3)
        let batch = 5, positions = 7, channels = 19, stride = 26
        let activated = values.array(batch * positions * channels).map { min(max($0 * 8, 0), 6) }
        let pooled = values.array(batch * stride)
        var expected = [Float](repeating: 0, count: activated.count)
        for n in 0..<batch {
            pooled.withUnsafeBufferPointer { p in
                expected.withUnsafeMutableBufferPointer { e in
                    globalAveragePoolBackward(outputGradient: p.baseAddress! + n * stride, batch: 1, positions: positions,
                                              channels: channels, inputGradient: e.baseAddress! + n * positions * channels)
                }
            }
        }
        relu6Backward(values: activated, gradient: &expected, count: expected.count)
        var fused = [Float](repeating: .nan, count: activated.count)
        globalAveragePoolReLU6Backward(outputGradient: pooled, outputStride: stride, activated: activated, batch: batch,
                                       positions: positions, channels: channels, gradient: &fused, threads: threads)
        #expect(fused == expected)
        #expect(expected.contains(0) && expected.contains { $0 != 0 })
    }

    @Test func relu6BackwardPassesOnlyTheLinearRange() {
        let pre: [Float] = [-1, 0, 0.5, 5.9, 6, 7]
        var gradient: [Float] = [1, 2, 3, 4, 5, 6]
        relu6Backward(values: pre, gradient: &gradient, count: pre.count)
        #expect(gradient == [0, 0, 3, 4, 0, 0])
    }

    /// The forward pass keeps only relu6's output: masking by it must equal masking by the
    /// pre-activation, on the threaded path too.
    @Test func relu6BackwardFromTheOutputEqualsFromThePreActivation() {
        var generator = SystemRandomNumberGenerator()
        let count = 3 << 16 + 5
        let pre = (0..<count).map { i in i % 7 == 0 ? Float(i % 3 * 3) : Float.random(in: -2...8, using: &generator) }
        let activated = pre.map { min(max($0, 0), 6) }
        let upstream = (0..<count).map { _ in Float.random(in: -1...1, using: &generator) }
        var fromPre = upstream, fromOutput = upstream
        relu6Backward(values: pre, gradient: &fromPre, count: count)
        relu6Backward(values: activated, gradient: &fromOutput, count: count, threads: 3)
        #expect(fromPre == fromOutput)
        #expect(fromPre.contains(0) && fromPre.contains { $0 != 0 })
    }
}
