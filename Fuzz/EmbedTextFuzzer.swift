// libFuzzer target: the JSON body of `POST /v1/embed/text` (TextRequestBody: a non-empty array of
// strings). Built by scripts/build-fuzzer with Sources/Service/TextRequestBody.swift.
import Foundation
@testable import Service

/// A refusal is a 400 saying what the body must be; accepted texts are exactly what a JSON array of
/// those strings encodes to (the round trip), and never empty.
@_cdecl("LLVMFuzzerTestOneInput")
public func headtuneFuzzEmbedText(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let body = Data(bytes: data, count: size)
    let texts: [String]
    do { texts = try TextRequestBody.texts(body) } catch {
        guard case ServiceError.badRequest(let reason) = error, reason.contains("array") else { fatalError("error \(error)") }
        return 0
    }
    require(!texts.isEmpty, "accepted an empty array")
    guard let encoded = try? JSONEncoder().encode(texts), let again = try? TextRequestBody.texts(encoded) else {
        fatalError("accepted texts do not encode and read back")
    }
    require(again == texts, "texts changed in the round trip")
    return 0
}
