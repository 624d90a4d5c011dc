import Foundation
import Synchronization
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
    /// The text encoder trained together with this image encoder (a CLIP folder), to ask the
    /// registry for; nil for an image-only network.
    public var pairedTextModel: String? = nil
    /// The arithmetic the network runs in (int8 when asked for and this CPU has VNNI).
    public var precision: Precision = .fp32
    /// What sets this network apart from the checkpoint's own in caches (the int8 file), nil for none.
    public var variant: String? = nil
    /// Things the user should hear about how the request was met (int8 asked on a CPU without VNNI).
    public var notes: [String] = []
}

/// The arithmetic of an image network's dense layers.
public enum Precision: String, CaseIterable, Sendable, Codable {
    case fp32, int8
}

/// A loaded sentence encoder with its tokenizer.
public struct LoadedTextModel: Sendable {
    public var model: any TextEncoderModel
    public var tokenizer: any TextTokenizer
    public var identifier: String
    /// For a jointly trained model: the identifier of its image tower, whose embeddings live in this
    /// encoder's space, and the learned softmax scale on cosine similarities.
    public var pairedImageModel: String? = nil
    public var logitScale: Float? = nil
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
        "clip": loadCLIPText,
    ]
    static let imageArchitectures: [String: @Sendable (URL) throws -> LoadedImageModel] = [
        "clip": loadCLIPVision,
    ]

    /// The image encoder `reference` names: a bundled model's name (nil: the default), or a folder.
    /// - weightsDirectory: where bundled models are; nil searches the usual places (HEADTUNE_WEIGHTS, ./weights, ...)
    /// - precision: int8 runs the network `headtune quantize` made from these weights (`quantizedFile`,
    ///   default `int8File(for:in:)`); on a CPU without AVX-512 VNNI it runs fp32 and says so in `notes`
    public static func imageEncoder(_ reference: String? = nil, weightsDirectory: URL? = nil, precision: Precision = .fp32,
                                    quantizedFile: URL? = nil) throws -> LoadedImageModel {
        let name = reference ?? defaultImageModel
        if let entry = bundled.first(where: { $0.name == name }) {
            guard entry.kind == .image else { throw ModelsError.unknownModel(name: name, reason: "\(name) is a text encoder") }
            let directory = try weightsDirectory ?? WeightsLocator.directory(containing: entry.file)
            let fp32 = try loadEfficientNetLite0(directory: directory)
            guard precision == .int8 else { return fp32 }
            return try loadInt8(fp32, file: quantizedFile ?? int8File(for: name, in: directory))
        }
        guard precision == .fp32 else {
            throw ModelsError.unknownModel(name: name, reason: "--precision int8 is available for the bundled \(defaultImageModel) only")
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

    /// Where `headtune quantize` writes a bundled model's int8 file by default: beside its weights.
    public static func int8File(for name: String = defaultImageModel, in directory: URL) -> URL {
        directory.appendingPathComponent("\(name).int8.safetensors")
    }

    // MARK: - Loaders

    static func loadInt8(_ fp32: LoadedImageModel, file: URL) throws -> LoadedImageModel {
        guard let base = fp32.model as? EfficientNetLite else {
            throw ModelsError.unknownModel(name: fp32.identifier, reason: "has no int8 form")
        }
        guard FileManager.default.fileExists(atPath: file.path) else {
            throw ModelsError.unreadableFile(file: file.path, reason: "no int8 weights there; make them with `headtune quantize --calibration DIR` (a folder of images like the ones you will classify), or name another file with --quantized FILE")
        }
        let safetensors = try SafeTensors(contentsOf: file)
        let quantized = try QuantizedEfficientNetLite(base: base, file: safetensors, weightsSHA256: fp32.weightsSHA256)
        guard QuantizedEfficientNetLite.isSupported else {
            var result = fp32
            result.notes.append("this CPU has no AVX-512 VNNI, which the int8 kernels need: running fp32 instead")
            return result
        }
        var result = fp32
        result.model = quantized
        result.precision = .int8
        result.variant = "int8-\(try SHA256.hex(fileAt: file.path).prefix(16))"
        return result
    }

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

    /// A Hugging Face `CLIPModel` folder's image tower, with the preprocessing its
    /// preprocessor_config.json states.
    @Sendable static func loadCLIPVision(_ folder: URL) throws -> LoadedImageModel {
        let (configuration, weights, hash) = try openCLIP(folder)
        let preprocessing = try CLIPModel.preprocessing(contentsOf: folder.appendingPathComponent("preprocessor_config.json"),
                                                        imageSize: configuration.imageSize)
        let model = try CLIPModel(configuration: configuration, preprocessing: preprocessing, weights: weights, towers: .vision)
        return LoadedImageModel(model: model.vision!, identifier: clipIdentifier(folder, hash, tower: "image"),
                                weightsSHA256: hash, classifierLabels: nil, pairedTextModel: folder.path)
    }

    /// A Hugging Face `CLIPModel` folder's text tower with its byte-level BPE tokenizer.
    @Sendable static func loadCLIPText(_ folder: URL) throws -> LoadedTextModel {
        let (configuration, weights, hash) = try openCLIP(folder)
        let tokenizer = try CLIPTokenizer(directory: folder, maxLength: configuration.maxPositions)
        let model = try CLIPModel(configuration: configuration, preprocessing: nil, weights: weights, towers: .text)
        return LoadedTextModel(model: model.text!, tokenizer: tokenizer, identifier: clipIdentifier(folder, hash, tower: "text"),
                               pairedImageModel: clipIdentifier(folder, hash, tower: "image"), logitScale: model.logitScale)
    }

    /// config.json, the weights (memory-mapped) and their sha256, which identifies the model.
    static func openCLIP(_ folder: URL) throws -> (CLIPConfiguration, SafeTensors, String) {
        let configuration = try CLIPConfiguration.load(contentsOf: folder.appendingPathComponent("config.json"))
        let file = folder.appendingPathComponent("model.safetensors")
        guard FileManager.default.fileExists(atPath: file.path) else {
            throw ModelsError.unreadableFile(file: file.path, reason: "a CLIP folder needs model.safetensors (the Hugging Face CLIPModel weights)")
        }
        let weights = try SafeTensors(contentsOf: file)
        return (configuration, weights, try weightsHash(file))
    }

    /// sha256 of a weights file, computed once per process for an unchanged file: a CLIP folder's two
    /// towers load separately (text commands need both) and the file can be hundreds of megabytes.
    static func weightsHash(_ file: URL) throws -> String {
        let attributes = try FileManager.default.attributesOfItem(atPath: file.path)
        let stamp = "\(file.standardizedFileURL.path)|\((attributes[.size] as? NSNumber)?.int64Value ?? -1)|"
            + "\((attributes[.modificationDate] as? Date)?.timeIntervalSince1970 ?? -1)"
        if let known = knownHashes.withLock({ $0[stamp] }) { return known }
        let hash = try SHA256.hex(fileAt: file.path)
        knownHashes.withLock { $0[stamp] = hash }
        return hash
    }

    private static let knownHashes = Mutex<[String: String]>([:])

    static func clipIdentifier(_ folder: URL, _ hash: String, tower: String) -> String {
        "clip-\(tower):\(folder.standardizedFileURL.lastPathComponent)@\(hash.prefix(12))"
    }

    // MARK: - Catalogue

    /// One model `headtune models` lists.
    public struct Listing: Sendable, Equatable {
        public var name: String
        /// "image", "text", or "image+text" for a jointly trained folder.
        public var kind: String
        public var bundled: Bool
        /// Where it is (nil: a bundled model not fetched yet).
        public var location: String?
        public var bytes: Int64?
        /// The identifier heads, caches and indexes record (nil when not installed).
        public var identifier: String?
        public var summary: String
    }

    /// Environment variable naming a folder whose sub-folders are model folders.
    public static let modelsEnvironmentVariable = "HEADTUNE_MODELS"

    /// The bundled models (installed in `weightsDirectory` or not) and the model folders under `modelsDirectory`.
    /// A folder that is not a model this build runs is listed with the reason as its summary.
    public static func catalogue(weightsDirectory: URL?, modelsDirectory: URL?) -> [Listing] {
        var result: [Listing] = []
        let manifest = weightsDirectory.flatMap { try? WeightsManifest.load(contentsOf: $0.appendingPathComponent("manifest.json")) }
        for entry in bundled {
            let url = weightsDirectory?.appendingPathComponent(entry.file)
            let present = url.map { FileManager.default.fileExists(atPath: $0.path) } ?? false
            var identifier: String?
            if present, let url {
                switch entry.kind {
                case .image: identifier = (try? SafeTensors(contentsOf: url))?.metadata["source_member_sha256"].map { "\(entry.name)@\($0.prefix(12))" }
                case .text: identifier = manifest?.file(output: entry.file).map { "\(entry.name)@\($0.outputSHA256.prefix(12))" }
                }
            }
            result.append(Listing(name: entry.name, kind: entry.kind.rawValue, bundled: true, location: present ? url?.path : nil,
                                  bytes: present ? fileSize(url!) : nil, identifier: identifier,
                                  summary: present ? entry.summary : entry.summary + "; not fetched (make weights)"))
        }
        guard let modelsDirectory,
              let names = try? FileManager.default.contentsOfDirectory(atPath: modelsDirectory.path) else { return result }
        for name in names.sorted() {
            let folder = modelsDirectory.appendingPathComponent(name)
            var isDirectory: ObjCBool = false
            guard FileManager.default.fileExists(atPath: folder.path, isDirectory: &isDirectory), isDirectory.boolValue else { continue }
            let weights = folder.appendingPathComponent("model.safetensors")
            do {
                let type = try modelType(of: folder)
                let image = imageArchitectures[type] != nil, text = textArchitectures[type] != nil
                guard image || text else { throw ModelsError.unknownModel(name: name, reason: "model_type \(type) is not one headtune runs") }
                let hash = try weightsHash(weights)
                let identifier = type == "clip" ? clipIdentifier(folder, hash, tower: "image") : "\(name)@\(hash.prefix(12))"
                result.append(Listing(name: name, kind: image && text ? "image+text" : (image ? "image" : "text"), bundled: false,
                                      location: folder.path, bytes: fileSize(weights), identifier: identifier,
                                      summary: "\(type) folder (--model \(folder.path))"))
            } catch {
                result.append(Listing(name: name, kind: "?", bundled: false, location: folder.path, bytes: nil, identifier: nil,
                                      summary: "not usable: \((error as? LocalizedError)?.errorDescription ?? "\(error)")"))
            }
        }
        return result
    }

    private static func fileSize(_ url: URL) -> Int64? {
        (try? FileManager.default.attributesOfItem(atPath: url.path)[.size] as? NSNumber)?.int64Value
    }
}
