import Foundation
import HeadTune
import Imaging
import Logging
import ServiceLifecycle
import Synchronization
import Training
import Weights

/// What the server loads at start.
public struct ModelSpecification: Sendable {
    /// The image encoder: a bundled model's name or a model folder (nil: efficientnet-lite0).
    public var model: String?
    /// nil searches the usual places (HEADTUNE_WEIGHTS, ./weights, ...).
    public var weightsDirectory: URL?
    /// Trained heads as (name, head file path); names are unique and not `imagenet`.
    public var heads: [(name: String, path: String)]
    /// Refuse images whose header declares more pixels than this.
    public var maxPixels: Int
    /// Bytes all concurrent decodes may hold together (`MemoryBudget`); a request that cannot get
    /// its share within its timeout is answered 503 with Retry-After.
    public var decodeMemory: Int
    /// Load the text encoder (and the image-text alignment: the given file, or the default one, fitted on
    /// first use as the CLI does) if its weights are there.
    public var textEncoder: Bool
    /// The alignment file, which must exist; nil: image-text-alignment.safetensors in the weights
    /// directory, fitted and written there when missing.
    public var alignmentPath: String?
    /// The image network's arithmetic (int8: the file `headtune quantize` wrote, `quantizedFile` or beside the weights).
    public var precision: Precision = .fp32
    public var quantizedFile: URL?
    /// Already loaded networks to use instead of loading them (tests share one across servers).
    public var preloadedEncoder: ImageEncoder?
    public var preloadedTextEncoder: TextEncoder?

    public init(model: String? = nil, weightsDirectory: URL? = nil, heads: [(name: String, path: String)] = [],
                maxPixels: Int = DecodeOptions().maxPixels, decodeMemory: Int = MemoryBudget.defaultDecodeCapacity,
                textEncoder: Bool = true, alignmentPath: String? = nil, precision: Precision? = nil, quantizedFile: URL? = nil) {
        self.model = model
        self.precision = precision ?? .fp32
        self.quantizedFile = quantizedFile
        self.decodeMemory = decodeMemory
        self.weightsDirectory = weightsDirectory
        self.heads = heads
        self.maxPixels = maxPixels
        self.textEncoder = textEncoder
        self.alignmentPath = alignmentPath
    }

    /// The pretrained ImageNet classifier's name among the heads (served when the encoder has one).
    public static let imagenetHead = "imagenet"

    /// `cars.head` -> ("cars", "cars.head"); `name=path` names it explicitly.
    public static func parseHead(_ argument: String) -> (name: String, path: String) {
        if let equals = argument.firstIndex(of: "="), !argument[..<equals].contains("/") {
            return (String(argument[..<equals]), String(argument[argument.index(after: equals)...]))
        }
        let file = URL(fileURLWithPath: argument).lastPathComponent
        let name = file.hasSuffix(".head") ? String(file.dropLast(5)) : file
        return (name, argument)
    }
}

/// A classifier the server answers with: the ImageNet classifier or a trained head.
struct LoadedHead: Sendable {
    var name: String
    var labels: [String]
    /// nil for the ImageNet classifier (probabilities are the softmax of the encoder's logits).
    var predictor: HeadPredictor?
    var path: String?
    /// Its own worker when the head carries a tuned tail (`train --unfreeze`): its features come from
    /// the encoder with that tail in place (`predictor.encoder`), not from the shared one.
    var worker: InferenceWorker? = nil
}

/// The text side: the encoder, and the text space images reach through the bridge when it loaded.
struct LoadedText: Sendable {
    var encoder: TextEncoder
    var space: TextSpace?
    /// Why `space` is missing.
    var spaceProblem: String?
}

/// Everything the handlers need once loading has finished.
struct LoadedModels: Sendable {
    var encoder: ImageEncoder
    var worker: InferenceWorker
    var heads: [LoadedHead]
    var text: LoadedText?
    /// Why `text` is missing.
    var textProblem: String?
    /// Shared by every request's decodes.
    var decodeBudget: MemoryBudget
    /// One slot: requests with an image over `largeDecodePixels` decode one at a time.
    var largeDecodeLane = MemoryBudget(capacity: 1)

    func head(named name: String) throws -> LoadedHead {
        guard let head = heads.first(where: { $0.name == name }) else {
            throw ServiceError.unknownHead(name: name, loaded: heads.map(\.name))
        }
        return head
    }
}


/// Loads the weights and heads when the service group starts (so `/healthz` answers at once and
/// `/readyz` says 503 until this is done), runs the inference worker, and on graceful shutdown
/// drains the worker after the HTTP server has finished its in-flight requests (services stop in
/// reverse order, and this one is listed before the server).
public final class ModelHost: Service, Sendable {
    private enum State {
        case loading
        case ready(LoadedModels)
        case failed(String)
        case stopped
    }

    let specification: ModelSpecification
    let batching: BatchingSettings
    let metrics: ServiceMetrics
    let logger: Logger
    private let state = Mutex<State>(.loading)

    public init(specification: ModelSpecification, batching: BatchingSettings, metrics: ServiceMetrics, logger: Logger) {
        self.specification = specification
        self.batching = batching
        self.metrics = metrics
        self.logger = logger
    }

    /// The loaded models, or `ServiceError.notReady`.
    func ready() throws(ServiceError) -> LoadedModels {
        let current = state.withLock { state -> LoadedModels? in
            if case .ready(let models) = state { return models }
            return nil
        }
        guard let current else { throw .notReady }
        return current
    }

    var isReady: Bool { (try? ready()) != nil }

    public func run() async throws {
        let started = ContinuousClock.now
        let models: LoadedModels
        do {
            models = try await Self.onThread { [self] in try load() }
        } catch {
            let message = (error as? LocalizedError)?.errorDescription ?? "\(error)"
            state.withLock { $0 = .failed(message) }
            logger.error("loading failed", metadata: ["error": .string(message)])
            throw error
        }
        models.worker.start()
        for head in models.heads { head.worker?.start() }
        state.withLock { $0 = .ready(models) }
        logger.info("ready", metadata: [
            "backbone": .string(models.encoder.identifier), "precision": .string(models.encoder.precision.rawValue), "heads": .string(models.heads.map(\.name).joined(separator: ",")),
            "text_encoder": .string(models.text.map { $0.encoder.identifier } ?? "off (\(models.textProblem ?? "disabled"))"),
            "load_seconds": .string(String(format: "%.2f", (ContinuousClock.now - started) / .seconds(1))),
        ])
        try? await gracefulShutdown()
        state.withLock { $0 = .stopped }
        await models.worker.shutdown()
        for head in models.heads { await head.worker?.shutdown() }
        logger.info("inference worker stopped")
    }

    private func load() throws -> LoadedModels {
        let encoder = try specification.preloadedEncoder
            ?? ImageEncoder.load(model: specification.model, weightsDirectory: specification.weightsDirectory,
                                 maxPixels: specification.maxPixels, precision: specification.precision,
                                 quantizedFile: specification.quantizedFile)
        for note in encoder.notes { logger.warning("\(note)") }
        var heads: [LoadedHead] = []
        if encoder.classCount == 1000 {
            let imagenet = try ImageNetLabels.load()
            heads.append(LoadedHead(name: ModelSpecification.imagenetHead, labels: imagenet.names.indices.map(imagenet.label),
                                    predictor: nil, path: nil))
        }
        for (name, path) in specification.heads {
            guard !heads.contains(where: { $0.name == name }) else {
                throw ServiceError.badRequest("two heads are named '\(name)'; name them with --head NAME=PATH")
            }
            let predictor = try HeadPredictor.load(path: path, encoder: encoder)
            let ownWorker = predictor.encoder === encoder ? nil : InferenceWorker(encoder: predictor.encoder, settings: batching, metrics: metrics)
            heads.append(LoadedHead(name: name, labels: predictor.labels, predictor: predictor, path: path, worker: ownWorker))
        }
        var text: LoadedText?
        var textProblem: String?
        if specification.textEncoder {
            (text, textProblem) = loadText(encoder: encoder)
        } else {
            textProblem = "disabled with --no-text-encoder"
        }
        let worker = InferenceWorker(encoder: encoder, settings: batching, metrics: metrics)
        return LoadedModels(encoder: encoder, worker: worker, heads: heads, text: text, textProblem: textProblem,
                            decodeBudget: MemoryBudget(capacity: max(1, specification.decodeMemory)))
    }

    /// The text encoder when its weights are there (else the reason), with the text space loaded by the
    /// same policy as the CLI's (`TextSpace.load`: the given file, or the default one, fitted on first use).
    private func loadText(encoder: ImageEncoder) -> (LoadedText?, String?) {
        let textEncoder: TextEncoder
        do {
            textEncoder = try specification.preloadedTextEncoder
                ?? TextEncoder.load(for: encoder, weightsDirectory: specification.weightsDirectory, threads: batching.threads)
        } catch {
            return (nil, (error as? LocalizedError)?.errorDescription ?? "\(error)")
        }
        do {
            let space = try TextSpace.load(imageEncoder: encoder, text: textEncoder, alignmentPath: specification.alignmentPath,
                                           weightsDirectory: specification.weightsDirectory) { [logger] in
                logger.info("\($0)")
            }
            return (LoadedText(encoder: textEncoder, space: space, spaceProblem: nil), nil)
        } catch {
            return (LoadedText(encoder: textEncoder, space: nil,
                               spaceProblem: (error as? LocalizedError)?.errorDescription ?? "\(error)"), nil)
        }
    }

    /// Runs blocking work (file loading) on a thread of its own, off the concurrency pool.
    static func onThread<T: Sendable>(_ work: @escaping @Sendable () throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            Thread { continuation.resume(with: Result { try work() }) }.start()
        }
    }
}
