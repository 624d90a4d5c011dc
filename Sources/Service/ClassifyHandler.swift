import HeadTune
import Hummingbird

/// `POST /v1/classify?head=NAME&top_k=K[&min_score=P]`: one image (image/jpeg, image/png) or several
/// (multipart/form-data). Answers `{"head": NAME, "results": [record, ...]}` with the records of
/// `headtune classify --format jsonl`; with `min_score`, each record also says `"unknown": true`
/// when its best probability is below it.
struct ClassifyHandler: Sendable {
    let host: ModelHost
    let limits: RequestLimits

    func handle(_ request: Request, context: some RequestContext) async throws -> Response {
        let models = try host.ready()
        let head = try models.head(named: request.uri.queryParameters.get("head") ?? ModelSpecification.imagenetHead)
        let topK = try request.queryInt("top_k", default: 5, range: 1...100_000)
        let minScore = try request.queryFloat("min_score", range: 0...1)
        let (images, _) = try await readImages(request, limits: limits)
        let views = head.predictor?.views ?? [models.backbone.plainView]
        let outputs = try await runBackbone(on: images, views: views, models: models, limits: limits)
        let probabilities: [[Float]]
        if let predictor = head.predictor {
            probabilities = predictor.probabilities(viewFeatures: outputs.flatMap { $0.map(\.features) })
        } else {
            probabilities = outputs.map { HeadTune.probabilities(fromLogits: $0[0].logits) }
        }
        let k = min(topK, head.labels.count)
        let records: [JSONValue] = zip(images, probabilities).map { image, p in
            let best = p.withUnsafeBufferPointer { largestEntries($0, k: k) }
            let record = ClassificationRecord(path: image.name, predictions: best.map {
                Prediction(label: head.labels[$0.index], index: $0.index, score: $0.score)
            })
            guard let minScore, case .object(var members) = record.json else { return record.json }
            members.append(("unknown", .bool((best.first?.score ?? 0) < minScore)))
            return .object(members)
        }
        return jsonResponse(.object([("head", .string(head.name)), ("results", .array(records))]))
    }
}
