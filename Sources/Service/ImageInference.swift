import Foundation
import HeadTune
import Imaging

/// Shared by the image routes: decodes each uploaded image under each view (on the request's task,
/// so decoding runs in parallel across requests) and runs the network inputs through the batching
/// worker. A decoding failure is a 422 carrying the decoder's message, which names the image.
/// - outputs: what the encoder computes for these images
/// - returns: per image, per view, what the encoder computed
/// - head: the head the images are for (one with a tuned tail runs on its own worker and encoder)
func runEncoder(on images: [UploadedImage], views: [ImageView], outputs: [ImageOutput], models: LoadedModels,
                limits: RequestLimits, head: LoadedHead? = nil) async throws -> [[EncodedImage]] {
    try await runEncoderPerImage(on: images, views: views, outputs: outputs, models: models, limits: limits, head: head)
        .map { try $0.get() }
}

/// `runEncoder(on:...)` that goes on past images that cannot be decoded: per image, what the encoder
/// computed under each view, or the 422 saying why not (the others still run, as `headtune classify`
/// goes on past a bad file).
func runEncoderPerImage(on images: [UploadedImage], views: [ImageView], outputs: [ImageOutput], models: LoadedModels,
                        limits: RequestLimits, head: LoadedHead? = nil) async throws -> [Result<[EncodedImage], ServiceError>] {
    let worker = head?.worker ?? models.worker, encoder = models.encoder(for: head)
    let imageFloats = worker.imageFloats, floatsPerImage = views.count * imageFloats
    let deadline = ContinuousClock.now + limits.timeout
    // The decodes' memory first: a request that cannot get its share in time gets 503, not more memory.
    // An image whose header is already refused gets its 422 record and costs nothing.
    var failures: [Int: ServiceError] = [:]
    var cost = 0, largestSource = 0
    for (i, image) in images.enumerated() {
        do {
            let imageCost = try encoder.decodeCost(.bytes(image.bytes, name: image.name), views: views)
            cost += imageCost.bytes
            largestSource = max(largestSource, imageCost.sourcePixels)
        } catch {
            failures[i] = .undecodableImage(error.errorDescription ?? "\(image.name): cannot decode")
        }
    }
    guard failures.count < images.count else { return images.indices.map { .failure(failures[$0]!) } }
    let reservation: MemoryBudget.Reservation
    do {
        reservation = try await models.decodeBudget.reserve(cost, timeout: limits.timeout)
    } catch {
        throw ServiceError.decodeMemoryBusy(bytes: error.bytes, capacity: error.capacity, seconds: limits.timeout / .seconds(1))
    }
    defer { reservation.release() }
    // A large image (a bomb, a big photo) costs seconds of CPU to read through even when reduced on
    // decode: such requests decode one at a time, on a thread of their own, so the cooperative pool
    // stays free for small decodes and for the requests around them.
    let large = largestSource > largeDecodePixels
    var lane: MemoryBudget.Reservation?
    if large {
        do {
            lane = try await models.largeDecodeLane.reserve(1, timeout: deadline - .now)
        } catch {
            throw ServiceError.largeDecodesBusy(pixels: largestSource, seconds: limits.timeout / .seconds(1))
        }
    }
    defer { lane?.release() }
    let headerFailures = failures
    // Decoded images are packed at the front, in order; the ones that fail get their record.
    let decodeAll = { @Sendable () -> (inputs: [Float], failures: [Int: ServiceError]) in
        var failures = headerFailures
        var inputs = [Float](repeating: 0, count: (images.count - failures.count) * floatsPerImage)
        inputs.withUnsafeMutableBufferPointer { buffer in
            var slot = 0
            for (i, image) in images.enumerated() where failures[i] == nil {
                do {
                    try encoder.prepare(.bytes(image.bytes, name: image.name), views: views, into: buffer.baseAddress! + slot * floatsPerImage)
                    slot += 1
                } catch {
                    failures[i] = .undecodableImage((error as? LocalizedError)?.errorDescription ?? "\(image.name): cannot decode")
                }
            }
        }
        return (inputs, failures)
    }
    worker.announceArrival()
    let prepared = large ? try await onOwnThread(decodeAll) : decodeAll()
    failures = prepared.failures
    var inputs = prepared.inputs
    let decoded = images.count - failures.count
    guard decoded > 0 else {
        worker.withdrawArrival()
        return images.indices.map { .failure(failures[$0]!) }
    }
    inputs.removeLast(inputs.count - decoded * floatsPerImage)
    var encoded = try await runEncoder(onPrepared: inputs, images: decoded, views: views.count, outputs: outputs,
                                       models: models, limits: limits, announced: true, head: head)[...]
    return images.indices.map { i in
        if let failure = failures[i] { return .failure(failure) }
        return .success(encoded.popFirst()!)
    }
}

/// Declared pixels above which a request's decodes take the large-decode lane (one at a time, off the
/// cooperative pool): a 16-megapixel PNG takes about half a second to inflate on this hardware.
let largeDecodePixels = 16_000_000

/// Runs `body` on a Dispatch thread, not on Swift's cooperative pool (which has one thread per core).
func onOwnThread<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { continuation in
        DispatchQueue.global(qos: .userInitiated).async { continuation.resume(with: Result { try body() }) }
    }
}

/// Runs network inputs prepared elsewhere (by `runEncoder(on:...)`, or sent already preprocessed)
/// through the batching worker.
/// - inputs: [images * views, size, size, 3], every view of the first image, then of the second, ...
/// - announced: the caller announced the arrival to the worker (see `InferenceWorker.announceArrival`)
/// - returns: per image, per view, what the encoder computed
func runEncoder(onPrepared inputs: [Float], images: Int, views: Int, outputs: [ImageOutput], models: LoadedModels,
                limits: RequestLimits, announced: Bool = false, head: LoadedHead? = nil) async throws -> [[EncodedImage]] {
    let results = try await (head?.worker ?? models.worker).infer(inputs: inputs, count: images * views, timeout: limits.timeout,
                                                announced: announced, outputs: outputs)
    return (0..<images).map { i in Array(results[(i * views)..<((i + 1) * views)]) }
}

extension LoadedModels {
    /// The encoder a head's images run through: its own (tuned tail) or the shared one.
    func encoder(for head: LoadedHead?) -> ImageEncoder { head?.predictor?.encoder ?? encoder }
}
