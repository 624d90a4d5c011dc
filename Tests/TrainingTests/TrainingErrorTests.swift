import Testing
@testable import Training

@Suite struct TrainingErrorTests {
    @Test func messageNamesThePath() {
        #expect(TrainingError.invalidDataset(path: "cars/", reason: "no class folders").errorDescription == "cars/: no class folders")
    }
}
