import Dispatch
import Foundation
import Imaging
import Kernels
import Models
import Weights

/// The frozen pretrained image backbone with its exact preprocessing: image file -> features (and
/// ImageNet logits).
public final class Backbone: Sendable {
    /// Stable id of network + weights, for caches and index files.
    public let identifier: String
    /// sha256 of the checkpoint the weights were converted from (heads record it and refuse others).
    public let weightsSHA256: String
    public let model: EfficientNetLite
    public let preprocessor: Preprocessor
    public let maxPixels: Int

    public var inputSize: Int { preprocessor.size }
    public var featureCount: Int { model.featureCount }
    public var classCount: Int { model.classCount }

    public init(model: EfficientNetLite, identifier: String, policy: CropPolicy = .centerCrop,
                maxPixels: Int = DecodeOptions().maxPixels, weightsSHA256: String = "unknown") {
        self.model = model
        self.identifier = identifier
        self.weightsSHA256 = weightsSHA256
        self.preprocessor = Preprocessor(size: model.configuration.inputSize, policy: policy)
        self.maxPixels = maxPixels
    }

    /// Loads EfficientNet-Lite0 from the converted weights (see `weights/README.md`).
    /// - weightsDirectory: nil searches the usual places (HEADTUNE_WEIGHTS, ./weights, ...).
    public static func efficientNetLite0(weightsDirectory: URL? = nil, policy: CropPolicy = .centerCrop,
                                         maxPixels: Int = DecodeOptions().maxPixels) throws -> Backbone {
        try BLAS.load()
        let fileName = "efficientnet-lite0.safetensors"
        let directory = try weightsDirectory ?? WeightsLocator.directory(containing: fileName)
        let file = try SafeTensors(contentsOf: directory.appendingPathComponent(fileName))
        let model = try EfficientNetLite(configuration: .lite0, weights: file)
        let hash = file.metadata["source_member_sha256"] ?? "unknown"
        return Backbone(model: model, identifier: "efficientnet-lite0@\(hash.prefix(12))", policy: policy,
                        maxPixels: maxPixels, weightsSHA256: hash)
    }

    /// Decodes the file at `path` (DCT-scaled where the geometry allows) and writes the normalized
    /// [size, size, 3] input to `destination`.
    public func prepare(path: String, into destination: UnsafeMutablePointer<Float>) throws(ImagingError) {
        preprocessor.preprocess(try ImageDecoder.decode(fileAt: path, options: decodeOptions), into: destination)
    }

    /// Decodes in-memory image bytes (the service's request bodies). `name` only labels errors.
    public func prepare(bytes: [UInt8], name: String, into destination: UnsafeMutablePointer<Float>) throws(ImagingError) {
        preprocessor.preprocess(try ImageDecoder.decode(bytes: bytes, name: name, options: decodeOptions), into: destination)
    }

    /// DCT-scaled decoding where the geometry allows, with this backbone's pixel limit.
    public var decodeOptions: DecodeOptions {
        var options = preprocessor.decodeOptions
        options.maxPixels = maxPixels
        return options
    }
}

/// What the backbone computed for one input.
public struct BackboneOutput: Sendable {
    /// [featureCount] pooled features.
    public var features: [Float]
    /// [classCount] ImageNet logits, when requested.
    public var logits: [Float]?
}

/// Runs the backbone over many files in batches, decoding the next batch on another thread while the
/// network runs on the current one. Results arrive in input order.
public struct BatchRunner {
    public var backbone: Backbone
    public var batchSize: Int
    public var threads: Int
    public var computeLogits: Bool
    /// Turns a path into the network input: by default `backbone.prepare(path:into:)`; training
    /// supplies its own to extract mirrored and cropped views.
    public var prepare: @Sendable (String, UnsafeMutablePointer<Float>) throws -> Void

    public init(backbone: Backbone, batchSize: Int = 16, threads: Int = ProcessInfo.processInfo.activeProcessorCount,
                computeLogits: Bool = true) {
        self.backbone = backbone
        self.batchSize = max(1, batchSize)
        self.threads = max(1, threads)
        self.computeLogits = computeLogits
        prepare = { [backbone] path, destination in try backbone.prepare(path: path, into: destination) }
    }

    /// Calls `handle(index, result)` once per path, in order. A failing file yields `.failure` and the
    /// run goes on; an error thrown by `handle` stops the run and is rethrown.
    public func run(paths: [String], handle: (Int, Result<BackboneOutput, Error>) throws -> Void) throws {
        guard !paths.isEmpty else { return }
        let batches = stride(from: 0, to: paths.count, by: batchSize).map { $0..<min($0 + batchSize, paths.count) }
        let slots = [PreparedBatch(capacity: batchSize, inputSize: backbone.inputSize),
                     PreparedBatch(capacity: batchSize, inputSize: backbone.inputSize)]
        var workspaces: [Int: EfficientNetLiteWorkspace] = [:]
        var features = [Float](repeating: 0, count: batchSize * backbone.featureCount)
        var logits = [Float](repeating: 0, count: batchSize * backbone.classCount)
        let decodeQueue = DispatchQueue(label: "headtune.decode")
        let backbone = self.backbone, prepare = self.prepare

        slots[0].fill(paths: paths, range: batches[0], prepare: prepare)
        for (b, range) in batches.enumerated() {
            let current = slots[b % 2]
            let pending = DispatchGroup()
            if b + 1 < batches.count {
                let next = slots[(b + 1) % 2], nextRange = batches[b + 1]
                decodeQueue.async(group: pending) { next.fill(paths: paths, range: nextRange, prepare: prepare) }
            }
            defer { pending.wait() }

            let valid = current.validCount
            if valid > 0 {
                let workspace = workspaces[valid] ?? backbone.model.makeWorkspace(batch: valid, threads: threads)
                workspaces[valid] = workspace
                features.withUnsafeMutableBufferPointer { f in
                    logits.withUnsafeMutableBufferPointer { l in
                        backbone.model.forward(input: current.input.baseAddress!, workspace: workspace,
                                               features: f.baseAddress!, logits: computeLogits ? l.baseAddress! : nil)
                    }
                }
            }
            var slot = 0
            for (offset, index) in range.enumerated() {
                if let error = current.errors[offset] {
                    try handle(index, .failure(error))
                    continue
                }
                let f = Array(features[(slot * backbone.featureCount)..<((slot + 1) * backbone.featureCount)])
                let l = computeLogits
                    ? Array(logits[(slot * backbone.classCount)..<((slot + 1) * backbone.classCount)]) : nil
                slot += 1
                try handle(index, .success(BackboneOutput(features: f, logits: l)))
            }
        }
    }
}

/// Network inputs for one batch: decoded images packed contiguously, plus the per-file errors.
/// Written by the decode thread, read by the inference thread, never at the same time
/// (hand-over through a DispatchGroup wait).
private final class PreparedBatch: @unchecked Sendable {
    let input: UnsafeMutableBufferPointer<Float>
    let imageFloats: Int
    var errors: [Error?] = []
    var validCount = 0

    init(capacity: Int, inputSize: Int) {
        imageFloats = inputSize * inputSize * 3
        input = .allocate(capacity: capacity * imageFloats)
        input.initialize(repeating: 0)
    }

    deinit { input.deallocate() }

    func fill(paths: [String], range: Range<Int>, prepare: (String, UnsafeMutablePointer<Float>) throws -> Void) {
        errors = []
        validCount = 0
        for index in range {
            do {
                try prepare(paths[index], input.baseAddress! + validCount * imageFloats)
                errors.append(nil)
                validCount += 1
            } catch {
                errors.append(error)
            }
        }
    }
}
