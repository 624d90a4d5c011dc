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
    var inputs = [Float](repeating: 0, count: images.count * floatsPerImage)
    var failures: [Int: ServiceError] = [:]
    worker.announceArrival()
    inputs.withUnsafeMutableBufferPointer { buffer in
        var slot = 0  // decoded images are packed at the front, in order
        for (i, image) in images.enumerated() {
            do {
                try encoder.prepare(.bytes(image.bytes, name: image.name), views: views, into: buffer.baseAddress! + slot * floatsPerImage)
                slot += 1
            } catch {
                failures[i] = .undecodableImage((error as? LocalizedError)?.errorDescription ?? "\(image.name): cannot decode")
            }
        }
    }
    let decoded = images.count - failures.count
    guard decoded > 0 else {
        worker.withdrawArrival()
        return images.indices.map { .failure(failures[$0]!) }
    }
    if !failures.isEmpty { inputs.removeLast(failures.count * floatsPerImage) }
    var encoded = try await runEncoder(onPrepared: inputs, images: decoded, views: views.count, outputs: outputs,
                                       models: models, limits: limits, announced: true, head: head)[...]
    return images.indices.map { i in
        if let failure = failures[i] { return .failure(failure) }
        return .success(encoded.popFirst()!)
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
