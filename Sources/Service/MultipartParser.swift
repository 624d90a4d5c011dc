import Foundation

// The byte-level request parsers of the image routes, apart from Hummingbird so that a fuzzer
// (Fuzz/MultipartFuzzer.swift) reaches them without a server. Moved from ImageUpload.swift (MediaTypeHeader now reads Unicode scalars).

/// `type/subtype; key=value; ...` with the type lowercased and quoted values unquoted.
struct MediaTypeHeader {
    var type: String
    var parameters: [String: String]

    init?(_ header: String?) {
        guard let header else { return nil }
        // Split at semicolons outside quoted strings (a boundary or filename may contain one). Unicode
        // scalars, not Characters: a quote, "=" or ";" followed by a combining mark is one Character
        // and was not seen (found by Fuzz/MultipartFuzzer.swift).
        var pieces: [String.UnicodeScalarView] = [String.UnicodeScalarView()]
        var quoted = false
        for scalar in header.unicodeScalars {
            if scalar == "\"" { quoted.toggle() }
            if scalar == ";" && !quoted { pieces.append(String.UnicodeScalarView()) } else { pieces[pieces.count - 1].append(scalar) }
        }
        let trimmed = pieces.map { String($0).trimmingCharacters(in: .whitespaces).unicodeScalars }
        guard let first = trimmed.first, !first.isEmpty else { return nil }
        type = String(first).lowercased()
        parameters = [:]
        for piece in trimmed.dropFirst() {
            guard let equals = piece.firstIndex(of: "=") else { continue }
            var value = String(piece[piece.index(after: equals)...]).trimmingCharacters(in: .whitespaces).unicodeScalars
            if value.count >= 2, value.first == "\"", value.last == "\"" { value = String.UnicodeScalarView(value.dropFirst().dropLast()) }
            parameters[String(piece[..<equals]).trimmingCharacters(in: .whitespaces).lowercased()] = String(value)
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
