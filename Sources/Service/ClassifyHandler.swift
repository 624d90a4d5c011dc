import HeadTune
import Hummingbird
import Training

/// `POST /v1/classify?head=NAME&top_k=K`: one image (image/jpeg, image/png) or several
/// (multipart/form-data). Answers `{"head": NAME, "results": [record, ...]}` with the records of
/// `headtune classify --format jsonl` (with `unknown` and `ood_score` when the head has an
/// out-of-distribution detector).
struct ClassifyHandler: Sendable {
    let host: ModelHost
    let limits: RequestLimits

    func handle(_ request: Request, context: some RequestContext) async throws -> Response {
        let models = try host.ready()
        // Without ?head=, the ImageNet classifier, or the first head when the encoder has none (CLIP).
        let head = try models.head(named: request.uri.queryParameters.get("head") ?? models.heads.first?.name ?? ModelSpecification.imagenetHead)
        let topK = try request.queryInt("top_k", default: 5, range: 1...100_000)
        let (images, _) = try await readImages(request, limits: limits)
        let encoder = models.encoder(for: head)
        let encoded = try await runEncoder(on: images, views: head.views(on: encoder), outputs: head.requiredOutputs(on: encoder),
                                           models: models, limits: limits, head: head)
        let scored = head.score(encoded, encoder: encoder)
        let k = min(topK, head.labels.count)
        let records: [JSONValue] = zip(images, scored).map { image, output in
            var record = ClassificationRecord(path: image.name)
            record.predictions = output.probabilities.withUnsafeBufferPointer { largestEntries($0, k: k) }.map {
                Prediction(label: head.labels[$0.index], index: $0.index, score: $0.score)
            }
            record.unknown = output.unknown
            record.oodScore = output.oodScore
            return record.json
        }
        return jsonResponse(.object([("head", .string(head.name)), ("results", .array(records))]))
    }
}
