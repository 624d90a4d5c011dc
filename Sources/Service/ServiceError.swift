import Foundation
import HTTPTypes
import HeadTune
import Hummingbird

/// Every way a request can fail, with the HTTP status it maps to. Responses carry
/// `{"error": {"code": ..., "message": ...}}` (the Open Inference Protocol routes under `/v2`:
/// `{"error": message}`, the document its clients parse); `message` is the same text the CLI prints.
public enum ServiceError: Error, LocalizedError, Equatable, Sendable {
    /// 413: the body is over the limit (bytes).
    case bodyTooLarge(limit: Int)
    /// 413: more images in one request than allowed.
    case tooManyImages(count: Int, limit: Int)
    /// 413: more texts in one request than allowed.
    case tooManyTexts(count: Int, limit: Int)
    /// 413: more parts in one multipart body than allowed.
    case tooManyParts(limit: Int)
    /// 400: a multipart part's header block (its Content-Disposition, Content-Type, ...) is over the limit (bytes).
    case partHeadersTooLarge(part: Int, limit: Int)
    /// 408, written by the connection guard: the request head was not complete within the header timeout.
    case headerTimeout(seconds: Double)
    /// 431, written by the connection guard: the request head (target and header fields) is over the limit (bytes).
    case headersTooLarge(limit: Int)
    /// 408, written by the connection guard: the body arrives slower than the minimum rate (bytes per second).
    case bodyTooSlow(bytesPerSecond: Int, minimum: Int)
    /// 503, written by the connection guard: as many connections are open as allowed.
    case tooManyConnections(limit: Int)
    /// 415: not image/jpeg, image/png or multipart/form-data (or application/json for text routes).
    case unsupportedMediaType(given: String?, accepted: [String])
    /// 400: malformed request (query parameter, multipart framing, JSON body).
    case badRequest(String)
    /// 422: the image could not be decoded, or declares more pixels than allowed: the decoder's message.
    case undecodableImage(String)
    /// 404: no head of that name is loaded.
    case unknownHead(name: String, loaded: [String])
    /// 404: the model (head) exists, but not in that version (every head has one version, "1").
    case unknownModelVersion(model: String, version: String, available: [String])
    /// 404: the route needs the text encoder, which this server has not loaded.
    case textEncoderUnavailable(reason: String)
    /// 404: no such route.
    case notFound(method: String, path: String)
    /// 405: the route exists, with other methods.
    case methodNotAllowed(method: String, path: String, allowed: [String])
    /// 503: weights and heads are still loading.
    case notReady
    /// 503: the inference queue is full; retry after the given seconds.
    case queueFull(capacity: Int)
    /// 503: the request did not get through the queue and the network within the time limit.
    case timeout(seconds: Double)
    /// 503: the decodes under way hold the decode-memory budget and this request's share did not
    /// free up within its time limit.
    case decodeMemoryBusy(bytes: Int, capacity: Int, seconds: Double)
    /// 503: the request bodies being read or held fill the body-memory budget and this request's
    /// share did not free up within its time limit (its body was not read).
    case bodyMemoryBusy(bytes: Int, capacity: Int, seconds: Double)
    /// 503: another large image (over `largeDecodePixels`) was being decoded for the whole time limit.
    case largeDecodesBusy(pixels: Int, seconds: Double)
    /// 503: the server is shutting down.
    case shuttingDown
    /// 500: a fault of the server itself (never caused by request contents).
    case `internal`(String)
    /// At startup, never in a response: the address cannot be listened on (`portInUse`: another process has it).
    case cannotListen(host: String, port: Int, reason: String, portInUse: Bool)

    public var status: HTTPResponse.Status {
        switch self {
        case .bodyTooLarge, .tooManyImages, .tooManyTexts, .tooManyParts: .contentTooLarge
        case .partHeadersTooLarge: .badRequest
        case .headerTimeout, .bodyTooSlow: .requestTimeout
        case .headersTooLarge: .requestHeaderFieldsTooLarge
        case .unsupportedMediaType: .unsupportedMediaType
        case .badRequest: .badRequest
        case .undecodableImage: .unprocessableContent
        case .unknownHead, .unknownModelVersion, .textEncoderUnavailable, .notFound: .notFound
        case .methodNotAllowed: .methodNotAllowed
        case .notReady, .queueFull, .timeout, .decodeMemoryBusy, .bodyMemoryBusy, .largeDecodesBusy, .shuttingDown,
             .tooManyConnections:
            .serviceUnavailable
        case .internal, .cannotListen: .internalServerError
        }
    }

    /// Machine-readable code, stable across releases.
    public var code: String {
        switch self {
        case .bodyTooLarge: "body_too_large"
        case .tooManyImages: "too_many_images"
        case .tooManyTexts: "too_many_texts"
        case .tooManyParts: "too_many_parts"
        case .partHeadersTooLarge: "part_headers_too_large"
        case .headerTimeout: "header_timeout"
        case .headersTooLarge: "headers_too_large"
        case .bodyTooSlow: "body_too_slow"
        case .tooManyConnections: "too_many_connections"
        case .unsupportedMediaType: "unsupported_media_type"
        case .badRequest: "bad_request"
        case .undecodableImage: "undecodable_image"
        case .unknownHead: "unknown_head"
        case .unknownModelVersion: "unknown_model_version"
        case .textEncoderUnavailable: "text_encoder_unavailable"
        case .notFound: "not_found"
        case .methodNotAllowed: "method_not_allowed"
        case .notReady: "not_ready"
        case .queueFull: "queue_full"
        case .timeout: "timeout"
        case .decodeMemoryBusy: "decode_memory_busy"
        case .bodyMemoryBusy: "body_memory_busy"
        case .largeDecodesBusy: "large_decodes_busy"
        case .shuttingDown: "shutting_down"
        case .internal: "internal"
        case .cannotListen: "cannot_listen"
        }
    }

    /// Seconds a client should wait before retrying (the `Retry-After` header), for the 503s.
    public var retryAfterSeconds: Int? {
        switch self {
        case .notReady, .queueFull, .timeout, .decodeMemoryBusy, .bodyMemoryBusy, .largeDecodesBusy, .shuttingDown,
             .tooManyConnections: 1
        default: nil
        }
    }

    public var errorDescription: String? {
        switch self {
        case .bodyTooLarge(let limit): "request body is larger than the limit of \(limit) bytes"
        case .tooManyImages(let count, let limit): "\(count) images in one request; the limit is \(limit)"
        case .tooManyTexts(let count, let limit): "\(count) texts in one request; the limit is \(limit)"
        case .tooManyParts(let limit): "the multipart body has more than \(limit) parts"
        case .partHeadersTooLarge(let part, let limit): "multipart part \(part) has headers larger than the limit of \(limit) bytes"
        case .headerTimeout(let seconds): "the request head was not complete within \(seconds.formatted()) s"
        case .headersTooLarge(let limit): "the request head is larger than the limit of \(limit) bytes"
        case .bodyTooSlow(let rate, let minimum):
            "the request body arrives at \(rate) bytes/s, below the minimum of \(minimum) bytes/s"
        case .tooManyConnections(let limit): "the server has as many connections open as it allows (\(limit)); retry later"
        case .unsupportedMediaType(let given, let accepted):
            "content type \(given.map { "'\($0)'" } ?? "(none)") is not supported; send \(accepted.joined(separator: ", "))"
        case .badRequest(let reason): reason
        case .undecodableImage(let message): message
        case .unknownHead(let name, let loaded):
            "no head named '\(name)'; loaded: \(loaded.joined(separator: ", "))"
        case .unknownModelVersion(let model, let version, let available):
            "model '\(model)' has no version '\(version)'; versions: \(available.joined(separator: ", "))"
        case .textEncoderUnavailable(let reason): "the text encoder is not loaded (\(reason))"
        case .notFound(let method, let path): "no route for \(method) \(path)"
        case .methodNotAllowed(let method, let path, let allowed): "\(path) does not answer \(method); it answers \(allowed.joined(separator: ", "))"
        case .notReady: "the server is still loading its weights and heads"
        case .queueFull(let capacity): "the inference queue is full (\(capacity) images); retry later"
        case .timeout(let seconds): "the request was not answered within \(seconds.formatted()) s"
        case .decodeMemoryBusy(let bytes, let capacity, let seconds):
            "the image decodes under way hold the decode memory (\(capacity) bytes); this request's \(bytes) bytes "
                + "did not free up within \(seconds.formatted()) s; retry later"
        case .bodyMemoryBusy(let bytes, let capacity, let seconds):
            "the request bodies in flight hold the body memory (\(capacity) bytes); this request's \(bytes) bytes "
                + "did not free up within \(seconds.formatted()) s; retry later"
        case .largeDecodesBusy(let pixels, let seconds):
            "the image declares \(pixels) pixels; large images decode one at a time and the one before it "
                + "did not finish within \(seconds.formatted()) s; retry later"
        case .shuttingDown: "the server is shutting down"
        case .internal(let reason): "internal error: \(reason)"
        case .cannotListen(let host, let port, _, true): "port \(port) is in use on \(host); pick another with --port"
        case .cannotListen(let host, let port, let reason, false): "cannot listen on \(host):\(port): \(reason)"
        }
    }

    /// The JSON error document of the headtune routes.
    var json: JSONValue {
        .object([("error", .object([("code", .string(code)), ("message", .string(errorDescription ?? code))]))])
    }

    /// The Open Inference Protocol's error document (`tritonclient` and `kserve` read `error` as a string).
    var openInferenceJSON: JSONValue { .object([("error", .string(errorDescription ?? code))]) }
}

extension ServiceError: HTTPResponseError {
    public func response(from request: Request, context: some RequestContext) throws -> Response {
        var headers: HTTPFields = [.contentType: "application/json; charset=utf-8"]
        if let retryAfterSeconds { headers[.retryAfter] = String(retryAfterSeconds) }
        if case .methodNotAllowed(_, _, let allowed) = self { headers[.allow] = allowed.joined(separator: ", ") }
        let document = OpenInferenceRoutes.serves(path: request.uri.path) ? openInferenceJSON : json
        return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(string: document.serialized() + "\n")))
    }
}

/// A JSON document as a 200 response.
func jsonResponse(_ value: JSONValue, status: HTTPResponse.Status = .ok) -> Response {
    Response(status: status, headers: [.contentType: "application/json; charset=utf-8"],
             body: .init(byteBuffer: ByteBuffer(string: value.serialized() + "\n")))
}
