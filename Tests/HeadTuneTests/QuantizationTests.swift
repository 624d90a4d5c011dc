import Foundation
import Imaging
import Testing
import TestSupport
import Weights
@testable import HeadTune

/// `headtune quantize` end to end on the bundled samples: the file it writes, what happens to a bad
/// image and to a run that cannot finish, and `--precision int8` through the registry.
@Suite(.serialized) struct QuantizationTests {
    let weights: URL
    let encoder: ImageEncoder
    let directory: URL

    init() throws {
        weights = try Golden.asset("weights/efficientnet-lite0.safetensors", fetchWith: "make weights").deletingLastPathComponent()
        encoder = try ImageEncoder.load(weightsDirectory: weights)
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("quantize-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    }

    func samples() throws -> [String] {
        let folder = try Golden.asset("samples/chelsea.png", fetchWith: "make samples").deletingLastPathComponent()
        return try FileManager.default.contentsOfDirectory(atPath: folder.path).sorted()
            .filter { [".png", ".jpg"].contains(where: $0.hasSuffix) }.map { folder.appendingPathComponent($0).path }
    }

    /// A calibration set with a broken file in it: the file is named once and skipped, the others
    /// calibrate, and the result loads as `--precision int8` (int8 where the CPU has VNNI; fp32 with a
    /// note saying why where it does not) and agrees with fp32 on the samples' top-1 class.
    @Test func writesAFileThatPrecisionInt8Runs() throws {
        let broken = directory.appendingPathComponent("broken.jpg").path
        try Data("not a jpeg".utf8).write(to: URL(fileURLWithPath: broken))
        // Each photo and its mirror would be the same images; eight distinct inputs are needed, so the
        // samples are listed twice (the second pass sees the same statistics: a harmless repeat).
        let images = try samples() + [broken] + samples()
        let output = directory.appendingPathComponent("lite0.int8.safetensors").path
        var skipped: [String] = []
        var passes = Set<Int>()
        let report = try Quantization.run(encoder: encoder, images: images, method: .mse, output: output,
                                          calibrationSource: "samples", threads: 2, batchSize: 4,
                                          progress: { pass, _, _ in passes.insert(pass) },
                                          skipped: { path, _ in skipped.append(path) })
        #expect(skipped == [broken], "reported once, in the first pass")
        #expect(passes == [1, 2])
        #expect(report.images == images.count - 1 && report.skipped == 1 && report.layers.count == 34)
        #expect(report.weightsSHA256 == encoder.weightsSHA256)
        let file = try SafeTensors(contentsOf: URL(fileURLWithPath: output))
        #expect(file.metadata["calibration_method"] == "mse" && file.metadata["calibration_images"] == String(images.count - 1))

        let int8 = try ImageEncoder.load(weightsDirectory: weights, precision: .int8, quantizedFile: URL(fileURLWithPath: output))
        #expect(int8.identifier == encoder.identifier && int8.weightsSHA256 == encoder.weightsSHA256)
        if int8.precision == .int8 {
            #expect(int8.cacheIdentity != encoder.cacheIdentity, "int8 features are cached apart from fp32 ones")
            var agree = 0
            let paths = try samples()
            var input = [Float](repeating: 0, count: paths.count * encoder.inputFloats)
            try input.withUnsafeMutableBufferPointer { buffer in
                for (i, path) in paths.enumerated() {
                    try encoder.prepare(.file(path: path), views: [encoder.plainView], into: buffer.baseAddress! + i * encoder.inputFloats)
                }
            }
            let a = encoder.makeSession(threads: 2).encode(input, count: paths.count, outputs: [.logits])
            let b = int8.makeSession(threads: 2).encode(input, count: paths.count, outputs: [.logits])
            for (x, y) in zip(a, b) {
                let top = { (l: [Float]) in l.indices.max { l[$0] < l[$1] }! }
                if top(x.logits!) == top(y.logits!) { agree += 1 }
            }
            #expect(agree >= paths.count - 1, "int8 top-1 agrees with fp32 on \(agree) of \(paths.count) samples")
        } else {
            #expect(int8.notes.contains { $0.contains("VNNI") }, "a CPU without VNNI is named as the reason: \(int8.notes)")
        }
    }

    /// Too few decodable images: an error, and the file already there is left as it was.
    @Test func aFailedRunLeavesThePreviousFile() throws {
        let output = directory.appendingPathComponent("kept.safetensors").path
        try Data("previous".utf8).write(to: URL(fileURLWithPath: output))
        #expect(throws: HeadTuneError.self) {
            try Quantization.run(encoder: encoder, images: Array(try samples().prefix(3)), method: .mse, output: output,
                                 calibrationSource: "three", threads: 2)
        }
        #expect(try Data(contentsOf: URL(fileURLWithPath: output)) == Data("previous".utf8))
        #expect(!FileManager.default.fileExists(atPath: AtomicFile.temporaryPath(for: output)))
    }

    /// --precision int8 without a file says how to make one; on a model with no int8 form it says so.
    @Test func missingFileOrModelIsExplained() throws {
        let missing = directory.appendingPathComponent("absent.safetensors")
        do {
            _ = try ImageEncoder.load(weightsDirectory: weights, precision: .int8, quantizedFile: missing)
            Issue.record("loaded without an int8 file")
        } catch {
            let message = (error as? LocalizedError)?.errorDescription ?? "\(error)"
            #expect(message.contains(missing.path) && message.contains("headtune quantize"), "\(message)")
        }
        let clip = Golden.repositoryRoot.appendingPathComponent("Tests/ModelsTests/Resources/tiny-clip")
        do {
            _ = try ImageEncoder.load(model: clip.path, precision: .int8)
            Issue.record("a CLIP folder loaded as int8")
        } catch {
            let message = (error as? LocalizedError)?.errorDescription ?? "\(error)"
            #expect(message.contains("int8") && message.contains("efficientnet-lite0"), "\(message)")
        }
    }
}
