import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Imaging
import NIOCore
import Testing
import TestSupport
@testable import Service

/// `/v1/classify` takes WebP, TIFF and HEIC bodies under their own media types and answers as for
/// the same pixels sent as PNG.
@Suite struct ImageFormatUploadTests {
    static let uploads: [(file: String, mediaType: String)] = [
        ("webp_lossless.webp", "image/webp"), ("tiff_rgb8_lzw.tif", "image/tiff"), ("heic_rgb.heic", "image/heic"),
        ("heic_alpha.heic", "image/heif"),
    ]

    @Test func webpTiffAndHeicBodiesAreClassifiedLikeTheirPixelsAsPNG() async throws {
        let fixtures = Golden.repositoryRoot.appendingPathComponent("Tests/ImagingTests/Resources/fixtures")
        try await Fixture.withServer(try Fixture.configuration(heads: false)) { client, _ in
            for (file, mediaType) in Self.uploads {
                let bytes = [UInt8](try Data(contentsOf: fixtures.appendingPathComponent(file)))
                let png = PNGEncoder.encode(try ImageDecoder.decode(bytes: bytes, name: file))
                let response = try await client.execute(uri: "/v1/classify?top_k=3&name=\(file)", method: .post,
                                                        headers: [.contentType: mediaType], body: ByteBuffer(bytes: bytes))
                #expect(response.status == .ok, "\(file): \(response.text)")
                let asPNG = try await client.execute(uri: "/v1/classify?top_k=3&name=\(file)", method: .post,
                                                     headers: [.contentType: "image/png"], body: ByteBuffer(bytes: png))
                let predictions = response.results.first?["predictions"] as? [[String: Any]] ?? []
                #expect(predictions.count == 3, "\(file)")
                #expect(predictions.map { $0["index"] as? Int } ==
                        (asPNG.results.first?["predictions"] as? [[String: Any]] ?? []).map { $0["index"] as? Int }, "\(file)")
            }
        }
    }
}
