import Foundation
import Kernels
import Weights

/// How an image reaches a text space: a map from what the image encoder computed to a unit vector that
/// is compared with text embeddings by cosine. The bundled networks were never trained together, so
/// their bridges go through ImageNet class names (ConSE, DeViSE) or are fitted on the user's
/// image-caption pairs (`PairedBridge`); a jointly trained model's images are in its space natively.
public protocol ImageTextBridge: Sendable {
    /// Identifies the bridge's contents (index entries record it, so an index is rebuilt when it changes).
    var identifier: String { get }
    /// The method name recorded beside it ("conse", "devise").
    var method: ImageTextMethod { get }
    /// The encoder outputs `embed` reads.
    var requiredOutputs: [ImageOutput] { get }
    /// The image's unit vector in the text space.
    func embed(_ image: EncodedImage) throws -> [Float]
}

/// ConSE (Norouzi et al. 2014): the probability-weighted mean of the top-T ImageNet classes' name embeddings.
public struct ConSEBridge: ImageTextBridge {
    public let alignment: ImageTextAlignment
    /// Classes mixed per image (T in the paper).
    public let top: Int

    public init(alignment: ImageTextAlignment, top: Int = 10) {
        self.alignment = alignment
        self.top = top
    }

    public var identifier: String { alignment.identifier }
    public var method: ImageTextMethod { .conse }
    public var requiredOutputs: [ImageOutput] { [.features, .logits] }
    public func embed(_ image: EncodedImage) throws -> [Float] {
        try alignment.embed(features: image.features, logits: image.logits, method: .conse, top: top)
    }
}

/// DeViSE-style linear map (Frome et al. 2013) from the pooled features into the text space.
public struct DeViSEBridge: ImageTextBridge {
    public let alignment: ImageTextAlignment

    public init(alignment: ImageTextAlignment) { self.alignment = alignment }

    public var identifier: String { alignment.identifier }
    public var method: ImageTextMethod { .devise }
    public var requiredOutputs: [ImageOutput] { [.features] }
    public func embed(_ image: EncodedImage) throws -> [Float] {
        try alignment.embed(features: image.features, logits: nil, method: .devise)
    }
}

/// A jointly trained model (CLIP): the image tower's embedding, normalized, is already in the text
/// tower's space.
public struct JointEmbeddingBridge: ImageTextBridge {
    /// The image tower's identifier.
    public let identifier: String

    public var method: ImageTextMethod { .native }
    public var requiredOutputs: [ImageOutput] { [.embedding] }
    public func embed(_ image: EncodedImage) throws -> [Float] {
        guard var vector = image[.embedding] else {
            throw HeadTuneError.alignmentFailed("the image encoder did not compute its joint embedding")
        }
        vector.withUnsafeMutableBufferPointer { normalizeRows($0.baseAddress!, rows: 1, columns: $0.count) }
        return vector
    }
}

/// Embeds groups of prompts and averages each group into one unit vector: prompt ensembling (CLIP's
/// zero-shot classifiers: a class name in several templates; ImageNet classes: every synonym).
/// - returns: one unit vector per group
public func promptEmbeddings(_ groups: [[String]], encoder: TextEncoder) throws -> [[Float]] {
    let rows = try encoder.embed(groups.flatMap { $0 })
    var start = 0
    return groups.map { group in
        var mean = [Float](repeating: 0, count: encoder.dimension)
        for row in rows[start..<(start + group.count)] { for j in mean.indices { mean[j] += row[j] } }
        start += group.count
        mean.withUnsafeMutableBufferPointer { normalizeRows($0.baseAddress!, rows: 1, columns: encoder.dimension) }
        return mean
    }
}

/// What the image-text commands share, in the CLI and the service alike: a text encoder, the bridge
/// that puts images in its space, prompt templates, zero-shot scoring and similarities.
public struct TextSpace: Sendable {
    public let text: TextEncoder
    public let bridge: any ImageTextBridge

    public init(text: TextEncoder, bridge: any ImageTextBridge) {
        self.text = text
        self.bridge = bridge
    }

    /// The prompt zero-shot uses when none is given.
    public static let defaultTemplate = "a photo of a {}."

    /// The softmax factor on similarities for zero-shot scores: a joint model's learned one (CLIP's
    /// exp(logit_scale), 100), else 50 (measured for the class-name bridge, BENCHMARKS.md).
    public var defaultTemperature: Float { text.logitScale ?? 50 }

    /// The encoder outputs an image needs for `imageVector`.
    public var requiredOutputs: [ImageOutput] { bridge.requiredOutputs }

    /// The image's unit vector in the text space.
    public func imageVector(_ image: EncodedImage) throws -> [Float] { try bridge.embed(image) }

    /// One unit vector per label: the label in every template ("{}" = the label), averaged.
    public func labelEmbeddings(_ labels: [String], templates: [String] = [TextSpace.defaultTemplate]) throws -> [[Float]] {
        let templates = templates.isEmpty ? [Self.defaultTemplate] : templates
        return try promptEmbeddings(labels.map { label in templates.map { $0.replacingOccurrences(of: "{}", with: label) } },
                                    encoder: text)
    }

    /// Cosine similarity of an image vector with each text vector.
    public func similarities(_ image: [Float], _ texts: [[Float]]) -> [Float] { texts.map { dot(image, $0) } }

    /// One zero-shot answer.
    public struct Score: Sendable, Equatable {
        /// Position of the label.
        public var index: Int
        /// softmax(similarity x temperature) over the labels; with one label, the similarity itself
        /// (a softmax over one class is always 1).
        public var score: Float
        public var similarity: Float
    }

    /// The `topK` best labels for an image vector, best first.
    public func zeroShot(_ image: [Float], classes: [[Float]], temperature: Float, topK: Int) -> [Score] {
        let similarities = self.similarities(image, classes)
        let scores = classes.count == 1 ? similarities : probabilities(fromLogits: similarities.map { $0 * temperature })
        return scores.withUnsafeBufferPointer { largestEntries($0, k: min(topK, classes.count)) }.map {
            Score(index: $0.index, score: $0.score, similarity: similarities[$0.index])
        }
    }

    /// What an index entry computed in this space records.
    public func indexModels(imageEncoder: ImageEncoder) -> ImageIndex.Models {
        ImageIndex.Models(backbone: imageEncoder.identifier, textEncoder: text.identifier, alignment: bridge.identifier,
                          method: bridge.method)
    }

    // MARK: - Loading

    /// The bridge from `imageEncoder` into `text`'s space, by one policy for every caller:
    /// `alignmentPath` given: that file, which must exist; nil: the default file in the weights
    /// directory, fitted from the image encoder's classifier and written there on first use.
    /// - log: what happens (the first-use fit takes a few seconds)
    /// A jointly trained pair (CLIP's two towers) needs no bridge: images are native in its space.
    /// - method: nil: native for a joint pair, else ConSE
    public static func load(imageEncoder: ImageEncoder, text: TextEncoder, alignmentPath: String?, method: ImageTextMethod? = nil,
                            conseTop: Int = 10, weightsDirectory: URL? = nil, log: (String) -> Void = { _ in }) throws -> TextSpace {
        if text.pairedImageModel == imageEncoder.identifier {
            guard method == nil || method == .native else {
                throw HeadTuneError.alignmentFailed("\(imageEncoder.identifier) and its text tower share one space: "
                                                    + "a \(method!.rawValue) bridge does not apply (leave --method out)")
            }
            return TextSpace(text: text, bridge: JointEmbeddingBridge(identifier: imageEncoder.identifier))
        }
        guard method != .native else {
            throw HeadTuneError.alignmentFailed("\(imageEncoder.identifier) and \(text.identifier) were not trained together: "
                                                + "use --method conse or devise")
        }
        return try load(imageEncoder: imageEncoder, text: text, alignmentPath: alignmentPath, method: method, conseTop: conseTop,
                 weightsDirectory: weightsDirectory, log: log) { try ImageTextAlignment.fit(encoder: $0, textEncoder: $1, log: log) }
    }

    /// - method: nil: the bridge fitted on pairs when the file has one (`headtune align --pairs`), else ConSE
    /// - fitting: how a missing default bridge is fitted (tests pass a cheap one)
    static func load(imageEncoder: ImageEncoder, text: TextEncoder, alignmentPath: String?, method: ImageTextMethod?,
                     conseTop: Int, weightsDirectory: URL?, log: (String) -> Void,
                     fitting: (ImageEncoder, TextEncoder) throws -> ImageTextAlignment) throws -> TextSpace {
        let (alignment, paired) = try loadBridgeFile(imageEncoder: imageEncoder, text: text, path: alignmentPath,
                                                     weightsDirectory: weightsDirectory, log: log, fitting: fitting)
        let bridge: any ImageTextBridge
        switch method ?? paired?.method ?? .conse {
        case .conse, .native: bridge = ConSEBridge(alignment: alignment, top: conseTop)
        case .devise: bridge = DeViSEBridge(alignment: alignment)
        case .contrastive, .asif:
            guard let paired, paired.method == method ?? paired.method else {
                let file = try alignmentPath ?? defaultAlignmentPath(weightsDirectory: weightsDirectory)
                throw HeadTuneError.alignmentUnavailable(
                    path: file, reason: paired.map { "its bridge was fitted with --method \($0.kind.rawValue), not \(method!.rawValue)" }
                        ?? "it holds no bridge fitted on image-caption pairs (`headtune align --pairs FILE.csv` makes one)")
            }
            bridge = paired
        }
        return TextSpace(text: text, bridge: bridge)
    }

    /// Where the default alignment file lives: `weightsDirectory`, else the weights directory found
    /// the usual way.
    public static func defaultAlignmentPath(weightsDirectory: URL?) throws -> String {
        try (weightsDirectory ?? WeightsLocator.directory()).appendingPathComponent(ImageTextAlignment.defaultFileName).path
    }

    /// The class-name alignment of the given or default file (fitted and written on first use), and the
    /// bridge fitted on pairs when the file holds one.
    public static func loadAlignment(imageEncoder: ImageEncoder, text: TextEncoder, path: String?, weightsDirectory: URL?,
                                     log: (String) -> Void = { _ in }) throws -> ImageTextAlignment {
        try loadBridgeFile(imageEncoder: imageEncoder, text: text, path: path, weightsDirectory: weightsDirectory, log: log) {
            try ImageTextAlignment.fit(encoder: $0, textEncoder: $1, log: log)
        }.alignment
    }

    static func loadBridgeFile(imageEncoder: ImageEncoder, text: TextEncoder, path: String?, weightsDirectory: URL?,
                               log: (String) -> Void, fitting: (ImageEncoder, TextEncoder) throws -> ImageTextAlignment)
        throws -> (alignment: ImageTextAlignment, paired: PairedBridge?)
    {
        let file = try path ?? defaultAlignmentPath(weightsDirectory: weightsDirectory)
        if FileManager.default.fileExists(atPath: file) {
            return try ImageTextAlignment.readFile(path: file, encoder: imageEncoder, textEncoder: text)
        }
        guard path == nil else { throw HeadTuneError.alignmentUnavailable(path: file, reason: "file not found") }
        // First use: fit the default bridge (deterministic, seconds) and keep it for next time.
        log("\(file) not found; fitting the image-text alignment once (same as `headtune align`)")
        let fitted = try fitting(imageEncoder, text)
        do { try fitted.write(to: file) } catch {
            log("warning: \(error.localizedDescription); using the fitted alignment without saving it")
        }
        return (fitted, nil)
    }
}
