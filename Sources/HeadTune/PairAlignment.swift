import Foundation
import Imaging
import Kernels
import Training
import Weights

/// What `headtune align --pairs` does, as a library call: CSV pairs -> image features and caption
/// embeddings (cached) -> a seeded split by image -> the bridge fitted on one part, measured on the other
/// beside ConSE -> the bridge refitted on all pairs.
public struct PairAlignmentRequest: Sendable {
    public var csvFiles: [String]
    public var kind: PairedBridge.Kind = .contrastive
    /// The image features the map reads. head+stages measured better than head alone on held-out
    /// flickr8k-train pairs (BENCHMARKS.md).
    public var featureSet: FeatureSet = .headAndStages
    /// contrastive: the map corrects the ConSE embedding (starts at it, decays towards it), so class-name
    /// knowledge stays where the pairs are few; false: the map alone.
    public var combineConSE = true
    public var conseTop = 10
    public var configuration = ContrastiveMapConfiguration()
    /// Share of the images held out (with all their captions) for early stopping and the reported recalls.
    public var heldOutFraction = 0.2
    /// After measuring, refit on every pair (for the epochs early stopping chose) instead of keeping the
    /// map fitted on the rest.
    public var refitOnAll = true
    /// ASIF's neighbours and exponent, chosen on the held-out pairs from these grids.
    public var asifNeighbours: [Int] = [5, 10, 20, 50, 100]
    public var asifPowers: [Float] = [1, 3, 8]
    /// Captioned images needed at least (a few held out, the rest to fit on).
    public var minimumImages = 10

    public init(csvFiles: [String]) { self.csvFiles = csvFiles }
}

/// Callbacks for what the CLI shows while aligning.
public struct PairAlignmentEvents {
    /// A CSV row or image left out, "file:line: reason".
    public var skipped: (String) -> Void = { _ in }
    /// phase ("images", "captions"), done, total: only the work not found in the cache.
    public var progress: (String, Int, Int) -> Void = { _, _, _ in }
    public var epoch: (ContrastiveEpoch) -> Void = { _ in }
    public var log: (String) -> Void = { _ in }

    public init() {}
}

/// What the fit recorded: the pairs, the recipe, the held-out recalls (written into the bridge file).
public struct PairAlignmentSummary: Codable, Sendable {
    public var sources: [String]
    public var images: Int
    public var captions: Int
    public var skippedRows: Int
    public var heldOutImages: Int
    public var heldOutCaptions: Int
    public var method: String
    public var features: String
    public var combinedWithConSE: Bool
    /// Held-out recalls of the bridge fitted without the held-out images, and of ConSE on the same pairs.
    public var heldOut: RetrievalRecall
    public var heldOutConSE: RetrievalRecall
    public var configuration: ContrastiveMapConfiguration?
    public var bestEpoch: Int?
    public var temperature: Float?
    public var refitOnAll: Bool
    public var asifNeighbours: Int?
    public var asifPower: Float?
    public var seconds: Double

    public func json() -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return String(decoding: (try? encoder.encode(self)) ?? Data("{}".utf8), as: UTF8.self)
    }
}

public struct PairAlignmentOutcome {
    public var bridge: PairedBridge
    public var summary: PairAlignmentSummary
    public var cacheHits = 0
    public var extracted = 0
}

public enum PairAlignment {
    public static func run(_ request: PairAlignmentRequest, encoder: ImageEncoder, text: TextEncoder, alignment: ImageTextAlignment,
                           cache: FeatureCache?, batchSize: Int = 16, threads: Int = ProcessInfo.processInfo.activeProcessorCount,
                           events: PairAlignmentEvents = PairAlignmentEvents()) throws -> PairAlignmentOutcome {
        let start = Date()
        try request.configuration.validate()
        guard encoder.featureCount(for: request.featureSet) != nil else {
            throw HeadTuneError.unsupportedFeatures(featureSet: request.featureSet.rawValue, encoder: encoder.identifier)
        }
        guard encoder.classCount == alignment.classCount else {
            throw HeadTuneError.alignmentFailed("\(encoder.identifier) has no ImageNet logits for ConSE")
        }
        let loaded = try ImageCaptionPairs.load(csvFiles: request.csvFiles)
        loaded.skippedRows.forEach(events.skipped)
        // Images: features and logits (cached); an image that cannot be read drops its captions.
        let imageOutputs = try ImagePairOutputs.extract(paths: loaded.images.map(\.path), encoder: encoder, featureSet: request.featureSet,
                                                        cache: cache, batchSize: batchSize, threads: threads,
                                                        progress: { events.progress("images", $0, $1) })
        let pairs = loaded.keepingImages(imageOutputs.results.map { (try? $0.get()) != nil },
                                         reasons: imageOutputs.results.map { result in
                                             if case .failure(let error) = result { return (error as? LocalizedError)?.errorDescription ?? "\(error)" }
                                             return nil
                                         })
        pairs.skippedRows.dropFirst(loaded.skippedRows.count).forEach(events.skipped)
        guard pairs.images.count >= request.minimumImages else {
            throw HeadTuneError.tooFewPairs(sources: request.csvFiles, images: pairs.images.count, captions: pairs.count,
                                            needed: request.minimumImages)
        }
        let usable = imageOutputs.results.compactMap { try? $0.get() }
        let f = encoder.featureCount(for: request.featureSet)!
        let features = FeatureMatrix(rows: usable.count, columns: f, values: usable.flatMap(\.features))
        let logits = usable.map(\.logits)
        let captions = try captionEmbeddings(pairs.captions, text: text, cache: cache, progress: { events.progress("captions", $0, $1) })
        let conse = try conseEmbeddings(alignment, logits: logits, top: request.conseTop)

        // Measure on held-out images (with all their captions), fit on the rest.
        let (fitImages, heldImages) = ImageCaptionPairs.splitImages(count: pairs.images.count, heldOutFraction: request.heldOutFraction,
                                                                    seed: request.configuration.seed)
        let fitPairs = pairs.selectingImages(fitImages), heldPairs = pairs.selectingImages(heldImages)
        func captionRows(of images: [Int]) -> FeatureMatrix {
            captions.selecting(pairs.captionIndices(ofImages: images))
        }
        let heldTexts = captionRows(of: heldImages)
        let recallConSE = recall(conse.selecting(heldImages), heldTexts, owner: heldPairs.owner)
        events.log(String(format: "%d images with %d captions: fitting on %d images, measuring on %d held out (seed %llu)",
                          pairs.images.count, pairs.count, fitImages.count, heldImages.count, request.configuration.seed))
        let outputs = encoder.outputs(for: request.featureSet)
        var summary = PairAlignmentSummary(
            sources: request.csvFiles, images: pairs.images.count, captions: pairs.count, skippedRows: pairs.skippedRows.count,
            heldOutImages: heldImages.count, heldOutCaptions: heldPairs.count, method: request.kind.rawValue,
            features: request.featureSet.rawValue, combinedWithConSE: request.kind == .contrastive && request.combineConSE,
            heldOut: recallConSE, heldOutConSE: recallConSE, refitOnAll: request.refitOnAll, seconds: 0)
        var bridge: PairedBridge
        switch request.kind {
        case .contrastive:
            let base = request.combineConSE
            func trainerPairs(_ images: [Int], _ p: ImageCaptionPairs) -> ContrastiveMapTrainer.Pairs {
                .init(features: features.selecting(images), base: base ? conse.selecting(images) : nil,
                      texts: captionRows(of: images), owner: p.owner)
            }
            let measured = try ContrastiveMapTrainer.train(configuration: request.configuration, train: trainerPairs(fitImages, fitPairs),
                                                           validation: trainerPairs(heldImages, heldPairs), onEpoch: events.epoch)
            let heldEmbedding = measured.map.embed(features.selecting(heldImages), base: base ? conse.selecting(heldImages) : nil)
            summary.heldOut = recall(heldEmbedding, heldTexts, owner: heldPairs.owner)
            summary.bestEpoch = measured.bestEpoch
            var map = measured.map
            if request.refitOnAll {
                events.log("refitting on all \(pairs.images.count) images for \(measured.bestEpoch) epochs")
                let all = Array(0..<pairs.images.count)
                map = try ContrastiveMapTrainer.train(configuration: request.configuration, train: trainerPairs(all, pairs),
                                                      epochs: max(1, measured.bestEpoch), onEpoch: events.epoch).map
            }
            summary.configuration = request.configuration
            summary.temperature = 1 / expf(map.logScale)
            bridge = PairedBridge(kind: .contrastive, alignment: alignment, featureSet: request.featureSet, featureOutputs: outputs,
                                  map: map, combinesConSE: base, conseTop: request.conseTop)
        case .asif:
            // Training-free, but k and p are chosen: on the held-out images, with the rest as anchors.
            var best: (score: Double, k: Int, p: Float, recall: RetrievalRecall)?
            let fitCaptionRows = captionRows(of: fitImages)
            for k in request.asifNeighbours {
                for p in request.asifPowers {
                    let anchors = ASIFAnchors(images: features.selecting(fitImages), captions: fitCaptionRows, owner: fitPairs.owner,
                                              neighbours: k, power: p)
                    let r = recall(anchors.embed(features.selecting(heldImages)), heldTexts, owner: heldPairs.owner)
                    events.log(String(format: "asif k %d, p %g: held-out mean R@5 %.3f", k, p, r.meanRecallAt5))
                    if best == nil || r.meanRecallAt5 > best!.score { best = (r.meanRecallAt5, k, p, r) }
                }
            }
            guard let best else { throw HeadTuneError.alignmentFailed("no ASIF neighbours or powers to choose from") }
            summary.heldOut = best.recall
            summary.asifNeighbours = best.k
            summary.asifPower = best.p
            let all = Array(0..<pairs.images.count)
            let anchorImages = request.refitOnAll ? all : fitImages
            let anchorPairs = request.refitOnAll ? pairs : fitPairs
            bridge = PairedBridge(kind: .asif, alignment: alignment, featureSet: request.featureSet, featureOutputs: outputs,
                                  anchors: ASIFAnchors(images: features.selecting(anchorImages),
                                                       captions: captionRows(of: anchorImages),
                                                       owner: anchorPairs.owner, neighbours: best.k, power: best.p))
        }
        summary.seconds = Date().timeIntervalSince(start)
        bridge.summary = summary.json()
        return PairAlignmentOutcome(bridge: bridge, summary: summary, cacheHits: imageOutputs.cacheHits,
                                    extracted: imageOutputs.extracted)
    }

    /// Recall@K of unit image rows against unit caption rows.
    public static func recall(_ images: FeatureMatrix, _ captions: FeatureMatrix, owner: [Int]) -> RetrievalRecall {
        var s = [Float](repeating: 0, count: images.rows * captions.rows)
        images.values.withUnsafeBufferPointer { a in
            captions.values.withUnsafeBufferPointer { b in
                s.withUnsafeMutableBufferPointer { c in
                    BLAS.sgemm(transposeB: true, m: images.rows, n: captions.rows, k: images.columns, a: a.baseAddress!, lda: images.columns,
                               b: b.baseAddress!, ldb: captions.columns, c: c.baseAddress!, ldc: captions.rows)
                }
            }
        }
        return RetrievalRecall(similarities: s, images: images.rows, captions: captions.rows, owner: owner)
    }

    /// Caption embeddings [captions, dimension], through the feature cache: keyed by the caption's
    /// SHA-256 and the text encoder's id (a text has no file, so the caption itself is the content).
    static func captionEmbeddings(_ captions: [String], text: TextEncoder, cache: FeatureCache?,
                                  progress: (Int, Int) -> Void) throws -> FeatureMatrix {
        let d = text.dimension
        let keys = captions.map { caption in
            FeatureKey(contentSHA256: Array(caption.utf8).withUnsafeBytes { SHA256.hex($0) }, backbone: text.identifier, view: "caption")
        }
        var rows = try cache?.lookup(keys, dimension: d).vectors ?? [[Float]?](repeating: nil, count: captions.count)
        let missing = rows.indices.filter { rows[$0] == nil }
        if !missing.isEmpty { progress(0, missing.count) }
        for start in stride(from: 0, to: missing.count, by: 64) {
            let chunk = Array(missing[start..<min(start + 64, missing.count)])
            let embedded = try text.embed(chunk.map { captions[$0] })
            for (i, row) in zip(chunk, embedded) { rows[i] = row }
            try cache?.store(zip(chunk, embedded).map { (keys[$0.0], $0.1) })
            progress(start + chunk.count, missing.count)
        }
        return FeatureMatrix(rows: captions.count, columns: d, values: rows.flatMap { $0! })
    }
}

/// An image's features of one set and its ImageNet logits under the plain view (the view the text space
/// embeds images with), through the feature cache: the features under the same key `train` uses for
/// that view, the logits under the backbone id suffixed `#logits`.
enum ImagePairOutputs {
    struct Outputs {
        var features: [Float]
        var logits: [Float]
    }

    static func extract(paths: [String], encoder: ImageEncoder, featureSet: FeatureSet, cache: FeatureCache?, batchSize: Int,
                        threads: Int, progress: (Int, Int) -> Void) throws -> (results: [Result<Outputs, Error>], cacheHits: Int, extracted: Int) {
        let view = encoder.plainView
        let f = encoder.featureCount(for: featureSet)!, c = encoder.classCount
        var results = [Result<Outputs, Error>?](repeating: nil, count: paths.count)
        var featureKeys = [FeatureKey?](repeating: nil, count: paths.count), logitKeys = featureKeys
        var hits = 0
        if let cache {
            let hashes = try cache.contentHashes(paths: paths)
            for (i, hash) in hashes.enumerated() {
                guard let hash else { continue }
                featureKeys[i] = FeatureKey(contentSHA256: hash, backbone: encoder.cacheIdentity, view: view.name, featureSet: featureSet)
                logitKeys[i] = FeatureKey(contentSHA256: hash, backbone: encoder.cacheIdentity + "#logits", view: view.name)
            }
            let known = paths.indices.filter { featureKeys[$0] != nil }
            let cachedFeatures = try cache.lookup(known.map { featureKeys[$0]! }, dimension: f).vectors
            let cachedLogits = try cache.lookup(known.map { logitKeys[$0]! }, dimension: c).vectors
            for (n, i) in known.enumerated() {
                if let features = cachedFeatures[n], let logits = cachedLogits[n] {
                    results[i] = .success(Outputs(features: features, logits: logits))
                    hits += 1
                }
            }
        }
        let missing = paths.indices.filter { results[$0] == nil }
        var pending: [(key: FeatureKey, vector: [Float])] = []
        var done = 0, extracted = 0
        if !missing.isEmpty { progress(0, missing.count) }
        let runner = BatchRunner(encoder: encoder, batchSize: batchSize, threads: threads,
                                 outputs: encoder.outputs(for: featureSet) + [.logits], views: [view])
        try runner.run(paths: missing.map { paths[$0] }) { position, result in
            let i = missing[position]
            switch result {
            case .success(let image):
                let outputs = Outputs(features: image.features(featureSet, of: encoder), logits: image.logits ?? [])
                results[i] = .success(outputs)
                extracted += 1
                if let key = featureKeys[i], let logitKey = logitKeys[i] {
                    pending += [(key, outputs.features), (logitKey, outputs.logits)]
                }
            case .failure(let error):
                results[i] = .failure(error)
            }
            done += 1
            progress(done, missing.count)
            if pending.count >= 256 {
                try cache?.store(pending)
                pending.removeAll()
            }
        }
        try cache?.store(pending)
        return (results.map { $0! }, hits, extracted)
    }
}
