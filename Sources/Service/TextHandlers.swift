import Foundation
import HeadTune
import Hummingbird

/// The routes that need the text encoder (all-MiniLM-L6-v2); 404 `text_encoder_unavailable` when it
/// is not loaded. Text encoding runs on the inference thread, queued with the image batches.
/// - `POST /v1/embed/text`: body `["text", ...]` (application/json) ->
///   `{"model": ..., "results": [{"text": ..., "embedding": [384 floats]}]}`
/// - `POST /v1/zero-shot?labels=a,b,c[&top_k=K&temperature=T]`: images as for classify (or the labels
///   in a multipart field `labels`) -> the records of `headtune zero-shot` (predictions with `similarity`)
/// - `POST /v1/match?text=...&text=...`: images as for classify (or multipart fields `text`) ->
///   `{"texts": [...], "results": [{"path": ..., "similarities": [...]}]}`, as `headtune match`
struct TextHandlers: Sendable {
    let host: ModelHost
    let limits: RequestLimits
    /// Where the request body is read, under the shared body budget.
    let bodies: RequestBodies
    /// Most texts in one request.
    static let maxTexts = 256

    func embedText(_ request: Request, context: some RequestContext) async throws -> Response {
        let models = try host.ready()
        let text = try loadedText(models)
        guard MediaTypeHeader(request.headers[.contentType])?.type == "application/json" else {
            throw ServiceError.unsupportedMediaType(given: request.headers[.contentType], accepted: ["application/json"])
        }
        // Twice the body: the bytes, and the Data the JSON decoder reads (then the texts, no larger).
        let body = try await bodies.read(request, copies: 2)
        defer { body.release() }
        let texts = try TextRequestBody.texts(Data(body.bytes))
        let embeddings = try await encode(texts, encoder: text.encoder, models: models)
        let results: [JSONValue] = zip(texts, embeddings).map { t, e in
            .object([("text", .string(t)), ("embedding", .array(e.map { .float($0) }))])
        }
        return jsonResponse(.object([("model", .string(text.encoder.identifier)), ("results", .array(results))]))
    }

    func zeroShot(_ request: Request, context: some RequestContext) async throws -> Response {
        let models = try host.ready()
        let space = try textSpace(models)
        let topK = try request.queryInt("top_k", default: 5, range: 1...100_000)
        let temperature = try request.queryFloat("temperature", range: Float.leastNonzeroMagnitude...1e6) ?? space.defaultTemperature
        let (images, fields, held) = try await readImages(request, bodies: bodies)
        defer { held.release() }
        let labels = request.queryList("labels", splitCommas: true)
            + (fields["labels"] ?? []).flatMap { $0.split(whereSeparator: { $0 == "," || $0.isNewline }) }
                .map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        guard !labels.isEmpty else { throw ServiceError.badRequest("give the class names: ?labels=cat,dog or a multipart field 'labels'") }
        try checkCount(labels)
        let classes = try await models.worker.perform(timeout: limits.timeout) { try space.labelEmbeddings(labels) }
        let vectors = try await imageVectors(images, space: space, models: models)
        let records: [JSONValue] = zip(images, vectors).map { image, vector in
            .object([("path", .string(image.name)), ("predictions", .array(
                space.zeroShot(vector, classes: classes, temperature: temperature, topK: topK).map {
                    .object([("label", .string(labels[$0.index])), ("index", .integer($0.index)), ("score", .float($0.score)),
                             ("similarity", .float($0.similarity))])
                }))])
        }
        return jsonResponse(.object([("results", .array(records))]))
    }

    func match(_ request: Request, context: some RequestContext) async throws -> Response {
        let models = try host.ready()
        let space = try textSpace(models)
        let (images, fields, held) = try await readImages(request, bodies: bodies)
        defer { held.release() }
        let texts = request.queryList("text", splitCommas: false) + (fields["text"] ?? [])
        guard !texts.isEmpty else { throw ServiceError.badRequest("give the texts: ?text=...&text=... or multipart fields 'text'") }
        let embeddings = try await encode(texts, encoder: space.text, models: models)
        let vectors = try await imageVectors(images, space: space, models: models)
        let records: [JSONValue] = zip(images, vectors).map { image, vector in
            .object([("path", .string(image.name)), ("similarities", .array(space.similarities(vector, embeddings).map { .float($0) }))])
        }
        return jsonResponse(.object([("texts", .array(texts.map { .string($0) })), ("results", .array(records))]))
    }

    private func loadedText(_ models: LoadedModels) throws -> LoadedText {
        guard let text = models.text else {
            throw ServiceError.textEncoderUnavailable(reason: models.textProblem ?? "not loaded")
        }
        return text
    }

    private func textSpace(_ models: LoadedModels) throws -> TextSpace {
        let text = try loadedText(models)
        guard let space = text.space else {
            throw ServiceError.textEncoderUnavailable(reason: text.spaceProblem ?? "no image-text alignment")
        }
        return space
    }

    /// Each image's unit vector in the text space (the encoder's plain view).
    private func imageVectors(_ images: [UploadedImage], space: TextSpace, models: LoadedModels) async throws -> [[Float]] {
        let encoded = try await runEncoder(on: images, views: [models.encoder.plainView], outputs: space.requiredOutputs,
                                           models: models, limits: limits)
        return try encoded.map { try space.imageVector($0[0]) }
    }

    private func checkCount(_ texts: [String]) throws {
        guard texts.count <= Self.maxTexts else { throw ServiceError.tooManyTexts(count: texts.count, limit: Self.maxTexts) }
    }

    private func encode(_ texts: [String], encoder: TextEncoder, models: LoadedModels) async throws -> [[Float]] {
        try checkCount(texts)
        return try await models.worker.perform(timeout: limits.timeout) { try encoder.embed(texts) }
    }
}
