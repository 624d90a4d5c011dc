// Putting images in the text encoder's space. The image backbone (EfficientNet-Lite0, ImageNet) and the
// text encoder (all-MiniLM-L6-v2) were never trained together, so two bridges are built and measured
// (BENCHMARKS.md, "Text encoder"):
// - ConSE (Norouzi et al., "Zero-Shot Learning by Convex Combination of Semantic Embeddings", ICLR 2014):
//   an image's embedding is the probability-weighted mean of the text embeddings of its top-T ImageNet
//   classes. Training-free.
// - DeViSE-style linear map (Frome et al., NeurIPS 2013, here fitted in closed form): a ridge regression
//   from a class name's text embedding to that class's weight vector in the ImageNet classifier,
//   W ≈ T·M (M: [384, 1280]). A text then acts as a classifier row, its score on an image is the logit
//   f·(Mᵀt) = (M f)·t, so the image embedding is M f.
// Both need the class names' text embeddings, which `headtune align` computes once and stores with M in
// one safetensors file.

import Foundation
import Kernels
import Training
import Weights

/// How an image becomes a vector in the text space.
public enum ImageTextMethod: String, CaseIterable, Sendable, Codable {
    /// Probability-weighted class-name embeddings (needs the backbone's ImageNet logits).
    case conse
    /// Linear map fitted on the ImageNet classifier's weight vectors (needs the 1280-d features).
    case devise
    /// A jointly trained model's own image embedding (CLIP): no bridge.
    case native
    /// A map fitted on image-caption pairs by symmetric InfoNCE (`headtune align --pairs`), added to ConSE.
    case contrastive
    /// ASIF over image-caption pairs as anchors (`headtune align --pairs --method asif`): training-free.
    case asif
}

/// The fitted bridge: class-name embeddings and the DeViSE map, with the ids of the models it fits.
public struct ImageTextAlignment: Sendable {
    /// [classes, textDimension], unit rows: the prompt-averaged embedding of each ImageNet class.
    public var classEmbeddings: [Float]
    /// [textDimension, featureCount]: image feature -> text space.
    public var projection: [Float]
    public var classCount: Int
    public var textDimension: Int
    public var featureCount: Int
    public var backbone: String
    public var textEncoder: String
    /// Ridge strength chosen for the map, and how the class prompts were written.
    public var ridgeLambda: Double
    public var classTemplate: String

    public static let defaultFileName = "image-text-alignment.safetensors"
    public static let defaultClassTemplate = "a photo of a {}."

    /// Identifies the alignment's contents (for index entries).
    public var identifier: String {
        "alignment@" + String((projection + classEmbeddings).withUnsafeBytes { SHA256.hex($0) }.prefix(12))
    }

    // MARK: - Fitting

    /// Text embedding of every ImageNet class: each synonym in the template, averaged, normalized.
    public static func classEmbeddings(labels: ImageNetLabels, encoder: TextEncoder,
                                       template: String = defaultClassTemplate) throws -> [Float] {
        let synonyms = labels.names.map { name in
            name.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        }
        return try promptEmbeddings(synonyms.map { $0.map { template.replacingOccurrences(of: "{}", with: $0) } },
                                    encoder: encoder).flatMap { $0 }
    }

    /// Ridge regression from text embeddings T [n, d] to classifier rows W [n, f]:
    /// M = (TᵀT + λI)⁻¹ TᵀW, returned as [d, f].
    public static func fitRidge(text: [Float], weights: [Float], rows n: Int, textDimension d: Int,
                                featureCount f: Int, lambda: Double) throws -> [Float] {
        var gram = [Double](repeating: 0, count: d * d)
        var rhs = [Double](repeating: 0, count: d * f)
        for r in 0..<n {
            for i in 0..<d {
                let ti = Double(text[r * d + i])
                for j in 0...i { gram[i * d + j] += ti * Double(text[r * d + j]) }
                for j in 0..<f { rhs[i * f + j] += ti * Double(weights[r * f + j]) }
            }
        }
        for i in 0..<d { gram[i * d + i] += lambda }
        guard choleskySolve(&gram, &rhs, n: d, columns: f) else {
            throw HeadTuneError.alignmentFailed("ridge system not positive definite (lambda \(lambda))")
        }
        return rhs.map(Float.init)
    }

    /// Picks λ by holding out a seeded fifth of the classes and maximizing how often a held-out class's
    /// predicted classifier row scores its own true row highest among the held-out classes (cosine).
    public static func chooseLambda(text: [Float], weights: [Float], rows n: Int, textDimension d: Int,
                                    featureCount f: Int, grid: [Double] = [0.01, 0.03, 0.1, 0.3, 1, 3, 10])
        throws -> (lambda: Double, heldOutTop1: [Double: Double])
    {
        var generator = SeededGenerator(seed: 2013)
        var order = Array(0..<n)
        order.shuffle(using: &generator)
        let heldOut = Array(order.prefix(n / 5)), kept = Array(order.dropFirst(n / 5))
        func gather(_ x: [Float], _ rows: [Int], _ width: Int) -> [Float] {
            rows.flatMap { x[($0 * width)..<(($0 + 1) * width)] }
        }
        let keptText = gather(text, kept, d), keptWeights = gather(weights, kept, f)
        let testText = gather(text, heldOut, d), testWeights = gather(weights, heldOut, f)
        var scores: [Double: Double] = [:]
        for lambda in grid {
            let m = try fitRidge(text: keptText, weights: keptWeights, rows: kept.count, textDimension: d,
                                 featureCount: f, lambda: lambda)
            // Predicted rows P = T_test · M, compared with the true rows by cosine.
            var predicted = [Float](repeating: 0, count: heldOut.count * f)
            testText.withUnsafeBufferPointer { t in
                m.withUnsafeBufferPointer { mm in
                    predicted.withUnsafeMutableBufferPointer { p in
                        BLAS.sgemm(m: heldOut.count, n: f, k: d, a: t.baseAddress!, lda: d, b: mm.baseAddress!, ldb: f,
                                   c: p.baseAddress!, ldc: f)
                    }
                }
            }
            var truth = testWeights
            predicted.withUnsafeMutableBufferPointer { normalizeRows($0.baseAddress!, rows: heldOut.count, columns: f) }
            truth.withUnsafeMutableBufferPointer { normalizeRows($0.baseAddress!, rows: heldOut.count, columns: f) }
            var hits = 0
            for i in heldOut.indices {
                let row = Array(predicted[(i * f)..<((i + 1) * f)])
                let best = heldOut.indices.max { dot(row, Array(truth[($0 * f)..<(($0 + 1) * f)]))
                    < dot(row, Array(truth[($1 * f)..<(($1 + 1) * f)])) }
                if best == i { hits += 1 }
            }
            scores[lambda] = Double(hits) / Double(heldOut.count)
        }
        let best = grid.max { (scores[$0] ?? 0, -$0) < (scores[$1] ?? 0, -$1) } ?? 1
        return (best, scores)
    }

    // MARK: - Use

    /// The image's unit vector in the text space.
    /// - features: [featureCount]; logits: [classCount] (ConSE needs them)
    /// - top: how many classes ConSE mixes (T in the paper, 10 there)
    public func embed(features: [Float], logits: [Float]?, method: ImageTextMethod, top: Int = 10) throws -> [Float] {
        var result = [Float](repeating: 0, count: textDimension)
        switch method {
        case .conse:
            guard let logits, logits.count == classCount else {
                throw HeadTuneError.alignmentFailed("ConSE needs the backbone's \(classCount) ImageNet logits")
            }
            let p = probabilities(fromLogits: logits)
            let best = p.withUnsafeBufferPointer { largestEntries($0, k: top) }
            for (c, weight) in best {
                for j in 0..<textDimension { result[j] += weight * classEmbeddings[c * textDimension + j] }
            }
        case .native, .contrastive, .asif:
            throw HeadTuneError.alignmentFailed("a class-name alignment has no \(method.rawValue) image embedding")
        case .devise:
            guard features.count == featureCount else {
                throw HeadTuneError.alignmentFailed("expected \(featureCount) features, got \(features.count)")
            }
            features.withUnsafeBufferPointer { x in
                projection.withUnsafeBufferPointer { m in
                    result.withUnsafeMutableBufferPointer { out in
                        BLAS.sgemm(transposeB: true, m: 1, n: textDimension, k: featureCount, a: x.baseAddress!,
                                   lda: featureCount, b: m.baseAddress!, ldb: featureCount, c: out.baseAddress!,
                                   ldc: textDimension)
                    }
                }
            }
        }
        result.withUnsafeMutableBufferPointer { normalizeRows($0.baseAddress!, rows: 1, columns: textDimension) }
        return result
    }

    // MARK: - File

    public func write(to path: String) throws {
        try Self.write(tensors: fileTensors, metadata: fileMetadata, to: path)
    }

    /// What the file holds; a bridge fitted on pairs writes these beside its own (`PairedBridge`), so
    /// ConSE and DeViSE stay available from its file.
    var fileMetadata: [String: String] {
        [
            "format": "headtune-image-text-alignment", "backbone": backbone, "text_encoder": textEncoder,
            "ridge_lambda": String(ridgeLambda), "class_template": classTemplate,
            "methods": "conse: class_embeddings; devise: projection (image feature -> text space)",
        ]
    }

    var fileTensors: [SafeTensorsWriter.Tensor] {
        [.init(name: "class_embeddings", shape: [classCount, textDimension], values: classEmbeddings),
         .init(name: "projection", shape: [textDimension, featureCount], values: projection)]
    }

    static func write(tensors: [SafeTensorsWriter.Tensor], metadata: [String: String], to path: String) throws {
        let data = SafeTensorsWriter.serialize(tensors, metadata: metadata)
        do { try AtomicFile.write(data, to: path) } catch {
            throw HeadTuneError.outputFailed(path: path, reason: error.reason)
        }
    }

    /// Fits both bridges for these models from the image encoder's own pretrained classifier.
    public static func fit(encoder: ImageEncoder, textEncoder: TextEncoder, lambda: Double? = nil,
                           template: String = defaultClassTemplate,
                           log: (String) -> Void = { _ in }) throws -> ImageTextAlignment {
        guard let classifier = encoder.model.classifierWeights(), encoder.classCount == 1000 else {
            throw HeadTuneError.alignmentFailed("\(encoder.identifier) has no ImageNet-1k classifier to bridge through")
        }
        return try fit(encoder: encoder, textEncoder: textEncoder, classifierWeights: classifier, lambda: lambda,
                       template: template, log: log)
    }

    /// Reads a file written by `write(to:)` and checks it fits these models.
    public static func read(path: String, encoder: ImageEncoder, textEncoder: TextEncoder) throws -> ImageTextAlignment {
        try readFile(path: path, encoder: encoder, textEncoder: textEncoder).alignment
    }

    /// The class-name alignment and, when `headtune align --pairs` wrote the file, the bridge fitted on pairs.
    static func readFile(path: String, encoder: ImageEncoder, textEncoder: TextEncoder)
        throws -> (alignment: ImageTextAlignment, paired: PairedBridge?)
    {
        let file: SafeTensors
        do { file = try SafeTensors(contentsOf: URL(fileURLWithPath: path)) } catch {
            throw HeadTuneError.alignmentUnavailable(path: path, reason: (error as? LocalizedError)?.errorDescription ?? "\(error)")
        }
        let alignment = try read(file, path: path, encoder: encoder, textEncoder: textEncoder)
        return (alignment, try PairedBridge.read(file, path: path, alignment: alignment, encoder: encoder))
    }

    static func read(_ file: SafeTensors, path: String, encoder: ImageEncoder, textEncoder: TextEncoder) throws -> ImageTextAlignment {
        guard file.metadata["format"] == "headtune-image-text-alignment" else {
            throw HeadTuneError.alignmentUnavailable(path: path, reason: "not written by `headtune align`")
        }
        for (key, expected) in [("backbone", encoder.identifier), ("text_encoder", textEncoder.identifier)]
        where file.metadata[key] != expected {
            throw HeadTuneError.alignmentUnavailable(
                path: path, reason: "fitted for \(key) \(file.metadata[key] ?? "?"), this run uses \(expected): refit it")
        }
        let c = encoder.classCount, d = textEncoder.dimension, f = encoder.featureCount
        return ImageTextAlignment(
            classEmbeddings: try file.tensor("class_embeddings", shape: [c, d]),
            projection: try file.tensor("projection", shape: [d, f]), classCount: c, textDimension: d, featureCount: f,
            backbone: encoder.identifier, textEncoder: textEncoder.identifier,
            ridgeLambda: Double(file.metadata["ridge_lambda"] ?? "") ?? .nan,
            classTemplate: file.metadata["class_template"] ?? defaultClassTemplate)
    }

    /// Fits both bridges for these models: class-name embeddings, then the ridge map on the classifier.
    /// - classifierWeights: [classCount, featureCount], the ImageNet head (`_fc.weight`)
    public static func fit(encoder: ImageEncoder, textEncoder: TextEncoder, classifierWeights: [Float],
                           lambda: Double?, template: String = defaultClassTemplate,
                           log: (String) -> Void = { _ in }) throws -> ImageTextAlignment {
        let labels = try ImageNetLabels.load()
        let c = labels.names.count, d = textEncoder.dimension, f = encoder.featureCount
        log("embedding \(c) ImageNet class names with \"\(template)\"")
        let text = try classEmbeddings(labels: labels, encoder: textEncoder, template: template)
        let chosen: Double
        if let lambda {
            chosen = lambda
        } else {
            let (best, scores) = try chooseLambda(text: text, weights: classifierWeights, rows: c, textDimension: d,
                                                  featureCount: f)
            log("lambda by held-out classes (top-1 of predicted vs true classifier rows): "
                + scores.sorted { $0.key < $1.key }.map { "\($0.key): \(String(format: "%.3f", $0.value))" }.joined(separator: ", ")
                + " -> \(best)")
            chosen = best
        }
        let projection = try fitRidge(text: text, weights: classifierWeights, rows: c, textDimension: d,
                                      featureCount: f, lambda: chosen)
        // fitRidge gives M as [d, f] with W ≈ T·M, so the image embedding is M·f: the layout `embed` uses.
        return ImageTextAlignment(classEmbeddings: text, projection: projection, classCount: c, textDimension: d,
                                  featureCount: f, backbone: encoder.identifier, textEncoder: textEncoder.identifier,
                                  ridgeLambda: chosen, classTemplate: template)
    }
}
