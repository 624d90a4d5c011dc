import Foundation
import HeadTune
import Hummingbird
import Imaging

/// The Open Inference Protocol (KServe v2, as Triton, KServe, MLServer and OpenVINO Model Server
/// speak it) over HTTP/REST, beside `/v1`: each head is a model of one version ("1"). Inference
/// goes through the same decoding, batching worker, limits and metrics as `/v1/classify` and gives
/// the same numbers.
enum OpenInferenceRoutes {
    /// The one version every head has (a head file is replaced, not versioned, by `headtune train`).
    static let modelVersion = "1"

    /// Whether `path` belongs to these routes (its errors then use the protocol's document).
    static func serves(path: String) -> Bool { path == "/v2" || path.hasPrefix("/v2/") }

    static func add(to router: Router<BasicRequestContext>, host: ModelHost, bodies: RequestBodies) {
        let handlers = OpenInferenceHandlers(host: host, limits: bodies.limits, bodies: bodies)
        router.get("/v2/health/live", use: handlers.live)
        router.get("/v2/health/ready", use: handlers.ready)
        router.get("/v2", use: handlers.serverMetadata)
        for model in ["/v2/models/{model}", "/v2/models/{model}/versions/{version}"] {
            router.get(RouterPath(model), use: handlers.modelMetadata)
            router.get(RouterPath(model + "/ready"), use: handlers.modelReady)
            router.post(RouterPath(model + "/infer"), use: handlers.infer)
        }
    }
}

/// A head as the protocol describes it: its input and output tensors (the model metadata, and what
/// an inference request is checked against).
struct InferenceModel {
    struct Tensor {
        var name: String
        var datatype: TensorDatatype
        /// -1 where any size goes (the batch).
        var shape: [Int]
    }

    /// BYTES: one encoded image (JPEG, PNG, WebP, TIFF or HEIF) per batch element, decoded and preprocessed by the server.
    static let imageInput = "image"
    /// FP32 [N, 3, size, size]: the network input already preprocessed (the plain view, normalized).
    static let pixelsInput = "pixels"
    static let probabilitiesOutput = "probabilities"
    static let featuresOutput = "features"
    static let oodScoreOutput = "ood_score"
    static let unknownOutput = "unknown"

    var head: LoadedHead
    var inputs: [Tensor]
    var outputs: [Tensor]

    init(head: LoadedHead, encoder: ImageEncoder) {
        self.head = head
        let size = encoder.inputSize
        inputs = [Tensor(name: Self.imageInput, datatype: .bytes, shape: [-1]),
                  Tensor(name: Self.pixelsInput, datatype: .fp32, shape: [-1, 3, size, size])]
        outputs = [Tensor(name: Self.probabilitiesOutput, datatype: .fp32, shape: [-1, head.labels.count]),
                   Tensor(name: Self.featuresOutput, datatype: .fp32, shape: [-1, encoder.width(of: encoder.embeddingOutput) ?? 0])]
        if head.hasOutOfDistributionDetector {
            outputs += [Tensor(name: Self.oodScoreOutput, datatype: .fp32, shape: [-1]),
                        Tensor(name: Self.unknownOutput, datatype: .bool, shape: [-1])]
        }
    }

    var metadata: JSONValue {
        func describe(_ tensors: [Tensor]) -> JSONValue {
            .array(tensors.map { .object([("name", .string($0.name)), ("datatype", .string($0.datatype.rawValue)),
                                          ("shape", .array($0.shape.map { .integer($0) }))]) })
        }
        return .object([("name", .string(head.name)), ("versions", .array([.string(OpenInferenceRoutes.modelVersion)])),
                        ("platform", .string("headtune")), ("inputs", describe(inputs)), ("outputs", describe(outputs))])
    }
}

struct OpenInferenceHandlers: Sendable {
    let host: ModelHost
    let limits: RequestLimits
    /// Where the request body is read, under the shared body budget.
    let bodies: RequestBodies

    func live(_ request: Request, context: some RequestContext) async throws -> Response {
        jsonResponse(.object([("live", .bool(true))]))
    }

    func ready(_ request: Request, context: some RequestContext) async throws -> Response {
        _ = try host.ready()
        return jsonResponse(.object([("ready", .bool(true))]))
    }

    func serverMetadata(_ request: Request, context: some RequestContext) async throws -> Response {
        jsonResponse(.object([("name", .string("headtune")), ("version", .string(HeadTuneVersion.current)),
                              ("extensions", .array([.string("binary_tensor_data"), .string("classification")]))]))
    }

    func modelMetadata(_ request: Request, context: some RequestContext) async throws -> Response {
        let models = try host.ready()
        return jsonResponse(try model(context, models).metadata)
    }

    func modelReady(_ request: Request, context: some RequestContext) async throws -> Response {
        let models = try host.ready()
        let model = try model(context, models)
        return jsonResponse(.object([("name", .string(model.head.name)), ("ready", .bool(true))]))
    }

    /// `POST /v2/models/{model}[/versions/{version}]/infer`: one input, `image` (BYTES) or `pixels`
    /// (FP32), of N images; the outputs asked for (all without `outputs`), each [N, ...].
    func infer(_ request: Request, context: some RequestContext) async throws -> Response {
        let models = try host.ready()
        let model = try model(context, models)
        // Twice the body: the bytes (binary tensors are slices of them), and the JSON header's copy with
        // the tensors made from it. (A large tensor sent as JSON numbers costs Foundation's parse more.)
        let body = try await bodies.read(request, copies: 2)
        defer { body.release() }
        let document = try InferenceRequestDocument.parse(body.bytes,
                                                          headerLength: request.headers[InferenceTensors.headerLengthField])
        let requested = try requestedOutputs(document, model: model)
        guard document.inputs.count == 1, let input = document.inputs.first else {
            throw ServiceError.badRequest("send one input: '\(InferenceModel.imageInput)' (BYTES, encoded JPEG, PNG, WebP, TIFF or HEIF images) or "
                                          + "'\(InferenceModel.pixelsInput)' (FP32 [N, 3, H, W], preprocessed); got \(document.inputs.count)")
        }
        let head = model.head, encoder = models.encoder(for: model.head)
        var outputs = head.requiredOutputs(on: encoder)
        if requested.contains(where: { $0.name == InferenceModel.featuresOutput }) { outputs.append(encoder.embeddingOutput) }
        outputs = Array(Set(outputs)).sorted()
        let views = head.views(on: encoder)
        let encoded: [[EncodedImage]]
        switch input.name {
        case InferenceModel.imageInput:
            let images = try imageElements(input, model: model)
            encoded = try await runEncoder(on: images, views: views, outputs: outputs, models: models, limits: limits, head: head)
        case InferenceModel.pixelsInput:
            let (inputs, count) = try networkInputs(input, views: views, model: model, size: encoder.inputSize)
            encoded = try await runEncoder(onPrepared: inputs, images: count, views: views.count, outputs: outputs,
                                           models: models, limits: limits, head: head)
        default:
            throw ServiceError.badRequest("model '\(head.name)' has no input '\(input.name)'; inputs: "
                                          + model.inputs.map(\.name).joined(separator: ", "))
        }
        let scores = head.score(encoded, encoder: encoder)
        let n = encoded.count
        let tensors: [InferenceOutputTensor] = requested.map { output in
            let values: InferenceOutputTensor.Values
            var shape = [n]
            switch output.name {
            case InferenceModel.probabilitiesOutput:
                if let k = output.classification.map({ min($0, head.labels.count) }) {
                    // Triton's classification extension: "score:index:label", best first.
                    values = .bytes(scores.flatMap { score in
                        score.probabilities.withUnsafeBufferPointer { largestEntries($0, k: k) }.map { "\($0.score):\($0.index):\(head.labels[$0.index])" }
                    })
                    shape.append(k)
                } else {
                    values = .fp32(scores.flatMap(\.probabilities))
                    shape.append(head.labels.count)
                }
            case InferenceModel.featuresOutput:
                let features = encoded.map { encoder.embeddingVector($0[0]) }
                values = .fp32(features.flatMap { $0 })
                shape.append(features.first?.count ?? 0)
            case InferenceModel.oodScoreOutput:
                values = .fp32(scores.map { $0.oodScore ?? .nan })
            default:
                values = .bool(scores.map { $0.unknown ?? false })
            }
            return InferenceOutputTensor(name: output.name, shape: shape, values: values, binary: output.binary)
        }
        return InferenceResponseDocument(model: head.name, version: OpenInferenceRoutes.modelVersion, id: document.id, outputs: tensors).response
    }

    /// The head the path names, in the version it names (404 otherwise).
    private func model(_ context: some RequestContext, _ models: LoadedModels) throws -> InferenceModel {
        let head = try models.head(named: context.parameters.get("model") ?? "")
        if let version = context.parameters.get("version"), version != OpenInferenceRoutes.modelVersion {
            throw ServiceError.unknownModelVersion(model: head.name, version: version, available: [OpenInferenceRoutes.modelVersion])
        }
        return InferenceModel(head: head, encoder: models.encoder(for: head))
    }

    /// The outputs asked for, each one the model has; classification only on the probabilities.
    private func requestedOutputs(_ document: InferenceRequestDocument, model: InferenceModel) throws -> [RequestedOutput] {
        guard let outputs = document.outputs else {
            return model.outputs.map { RequestedOutput(name: $0.name, binary: document.binaryOutputByDefault) }
        }
        for output in outputs {
            guard model.outputs.contains(where: { $0.name == output.name }) else {
                throw ServiceError.badRequest("model '\(model.head.name)' has no output '\(output.name)'; outputs: "
                                              + model.outputs.map(\.name).joined(separator: ", "))
            }
            if output.classification != nil && output.name != InferenceModel.probabilitiesOutput {
                throw ServiceError.badRequest("the classification parameter applies to '\(InferenceModel.probabilitiesOutput)', not '\(output.name)'")
            }
        }
        return outputs
    }

    /// The batch size of an input of `shape`, or 400 unless it matches the model's `expected` shape
    /// (-1: the batch) and the image limit.
    private func batchSize(_ input: InferenceInputTensor, expected: InferenceModel.Tensor, accepted: [[Int]]) throws -> Int {
        guard input.datatype == expected.datatype.rawValue else {
            throw ServiceError.badRequest("input '\(input.name)' has datatype \(input.datatype); it must be \(expected.datatype.rawValue)")
        }
        let fits = accepted.contains { pattern in
            pattern.count == input.shape.count && zip(pattern, input.shape).allSatisfy { $0 == -1 || $0 == $1 }
        }
        guard fits, let n = input.shape.first, n > 0 else {
            let described = accepted.map { "[" + $0.map { $0 == -1 ? "N" : String($0) }.joined(separator: ", ") + "]" }
            throw ServiceError.badRequest("input '\(input.name)' has shape \(input.shape); it must be \(described.joined(separator: " or ")) with N >= 1")
        }
        guard n <= limits.maxImagesPerRequest else {
            throw ServiceError.tooManyImages(count: n, limit: limits.maxImagesPerRequest)
        }
        return n
    }

    /// The encoded images of a BYTES input, named `image[i]` so a decoding error names the element.
    private func imageElements(_ input: InferenceInputTensor, model: InferenceModel) throws -> [UploadedImage] {
        // [N] as the metadata says, or [N, 1] as clients that keep a feature axis send it.
        _ = try batchSize(input, expected: model.inputs[0], accepted: [[-1], [-1, 1]])
        return try input.byteStrings().enumerated().map { UploadedImage(name: "\(input.name)[\($0.offset)]", bytes: $0.element) }
    }

    /// The network inputs [N * views, size, size, 3] (the worker's layout) of a preprocessed FP32
    /// [N, 3, size, size] input: the tensor as the plain view, flipped left-right as the mirrored view.
    private func networkInputs(_ input: InferenceInputTensor, views: [ImageView], model: InferenceModel,
                               size: Int) throws -> (inputs: [Float], count: Int) {
        let n = try batchSize(input, expected: model.inputs[1], accepted: [[-1, 3, size, size]])
        guard views.allSatisfy({ $0.crop == nil }) else {
            throw ServiceError.badRequest("head '\(model.head.name)' runs on crops of the image; send the encoded image as '\(InferenceModel.imageInput)'")
        }
        let pixels = try input.floats()
        if let bad = pixels.firstIndex(where: { !$0.isFinite }) {
            throw ServiceError.badRequest("input '\(input.name)' element \(bad) is not a finite number")
        }
        let plane = size * size
        var inputs = [Float](repeating: 0, count: n * views.count * plane * 3)
        inputs.withUnsafeMutableBufferPointer { out in
            pixels.withUnsafeBufferPointer { source in
                for image in 0..<n {
                    for (v, view) in views.enumerated() {
                        let destination = out.baseAddress! + (image * views.count + v) * plane * 3
                        for channel in 0..<3 {
                            let from = source.baseAddress! + (image * 3 + channel) * plane
                            for y in 0..<size {
                                for x in 0..<size {
                                    destination[(y * size + x) * 3 + channel] = from[y * size + (view.mirrored ? size - 1 - x : x)]
                                }
                            }
                        }
                    }
                }
            }
        }
        return (inputs, n)
    }
}
