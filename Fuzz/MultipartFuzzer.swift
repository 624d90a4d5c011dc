// libFuzzer target: the multipart/form-data body of the image routes (Content-Type parameters, then
// MultipartParser). The first line is the Content-Type boundary parameter, the rest the body. Built by
// scripts/build-fuzzer with Sources/Service/MultipartParser.swift.
import Foundation
@testable import Service

/// A refusal is a 400 saying what is wrong; accepted parts lie inside the body in order, each after
/// a delimiter, and a boundary given quoted in a Content-Type header reads back unquoted.
@_cdecl("LLVMFuzzerTestOneInput")
public func headtuneFuzzMultipart(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let input = Array(UnsafeBufferPointer(start: data, count: size))
    let newline = input.firstIndex(of: UInt8(ascii: "\n")) ?? input.count
    let boundary = String(decoding: input[..<newline], as: UTF8.self)
    let body = Array(input[min(newline + 1, input.count)...])
    if let media = MediaTypeHeader("multipart/form-data; boundary=\(boundary)") {
        require(media.type == "multipart/form-data", "type \(media.type)")
    }
    if !boundary.contains("\"") && !boundary.contains(";") {
        let quoted = MediaTypeHeader("multipart/form-data; boundary=\"\(boundary)\"")
        require(quoted?.parameters["boundary"] == boundary,
                "quoted boundary \(boundary.debugDescription) read as \(String(describing: quoted?.parameters["boundary"]))")
    }
    guard !boundary.isEmpty else { return 0 }  // readImages refuses an empty boundary before parsing
    let parts: [MultipartParser.Part]
    do { parts = try MultipartParser.parse(body, boundary: boundary) } catch {
        guard case ServiceError.badRequest(let reason) = error, reason.hasPrefix("multipart ") else { fatalError("error \(error)") }
        return 0
    }
    // The service's limits, small enough for inputs to reach them: a body that parses refuses them
    // exactly when it has more parts, or a part's header block is longer, than they allow.
    let maxParts = 1 + size % 4, maxHeaderBytes = 16 + size % 64
    do {
        let limited = try MultipartParser.parse(body, boundary: boundary, maxParts: maxParts, maxHeaderBytes: maxHeaderBytes)
        require(limited.count == parts.count, "limits changed the parts: \(limited.count) of \(parts.count)")
        require(parts.count <= maxParts, "\(parts.count) parts passed a limit of \(maxParts)")
    } catch ServiceError.tooManyParts(let limit) {
        require(limit == maxParts && parts.count > maxParts, "too many parts for \(parts.count) under a limit of \(limit)")
    } catch ServiceError.partHeadersTooLarge(let part, let limit) {
        require(limit == maxHeaderBytes && part >= 1 && part <= parts.count, "part \(part) of \(parts.count) refused for its headers")
    } catch {
        fatalError("a body that parses was refused under limits: \(error)")
    }
    require(parts.reduce(0) { $0 + $1.body.count } <= body.count, "parts hold more bytes than the body")
    let delimiter = Array("--\(boundary)".utf8)
    for part in parts {
        require(MultipartParser.find(delimiter, in: part.body, from: 0) == nil
                || MultipartParser.find(Array("\r\n".utf8) + delimiter, in: part.body, from: 0) == nil, "a part holds a delimiter line")
    }
    return 0
}
