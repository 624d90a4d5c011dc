import Foundation
import HeadTune
import Imaging

/// Shared by the image routes: decodes each uploaded image under each view (on the request's task,
/// so decoding runs in parallel across requests) and runs the network inputs through the batching
/// worker. A decoding failure is a 422 carrying the decoder's message, which names the image.
/// - outputs: what the encoder computes for these images
/// - returns: per image, per view, what the encoder computed
func runEncoder(on images: [UploadedImage], views: [ImageView], outputs: [ImageOutput], models: LoadedModels,
                limits: RequestLimits) async throws -> [[EncodedImage]] {
    let worker = models.worker, encoder = models.encoder
    let imageFloats = worker.imageFloats
    let count = images.count * views.count
    var inputs = [Float](repeating: 0, count: count * imageFloats)
    worker.announceArrival()
    do {
        try inputs.withUnsafeMutableBufferPointer { buffer in
            for (i, image) in images.enumerated() {
                do {
                    try encoder.prepare(.bytes(image.bytes, name: image.name), views: views,
                                        into: buffer.baseAddress! + i * views.count * imageFloats)
                } catch {
                    throw ServiceError.undecodableImage((error as? LocalizedError)?.errorDescription ?? "\(image.name): cannot decode")
                }
            }
        }
    } catch {
        worker.withdrawArrival()
        throw error
    }
    let results = try await worker.infer(inputs: inputs, count: count, timeout: limits.timeout, announced: true,
                                         outputs: outputs)
    return images.indices.map { i in Array(results[(i * views.count)..<((i + 1) * views.count)]) }
}
