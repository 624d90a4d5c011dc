import Foundation
import Testing
@testable import Kernels

@Suite struct SequencePoolingTests {
    @Test func maskedMeanSkipsPaddingAndNormalizeGivesUnitRows() {
        // [2, 3, 2]: item 0 has 3 real tokens, item 1 has 1.
        let x: [Float] = [1, 2, 3, 4, 5, 6, 10, 20, 99, 99, 99, 99]
        let mask: [UInt8] = [1, 1, 1, 1, 0, 0]
        var out = [Float](repeating: .nan, count: 4)
        maskedMeanPool(input: x, mask: mask, batch: 2, sequence: 3, channels: 2, output: &out)
        #expect(out == [3, 4, 10, 20])
        normalizeRows(&out, rows: 2, columns: 2)
        #expect(abs(out[0] - 0.6) < 1e-7 && abs(out[1] - 0.8) < 1e-7)
        #expect(abs(out[2] * out[2] + out[3] * out[3] - 1) < 1e-6)
        var zeros: [Float] = [0, 0]
        normalizeRows(&zeros, rows: 1, columns: 2)
        #expect(zeros == [0, 0])
    }
}
