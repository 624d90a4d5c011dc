import Foundation
import Imaging
import Testing
import TestSupport
@testable import HeadTune

/// The one batch engine and the text space the CLI and the service share.
@Suite(.serialized) struct EncoderPipelineTests {
    let encoder: ImageEncoder
    let weights: URL

    init() throws {
        weights = try Golden.asset("weights/efficientnet-lite0.safetensors", fetchWith: "make weights").deletingLastPathComponent()
        encoder = try ImageEncoder.load(weightsDirectory: weights)
    }

    /// The six golden photos under the plain view and its mirror, [12, 224, 224, 3] image-major.
    func inputs() throws -> [Float] {
        let names = ["chelsea.png", "coffee.png", "rocket.jpg", "astronaut.png", "motorcycle_left.png", "hubble_deep_field.jpg"]
        let views = [encoder.plainView, ImageView(policy: encoder.plainView.policy, mirrored: true)]
        var input = [Float](repeating: 0, count: names.count * views.count * encoder.inputFloats)
        try input.withUnsafeMutableBufferPointer { buffer in
            for (i, name) in names.enumerated() {
                try encoder.prepare(.file(path: try Golden.asset("samples/\(name)", fetchWith: "make samples").path), views: views,
                                    into: buffer.baseAddress! + i * views.count * encoder.inputFloats)
            }
        }
        return input
    }

    @Test func anyBatchSizeGivesEveryImageItsOwnAnswer() throws {
        let input = try inputs()
        let session = encoder.makeSession(threads: 2)
        let all = session.encode(input, count: 12, outputs: [.features, .stages, .logits])
        #expect(all.count == 12 && all.allSatisfy { $0.features.count == 1280 && $0[.stages]?.count == 784 && $0.logits?.count == 1000 })
        // The same session, batches of 1, 3 and 5: the same numbers (one workspace serves every size).
        var start = 0
        for size in [1, 3, 5, 3] {
            let part = input.withUnsafeBufferPointer {
                session.encode($0.baseAddress! + start * encoder.inputFloats, count: size, outputs: [.features, .logits])
            }
            for (k, image) in part.enumerated() {
                #expect(maxDifference(image.features, all[start + k].features) < 1e-5)
                #expect(maxDifference(image.logits!, all[start + k].logits!) < 1e-4)
                #expect(image[.stages] == nil, "only what was asked for")
            }
            start += size
        }
    }

    @Test func viewsAreAveragedLikeTheFeatureMeanOfEachView() throws {
        let input = try inputs()
        let session = encoder.makeSession(threads: 2)
        let perView = session.encode(input, count: 12, outputs: [.features, .stages])
        let averaged = session.encode(input, count: 6, views: 2, outputs: [.features, .stages])
        for i in 0..<6 {
            #expect(averaged[i].features == meanOfVectors([perView[2 * i].features, perView[2 * i + 1].features]))
            let set = averaged[i].features(.headAndStages, of: encoder)
            #expect(set.count == 2064 && Array(set.suffix(784)) == meanOfVectors([perView[2 * i][.stages]!, perView[2 * i + 1][.stages]!]))
        }
        #expect(encoder.featureCount(for: .head) == 1280 && encoder.featureCount(for: .headAndStages) == 2064)
        #expect(encoder.outputs(for: .headAndStages) == [.features, .stages])
    }

    @Test func textSpaceLoadingPolicyAndScores() throws {
        let text = try TextEncoder.load(weightsDirectory: weights, threads: 2)
        let directory = NSTemporaryDirectory() + "headtune-space-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        // A named file must exist.
        #expect(throws: HeadTuneError.self) {
            try TextSpace.load(imageEncoder: encoder, text: text, alignmentPath: directory + "/missing.safetensors")
        }
        // The default file is fitted on first use, written, and read the next time. (The real fit, a
        // ridge regression over 1000 class names, takes minutes in a debug build: a seeded stand-in
        // of the same shapes is fitted here; ImageTextTests covers the fit itself.)
        var log: [String] = [], fits = 0
        let fitted = try TextSpace.load(imageEncoder: encoder, text: text, alignmentPath: nil, method: .conse, conseTop: 10,
                                        weightsDirectory: URL(fileURLWithPath: directory), log: { log.append($0) }) { image, text in
            fits += 1
            return Self.seededAlignment(image: image, text: text)
        }
        #expect(fits == 1)
        let path = directory + "/" + ImageTextAlignment.defaultFileName
        #expect(FileManager.default.fileExists(atPath: path))
        #expect(log.first?.contains("not found; fitting") == true)
        log = []
        let read = try TextSpace.load(imageEncoder: encoder, text: text, alignmentPath: nil,
                                      weightsDirectory: URL(fileURLWithPath: directory)) { log.append($0) }
        #expect(log.isEmpty && read.bridge.identifier == fitted.bridge.identifier && read.bridge.method == .conse)
        let devise = try TextSpace.load(imageEncoder: encoder, text: text, alignmentPath: path, method: .devise)
        #expect(devise.requiredOutputs == [.features] && read.requiredOutputs == [.features, .logits])

        // Zero-shot scores: a softmax over the labels, ranked by similarity; with one label the score is
        // the similarity. (On a fresh clone the default bridge is not fitted yet, and fitting it in a
        // debug build takes minutes: the seeded bridge serves here.)
        let real = read
        let cat = try Golden.asset("samples/chelsea.png", fetchWith: "make samples").path
        var image: EncodedImage?
        try BatchRunner(encoder: encoder, batchSize: 1, threads: 2, outputs: real.requiredOutputs).run(paths: [cat]) { _, r in
            image = try r.get()
        }
        let vector = try real.imageVector(try #require(image))
        #expect(abs(vector.reduce(0) { $0 + $1 * $1 } - 1) < 1e-5)
        let labels = ["cat", "rocket", "cup of coffee"]
        let classes = try real.labelEmbeddings(labels, templates: ["a photo of a {}.", "a picture of a {}."])
        let scores = real.zeroShot(vector, classes: classes, temperature: 50, topK: 5)
        #expect(scores.count == 3 && Set(scores.map(\.index)) == [0, 1, 2])
        #expect(scores[0].similarity >= scores[1].similarity && scores[1].similarity >= scores[2].similarity)
        #expect(scores.map(\.similarity) == scores.map { dot(vector, classes[$0.index]) })
        #expect(abs(scores.map(\.score).reduce(0, +) - 1) < 1e-5)
        let single = real.zeroShot(vector, classes: [classes[1]], temperature: 50, topK: 5)
        #expect(single == [TextSpace.Score(index: 0, score: single[0].similarity, similarity: dot(vector, classes[1]))])
    }
}

extension EncoderPipelineTests {
    /// Unit-row class embeddings and a map of the right shapes, from a fixed seed.
    static func seededAlignment(image: ImageEncoder, text: TextEncoder) -> ImageTextAlignment {
        var state: UInt64 = 42
        func next() -> Float {
            state = state &* 6364136223846793005 &+ 1442695040888963407
            return Float(Int64(bitPattern: state >> 11) % 2001 - 1000) / 1000
        }
        let c = image.classCount, d = text.dimension, f = image.featureCount
        var classes = (0..<(c * d)).map { _ in next() }
        for r in 0..<c {
            let norm = (0..<d).reduce(Float(0)) { $0 + classes[r * d + $1] * classes[r * d + $1] }.squareRoot()
            for j in 0..<d { classes[r * d + j] /= norm }
        }
        return ImageTextAlignment(classEmbeddings: classes, projection: (0..<(d * f)).map { _ in next() * 0.01 }, classCount: c,
                                  textDimension: d, featureCount: f, backbone: image.identifier, textEncoder: text.identifier,
                                  ridgeLambda: 1, classTemplate: ImageTextAlignment.defaultClassTemplate)
    }
}

func maxDifference(_ a: [Float], _ b: [Float]) -> Float {
    zip(a, b).reduce(0) { max($0, abs($1.0 - $1.1)) }
}
