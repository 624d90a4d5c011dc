import HeadTune
import Hummingbird

/// `POST /v1/embed/image`: the pooled encoder features per image (1280-d for EfficientNet-Lite0), as
/// `{"results": [{"path": ..., "embedding": [...]}]}` (the records of `headtune embed`).
struct EmbedImageHandler: Sendable {
    let host: ModelHost
    let limits: RequestLimits

    func handle(_ request: Request, context: some RequestContext) async throws -> Response {
        let models = try host.ready()
        let (images, _) = try await readImages(request, limits: limits)
        let encoded = try await runEncoder(on: images, views: [models.encoder.plainView], outputs: [.features],
                                           models: models, limits: limits)
        let records: [JSONValue] = zip(images, encoded).map { image, output in
            .object([("path", .string(image.name)), ("embedding", .array(output[0].features.map { .float($0) }))])
        }
        return jsonResponse(.object([("model", .string(models.encoder.identifier)), ("results", .array(records))]))
    }
}
