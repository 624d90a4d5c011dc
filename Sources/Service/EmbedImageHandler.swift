import HeadTune
import Hummingbird

/// `POST /v1/embed/image`: the 1280-d pooled backbone features per image, as
/// `{"results": [{"path": ..., "embedding": [...]}]}` (the records of `headtune embed`).
struct EmbedImageHandler: Sendable {
    let host: ModelHost
    let limits: RequestLimits

    func handle(_ request: Request, context: some RequestContext) async throws -> Response {
        let models = try host.ready()
        let (images, _) = try await readImages(request, limits: limits)
        let outputs = try await runBackbone(on: images, views: [models.backbone.plainView], models: models, limits: limits)
        let records: [JSONValue] = zip(images, outputs).map { image, output in
            .object([("path", .string(image.name)), ("embedding", .array(output[0].features.map { .float($0) }))])
        }
        return jsonResponse(.object([("model", .string(models.backbone.identifier)), ("results", .array(records))]))
    }
}
