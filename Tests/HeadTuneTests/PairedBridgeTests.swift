import Foundation
import Imaging
import Kernels
import Testing
import TestSupport
import Training
@testable import HeadTune

/// Bridges fitted on image-caption pairs: their file, how the text space loads them, the index, and
/// `PairAlignment` end to end on the bundled sample photos (no shared datasets needed).
@Suite(.serialized) struct PairedBridgeTests {
    let encoder: ImageEncoder
    let text: TextEncoder
    let weights: URL

    init() throws {
        weights = try Golden.asset("weights/efficientnet-lite0.safetensors", fetchWith: "make weights").deletingLastPathComponent()
        encoder = try ImageEncoder.load(weightsDirectory: weights)
        text = try TextEncoder.load(weightsDirectory: weights, threads: 2)
    }

    func temporaryDirectory() throws -> String {
        let directory = NSTemporaryDirectory() + "headtune-pairs-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        return directory
    }

    func seededBridge(kind: PairedBridge.Kind, bias: Float = 0.01) -> PairedBridge {
        let alignment = EncoderPipelineTests.seededAlignment(image: encoder, text: text)
        let d = text.dimension, f = encoder.featureCount(for: .headAndStages)!
        var generator = SeededGenerator(seed: 5)
        switch kind {
        case .contrastive:
            let map = ContrastiveMap(projection: (0..<(d * f)).map { _ in 0.01 * generator.gaussian() },
                                     bias: [Float](repeating: bias, count: d), logScale: 3, features: f, dimension: d)
            return PairedBridge(kind: .contrastive, alignment: alignment, featureSet: .headAndStages,
                                featureOutputs: encoder.outputs(for: .headAndStages), map: map, combinesConSE: true, conseTop: 7,
                                summary: #"{"images": 3}"#)
        case .asif:
            let images = FeatureMatrix(rows: 4, columns: f, values: (0..<(4 * f)).map { _ in generator.gaussian() })
            let captions = FeatureMatrix(rows: 4, columns: d, values: (0..<(4 * d)).map { _ in generator.gaussian() })
            return PairedBridge(kind: .asif, alignment: alignment, featureSet: .headAndStages,
                                featureOutputs: encoder.outputs(for: .headAndStages),
                                anchors: ASIFAnchors(images: images, captions: captions, owner: [0, 1, 2, 3], neighbours: 2, power: 3))
        }
    }

    /// An encoded image with every output, from a seed.
    func syntheticImage(seed: UInt64) -> EncodedImage {
        var generator = SeededGenerator(seed: seed)
        var outputs: [ImageOutput: [Float]] = [:]
        for output in [ImageOutput.features, .stages, .logits] {
            outputs[output] = (0..<encoder.width(of: output)!).map { _ in abs(generator.gaussian()) }
        }
        return EncodedImage(outputs: outputs)
    }

    @Test(arguments: PairedBridge.Kind.allCases) func bridgeFileRoundTripsAndIsTheDefaultTextSpace(kind: PairedBridge.Kind) throws {
        let directory = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let bridge = seededBridge(kind: kind)
        let path = directory + "/" + ImageTextAlignment.defaultFileName
        try bridge.write(to: path)
        // As the default file (no --alignment, no --method) the fitted bridge is the text space's.
        let space = try TextSpace.load(imageEncoder: encoder, text: text, alignmentPath: nil, weightsDirectory: URL(fileURLWithPath: directory))
        let read = try #require(space.bridge as? PairedBridge)
        #expect(read.kind == kind && read.method.rawValue == kind.rawValue && read.identifier == bridge.identifier)
        #expect(read.map == bridge.map && read.anchors == bridge.anchors && read.conseTop == bridge.conseTop)
        #expect(read.combinesConSE == bridge.combinesConSE && read.summary == bridge.summary)
        #expect(space.requiredOutputs == (kind == .contrastive ? [.features, .stages, .logits] : [.features, .stages]))
        let image = syntheticImage(seed: 9)
        let vector = try space.imageVector(image)
        #expect(vector == (try bridge.embed(image)) && abs(vector.reduce(0) { $0 + $1 * $1 } - 1) < 1e-5)
        // The class-name bridges come from the same file; the fitted one must be the one asked for.
        let conse = try TextSpace.load(imageEncoder: encoder, text: text, alignmentPath: path, method: .conse)
        #expect(conse.bridge.method == .conse && conse.bridge.identifier == bridge.alignment.identifier)
        #expect(conse.bridge.identifier != bridge.identifier)
        let other: ImageTextMethod = kind == .contrastive ? .asif : .contrastive
        #expect(throws: HeadTuneError.self) { try TextSpace.load(imageEncoder: encoder, text: text, alignmentPath: path, method: other) }
        // A class-name file has no fitted bridge to give.
        let plain = directory + "/plain.safetensors"
        try bridge.alignment.write(to: plain)
        #expect(throws: HeadTuneError.self) {
            try TextSpace.load(imageEncoder: encoder, text: text, alignmentPath: plain, method: bridge.method)
        }
        #expect(try TextSpace.load(imageEncoder: encoder, text: text, alignmentPath: plain).bridge.method == .conse)
    }

    @Test func anotherBridgeChangesTheIdentifierAndTheIndexIsRebuilt() throws {
        let directory = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let first = seededBridge(kind: .contrastive), second = seededBridge(kind: .contrastive, bias: 0.02)
        #expect(first.identifier != second.identifier)
        let photos = try ["chelsea.png", "coffee.png"].map { try Golden.asset("samples/\($0)", fetchWith: "make samples").path }
        let index = try ImageIndex(path: directory + "/index.sqlite")
        let spaceA = TextSpace(text: text, bridge: first), spaceB = TextSpace(text: text, bridge: second)
        #expect(try index.update(paths: photos, encoder: encoder, space: spaceA, threads: 2).indexed == 2)
        #expect(try index.update(paths: photos, encoder: encoder, space: spaceA, threads: 2).unchanged == 2)
        #expect(try index.update(paths: photos, encoder: encoder, space: spaceB, threads: 2).indexed == 2)
        let (entries, skipped) = try index.entries(models: spaceB.indexModels(imageEncoder: encoder))
        #expect(entries.count == 2 && skipped == 0)
        #expect(try index.entries(models: spaceA.indexModels(imageEncoder: encoder)).skipped == 2)
    }

    /// A CSV with bad rows and an unreadable image: each is reported by file and line, and with one
    /// usable image left the fit is refused, saying how many pairs remain. Then a small real fit.
    @Test func alignReportsBadRowsRefusesTooFewPairsAndFitsOnTheSamples() throws {
        let directory = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try FileManager.default.createDirectory(atPath: directory + "/images", withIntermediateDirectories: true)
        let names = ["chelsea.png", "coffee.png", "rocket.jpg", "astronaut.png", "motorcycle_left.png", "hubble_deep_field.jpg"]
        for name in names {
            try FileManager.default.copyItem(atPath: try Golden.asset("samples/\(name)", fetchWith: "make samples").path,
                                             toPath: directory + "/images/" + name)
        }
        try Data("<html>not an image</html>".utf8).write(to: URL(fileURLWithPath: directory + "/images/broken.jpg"))
        let bad = directory + "/bad.csv"
        try "image,caption\nchelsea.png,a cat\nbroken.jpg,a broken file\nabsent.jpg,nothing\nchelsea.png,\n"
            .write(toFile: bad, atomically: true, encoding: .utf8)
        let alignment = EncoderPipelineTests.seededAlignment(image: encoder, text: text)
        let cache = try FeatureCache(path: directory + "/features.sqlite")
        var skipped: [String] = []
        var events = PairAlignmentEvents()
        events.skipped = { skipped.append($0) }
        #expect(throws: HeadTuneError.tooFewPairs(sources: [bad], images: 1, captions: 1, needed: 10)) {
            try PairAlignment.run(PairAlignmentRequest(csvFiles: [bad]), encoder: encoder, text: text, alignment: alignment,
                                  cache: cache, threads: 2, events: events)
        }
        #expect(skipped.count == 3)
        #expect(skipped.contains { $0.hasPrefix("\(bad):4: image absent.jpg not found") })
        #expect(skipped.contains { $0 == "\(bad):5: empty caption for chelsea.png" })
        #expect(skipped.contains { $0.hasPrefix("\(bad):3: \(directory)/images/broken.jpg: ") })

        // Six photos, two captions each: a few epochs of the real pipeline, written and read back.
        let good = directory + "/captions.csv"
        let captions = ["a cat", "a cup of coffee", "a rocket", "an astronaut", "a motorcycle", "galaxies in space"]
        try ("image,caption\n" + zip(names, captions).map { "\($0),\($1)\n\($0),a photo of \($1)\n" }.joined())
            .write(toFile: good, atomically: true, encoding: .utf8)
        var request = PairAlignmentRequest(csvFiles: [good])
        request.minimumImages = 4
        request.heldOutFraction = 0.34
        request.configuration.maxEpochs = 4
        request.configuration.batchImages = 4
        let outcome = try PairAlignment.run(request, encoder: encoder, text: text, alignment: alignment, cache: cache, threads: 2)
        #expect(outcome.summary.images == 6 && outcome.summary.captions == 12 && outcome.summary.heldOutImages == 2)
        #expect(outcome.summary.heldOut.images == 2 && outcome.summary.heldOutConSE.captions == 4)
        let path = directory + "/bridge.safetensors"
        try outcome.bridge.write(to: path)
        let space = try TextSpace.load(imageEncoder: encoder, text: text, alignmentPath: path)
        #expect(space.bridge.identifier == outcome.bridge.identifier && space.bridge.method == .contrastive)
        // The second run finds every image and caption in the cache.
        let again = try PairAlignment.run(request, encoder: encoder, text: text, alignment: alignment, cache: cache, threads: 2)
        #expect(again.extracted == 0 && again.cacheHits == 6 && again.bridge.identifier == outcome.bridge.identifier)
    }
}
