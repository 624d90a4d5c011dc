import Foundation
import HeadTune
import Imaging

/// Shared by the image routes: decodes each uploaded image under each view (on the request's task,
/// so decoding runs in parallel across requests) and runs the network inputs through the batching
/// worker. A decoding failure is a 422 carrying the decoder's message, which names the image.
/// - stagePooling: also compute the stage-pooled features (a head on `head+stages`)
/// - returns: per image, per view, what the backbone computed
func runBackbone(on images: [UploadedImage], views: [ImageView], models: LoadedModels,
                 limits: RequestLimits, stagePooling: Bool = false) async throws -> [[ImageOutput]] {
    let worker = models.worker, backbone = models.backbone
    let imageFloats = worker.imageFloats
    let count = images.count * views.count
    var inputs = [Float](repeating: 0, count: count * imageFloats)
    worker.announceArrival()
    do {
        try decode(images, views: views, backbone: backbone, into: &inputs, imageFloats: imageFloats)
    } catch {
        worker.withdrawArrival()
        throw error
    }
    let outputs = try await worker.infer(inputs: inputs, count: count, timeout: limits.timeout, announced: true,
                                         stagePooling: stagePooling)
    return images.indices.map { i in Array(outputs[(i * views.count)..<((i + 1) * views.count)]) }
}

/// Each image under each view into consecutive network inputs (image-major).
private func decode(_ images: [UploadedImage], views: [ImageView], backbone: Backbone, into inputs: inout [Float],
                    imageFloats: Int) throws {
    try inputs.withUnsafeMutableBufferPointer { buffer in
        for (i, image) in images.enumerated() {
            for (v, view) in views.enumerated() {
                do {
                    try backbone.prepare(bytes: image.bytes, name: image.name, view: view,
                                         into: buffer.baseAddress! + (i * views.count + v) * imageFloats)
                } catch {
                    throw ServiceError.undecodableImage((error as? LocalizedError)?.errorDescription ?? "\(image.name): cannot decode")
                }
            }
        }
    }
}

extension Backbone {
    /// The one view the ImageNet classifier, embeddings and the text space use.
    var plainView: ImageView { ImageView(policy: preprocessor.policy) }
}
