import Testing
@testable import HeadTune

/// The unknown-score histogram of the model card: the threshold is a bin edge, so each bar is wholly
/// below it (known) or wholly above (flagged), and every score is counted once.
@Suite struct ModelCardTests {
    @Test(arguments: [Float(0.37), 0.5, 0.0, 1.0, 1.4, -0.2])
    func theThresholdIsABinEdge(threshold: Float) {
        let scores: [Float] = [0, 0.05, 0.1, 0.33, 0.37, 0.38, 0.5, 0.61, 0.9, 1.0]
        let (edges, counts) = ModelCard.histogram(scores, bins: 20, splitAt: threshold)
        #expect(edges.count == counts.count + 1)
        #expect(edges.contains(threshold), "edges \(edges)")
        #expect(counts.reduce(0, +) == scores.count)
        let split = edges.firstIndex(of: threshold)!
        // Bins left of the threshold hold exactly the scores a detector calls known (score <= threshold).
        #expect(counts[..<split].reduce(0, +) == scores.filter { $0 <= threshold }.count)
        #expect((18...22).contains(counts.count))
    }
}
