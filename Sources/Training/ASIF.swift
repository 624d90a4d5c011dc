import Foundation
import Kernels

/// ASIF (Norelli et al., "ASIF: Coupled Data Turns Unimodal Models to Multimodal Without Training",
/// NeurIPS 2023): an image is described by its similarities to anchor images, each anchor standing for
/// its captions. The paper compares such relative representations on both sides; here the image's
/// sparsified, sharpened similarities weight the anchors' caption embeddings, so the image lands in the
/// text encoder's own space and any text is compared with it by cosine, as every other bridge does (the
/// text side is not sparsified: a text's vector stays its embedding).
public struct ASIFAnchors: Sendable, Equatable {
    /// [anchors, features]: the anchor images' features minus `mean`, unit rows.
    public var features: FeatureMatrix
    /// [features]: the anchors' mean feature (centering makes cosines between images discriminative:
    /// ReLU features are all positive and otherwise all alike).
    public var mean: [Float]
    /// [anchors, dimension]: the normalized mean of each anchor's caption embeddings.
    public var texts: FeatureMatrix
    /// Anchors kept per image (k in the paper) and the exponent on their similarities (p).
    public var neighbours: Int
    public var power: Float

    public init(features: FeatureMatrix, mean: [Float], texts: FeatureMatrix, neighbours: Int, power: Float) {
        precondition(features.rows == texts.rows && mean.count == features.columns, "anchors")
        self.features = features
        self.mean = mean
        self.texts = texts
        self.neighbours = neighbours
        self.power = power
    }

    /// Anchors from raw image features [images, features] and caption embeddings [captions, d] with
    /// their owners.
    public init(images: FeatureMatrix, captions: FeatureMatrix, owner: [Int], neighbours: Int, power: Float) {
        let f = images.columns, d = captions.columns
        var mean = [Float](repeating: 0, count: f)
        for r in 0..<images.rows { for k in 0..<f { mean[k] += images.values[r * f + k] } }
        for k in 0..<f { mean[k] /= Float(max(images.rows, 1)) }
        var texts = [Float](repeating: 0, count: images.rows * d)
        for (c, i) in owner.enumerated() { for j in 0..<d { texts[i * d + j] += captions.values[c * d + j] } }
        texts.withUnsafeMutableBufferPointer { normalizeRows($0.baseAddress!, rows: images.rows, columns: d) }
        self.init(features: Self.centred(images, mean: mean), mean: mean,
                  texts: FeatureMatrix(rows: images.rows, columns: d, values: texts), neighbours: neighbours, power: power)
    }

    static func centred(_ x: FeatureMatrix, mean: [Float]) -> FeatureMatrix {
        var values = x.values
        let f = x.columns
        for r in 0..<x.rows { for k in 0..<f { values[r * f + k] -= mean[k] } }
        values.withUnsafeMutableBufferPointer { normalizeRows($0.baseAddress!, rows: x.rows, columns: f) }
        return FeatureMatrix(rows: x.rows, columns: f, values: values)
    }

    /// Unit rows [rows, dimension] in the text space for raw features [rows, features]: Σ_j w_j t_j over
    /// the `neighbours` most similar anchors, w_j = max(cos_j, 0)^power.
    public func embed(_ x: FeatureMatrix) -> FeatureMatrix {
        let n = features.rows, d = texts.columns, f = features.columns
        let q = Self.centred(x, mean: mean)
        var similarities = [Float](repeating: 0, count: x.rows * n)
        guard x.rows > 0 else { return FeatureMatrix(columns: d) }
        q.values.withUnsafeBufferPointer { a in
            features.values.withUnsafeBufferPointer { b in
                similarities.withUnsafeMutableBufferPointer { s in
                    BLAS.sgemm(transposeB: true, m: x.rows, n: n, k: f, a: a.baseAddress!, lda: f, b: b.baseAddress!, ldb: f,
                               c: s.baseAddress!, ldc: n)
                }
            }
        }
        var out = [Float](repeating: 0, count: x.rows * d)
        let k = min(max(neighbours, 1), n)
        for r in 0..<x.rows {
            let row = similarities[(r * n)..<((r + 1) * n)]
            let nearest = row.indices.sorted { row[$0] > row[$1] || (row[$0] == row[$1] && $0 < $1) }.prefix(k)
            for j in nearest {
                let w = powf(max(row[j], 0), power)
                for c in 0..<d { out[r * d + c] += w * texts.values[(j - r * n) * d + c] }
            }
        }
        out.withUnsafeMutableBufferPointer { normalizeRows($0.baseAddress!, rows: x.rows, columns: d) }
        return FeatureMatrix(rows: x.rows, columns: d, values: out)
    }
}
