import Dispatch
import Foundation
import HeadTune
import Training

/// Dynamic batching settings (Triton's dynamic batcher: a batch closes when it is full or when its
/// oldest request has waited `maxDelay`).
public struct BatchingSettings: Sendable, Equatable {
    /// Most images in one backbone batch; 1 turns batching off.
    public var maxBatch: Int
    /// Longest time the oldest queued image waits for others to join its batch.
    public var maxDelay: Duration
    /// Most images waiting in the queue; beyond it requests are refused with 503 (bounded memory:
    /// each queued image holds its 224x224x3 float input, 588 KiB).
    public var queueCapacity: Int
    /// Threads the network uses for one batch.
    public var threads: Int

    public init(maxBatch: Int = 8, maxDelay: Duration = .milliseconds(5), queueCapacity: Int = 64,
                threads: Int = ProcessInfo.processInfo.activeProcessorCount) {
        self.maxBatch = max(1, maxBatch)
        self.maxDelay = maxDelay
        self.queueCapacity = max(1, queueCapacity)
        self.threads = max(1, threads)
    }
}

/// The one thread that runs the networks. Requests decode their images on their own tasks and queue
/// the network inputs here; the worker gathers queued images into batches of up to `maxBatch`
/// (waiting at most `maxDelay` after the oldest arrived) and runs them through the encoder session it
/// alone owns (a session is not safe for concurrent calls).
/// Text-encoder work goes through the same queue, so the two networks never compete for the cores.
final class InferenceWorker: @unchecked Sendable {
    private enum Work {
        /// `count` network inputs, [count, size, size, 3], and the encoder outputs the request needs.
        case images(inputs: [Float], count: Int, outputs: [ImageOutput])
        case task(@Sendable () throws -> any Sendable)
    }

    private enum Outcome {
        case images([EncodedImage])
        case value(any Sendable)
    }

    private final class Job {
        let id: UInt64
        let work: Work
        let enqueued: UInt64
        let deadline: UInt64
        let continuation: CheckedContinuation<Outcome, Error>

        init(id: UInt64, work: Work, enqueued: UInt64, deadline: UInt64, continuation: CheckedContinuation<Outcome, Error>) {
            self.id = id
            self.work = work
            self.enqueued = enqueued
            self.deadline = deadline
            self.continuation = continuation
        }

        var imageCount: Int {
            if case .images(_, let count, _) = work { return count }
            return 0
        }
    }

    let settings: BatchingSettings
    let encoder: ImageEncoder
    private let metrics: ServiceMetrics
    private let condition = NSCondition()
    // Guarded by `condition`.
    private var queue: [Job] = []
    private var queuedImages = 0
    private var nextID: UInt64 = 0
    /// Requests decoding images that they will queue soon: the only ones worth waiting for.
    private var arriving = 0
    private var stopping = false
    private var finished = false

    // Owned by the worker thread.
    private let session: EncoderSession
    private let batchInput: UnsafeMutableBufferPointer<Float>

    init(encoder: ImageEncoder, settings: BatchingSettings, metrics: ServiceMetrics) {
        self.encoder = encoder
        self.settings = settings
        self.metrics = metrics
        session = encoder.makeSession(threads: settings.threads)
        batchInput = .allocate(capacity: settings.maxBatch * encoder.inputFloats)
        batchInput.initialize(repeating: 0)
    }

    deinit { batchInput.deallocate() }

    /// Floats in one network input.
    var imageFloats: Int { encoder.inputFloats }

    /// Starts the worker thread.
    func start() {
        let thread = Thread { [self] in self.runLoop() }
        thread.name = "headtune.inference"
        thread.start()
    }

    /// Refuses new work, finishes what is queued, then lets the thread end. Returns once it has.
    func shutdown() async {
        beginStopping()
        while !isFinished { try? await Task.sleep(for: .milliseconds(5)) }
    }

    private func beginStopping() {
        condition.lock()
        stopping = true
        condition.broadcast()
        condition.unlock()
    }

    private var isFinished: Bool {
        condition.lock()
        defer { condition.unlock() }
        return finished
    }

    /// Images waiting in the queue now.
    var queuedImageCount: Int {
        condition.lock()
        defer { condition.unlock() }
        return queuedImages
    }

    private func makeID() -> UInt64 {
        condition.lock()
        defer { condition.unlock() }
        nextID += 1
        return nextID
    }

    /// Says a request is decoding images it will queue (then `infer(..., announced: true)`) or drop
    /// (`withdrawArrival()`). A batch waits for its `maxDelay` only while such requests exist, so a
    /// lone request is not held back for companions that are not coming.
    func announceArrival() {
        condition.lock()
        arriving += 1
        condition.unlock()
    }

    func withdrawArrival() {
        condition.lock()
        arriving -= 1
        condition.signal()
        condition.unlock()
    }

    /// Runs the encoder on `count` prepared inputs ([count, size, size, 3]), batched with other
    /// requests' images. Throws `ServiceError.queueFull`, `.timeout` or `.shuttingDown`.
    /// - outputs: what to compute for these images (a batch computes the union of its requests')
    func infer(inputs: [Float], count: Int, timeout: Duration, announced: Bool = false,
               outputs: [ImageOutput]) async throws -> [EncodedImage] {
        precondition(inputs.count == count * imageFloats)
        guard case .images(let results) = try await submit(.images(inputs: inputs, count: count, outputs: outputs),
                                                           timeout: timeout, announced: announced) else {
            throw ServiceError.internal("inference returned no images")
        }
        return results
    }

    /// Runs `work` on the inference thread, in queue order with the image batches.
    func perform<T: Sendable>(timeout: Duration, _ work: @escaping @Sendable () throws -> T) async throws -> T {
        guard case .value(let value) = try await submit(.task { try work() }, timeout: timeout), let result = value as? T else {
            throw ServiceError.internal("inference task returned no value")
        }
        return result
    }

    private func submit(_ work: Work, timeout: Duration, announced: Bool = false) async throws -> Outcome {
        let now = DispatchTime.now().uptimeNanoseconds
        let deadline = now + UInt64(max(0, timeout / .nanoseconds(1)))
        let id = makeID()
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Outcome, Error>) in
                condition.lock()
                if announced { arriving -= 1 }
                let job = Job(id: id, work: work, enqueued: now, deadline: deadline, continuation: continuation)
                if stopping {
                    condition.unlock()
                    continuation.resume(throwing: ServiceError.shuttingDown)
                    return
                }
                // A request larger than the whole queue is still admitted into an empty queue.
                if job.imageCount > 0 && queuedImages > 0 && queuedImages + job.imageCount > settings.queueCapacity {
                    condition.unlock()
                    metrics.rejectedRequests.increment()
                    continuation.resume(throwing: ServiceError.queueFull(capacity: settings.queueCapacity))
                    return
                }
                queue.append(job)
                queuedImages += job.imageCount
                metrics.queueDepth.record(queuedImages)
                condition.signal()
                condition.unlock()
            }
        } onCancel: {
            self.cancel(id: id)
        }
    }

    /// Drops a queued job whose request went away (a job already running completes normally).
    private func cancel(id: UInt64) {
        condition.lock()
        guard let index = queue.firstIndex(where: { $0.id == id }) else {
            condition.unlock()
            return
        }
        let job = queue.remove(at: index)
        queuedImages -= job.imageCount
        metrics.queueDepth.record(queuedImages)
        condition.unlock()
        job.continuation.resume(throwing: CancellationError())
    }

    // MARK: - Worker thread

    private func runLoop() {
        while let (jobs, expired) = nextBatch() {
            for job in expired {
                let seconds = Double(job.deadline - job.enqueued) / 1e9
                job.continuation.resume(throwing: ServiceError.timeout(seconds: seconds))
            }
            guard !jobs.isEmpty else { continue }
            let started = DispatchTime.now().uptimeNanoseconds
            for job in jobs { metrics.queueWait.recordNanoseconds(Int64(started - job.enqueued)) }
            if jobs.count == 1, case .task(let work) = jobs[0].work {
                let result = Result { try work() }
                metrics.textInference.recordNanoseconds(Int64(DispatchTime.now().uptimeNanoseconds - started))
                jobs[0].continuation.resume(with: result.map { .value($0) })
                continue
            }
            let outputs = runImages(jobs)
            for (job, output) in zip(jobs, outputs) { job.continuation.resume(returning: .images(output)) }
        }
        condition.lock()
        finished = true
        condition.unlock()
    }

    /// Waits for work and takes the next batch: a text task alone, or leading image jobs totalling at
    /// most `maxBatch` images (at least one job), once the batch is full, the oldest has waited
    /// `maxDelay`, or no other request is decoding images to join it. Also takes out jobs whose
    /// deadline passed. nil: stopped and drained.
    private func nextBatch() -> ([Job], expired: [Job])? {
        condition.lock()
        defer {
            metrics.queueDepth.record(queuedImages)
            condition.unlock()
        }
        while true {
            while queue.isEmpty && !stopping { condition.wait() }
            if queue.isEmpty { return nil }
            let expired = takeExpired(now: DispatchTime.now().uptimeNanoseconds)
            guard let first = queue.first else { return ([], expired) }
            if case .task = first.work {
                queue.removeFirst()
                return ([first], expired)
            }
            if !expired.isEmpty { return ([], expired) }
            let closesAt = first.enqueued + UInt64(max(0, settings.maxDelay / .nanoseconds(1)))
            let now = DispatchTime.now().uptimeNanoseconds
            if leadingImages() >= settings.maxBatch || now >= closesAt || arriving == 0 || stopping {
                var taken: [Job] = []
                var images = 0
                while let job = queue.first, job.imageCount > 0,
                      taken.isEmpty || images + job.imageCount <= settings.maxBatch {
                    taken.append(queue.removeFirst())
                    images += job.imageCount
                }
                queuedImages -= images
                return (taken, [])
            }
            let wait = Double(closesAt - now) / 1e9
            _ = condition.wait(until: Date(timeIntervalSinceNow: wait))
        }
    }

    /// Images in the image jobs at the head of the queue (up to the first text task).
    private func leadingImages() -> Int {
        var images = 0
        for job in queue {
            guard job.imageCount > 0 else { break }
            images += job.imageCount
        }
        return images
    }

    private func takeExpired(now: UInt64) -> [Job] {
        guard queue.contains(where: { $0.deadline <= now }) else { return [] }
        let expired = queue.filter { $0.deadline <= now }
        queue.removeAll { $0.deadline <= now }
        queuedImages -= expired.reduce(0) { $0 + $1.imageCount }
        return expired
    }

    /// Runs the images of `jobs` through the encoder in chunks of at most `maxBatch`, each computing
    /// the outputs any of its requests asked for; each request gets the outputs it asked for.
    private func runImages(_ jobs: [Job]) -> [[EncodedImage]] {
        var all: [(inputs: [Float], index: Int, outputs: [ImageOutput])] = []
        for job in jobs {
            guard case .images(let inputs, let count, let outputs) = job.work else { continue }
            for i in 0..<count { all.append((inputs, i, outputs)) }
        }
        var results: [EncodedImage] = []
        results.reserveCapacity(all.count)
        var position = 0
        while position < all.count {
            let size = min(settings.maxBatch, all.count - position)
            let chunk = all[position..<(position + size)]
            for (slot, item) in chunk.enumerated() {
                item.inputs.withUnsafeBufferPointer { source in
                    (batchInput.baseAddress! + slot * imageFloats)
                        .update(from: source.baseAddress! + item.index * imageFloats, count: imageFloats)
                }
            }
            let wanted = Array(Set(chunk.flatMap(\.outputs))).sorted()
            let started = DispatchTime.now().uptimeNanoseconds
            let encoded = session.encode(batchInput.baseAddress!, count: size, outputs: wanted)
            metrics.inference.recordNanoseconds(Int64(DispatchTime.now().uptimeNanoseconds - started))
            metrics.batchSize.record(size)
            for (item, image) in zip(chunk, encoded) {
                results.append(EncodedImage(outputs: image.outputs.filter { item.outputs.contains($0.key) }))
            }
            position += size
        }
        var perJob: [[EncodedImage]] = []
        var start = 0
        for job in jobs {
            perJob.append(Array(results[start..<(start + job.imageCount)]))
            start += job.imageCount
        }
        return perJob
    }
}
