import HeadTune
import Hummingbird
import Training

/// `POST /v1/classify?head=NAME&top_k=K`: one image (image/jpeg, image/png) or several
/// (multipart/form-data). Answers `{"head": NAME, "results": [record, ...]}` with the records of
/// `headtune classify --format jsonl` (with `unknown` and `ood_score` when the head has an
/// out-of-distribution detector); in a multipart body, a part that is not a decodable image gets the
/// record `{"path": NAME, "error": REASON}` and the others are classified (status 200).
struct ClassifyHandler: Sendable {
    let host: ModelHost
    let limits: RequestLimits
    /// Where the request body is read, under the shared body budget.
    let bodies: RequestBodies

    func handle(_ request: Request, context: some RequestContext) async throws -> Response {
        let models = try host.ready()
        // Without ?head=, the ImageNet classifier, or the first head when the encoder has none (CLIP).
        let head = try models.head(named: request.uri.queryParameters.get("head") ?? models.heads.first?.name ?? ModelSpecification.imagenetHead)
        let topK = try request.queryInt("top_k", default: 5, range: 1...100_000)
        let (images, _, held) = try await readImages(request, bodies: bodies)
        defer { held.release() }
        let encoder = models.encoder(for: head)
        let encoded = try await runEncoderPerImage(on: images, views: head.views(on: encoder), outputs: head.requiredOutputs(on: encoder),
                                                   models: models, limits: limits, head: head)
        // One raw image that cannot be decoded is the request's failure (422); in a multipart body it is
        // that part's record, beside the others' predictions, as `headtune classify` writes an error record.
        if MediaTypeHeader(request.headers[.contentType])?.type != "multipart/form-data", case .failure(let error) = encoded.first {
            throw error
        }
        var scored = head.score(encoded.compactMap { try? $0.get() }, encoder: encoder)[...]
        let k = min(topK, head.labels.count)
        let records: [JSONValue] = zip(images, encoded).map { image, result in
            var record = ClassificationRecord(path: image.name)
            switch result {
            case .failure(let error):
                record.error = error.errorDescription
            case .success:
                let output = scored.popFirst()!
                record.predictions = output.probabilities.withUnsafeBufferPointer { largestEntries($0, k: k) }.map {
                    Prediction(label: head.labels[$0.index], index: $0.index, score: $0.score)
                }
                record.unknown = output.unknown
                record.oodScore = output.oodScore
            }
            return record.json
        }
        return jsonResponse(.object([("head", .string(head.name)), ("results", .array(records))]))
    }
}
