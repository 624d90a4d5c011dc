import HeadTune
import Hummingbird
import Imaging

/// `GET /healthz` (the process answers), `GET /readyz` (weights and heads loaded), `GET /metrics`
/// (Prometheus text) and `GET /v1/heads` (the loaded classifiers with labels and validation metrics).
struct StatusHandlers: Sendable {
    let host: ModelHost
    let metrics: ServiceMetrics
    let bodyBudget: MemoryBudget

    func health(_ request: Request, context: some RequestContext) async throws -> Response {
        jsonResponse(.object([("status", .string("ok"))]))
    }

    func ready(_ request: Request, context: some RequestContext) async throws -> Response {
        let models = try host.ready()
        return jsonResponse(.object([
            ("status", .string("ready")), ("backbone", .string(models.encoder.identifier)),
            ("heads", .array(models.heads.map { .string($0.name) })),
            ("text_encoder", models.text.map { .string($0.encoder.identifier) } ?? .null),
        ]))
    }

    func metrics(_ request: Request, context: some RequestContext) async throws -> Response {
        metrics.recordBudget(.body, bodyBudget)
        if let models = try? host.ready() { metrics.recordBudget(.decode, models.decodeBudget) }
        return Response(status: .ok, headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
                 body: .init(byteBuffer: ByteBuffer(string: metrics.exposition())))
    }

    func heads(_ request: Request, context: some RequestContext) async throws -> Response {
        let models = try host.ready()
        let heads: [JSONValue] = models.heads.map { head in
            var members: [(String, JSONValue)] = [("name", .string(head.name)),
                                                  ("kind", .string(head.predictor == nil ? "imagenet" : "trained")),
                                                  ("classes", .integer(head.labels.count)),
                                                  ("labels", .array(head.labels.map { .string($0) }))]
            if let predictor = head.predictor {
                let metadata = predictor.head.metadata
                members.append(("path", head.path.map { .string($0) } ?? .null))
                members.append(("architecture", .string(metadata.architecture.kind.rawValue)))
                members.append(("test_time_flip", .bool(metadata.preprocessing.testTimeFlip)))
                members.append(("features", .string(predictor.featureSet.rawValue)))
                members.append(("created_at", .string(metadata.createdAt)))
                if let report = metadata.validation {
                    members.append(("validation", .object([
                        ("images", .integer(report.count)), ("accuracy", .number(report.accuracy)),
                        ("balanced_accuracy", .number(report.balancedAccuracy)), ("macro_f1", .number(report.macroF1)),
                        ("log_loss", .number(report.logLoss)), ("ece", .number(report.ece)),
                    ])))
                } else {
                    members.append(("validation", .null))
                }
            }
            return .object(members)
        }
        return jsonResponse(.object([("backbone", .string(models.encoder.identifier)), ("heads", .array(heads))]))
    }
}
