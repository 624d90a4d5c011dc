// A bridge into the text space fitted on the user's own image-caption pairs (`headtune align --pairs`),
// with both networks frozen:
// - contrastive: a linear map of the image features trained with symmetric InfoNCE (locked-image and
//   locked-text tuning: LiT, Zhai et al. 2022, with the text tower frozen too), added to the ConSE
//   embedding, so where the pairs say nothing the class-name knowledge stays (`ContrastiveMapTrainer`);
// - asif: ASIF (Norelli et al. 2023), the pairs as anchors, no training (`ASIFAnchors`).
// Its file is the class-name alignment file plus the fitted tensors, so `--method conse` and
// `--method devise` still work from it, and an index records the bridge's own identifier.

import Foundation
import Kernels
import Training
import Weights

public struct PairedBridge: ImageTextBridge {
    public enum Kind: String, Sendable, CaseIterable, Codable {
        case contrastive, asif
    }

    public var kind: Kind
    /// The class-name part (ConSE's class embeddings and the DeViSE map), kept in the same file.
    public var alignment: ImageTextAlignment
    /// The image features the map reads, and their outputs in order.
    public var featureSet: FeatureSet
    public var featureOutputs: [ImageOutput]
    /// contrastive: the fitted map; whether ConSE is its base, and ConSE's T.
    public var map: ContrastiveMap?
    public var combinesConSE: Bool
    public var conseTop: Int
    /// asif: the anchors.
    public var anchors: ASIFAnchors?
    /// JSON recorded in the file: the pairs it was fitted on, the recipe, the held-out recalls.
    public var summary: String

    public init(kind: Kind, alignment: ImageTextAlignment, featureSet: FeatureSet, featureOutputs: [ImageOutput],
                map: ContrastiveMap? = nil, combinesConSE: Bool = false, conseTop: Int = 10, anchors: ASIFAnchors? = nil,
                summary: String = "{}") {
        precondition((kind == .contrastive) == (map != nil) && (kind == .asif) == (anchors != nil), "a \(kind) bridge's tensors")
        self.kind = kind
        self.alignment = alignment
        self.featureSet = featureSet
        self.featureOutputs = featureOutputs
        self.map = map
        self.combinesConSE = combinesConSE
        self.conseTop = conseTop
        self.anchors = anchors
        self.summary = summary
    }

    public var method: ImageTextMethod { kind == .contrastive ? .contrastive : .asif }

    public var requiredOutputs: [ImageOutput] {
        Array(Set(featureOutputs + (kind == .contrastive && combinesConSE ? [.logits] : []))).sorted()
    }

    /// Changes with any fitted tensor and with the class-name part (indexes record it and re-embed).
    public var identifier: String {
        // The fp32 values' little-endian bytes, pair tensors first (the tensors' own stored bytes).
        let settings = "\(kind.rawValue) \(featureSet.rawValue) \(combinesConSE) \(conseTop) \(anchors?.neighbours ?? 0) \(anchors?.power ?? 0)"
        var bytes = pairTensors.flatMap(\.bytes)
        bytes += (alignment.projection + alignment.classEmbeddings).withUnsafeBytes { Array($0) }
        bytes += Array(settings.utf8)
        return "bridge@" + String(bytes.withUnsafeBytes { SHA256.hex($0) }.prefix(12))
    }

    public func embed(_ image: EncodedImage) throws -> [Float] {
        var x: [Float] = []
        for output in featureOutputs {
            guard let values = image[output] else {
                throw HeadTuneError.alignmentFailed("the \(kind.rawValue) bridge reads the \(output.rawValue) output, which was not computed")
            }
            x += values
        }
        let count = map?.features ?? anchors!.features.columns
        guard x.count == count else {
            throw HeadTuneError.alignmentFailed("the \(kind.rawValue) bridge expects \(count) features, got \(x.count)")
        }
        return try embed(FeatureMatrix(rows: 1, columns: count, values: x), logits: image.logits.map { [$0] }).values
    }

    /// Unit rows [rows, textDimension] for feature rows [rows, features] (and their ImageNet logits, which
    /// a map on ConSE needs).
    public func embed(_ features: FeatureMatrix, logits: [[Float]]?) throws -> FeatureMatrix {
        switch kind {
        case .asif:
            return anchors!.embed(features)
        case .contrastive:
            var base: FeatureMatrix?
            if combinesConSE {
                guard let logits, logits.count == features.rows else {
                    throw HeadTuneError.alignmentFailed("the contrastive bridge on ConSE needs the backbone's ImageNet logits")
                }
                base = try conseEmbeddings(alignment, logits: logits, top: conseTop)
            }
            return map!.embed(features, base: base)
        }
    }

    // MARK: - File

    var pairTensors: [SafeTensorsWriter.Tensor] {
        let d = alignment.textDimension
        if let map {
            return [.init(name: "pairs.projection", shape: [d, map.features], values: map.projection),
                    .init(name: "pairs.bias", shape: [d], values: map.bias)]
        }
        let a = anchors!
        return [.init(name: "pairs.anchor_features", shape: [a.features.rows, a.features.columns], values: a.features.values),
                .init(name: "pairs.anchor_mean", shape: [a.mean.count], values: a.mean),
                .init(name: "pairs.anchor_texts", shape: [a.texts.rows, d], values: a.texts.values)]
    }

    /// Writes the class-name alignment and the fitted bridge to one file, atomically.
    public func write(to path: String) throws {
        var metadata = alignment.fileMetadata
        metadata["methods"] = (metadata["methods"] ?? "") + "; \(kind.rawValue): pairs.* (fitted on image-caption pairs)"
        metadata["pairs_method"] = kind.rawValue
        metadata["pairs_features"] = featureSet.rawValue
        metadata["pairs_summary"] = summary
        if let map {
            metadata["pairs_conse"] = combinesConSE ? "true" : "false"
            metadata["pairs_conse_top"] = String(conseTop)
            metadata["pairs_log_scale"] = String(map.logScale)
        }
        if let anchors {
            metadata["pairs_asif_neighbours"] = String(anchors.neighbours)
            metadata["pairs_asif_power"] = String(anchors.power)
        }
        try ImageTextAlignment.write(tensors: alignment.fileTensors + pairTensors, metadata: metadata, to: path)
    }

    /// The fitted bridge in `file` (read by `ImageTextAlignment.read` for its class-name part), nil when
    /// the file holds only the class-name alignment.
    static func read(_ file: SafeTensors, path: String, alignment: ImageTextAlignment, encoder: ImageEncoder) throws -> PairedBridge? {
        guard let method = file.metadata["pairs_method"] else { return nil }
        func unusable(_ reason: String) -> HeadTuneError { .alignmentUnavailable(path: path, reason: reason) }
        guard let kind = Kind(rawValue: method) else { throw unusable("unknown pairs_method \(method)") }
        guard let featureSet = FeatureSet(rawValue: file.metadata["pairs_features"] ?? ""),
              let f = encoder.featureCount(for: featureSet) else {
            throw unusable("its features \(file.metadata["pairs_features"] ?? "?") are not computed by \(encoder.identifier)")
        }
        let d = alignment.textDimension
        let summary = file.metadata["pairs_summary"] ?? "{}"
        do {
            switch kind {
            case .contrastive:
                guard let logScale = Float(file.metadata["pairs_log_scale"] ?? ""),
                      let top = Int(file.metadata["pairs_conse_top"] ?? ""), top >= 1 else {
                    throw unusable("pairs_log_scale / pairs_conse_top missing")
                }
                let map = ContrastiveMap(projection: try file.tensor("pairs.projection", shape: [d, f]),
                                         bias: try file.tensor("pairs.bias", shape: [d]), logScale: logScale, features: f, dimension: d)
                return PairedBridge(kind: kind, alignment: alignment, featureSet: featureSet,
                                    featureOutputs: encoder.outputs(for: featureSet), map: map,
                                    combinesConSE: file.metadata["pairs_conse"] == "true", conseTop: top, summary: summary)
            case .asif:
                let n = try file.shape(of: "pairs.anchor_features").first ?? 0
                guard let k = Int(file.metadata["pairs_asif_neighbours"] ?? ""), let p = Float(file.metadata["pairs_asif_power"] ?? ""),
                      n >= 1 else { throw unusable("pairs_asif_neighbours / pairs_asif_power missing") }
                let anchors = ASIFAnchors(
                    features: FeatureMatrix(rows: n, columns: f, values: try file.tensor("pairs.anchor_features", shape: [n, f])),
                    mean: try file.tensor("pairs.anchor_mean", shape: [f]),
                    texts: FeatureMatrix(rows: n, columns: d, values: try file.tensor("pairs.anchor_texts", shape: [n, d])),
                    neighbours: k, power: p)
                return PairedBridge(kind: kind, alignment: alignment, featureSet: featureSet,
                                    featureOutputs: encoder.outputs(for: featureSet), anchors: anchors, summary: summary)
            }
        } catch let error as HeadTuneError {
            throw error
        } catch {
            throw unusable((error as? LocalizedError)?.errorDescription ?? "\(error)")
        }
    }
}

/// ConSE unit vectors [rows, textDimension] for rows of ImageNet logits.
func conseEmbeddings(_ alignment: ImageTextAlignment, logits: [[Float]], top: Int) throws -> FeatureMatrix {
    var result = FeatureMatrix(columns: alignment.textDimension)
    for row in logits { result.append(row: try alignment.embed(features: [], logits: row, method: .conse, top: top)) }
    return result
}
