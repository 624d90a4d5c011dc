import Foundation
import Hummingbird

/// `GET /openapi.json`: the OpenAPI 3.1 description of both APIs, `Resources/openapi.json` as kept in
/// the repository (a test checks that its paths and the router's routes are the same set).
enum OpenAPIDocument {
    /// The document's bytes, read once; nil if the resource bundle is missing beside the binary.
    static let bytes: [UInt8]? = Bundle.module.url(forResource: "openapi", withExtension: "json")
        .flatMap { try? Data(contentsOf: $0) }.map { [UInt8]($0) }

    static func handle(_ request: Request, context: some RequestContext) async throws -> Response {
        guard let bytes else { throw ServiceError.internal("openapi.json is missing from the Service resource bundle") }
        return Response(status: .ok, headers: [.contentType: "application/json; charset=utf-8"],
                        body: .init(byteBuffer: ByteBuffer(bytes: bytes)))
    }
}
