import HeadTune
import Hummingbird

/// `POST /v1/embed/image`: per image what `headtune embed` prints: the pooled encoder features
/// (1280-d for EfficientNet-Lite0), or a joint model's normalized image embedding (CLIP), as
/// `{"results": [{"path": ..., "embedding": [...]}]}` (the records of `headtune embed`).
struct EmbedImageHandler: Sendable {
    let host: ModelHost
    let limits: RequestLimits
    /// Where the request body is read, under the shared body budget.
    let bodies: RequestBodies

    func handle(_ request: Request, context: some RequestContext) async throws -> Response {
        let models = try host.ready()
        let (images, _, held) = try await readImages(request, bodies: bodies)
        defer { held.release() }
        let encoder = models.encoder
        let encoded = try await runEncoder(on: images, views: [encoder.plainView], outputs: [encoder.embeddingOutput],
                                           models: models, limits: limits)
        let records: [JSONValue] = zip(images, encoded).map { image, output in
            .object([("path", .string(image.name)), ("embedding", .array(encoder.embeddingVector(output[0]).map { .float($0) }))])
        }
        return jsonResponse(.object([("model", .string(models.encoder.identifier)), ("results", .array(records))]))
    }
}
