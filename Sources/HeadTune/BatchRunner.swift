import Dispatch
import Foundation
import Models
import Synchronization
import Training

/// Runs the backbone over many files in batches. While the network runs batch b, batch b + 1 is
/// read and decoded on a background queue by `decodeThreads` workers; only two batches of inputs
/// exist at any time, so memory does not grow with the number of files. Results arrive in input
/// order whatever the parallelism.
public struct BatchRunner {
    public var backbone: Backbone
    /// Paths per batch (the network sees `batchSize * viewsPerPath` images).
    public var batchSize: Int
    /// Threads of the network.
    public var threads: Int
    /// Workers decoding the next batch. Large JPEGs cost tens of milliseconds each even with DCT
    /// scaling, so one decoder cannot keep up with the network on them.
    public var decodeThreads: Int
    public var computeLogits: Bool
    /// What `BackboneOutput.features` holds: the pooled head features, or those followed by the
    /// stage-pooled ones.
    public var featureSet: FeatureSet = .head
    /// Network inputs `prepare` writes per path (e.g. an image and its mirror image); the output is
    /// their mean, in the same order of operations as `averagedFeatures` so both give the same bits.
    public var viewsPerPath = 1
    /// Turns a path into `viewsPerPath` consecutive network inputs: by default
    /// `backbone.prepare(path:into:)`; training and heads supply their own views.
    public var prepare: @Sendable (String, UnsafeMutablePointer<Float>) throws -> Void

    public init(backbone: Backbone, batchSize: Int = 16, threads: Int = ProcessInfo.processInfo.activeProcessorCount,
                decodeThreads: Int? = nil, computeLogits: Bool = true) {
        self.backbone = backbone
        self.batchSize = max(1, batchSize)
        self.threads = max(1, threads)
        self.decodeThreads = max(1, decodeThreads ?? self.threads)
        self.computeLogits = computeLogits
        prepare = { [backbone] path, destination in try backbone.prepare(path: path, into: destination) }
    }

    /// Calls `handle(index, result)` once per path, in order. A failing file yields `.failure` and the
    /// run goes on; an error thrown by `handle` stops the run and is rethrown.
    public func run(paths: [String], handle: (Int, Result<BackboneOutput, Error>) throws -> Void) throws {
        try runBatches(paths: paths) { range, results in
            for (index, result) in zip(range, results) { try handle(index, result) }
        }
    }

    /// Calls `handle(range, results)` once per batch, in order, with one result per path of `range`.
    public func runBatches(paths: [String], handle: (Range<Int>, [Result<BackboneOutput, Error>]) throws -> Void) throws {
        guard !paths.isEmpty else { return }
        let views = max(1, viewsPerPath)
        let batchCount = (paths.count + batchSize - 1) / batchSize
        let batchRange = { (b: Int) in (b * batchSize)..<min((b + 1) * batchSize, paths.count) }
        let capacity = batchSize * views, inputSize = backbone.inputSize, decodeThreads = self.decodeThreads
        let slots = (0..<2).map { _ in PreparedBatch(capacity: capacity, inputSize: inputSize, decodeThreads: decodeThreads) }
        var workspaces: [Int: EfficientNetLiteWorkspace] = [:]
        let featureCount = backbone.featureCount, classCount = backbone.classCount
        var features = [Float](repeating: 0, count: batchSize * views * featureCount)
        var logits = [Float](repeating: 0, count: batchSize * views * classCount)
        let featureSet = self.featureSet, stageCount = backbone.model.stagePooledFeatureCount
        var stagePooled = [Float](repeating: 0, count: featureSet.needsStagePooling ? batchSize * views * stageCount : 0)
        let decodeQueue = DispatchQueue(label: "headtune.decode")
        let backbone = self.backbone, prepare = self.prepare, threads = self.threads, computeLogits = self.computeLogits

        slots[0].fill(paths: paths, range: batchRange(0), views: views, prepare: prepare)
        for b in 0..<batchCount {
            let current = slots[b % 2]
            let pending = DispatchGroup()
            if b + 1 < batchCount {
                let next = slots[(b + 1) % 2], nextRange = batchRange(b + 1)
                decodeQueue.async(group: pending) { next.fill(paths: paths, range: nextRange, views: views, prepare: prepare) }
            }
            // The slot being filled must not be reused before its decode finishes, even on a throw.
            defer { pending.wait() }

            let images = current.validCount * views
            if images > 0 {
                let workspace = workspaces[images] ?? backbone.model.makeWorkspace(batch: images, threads: threads)
                workspaces[images] = workspace
                features.withUnsafeMutableBufferPointer { f in
                    logits.withUnsafeMutableBufferPointer { l in
                        stagePooled.withUnsafeMutableBufferPointer { s in
                            backbone.model.forward(input: current.input.baseAddress!, workspace: workspace,
                                                   features: f.baseAddress!, logits: computeLogits ? l.baseAddress! : nil,
                                                   stagePooled: featureSet.needsStagePooling ? s.baseAddress! : nil)
                        }
                    }
                }
            }
            var slot = 0
            let results: [Result<BackboneOutput, Error>] = current.errors.map { error in
                if let error { return .failure(error) }
                defer { slot += 1 }
                let f = Self.meanOfViews(features, row: slot * views, views: views, width: featureCount)
                let s = featureSet.needsStagePooling
                    ? Self.meanOfViews(stagePooled, row: slot * views, views: views, width: stageCount) : nil
                let l = computeLogits ? Self.meanOfViews(logits, row: slot * views, views: views, width: classCount) : nil
                return .success(BackboneOutput(features: featureSet.compose(head: f, stagePooled: s), logits: l))
            }
            try handle(batchRange(b), results)
        }
    }

    /// Mean of `views` consecutive rows of `width` values, starting at `row`.
    static func meanOfViews(_ values: [Float], row: Int, views: Int, width: Int) -> [Float] {
        var sum = Array(values[(row * width)..<((row + 1) * width)])
        guard views > 1 else { return sum }
        for v in 1..<views {
            let base = (row + v) * width
            for i in 0..<width { sum[i] += values[base + i] }
        }
        for i in 0..<width { sum[i] /= Float(views) }
        return sum
    }
}

/// Network inputs for one batch: decoded images packed contiguously (failed files leave no gap),
/// plus the per-file errors. Written by the decode workers, read by the inference thread, never at
/// the same time (hand-over through a DispatchGroup wait).
private final class PreparedBatch: @unchecked Sendable {
    let input: UnsafeMutableBufferPointer<Float>
    let imageFloats: Int
    let decodeThreads: Int
    private(set) var errors: [Error?] = []
    private(set) var validCount = 0

    init(capacity: Int, inputSize: Int, decodeThreads: Int) {
        imageFloats = inputSize * inputSize * 3
        input = .allocate(capacity: capacity * imageFloats)
        input.initialize(repeating: 0)
        self.decodeThreads = decodeThreads
    }

    deinit { input.deallocate() }

    func fill(paths: [String], range: Range<Int>, views: Int, prepare: (String, UnsafeMutablePointer<Float>) throws -> Void) {
        let count = range.count, stride = views * imageFloats
        var errors = [Error?](repeating: nil, count: count)
        // Workers take the next file from a shared counter (decode times vary a lot between files)
        // and write it at its own position, so no two workers touch the same memory.
        let next = Atomic<Int>(0)
        errors.withUnsafeMutableBufferPointer { errorSlots in
            nonisolated(unsafe) let errorSlots = errorSlots
            nonisolated(unsafe) let input = input
            nonisolated(unsafe) let prepare = prepare
            DispatchQueue.concurrentPerform(iterations: min(decodeThreads, count)) { _ in
                while true {
                    let item = next.wrappingAdd(1, ordering: .relaxed).oldValue
                    guard item < count else { return }
                    do { try prepare(paths[range.lowerBound + item], input.baseAddress! + item * stride) } catch {
                        errorSlots[item] = error
                    }
                }
            }
        }
        // Close the gaps failed files left, so the network runs on valid images only.
        var valid = 0
        for item in 0..<count where errors[item] == nil {
            if valid != item {
                (input.baseAddress! + valid * stride).update(from: input.baseAddress! + item * stride, count: stride)
            }
            valid += 1
        }
        self.errors = errors
        validCount = valid
    }
}
