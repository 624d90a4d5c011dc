import Dispatch
import Foundation
import Imaging
import Models
import Synchronization
import Training

/// Runs an image encoder over many files in batches. While the network runs batch b, batch b + 1 is
/// read and decoded on a background queue by `decodeThreads` workers; only two batches of inputs
/// exist at any time, so memory does not grow with the number of files. Results arrive in input
/// order whatever the parallelism.
public struct BatchRunner {
    public var encoder: ImageEncoder
    /// Paths per batch (the network sees `batchSize * views.count` images).
    public var batchSize: Int
    /// Threads of the network.
    public var threads: Int
    /// Workers decoding the next batch. Large JPEGs cost tens of milliseconds each even with DCT
    /// scaling, so one decoder cannot keep up with the network on them.
    public var decodeThreads: Int
    /// What the network computes per image.
    public var outputs: [ImageOutput]
    /// The views each path is run under (e.g. an image and its mirror image); a result is their mean.
    public var views: [ImageView]
    /// Turns a path into `views.count` consecutive network inputs; by default the encoder's own
    /// decoding and preprocessing (`ImageEncoder.prepare`).
    public var prepare: @Sendable (String, UnsafeMutablePointer<Float>) throws -> Void

    public init(encoder: ImageEncoder, batchSize: Int = 16, threads: Int = ProcessInfo.processInfo.activeProcessorCount,
                decodeThreads: Int? = nil, outputs: [ImageOutput] = [.features, .logits], views: [ImageView]? = nil) {
        self.encoder = encoder
        self.batchSize = max(1, batchSize)
        self.threads = max(1, threads)
        self.decodeThreads = max(1, decodeThreads ?? self.threads)
        self.outputs = outputs.filter { encoder.width(of: $0) != nil }
        let views = views ?? [encoder.plainView]
        self.views = views
        prepare = { [encoder] path, destination in try encoder.prepare(.file(path: path), views: views, into: destination) }
    }

    /// Calls `handle(index, result)` once per path, in order. A failing file yields `.failure` and the
    /// run goes on; an error thrown by `handle` stops the run and is rethrown.
    public func run(paths: [String], handle: (Int, Result<EncodedImage, Error>) throws -> Void) throws {
        try runBatches(paths: paths) { range, results in
            for (index, result) in zip(range, results) { try handle(index, result) }
        }
    }

    /// Calls `handle(range, results)` once per batch, in order, with one result per path of `range`.
    public func runBatches(paths: [String], handle: (Range<Int>, [Result<EncodedImage, Error>]) throws -> Void) throws {
        guard !paths.isEmpty else { return }
        let views = max(1, self.views.count)
        let batchCount = (paths.count + batchSize - 1) / batchSize
        let batchRange = { (b: Int) in (b * batchSize)..<min((b + 1) * batchSize, paths.count) }
        let capacity = batchSize * views, decodeThreads = self.decodeThreads
        let slots = (0..<2).map { _ in PreparedBatch(capacity: capacity, imageFloats: encoder.inputFloats, decodeThreads: decodeThreads) }
        let session = encoder.makeSession(threads: threads)
        let decodeQueue = DispatchQueue(label: "headtune.decode")
        let prepare = self.prepare, outputs = self.outputs

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

            var encoded = session.encode(current.input.baseAddress!, count: current.validCount, views: views, outputs: outputs)
                .makeIterator()
            let results: [Result<EncodedImage, Error>] = current.errors.map { error in
                if let error { return .failure(error) }
                return .success(encoded.next()!)
            }
            try handle(batchRange(b), results)
        }
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

    init(capacity: Int, imageFloats: Int, decodeThreads: Int) {
        self.imageFloats = imageFloats
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
