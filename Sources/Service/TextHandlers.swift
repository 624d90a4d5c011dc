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
    /// Most texts in one request.
    static let maxTexts = 256
    static let template = "a photo of a {}."

    func embedText(_ request: Request, context: some RequestContext) async throws -> Response {
        let models = try host.ready()
        let text = try textSpace(models)
        guard MediaTypeHeader(request.headers[.contentType])?.type == "application/json" else {
            throw ServiceError.unsupportedMediaType(given: request.headers[.contentType], accepted: ["application/json"])
        }
        let body = try await collectBody(request, limit: limits.maxBodyBytes)
        guard let texts = try? JSONDecoder().decode([String].self, from: Data(buffer: body)) else {
            throw ServiceError.badRequest("the body must be a JSON array of strings, e.g. [\"a cat\", \"a dog\"]")
        }
        guard !texts.isEmpty else { throw ServiceError.badRequest("the array of texts is empty") }
        let embeddings = try await encode(texts, text: text, models: models)
        let results: [JSONValue] = zip(texts, embeddings).map { t, e in
            .object([("text", .string(t)), ("embedding", .array(e.map { .float($0) }))])
        }
        return jsonResponse(.object([("model", .string(text.encoder.identifier)), ("results", .array(results))]))
    }

    func zeroShot(_ request: Request, context: some RequestContext) async throws -> Response {
        let models = try host.ready()
        let (text, alignment) = try aligned(models)
        let topK = try request.queryInt("top_k", default: 5, range: 1...100_000)
        let temperature = try request.queryFloat("temperature", range: Float.leastNonzeroMagnitude...1e6) ?? 50
        let (images, fields) = try await readImages(request, limits: limits)
        let labels = request.queryList("labels", splitCommas: true)
            + (fields["labels"] ?? []).flatMap { $0.split(whereSeparator: { $0 == "," || $0.isNewline }) }
                .map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        guard !labels.isEmpty else { throw ServiceError.badRequest("give the class names: ?labels=cat,dog or a multipart field 'labels'") }
        let classes = try await encode(labels.map { Self.template.replacingOccurrences(of: "{}", with: $0) }, text: text, models: models)
        let outputs = try await runBackbone(on: images, views: [models.backbone.plainView], models: models, limits: limits)
        let k = min(topK, labels.count)
        let records: [JSONValue] = try zip(images, outputs).map { image, output in
            let vector = try alignment.embed(features: output[0].features, logits: output[0].logits, method: .conse)
            let similarities = classes.map { dot(vector, $0) }
            // With a single label a softmax is always 1: report the similarity itself, as the CLI does.
            let scores = labels.count == 1 ? similarities : probabilities(fromLogits: similarities.map { $0 * temperature })
            let best = scores.withUnsafeBufferPointer { largestEntries($0, k: k) }
            return .object([("path", .string(image.name)), ("predictions", .array(best.map {
                .object([("label", .string(labels[$0.index])), ("index", .integer($0.index)), ("score", .float($0.score)),
                         ("similarity", .float(similarities[$0.index]))])
            }))])
        }
        return jsonResponse(.object([("results", .array(records))]))
    }

    func match(_ request: Request, context: some RequestContext) async throws -> Response {
        let models = try host.ready()
        let (text, alignment) = try aligned(models)
        let (images, fields) = try await readImages(request, limits: limits)
        let texts = request.queryList("text", splitCommas: false) + (fields["text"] ?? [])
        guard !texts.isEmpty else { throw ServiceError.badRequest("give the texts: ?text=...&text=... or multipart fields 'text'") }
        let embeddings = try await encode(texts, text: text, models: models)
        let outputs = try await runBackbone(on: images, views: [models.backbone.plainView], models: models, limits: limits)
        let records: [JSONValue] = try zip(images, outputs).map { image, output in
            let vector = try alignment.embed(features: output[0].features, logits: output[0].logits, method: .conse)
            return .object([("path", .string(image.name)), ("similarities", .array(embeddings.map { .float(dot(vector, $0)) }))])
        }
        return jsonResponse(.object([("texts", .array(texts.map { .string($0) })), ("results", .array(records))]))
    }

    private func textSpace(_ models: LoadedModels) throws -> TextSpace {
        guard let text = models.text else {
            throw ServiceError.textEncoderUnavailable(reason: models.textProblem ?? "not loaded")
        }
        return text
    }

    private func aligned(_ models: LoadedModels) throws -> (TextSpace, ImageTextAlignment) {
        let text = try textSpace(models)
        guard let alignment = text.alignment else {
            throw ServiceError.textEncoderUnavailable(reason: text.alignmentProblem ?? "no image-text alignment")
        }
        return (text, alignment)
    }

    private func encode(_ texts: [String], text: TextSpace, models: LoadedModels) async throws -> [[Float]] {
        guard texts.count <= Self.maxTexts else { throw ServiceError.tooManyTexts(count: texts.count, limit: Self.maxTexts) }
        let encoder = text.encoder
        return try await models.worker.perform(timeout: limits.timeout) { try encoder.embed(texts) }
    }
}
