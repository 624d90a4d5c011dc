import Foundation
import Testing
@testable import Training
import Weights

/// Head files that once crashed `HeadFile.read`, found by the head-file fuzzer (Fuzz/HeadFileFuzzer.swift).
@Suite struct HeadFileRegressionTests {
    /// The sample head's tensors (4 features, 2 classes) under metadata declaring `features` inputs.
    func headFile(declaringFeatures features: Int) throws -> Data {
        var head = HeadFileTests().sampleHeadFile(kind: .linear)
        head.metadata.backbone.featureCount = features
        head.metadata.architecture.inputs = features
        return try head.serialized()
    }

    func read(_ data: Data) throws -> HeadFile {
        try data.withUnsafeBytes { try HeadFile.read(SafeTensors(copying: $0, name: "x.head"), path: "x.head") }
    }

    /// 2^40 declared features made read allocate 2^41 parameters before looking at the tensors (an
    /// 8 TB allocation, a crash); now the tensors' shapes are checked first and the file is refused.
    @Test func aHugeDeclaredArchitectureIsRefusedBeforeAllocating() throws {
        #expect(throws: TrainingError.invalidHeadFile(path: "x.head", reason: WeightsError.shapeMismatch(
            file: "x.head", key: "head.weight", expected: [2, 1 << 40], found: [2, 4]).errorDescription!)) {
            try read(try headFile(declaringFeatures: 1 << 40))
        }
    }

    /// Counts whose product overflows Int trapped while computing the parameter count.
    @Test func anOverflowingDeclaredArchitectureIsRefused() throws {
        #expect(throws: TrainingError.self) { try read(try headFile(declaringFeatures: Int.max / 2)) }
        #expect(throws: TrainingError.self) { try read(try headFile(declaringFeatures: -3)) }
    }

    /// The in-memory reader gives what the file reader gives.
    @Test func readingFromMemoryMatchesReadingTheFile() throws {
        let head = HeadFileTests().sampleHeadFile(kind: .mlp)
        let loaded = try read(try head.serialized())
        #expect(loaded.metadata == head.metadata && loaded.head == head.head && loaded.standardization == head.standardization)
    }
}
