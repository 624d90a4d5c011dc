import Foundation

/// Symmetric InfoNCE (van den Oord et al. 2018; the image-text form of CLIP, Radford et al. 2021, and
/// LiT, Zhai et al. 2022) over a batch of images and captions where an image may have several captions.
///
/// With logits z_ic = e^s · S_ic (S: cosine similarities, s: the learned log scale):
/// - text -> image: each caption c picks its image among the batch's images,
///   L_t = mean_c [-log softmax_i(z_·c)[owner(c)]];
/// - image -> text: each image picks its captions among the batch's captions, every positive equally
///   (a soft target 1/|P_i| on each of its captions), L_i = mean_i mean_{c∈P_i} [-log softmax_c(z_i·)[c]];
/// - L = (L_t + L_i) / 2.
/// Both directions are `CrossEntropy` rows: text -> image on the transposed logits, image -> text as one
/// row per caption (its image's logits, that caption the label, weight 1/|P_i|).
public enum InfoNCE {
    /// - similarities: [images, captions], row-major
    /// - owner: per caption, its image (0..<images); every image must have a caption
    /// - logScale: s (the logits are e^s · similarities)
    /// - similarityGradient: when non-nil receives dL/dS [images, captions]
    /// Returns L and dL/ds.
    public static func loss(similarities: UnsafePointer<Float>, images: Int, captions: Int, owner: [Int], logScale: Float,
                            similarityGradient: UnsafeMutablePointer<Float>?) -> (loss: Double, logScaleGradient: Double) {
        precondition(owner.count == captions && images > 0 && captions > 0, "owner for \(captions) captions")
        let scale = expf(logScale)
        var positives = [Int](repeating: 0, count: images)
        for i in owner { positives[i] += 1 }
        precondition(!positives.contains(0), "an image without a caption")

        // Text -> image: [captions, images] logits, label = owner.
        var byCaption = [Float](repeating: 0, count: captions * images)
        for i in 0..<images {
            for c in 0..<captions { byCaption[c * images + i] = scale * similarities[i * captions + c] }
        }
        let wantGradient = similarityGradient != nil
        var captionGradient = [Float](repeating: 0, count: wantGradient ? byCaption.count : 0)
        let textLoss = byCaption.withUnsafeBufferPointer { z in
            captionGradient.withUnsafeMutableBufferPointer { g in
                CrossEntropy.loss(logits: z.baseAddress!, rows: captions, classes: images, labels: owner, weights: nil,
                                  smoothing: 0, gradient: wantGradient ? g.baseAddress! : nil)
            }
        }
        // Image -> text: one row per caption, the logits of its image, label = the caption itself.
        var byPair = [Float](repeating: 0, count: captions * captions)
        for c in 0..<captions {
            let row = owner[c] * captions
            for k in 0..<captions { byPair[c * captions + k] = scale * similarities[row + k] }
        }
        var pairGradient = [Float](repeating: 0, count: wantGradient ? byPair.count : 0)
        let imageLoss = byPair.withUnsafeBufferPointer { z in
            pairGradient.withUnsafeMutableBufferPointer { g in
                CrossEntropy.loss(logits: z.baseAddress!, rows: captions, classes: captions, labels: Array(0..<captions),
                                  weights: owner.map { 1 / Float(positives[$0]) }, smoothing: 0,
                                  gradient: wantGradient ? g.baseAddress! : nil)
            }
        }
        let loss = 0.5 * (textLoss + imageLoss)
        guard let dS = similarityGradient else { return (loss, .nan) }
        // dL/dz back to dL/dS (z = e^s S) and dL/ds = Σ dL/dz · z.
        var scaleGradient = 0.0
        for i in 0..<images {
            for c in 0..<captions { dS[i * captions + c] = 0.5 * captionGradient[c * images + i] }
        }
        for c in 0..<captions {
            let row = owner[c] * captions
            for k in 0..<captions { dS[row + k] += 0.5 * pairGradient[c * captions + k] }
        }
        for j in 0..<(images * captions) {
            scaleGradient += Double(dS[j]) * Double(similarities[j])
            dS[j] *= scale
        }
        return (loss, scaleGradient * Double(scale))
    }
}

/// Recall@K of image-text retrieval on a similarity matrix: text -> image, the share of captions whose
/// image is among the K most similar images; image -> text, the share of images with at least one of
/// their captions among the K most similar captions (the Flickr8k/COCO protocol of Karpathy & Fei-Fei 2015).
public struct RetrievalRecall: Sendable, Equatable, Codable {
    public static let ks = [1, 5, 10]
    /// Per K in `ks`.
    public var textToImage: [Double]
    public var imageToText: [Double]
    public var images: Int
    public var captions: Int

    /// - similarities: [images, captions]. Ties count against the true match (rank = number of
    ///   candidates scoring at least as high, other than itself), so a constant score earns nothing.
    public init(similarities s: [Float], images: Int, captions: Int, owner: [Int]) {
        precondition(s.count == images * captions && owner.count == captions, "similarities of \(images)x\(captions)")
        self.images = images
        self.captions = captions
        var t2i = [Int](repeating: 0, count: Self.ks.count), i2t = t2i
        for c in 0..<captions {
            let truth = s[owner[c] * captions + c]
            var rank = 0
            for i in 0..<images where i != owner[c] && s[i * captions + c] >= truth { rank += 1 }
            for (n, k) in Self.ks.enumerated() where rank < k { t2i[n] += 1 }
        }
        var captionsOf = [[Int]](repeating: [], count: images)
        for (c, i) in owner.enumerated() { captionsOf[i].append(c) }
        for i in 0..<images where !captionsOf[i].isEmpty {
            let row = Array(s[(i * captions)..<((i + 1) * captions)])
            let best = captionsOf[i].map { row[$0] }.max()!
            // Rank of the best positive: the negatives scoring at least as high.
            var rank = 0
            for c in 0..<captions where owner[c] != i && row[c] >= best { rank += 1 }
            for (n, k) in Self.ks.enumerated() where rank < k { i2t[n] += 1 }
        }
        textToImage = t2i.map { Double($0) / Double(max(captions, 1)) }
        imageToText = i2t.map { Double($0) / Double(max(images, 1)) }
    }

    /// The mean of both directions' R@5: the single number model selection looks at.
    public var meanRecallAt5: Double { (textToImage[1] + imageToText[1]) / 2 }
}
