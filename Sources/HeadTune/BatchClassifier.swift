import Foundation
import Imaging
import Models
import Training

/// `headtune classify` as a library call: image files -> one `ClassificationRecord` per path, in
/// input order, streamed batch by batch (memory does not grow with the number of files).
public struct BatchClassifier {
    public enum Classifier {
        /// The backbone's own ImageNet-1k classifier (softmax over the logits).
        case imagenet(ImageNetLabels)
        /// A trained head: its views (test-time flip), standardization, classes and OOD detector.
        case head(HeadPredictor)
    }

    public var encoder: ImageEncoder
    public var classifier: Classifier
    /// Labels per record; capped at the number of classes.
    public var topK: Int
    /// Add the pooled features (`embedding`) to each record.
    public var includeEmbedding = false
    /// Add the classifier's raw outputs (`logits`) to each record.
    public var includeLogits = false
    /// Add every out-of-distribution score the head's detector computes (`ood_scores`) to each record.
    public var includeOutOfDistributionScores = false
    public var batchSize = 16
    public var threads = ProcessInfo.processInfo.activeProcessorCount
    /// nil: as many decoders as network threads.
    public var decodeThreads: Int?

    /// A head with a tuned tail runs on its own encoder (`HeadPredictor.encoder`), whatever `encoder` is.
    public init(encoder: ImageEncoder, classifier: Classifier, topK: Int) {
        if case .head(let predictor) = classifier { self.encoder = predictor.encoder } else { self.encoder = encoder }
        self.classifier = classifier
        self.topK = topK
    }

    public var labels: [String] {
        switch classifier {
        case .imagenet(let names): return names.names.indices.map(names.label)
        case .head(let predictor): return predictor.labels
        }
    }

    /// Calls `emit` once per path, in order: predictions, or `error` naming the path and the reason.
    /// An error thrown by `emit` stops the run (how `--fail-fast` ends it).
    public func run(paths: [String], emit: (ClassificationRecord) throws -> Void) throws {
        let labels = self.labels
        let k = min(max(topK, 1), labels.count)
        // The ImageNet classifier reads the logits of the plain view; a head, its feature set under its views.
        let (outputs, views): ([ImageOutput], [ImageView]?) = switch classifier {
        case .imagenet: ([.features, .logits], nil)
        case .head(let predictor): (encoder.outputs(for: predictor.featureSet), predictor.views)
        }
        let runner = BatchRunner(encoder: encoder, batchSize: batchSize, threads: threads, decodeThreads: decodeThreads,
                                 outputs: outputs, views: views)
        let encoder = self.encoder
        try runner.runBatches(paths: paths) { range, outputs in
            let scored: [Result<HeadPredictor.Output, Error>]
            switch classifier {
            case .imagenet:
                scored = outputs.map { result in
                    result.map { output in
                        let logits = output.logits ?? []
                        return HeadPredictor.Output(logits: logits, probabilities: probabilities(fromLogits: logits))
                    }
                }
            case .head(let predictor):
                scored = predictor.outputs(for: outputs.map { $0.map { $0.features(predictor.featureSet, of: encoder) } })
            }
            for (i, index) in range.enumerated() {
                var record = ClassificationRecord(path: paths[index])
                switch scored[i] {
                case .success(let output):
                    record.predictions = output.probabilities.withUnsafeBufferPointer { largestEntries($0, k: k) }.map {
                        Prediction(label: labels[$0.index], index: $0.index, score: $0.score)
                    }
                    record.unknown = output.isUnknown
                    record.oodScore = output.outOfDistributionScore
                    // The embedding is the pooled features whatever else the head reads.
                    if includeEmbedding { record.embedding = try outputs[i].get().features }
                    if includeLogits { record.logits = output.logits }
                    if includeOutOfDistributionScores, !output.outOfDistributionScores.isEmpty {
                        record.oodScores = OutOfDistributionScore.allCases.compactMap { score in
                            output.outOfDistributionScores[score].map { ClassificationRecord.NamedScore(name: score.rawValue, score: $0) }
                        }
                    }
                case .failure(let error):
                    record.error = describe(error, path: paths[index])
                }
                try emit(record)
            }
        }
    }
}

/// An error's message, with the path in front unless the error already names it.
public func describe(_ error: Error, path: String) -> String {
    let text = (error as? LocalizedError)?.errorDescription ?? "\(error)"
    return text.hasPrefix(path) ? text : "\(path): \(text)"
}
