import Foundation
import Imaging
import Training

/// One feature vector to compute: an image under a view.
public struct FeatureRequest: Hashable, Sendable {
    public var path: String
    public var view: ImageView

    public init(path: String, view: ImageView) {
        self.path = path
        self.view = view
    }
}

/// Computes encoder features for (image, view) requests, through the feature cache when there is
/// one: cached vectors are read, the rest are extracted in batches (decoding overlapped with the
/// network by `BatchRunner`) and stored.
public struct FeatureExtractor {
    public var encoder: ImageEncoder
    public var cache: FeatureCache?
    public var batchSize: Int
    public var threads: Int

    public init(encoder: ImageEncoder, cache: FeatureCache?, batchSize: Int = 16,
                threads: Int = ProcessInfo.processInfo.activeProcessorCount) {
        self.encoder = encoder
        self.cache = cache
        self.batchSize = batchSize
        self.threads = threads
    }

    public struct Outcome {
        /// One per request: the features, or the reason the image could not be used.
        public var results: [Result<[Float], Error>]
        public var cacheHits = 0
        public var extracted = 0
        /// Cache entries found damaged (deleted and recomputed).
        public var damagedEntries = 0
    }

    /// - featureSet: which encoder outputs each vector holds (the head's, when feeding a head)
    /// - progress: (done, total) over the requests that need the network; called from this thread.
    public func extract(_ requests: [FeatureRequest], featureSet: FeatureSet,
                        progress: (Int, Int) -> Void = { _, _ in }) throws -> Outcome {
        guard let dimension = encoder.featureCount(for: featureSet) else {
            throw HeadTuneError.unsupportedFeatures(featureSet: featureSet.rawValue, encoder: encoder.identifier)
        }
        var results = [Result<[Float], Error>?](repeating: nil, count: requests.count)
        var outcome = Outcome(results: [])
        var keys = [FeatureKey?](repeating: nil, count: requests.count)
        if let cache {
            let paths = Array(Set(requests.map(\.path))).sorted()
            let hashes = Dictionary(uniqueKeysWithValues: zip(paths, try cache.contentHashes(paths: paths)))
            for (i, request) in requests.enumerated() {
                if let hash = hashes[request.path] ?? nil {
                    keys[i] = FeatureKey(contentSHA256: hash, backbone: encoder.cacheIdentity, view: request.view.name,
                                         featureSet: featureSet)
                }
            }
            let known = keys.indices.filter { keys[$0] != nil }
            let found = try cache.lookup(known.map { keys[$0]! }, dimension: dimension)
            outcome.damagedEntries = found.damaged
            for (i, vector) in zip(known, found.vectors) where vector != nil {
                results[i] = .success(vector!)
                outcome.cacheHits += 1
            }
        }

        // The rest goes through the network, grouped by view (one BatchRunner per view).
        let missing = requests.indices.filter { results[$0] == nil }
        let total = missing.count
        var done = 0
        var pending: [(key: FeatureKey, vector: [Float])] = []
        if total > 0 { progress(0, total) }
        let byView = Dictionary(grouping: missing) { requests[$0].view }
        for view in byView.keys.sorted(by: { $0.name < $1.name }) {
            let indices = byView[view]!
            let runner = BatchRunner(encoder: encoder, batchSize: batchSize, threads: threads,
                                     outputs: encoder.outputs(for: featureSet), views: [view])
            let encoder = self.encoder
            try runner.run(paths: indices.map { requests[$0].path }) { position, result in
                let i = indices[position]
                switch result {
                case .success(let output):
                    let features = output.features(featureSet, of: encoder)
                    results[i] = .success(features)
                    outcome.extracted += 1
                    if let key = keys[i] { pending.append((key, features)) }
                case .failure(let error):
                    results[i] = .failure(error)
                }
                done += 1
                progress(done, total)
                // Stored in chunks, so an interrupted run keeps most of its work.
                if pending.count >= 256 {
                    try cache?.store(pending)
                    pending.removeAll()
                }
            }
        }
        try cache?.store(pending)
        outcome.results = results.map { $0! }
        return outcome
    }
}
