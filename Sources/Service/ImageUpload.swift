import Foundation
import Hummingbird
import NIOCore

/// One image of a request, with the name its records carry as `path`.
struct UploadedImage: Sendable {
    var name: String
    var bytes: [UInt8]
}

/// Request limits.
public struct RequestLimits: Sendable, Equatable {
    /// Largest request body in bytes (413 beyond).
    public var maxBodyBytes: Int
    /// Most images in one multipart request (413 beyond).
    public var maxImagesPerRequest: Int
    /// Longest a request may wait for the queue and the network (503 `timeout` beyond).
    public var timeout: Duration
    /// Most parts in one multipart body, files and fields together (413 beyond). The default leaves room
    /// for the 32 images and the 256 texts (`/v1/match`) one request may carry.
    public var maxParts: Int
    /// Largest header block of one multipart part in bytes (400 beyond).
    public var maxPartHeaderBytes: Int

    public init(maxBodyBytes: Int = 20 * 1024 * 1024, maxImagesPerRequest: Int = 32, timeout: Duration = .seconds(30),
                maxParts: Int = 320, maxPartHeaderBytes: Int = 8 * 1024) {
        self.maxBodyBytes = maxBodyBytes
        self.maxImagesPerRequest = maxImagesPerRequest
        self.timeout = timeout
        self.maxParts = maxParts
        self.maxPartHeaderBytes = maxPartHeaderBytes
    }
}

/// The media types an image route accepts.
let imageMediaTypes = ["image/jpeg", "image/png", "image/webp", "image/tiff", "image/heic", "image/heif", "multipart/form-data"]

/// The whole body, or 413 past the limit (checked against Content-Length first, then while reading).
func collectBody(_ request: Request, limit: Int) async throws -> ByteBuffer {
    if let declared = request.headers[.contentLength].flatMap(Int.init), declared > limit {
        throw ServiceError.bodyTooLarge(limit: limit)
    }
    do {
        return try await request.body.collect(upTo: limit)
    } catch is NIOTooManyBytesError {
        throw ServiceError.bodyTooLarge(limit: limit)
    }
}

/// The images of a request: the raw body for `image/jpeg`, `image/png`, `image/webp`, `image/tiff`, `image/heic` and `image/heif` (named by `?name=`, default
/// `image`), or every file part of `multipart/form-data` (named by its filename, else its field name).
/// Non-file multipart fields are returned in `fields` (e.g. `labels` for zero-shot).
func readImages(_ request: Request, limits: RequestLimits) async throws -> (images: [UploadedImage], fields: [String: [String]]) {
    let contentType = request.headers[.contentType]
    let media = MediaTypeHeader(contentType)
    switch media?.type {
    case "image/jpeg", "image/png", "image/webp", "image/tiff", "image/heic", "image/heif":
        let body = try await collectBody(request, limit: limits.maxBodyBytes)
        let name = request.uri.queryParameters.get("name") ?? "image"
        return ([UploadedImage(name: name, bytes: Array(buffer: body))], [:])
    case "multipart/form-data":
        guard let boundary = media?.parameters["boundary"], !boundary.isEmpty else {
            throw ServiceError.badRequest("multipart/form-data without a boundary parameter")
        }
        let body = try await collectBody(request, limit: limits.maxBodyBytes)
        let parts = try MultipartParser.parse(Array(buffer: body), boundary: boundary, maxParts: limits.maxParts,
                                              maxHeaderBytes: limits.maxPartHeaderBytes)
        var images: [UploadedImage] = []
        var fields: [String: [String]] = [:]
        for (index, part) in parts.enumerated() {
            if part.filename == nil, let name = part.name, part.contentType.map({ $0.hasPrefix("text/") }) ?? true {
                fields[name, default: []].append(String(decoding: part.body, as: UTF8.self))
                continue
            }
            images.append(UploadedImage(name: part.filename ?? part.name ?? "part\(index)", bytes: part.body))
        }
        guard !images.isEmpty else { throw ServiceError.badRequest("the multipart body has no file parts") }
        guard images.count <= limits.maxImagesPerRequest else {
            throw ServiceError.tooManyImages(count: images.count, limit: limits.maxImagesPerRequest)
        }
        return (images, fields)
    default:
        throw ServiceError.unsupportedMediaType(given: contentType, accepted: imageMediaTypes)
    }
}
