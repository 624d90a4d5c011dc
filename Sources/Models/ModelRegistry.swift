import Foundation
import Weights

/// A loaded image network with what identifies it in head files, feature caches and indexes.
public struct LoadedImageModel: Sendable {
    public var model: any ImageEncoderModel
    /// Stable id of network + weights, e.g. "efficientnet-lite0@57934424d8f1".
    public var identifier: String
    /// sha256 of the checkpoint the weights came from (heads record it and refuse others).
    public var weightsSHA256: String
    /// Class names of the pretrained classifier behind `.logits`, when the model has one.
    public var classifierLabels: [String]?
}

/// A loaded sentence encoder with its tokenizer.
public struct LoadedTextModel: Sendable {
    public var model: any TextEncoderModel
    public var tokenizer: any TextTokenizer
    public var identifier: String
}

/// Builds encoders from their configuration: a bundled model by name (its files in the weights
/// directory, fetched and converted by scripts/assets.py), or a folder a user brings whose
/// `config.json` names its architecture (`model_type`, as Hugging Face writes it). The CLI and the
/// service ask here; they never name a model type. A new architecture is one entry below.
public enum ModelRegistry {
    /// A model that ships with headtune's weights pipeline.
    public struct BundledModel: Sendable {
        public var name: String
        public var kind: Kind
        /// The file (relative to the weights directory) whose presence says the model is installed.
        public var file: String
        public var summary: String
    }

    public enum Kind: String, Sendable {
        case image, text
    }

    public static let defaultImageModel = "efficientnet-lite0"
    public static let defaultTextModel = "all-minilm-l6-v2"

    public static let bundled: [BundledModel] = [
        BundledModel(name: "efficientnet-lite0", kind: .image, file: "efficientnet-lite0.safetensors",
                     summary: "EfficientNet-Lite0, ImageNet-1k (224 px; 1280 features, 784 stage features, 1000 logits)"),
        BundledModel(name: "all-minilm-l6-v2", kind: .text, file: "all-minilm-l6-v2.safetensors",
                     summary: "all-MiniLM-L6-v2 sentence encoder (384-d, WordPiece, 256 tokens)"),
    ]

    /// Architectures of folders a user brings, by config.json `model_type`.
    static let textArchitectures: [String: @Sendable (URL) throws -> LoadedTextModel] = [
        "bert": loadBertFolder,
    ]
    static let imageArchitectures: [String: @Sendable (URL) throws -> LoadedImageModel] = [:]

    /// The image encoder `reference` names: a bundled model's name (nil: the default), or a folder.
    /// - weightsDirectory: where bundled models are; nil searches the usual places (HEADTUNE_WEIGHTS, ./weights, ...)
    public static func imageEncoder(_ reference: String? = nil, weightsDirectory: URL? = nil) throws -> LoadedImageModel {
        let name = reference ?? defaultImageModel
        if let entry = bundled.first(where: { $0.name == name }) {
            guard entry.kind == .image else { throw ModelsError.unknownModel(name: name, reason: "\(name) is a text encoder") }
            return try loadEfficientNetLite0(directory: weightsDirectory ?? WeightsLocator.directory(containing: entry.file))
        }
        let folder = try modelFolder(name)
        let type = try modelType(of: folder)
        guard let load = imageArchitectures[type] else {
            throw ModelsError.unknownModel(name: name, reason: "model_type \"\(type)\" is not an image encoder headtune runs"
                                           + " (image: \(bundledNames(.image))\(imageArchitectures.keys.sorted().map { ", \($0) folders" }.joined()))")
        }
        return try load(folder)
    }

    /// The text encoder `reference` names: a bundled model's name (nil: the default), or a folder.
    public static func textEncoder(_ reference: String? = nil, weightsDirectory: URL? = nil) throws -> LoadedTextModel {
        let name = reference ?? defaultTextModel
        if let entry = bundled.first(where: { $0.name == name }) {
            guard entry.kind == .text else { throw ModelsError.unknownModel(name: name, reason: "\(name) is an image encoder") }
            let directory = try weightsDirectory ?? WeightsLocator.directory(containing: entry.file)
            return try loadMiniLM(weights: directory.appendingPathComponent(entry.file),
                                  files: directory.appendingPathComponent(name),
                                  manifest: directory.appendingPathComponent("manifest.json"), name: name)
        }
        let folder = try modelFolder(name)
        let type = try modelType(of: folder)
        guard let load = textArchitectures[type] else {
            throw ModelsError.unknownModel(name: name, reason: "model_type \"\(type)\" is not a text encoder headtune runs"
                                           + " (text: \(bundledNames(.text)), \(textArchitectures.keys.sorted().joined(separator: ", ")) folders)")
        }
        return try load(folder)
    }

    private static func bundledNames(_ kind: Kind) -> String {
        bundled.filter { $0.kind == kind }.map(\.name).joined(separator: ", ")
    }

    private static func modelFolder(_ reference: String) throws(ModelsError) -> URL {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: reference, isDirectory: &isDirectory), isDirectory.boolValue else {
            throw .unknownModel(name: reference, reason: "neither a bundled model (\(bundled.map(\.name).joined(separator: ", "))) nor a model folder")
        }
        return URL(fileURLWithPath: reference)
    }

    /// `model_type` of a Hugging Face folder's config.json.
    static func modelType(of folder: URL) throws(ModelsError) -> String {
        struct Header: Decodable { var model_type: String? }
        let url = folder.appendingPathComponent("config.json")
        let data: Data
        do { data = try Data(contentsOf: url) } catch {
            throw .unreadableFile(file: url.path, reason: "a model folder needs config.json: \(error.localizedDescription)")
        }
        guard let header = try? JSONDecoder().decode(Header.self, from: data) else {
            throw .invalidConfiguration(file: url.path, reason: "not a JSON object")
        }
        guard let type = header.model_type else { throw .invalidConfiguration(file: url.path, reason: "no model_type") }
        return type
    }

    // MARK: - Loaders

    static func loadEfficientNetLite0(directory: URL) throws -> LoadedImageModel {
        let file = try SafeTensors(contentsOf: directory.appendingPathComponent("efficientnet-lite0.safetensors"))
        let model = try EfficientNetLite(configuration: .lite0, weights: file)
        let hash = file.metadata["source_member_sha256"] ?? "unknown"
        return LoadedImageModel(model: model, identifier: "efficientnet-lite0@\(hash.prefix(12))", weightsSHA256: hash,
                                classifierLabels: nil)
    }

    static func loadMiniLM(weights: URL, files: URL, manifest: URL?, name: String) throws -> LoadedTextModel {
        let configuration = try MiniLMConfiguration.load(contentsOf: files.appendingPathComponent("config.json"))
        let model = try MiniLM(configuration: configuration, weights: try SafeTensors(contentsOf: weights))
        let tokenizer = try WordPieceTokenizer(vocabularyFile: files.appendingPathComponent("vocab.txt"))
        let listed = manifest.flatMap { try? WeightsManifest.load(contentsOf: $0) }?.file(output: weights.lastPathComponent)
        let hash = try listed?.outputSHA256 ?? SHA256.hex(fileAt: weights.path)
        return LoadedTextModel(model: model, tokenizer: tokenizer, identifier: "\(name)@\(hash.prefix(12))")
    }

    /// A BERT sentence-transformers folder (config.json, model.safetensors, vocab.txt), mean-pooled.
    @Sendable static func loadBertFolder(_ folder: URL) throws -> LoadedTextModel {
        try loadMiniLM(weights: folder.appendingPathComponent("model.safetensors"), files: folder, manifest: nil,
                       name: folder.lastPathComponent)
    }
}
