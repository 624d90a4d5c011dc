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
let imageMediaTypes = ["image/jpeg", "image/png", "multipart/form-data"]

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

/// The images of a request: the raw body for `image/jpeg` and `image/png` (named by `?name=`, default
/// `image`), or every file part of `multipart/form-data` (named by its filename, else its field name).
/// Non-file multipart fields are returned in `fields` (e.g. `labels` for zero-shot).
func readImages(_ request: Request, limits: RequestLimits) async throws -> (images: [UploadedImage], fields: [String: [String]]) {
    let contentType = request.headers[.contentType]
    let media = MediaTypeHeader(contentType)
    switch media?.type {
    case "image/jpeg", "image/png":
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

/// `type/subtype; key=value; ...` with the type lowercased and quoted values unquoted.
struct MediaTypeHeader {
    var type: String
    var parameters: [String: String]

    init?(_ header: String?) {
        guard let header else { return nil }
        // Split at semicolons outside quoted strings (a boundary or filename may contain one).
        var pieces: [String] = [""]
        var quoted = false
        for character in header {
            if character == "\"" { quoted.toggle() }
            if character == ";" && !quoted { pieces.append("") } else { pieces[pieces.count - 1].append(character) }
        }
        pieces = pieces.map { $0.trimmingCharacters(in: .whitespaces) }
        guard let first = pieces.first, !first.isEmpty else { return nil }
        type = first.lowercased()
        parameters = [:]
        for piece in pieces.dropFirst() {
            guard let equals = piece.firstIndex(of: "=") else { continue }
            var value = String(piece[piece.index(after: equals)...]).trimmingCharacters(in: .whitespaces)
            if value.count >= 2, value.hasPrefix("\""), value.hasSuffix("\"") { value = String(value.dropFirst().dropLast()) }
            parameters[piece[..<equals].trimmingCharacters(in: .whitespaces).lowercased()] = value
        }
    }
}

/// A minimal RFC 7578 multipart/form-data reader: parts with their Content-Disposition name and
/// filename and their Content-Type. Malformed framing is a 400 naming what is wrong. The part count
/// and each part's header block are bounded, so a body of many tiny parts, or one whose headers never
/// end, is refused without scanning or copying further.
enum MultipartParser {
    struct Part {
        var name: String?
        var filename: String?
        var contentType: String?
        var body: [UInt8]
    }

    static func parse(_ body: [UInt8], boundary: String, maxParts: Int = .max, maxHeaderBytes: Int = .max) throws -> [Part] {
        let delimiter = Array("--\(boundary)".utf8)
        guard var position = find(delimiter, in: body, from: 0) else {
            throw ServiceError.badRequest("multipart body does not contain its boundary '\(boundary)'")
        }
        var parts: [Part] = []
        let separator = Array("\r\n".utf8) + delimiter
        while true {
            position += delimiter.count
            // "--" after a delimiter closes the body.
            if body.count >= position + 2, body[position] == UInt8(ascii: "-"), body[position + 1] == UInt8(ascii: "-") {
                return parts
            }
            guard parts.count < maxParts else { throw ServiceError.tooManyParts(limit: maxParts) }
            // The headers' end is looked for only as far as the limit allows (+ its 4 bytes).
            let searchEnd = maxHeaderBytes >= body.count - position ? body.count : min(body.count, position + maxHeaderBytes + 4)
            guard let headersEnd = find(Array("\r\n\r\n".utf8), in: body, from: position, before: searchEnd) else {
                if searchEnd < body.count { throw ServiceError.partHeadersTooLarge(part: parts.count + 1, limit: maxHeaderBytes) }
                throw ServiceError.badRequest("multipart part \(parts.count + 1) has no end of headers")
            }
            guard let next = find(separator, in: body, from: headersEnd + 4) else {
                throw ServiceError.badRequest("multipart body is not terminated by '--\(boundary)--'")
            }
            var part = Part(body: Array(body[(headersEnd + 4)..<next]))
            let headerText = String(decoding: body[position..<headersEnd], as: UTF8.self)
            for line in headerText.split(separator: "\r\n") {
                guard let colon = line.firstIndex(of: ":") else { continue }
                let key = line[..<colon].trimmingCharacters(in: .whitespaces).lowercased()
                let value = String(line[line.index(after: colon)...]).trimmingCharacters(in: .whitespaces)
                if key == "content-type" { part.contentType = value.lowercased() }
                if key == "content-disposition", let disposition = MediaTypeHeader(value) {
                    part.name = disposition.parameters["name"]
                    part.filename = disposition.parameters["filename"]
                }
            }
            parts.append(part)
            position = next + 2
        }
    }

    /// First index of `needle` in `haystack` at or after `start`, wholly before `end` (default: the end).
    static func find(_ needle: [UInt8], in haystack: [UInt8], from start: Int, before end: Int? = nil) -> Int? {
        let end = min(end ?? haystack.count, haystack.count)
        guard !needle.isEmpty, end >= needle.count, start <= end - needle.count else { return nil }
        let first = needle[0]
        var i = start
        let last = end - needle.count
        return haystack.withUnsafeBufferPointer { h in
            needle.withUnsafeBufferPointer { n in
                while i <= last {
                    if h[i] == first && memcmp(h.baseAddress! + i, n.baseAddress!, n.count) == 0 { return i }
                    i += 1
                }
                return nil
            }
        }
    }
}
