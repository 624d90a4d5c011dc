import Foundation
import Hummingbird
import Imaging

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
    /// Bytes all request bodies in flight may hold together (`RequestBodies`); a request whose body
    /// does not fit within its timeout is answered 503 with Retry-After.
    public var bodyMemory: Int

    /// 256 MiB: a 1 GiB pod holds the ~300 MB of weights and runtime, the decodes' 256 MiB
    /// (`MemoryBudget.defaultDecodeCapacity`), the network's activations and this, with ~150 MB left
    /// for connection buffers and responses. It holds 12 bodies of the largest size (20 MiB) at once,
    /// with room beside them for a thousand 100 kB photos.
    public static let defaultBodyMemory = 256 << 20

    public init(maxBodyBytes: Int = 20 * 1024 * 1024, maxImagesPerRequest: Int = 32, timeout: Duration = .seconds(30),
                maxParts: Int = 320, maxPartHeaderBytes: Int = 8 * 1024, bodyMemory: Int = RequestLimits.defaultBodyMemory) {
        self.maxBodyBytes = maxBodyBytes
        self.maxImagesPerRequest = maxImagesPerRequest
        self.timeout = timeout
        self.maxParts = maxParts
        self.maxPartHeaderBytes = maxPartHeaderBytes
        self.bodyMemory = bodyMemory
    }
}

/// The media types an image route accepts.
let imageMediaTypes = ["image/jpeg", "image/png", "image/webp", "image/tiff", "image/heic", "image/heif", "multipart/form-data"]

/// The images of a request: the raw body for `image/jpeg`, `image/png`, `image/webp`, `image/tiff`, `image/heic` and `image/heif` (named by `?name=`, default
/// `image`), or every file part of `multipart/form-data` (named by its filename, else its field name).
/// Non-file multipart fields are returned in `fields` (e.g. `labels` for zero-shot).
/// The images hold body memory: give `held` back (`release()`) once they are no longer needed. On a
/// throw nothing is held.
func readImages(_ request: Request, bodies: RequestBodies) async throws
    -> (images: [UploadedImage], fields: [String: [String]], held: MemoryBudget.Reservation) {
    let contentType = request.headers[.contentType]
    let media = MediaTypeHeader(contentType)
    let limits = bodies.limits
    switch media?.type {
    case "image/jpeg", "image/png", "image/webp", "image/tiff", "image/heic", "image/heif":
        let body = try await bodies.read(request)
        let name = request.uri.queryParameters.get("name") ?? "image"
        return ([UploadedImage(name: name, bytes: body.bytes)], [:], body.reservation)
    case "multipart/form-data":
        guard let boundary = media?.parameters["boundary"], !boundary.isEmpty else {
            throw ServiceError.badRequest("multipart/form-data without a boundary parameter")
        }
        // Twice the body while parsing: the parts are copies of its bytes.
        var body = try await bodies.read(request, copies: 2)
        do {
            let parts = try MultipartParser.parse(body.bytes, boundary: boundary, maxParts: limits.maxParts,
                                                  maxHeaderBytes: limits.maxPartHeaderBytes)
            // The parts are what is held from here on: the body's bytes go, and their share.
            body.bytes = []
            body.reservation.shrink(to: body.reservation.bytes / 2)
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
            return (images, fields, body.reservation)
        } catch {
            body.release()
            throw error
        }
    default:
        throw ServiceError.unsupportedMediaType(given: contentType, accepted: imageMediaTypes)
    }
}
