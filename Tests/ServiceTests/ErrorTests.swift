import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import NIOCore
import Synchronization
import Testing
@testable import Service
import TestSupport

/// Every error status the service answers, each as `{"error": {"code": ..., "message": ...}}`.
@Suite(.serialized) struct ErrorTests {
    @Test func badInputIsAnsweredWith4xxJSON() async throws {
        let limits = RequestLimits(maxBodyBytes: 2_000_000, maxImagesPerRequest: 2, timeout: .seconds(30))
        try await Fixture.withServer(try Fixture.configuration(limits: limits)) { client, _ in
            let png = try Fixture.sampleBytes("chelsea.png")

            // 413: the body is over the limit (checked on Content-Length before reading)
            let big = try await client.execute(uri: "/v1/classify", method: .post, headers: [.contentType: "image/png"],
                                               body: ByteBuffer(bytes: [UInt8](repeating: 0, count: 2_000_001)))
            #expect(big.status == .contentTooLarge)
            #expect(big.errorCode == "body_too_large")
            #expect(big.errorMessage == "request body is larger than the limit of 2000000 bytes")
            #expect(big.headers[.contentType] == "application/json; charset=utf-8")

            // 413: more images than allowed
            var form = Multipart()
            for i in 0..<3 { form.parts.append(("image", "x\(i).png", "image/png", png)) }
            let many = try await client.execute(uri: "/v1/classify", method: .post, headers: [.contentType: form.contentType], body: form.body)
            #expect(many.status == .contentTooLarge)
            #expect(many.errorCode == "too_many_images")

            // 415: not an image type
            let text = try await client.execute(uri: "/v1/classify", method: .post, headers: [.contentType: "text/plain"],
                                                body: ByteBuffer(string: "hello"))
            #expect(text.status == .unsupportedMediaType)
            #expect(text.errorCode == "unsupported_media_type")
            #expect(text.errorMessage == "content type 'text/plain' is not supported; send image/jpeg, image/png, image/webp, image/tiff, image/heic, image/heif, multipart/form-data")
            let none = try await client.execute(uri: "/v1/classify", method: .post, body: ByteBuffer(bytes: png))
            #expect(none.status == .unsupportedMediaType)

            // 422: not an image, with the decoder's message naming the upload
            let html = try await client.execute(uri: "/v1/classify?name=page.png", method: .post, headers: [.contentType: "image/png"],
                                                body: ByteBuffer(string: "<html>"))
            #expect(html.status == .unprocessableContent)
            #expect(html.errorCode == "undecodable_image")
            #expect(html.errorMessage == "page.png: not a JPEG, PNG, WebP, TIFF or HEIF image (starts with 3C 68 74 6D)")

            // 422: truncated PNG
            let truncated = try await client.execute(uri: "/v1/classify", method: .post, headers: [.contentType: "image/png"],
                                                     body: ByteBuffer(bytes: Array(png.prefix(png.count / 2))))
            #expect(truncated.status == .unprocessableContent)
            #expect(truncated.errorMessage?.hasPrefix("image: ") == true)

            // 200: one bad part of a multipart body gets an error record naming it; the good one is classified
            var mixed = Multipart()
            mixed.parts.append(("image", "notes.txt", "text/plain", Array("just notes".utf8)))
            mixed.parts.append(("image", "good.png", "image/png", png))
            let partly = try await client.execute(uri: "/v1/classify", method: .post, headers: [.contentType: mixed.contentType], body: mixed.body)
            #expect(partly.status == .ok)
            let records = try #require((try JSONSerialization.jsonObject(with: Data(buffer: partly.body)) as? [String: Any])?["results"] as? [[String: Any]])
            #expect(records.map { $0["path"] as? String } == ["notes.txt", "good.png"])
            #expect(records[0]["error"] as? String == "notes.txt: not a JPEG, PNG, WebP, TIFF or HEIF image (starts with 6A 75 73 74)")
            #expect(records[0]["predictions"] == nil)
            #expect((records[1]["predictions"] as? [[String: Any]])?.count == 5)
            #expect(records[1]["error"] == nil)
            // Every part bad: still one error record each
            var allBad = Multipart()
            allBad.parts.append(("image", "a.jpg", "image/jpeg", [0xFF, 0xD8, 0xFF]))
            let allBadResponse = try await client.execute(uri: "/v1/classify", method: .post, headers: [.contentType: allBad.contentType], body: allBad.body)
            #expect(allBadResponse.status == .ok)
            let noneRecords = (try JSONSerialization.jsonObject(with: Data(buffer: allBadResponse.body)) as? [String: Any])?["results"] as? [[String: Any]]
            #expect(noneRecords?.count == 1 && (noneRecords?[0]["error"] as? String)?.hasPrefix("a.jpg: ") == true)

            // 404: unknown head, listing the loaded ones
            let head = try await client.execute(uri: "/v1/classify?head=cars", method: .post, headers: [.contentType: "image/png"],
                                                body: ByteBuffer(bytes: png))
            #expect(head.status == .notFound)
            #expect(head.errorCode == "unknown_head")
            #expect(head.errorMessage == "no head named 'cars'; loaded: imagenet, pets")

            // 404: unknown route, as JSON too
            let route = try await client.execute(uri: "/v3/nothing", method: .get)
            #expect(route.status == .notFound)
            #expect(route.errorCode == "not_found")

            // 400: bad query parameter and malformed multipart
            let topK = try await client.execute(uri: "/v1/classify?top_k=zero", method: .post, headers: [.contentType: "image/png"],
                                                body: ByteBuffer(bytes: png))
            #expect(topK.status == .badRequest)
            #expect(topK.errorMessage == "query parameter top_k=zero must be an integer in 1...100000")
            let noBoundary = try await client.execute(uri: "/v1/classify", method: .post, headers: [.contentType: "multipart/form-data"],
                                                      body: ByteBuffer(string: "x"))
            #expect(noBoundary.status == .badRequest)
            let unterminated = try await client.execute(uri: "/v1/classify", method: .post,
                                                        headers: [.contentType: "multipart/form-data; boundary=b"],
                                                        body: ByteBuffer(string: "--b\r\nContent-Disposition: form-data; name=\"f\"; filename=\"a.png\"\r\n\r\nabc"))
            #expect(unterminated.status == .badRequest)
            #expect(unterminated.errorCode == "bad_request")
        }
    }

    @Test func multipartPartCountAndPartHeadersAreLimited() async throws {
        let limits = RequestLimits(maxParts: 3, maxPartHeaderBytes: 256)
        try await Fixture.withServer(try Fixture.configuration(heads: false, limits: limits)) { client, _ in
            var many = Multipart()
            for index in 0..<4 { many.parts.append(("image", "\(index).png", "image/png", [0])) }
            let tooMany = try await client.execute(uri: "/v1/classify", method: .post, headers: [.contentType: many.contentType],
                                                   body: many.body)
            #expect(tooMany.status == .contentTooLarge)
            #expect(tooMany.errorCode == "too_many_parts")
            #expect(tooMany.errorMessage == "the multipart body has more than 3 parts")

            var long = Multipart()
            long.parts.append(("image", String(repeating: "n", count: 400) + ".png", "image/png", [0]))
            let longHeaders = try await client.execute(uri: "/v1/classify", method: .post, headers: [.contentType: long.contentType],
                                                       body: long.body)
            #expect(longHeaders.status == .badRequest)
            #expect(longHeaders.errorCode == "part_headers_too_large")
            #expect(longHeaders.errorMessage == "multipart part 1 has headers larger than the limit of 256 bytes")
        }
    }

    @Test func aTakenPortIsReportedBeforeAnyLoading() throws {
        // Hold a listening socket on a port the kernel picks.
        let held = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        #expect(held >= 0)
        var holding = true
        defer { if holding { close(held) } }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let size = socklen_t(MemoryLayout<sockaddr_in>.size)
        try #require(withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(held, $0, size) } } == 0)
        try #require(listen(held, 1) == 0)
        var bound = sockaddr_in(), length = size
        _ = withUnsafeMutablePointer(to: &bound) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(held, $0, &length) } }
        let port = Int(UInt16(bigEndian: bound.sin_port))

        #expect(throws: ServiceError.cannotListen(host: "127.0.0.1", port: port, reason: "Address already in use", portInUse: true)) {
            try InferenceServer.checkListenable(host: "127.0.0.1", port: port)
        }
        #expect(ServiceError.cannotListen(host: "127.0.0.1", port: port, reason: "", portInUse: true).localizedDescription
            == "port \(port) is in use on 127.0.0.1; pick another with --port")
        close(held)
        holding = false
        try InferenceServer.checkListenable(host: "127.0.0.1", port: port)
        try InferenceServer.checkListenable(host: "127.0.0.1", port: 0)
        #expect(throws: ServiceError.self) { try InferenceServer.checkListenable(host: "no-such-host.invalid", port: 8080) }
    }

    @Test func pixelLimitIs422WithTheDecodersMessage() async throws {
        try await Fixture.withServer(try Fixture.configuration(heads: false, maxPixels: 10_000)) { client, _ in
            let response = try await client.execute(uri: "/v1/classify?name=rocket.jpg", method: .post, headers: [.contentType: "image/jpeg"],
                                                    body: ByteBuffer(bytes: try Fixture.sampleBytes("rocket.jpg")))
            #expect(response.status == .unprocessableContent)
            #expect(response.errorCode == "undecodable_image")
            #expect(response.errorMessage?.hasPrefix("rocket.jpg: ") == true)
            #expect(response.errorMessage?.contains("10000") == true)
        }
    }

    @Test func notReadyUntilLoaded() async throws {
        // A host that is never run stays in its loading state.
        let metrics = ServiceMetrics()
        let configuration = try Fixture.configuration()
        let host = ModelHost(specification: configuration.models, batching: configuration.batching, metrics: metrics, logger: Fixture.logger)
        let app = Application(router: buildRouter(host: host, metrics: metrics, limits: configuration.limits), logger: Fixture.logger)
        try await app.test(.router) { client in
            #expect(try await client.execute(uri: "/healthz", method: .get).status == .ok)
            let ready = try await client.execute(uri: "/readyz", method: .get)
            #expect(ready.status == .serviceUnavailable)
            #expect(ready.errorCode == "not_ready")
            #expect(ready.headers[.retryAfter] == "1")
            let classify = try await client.execute(uri: "/v1/classify", method: .post, headers: [.contentType: "image/png"],
                                                    body: ByteBuffer(bytes: try Fixture.sampleBytes("coffee.png")))
            #expect(classify.status == .serviceUnavailable)
            #expect(classify.errorCode == "not_ready")
        }
    }

    @Test func spentDecodeMemoryIs503WithRetryAfterNotMoreMemory() async throws {
        var configuration = try Fixture.configuration(heads: false, limits: RequestLimits(timeout: .milliseconds(300)))
        configuration.models.decodeMemory = 8 << 20
        try await Fixture.withServer(configuration) { client, host in
            let budget = try host.ready().decodeBudget
            #expect(budget.capacity == 8 << 20)
            let png = try Fixture.sampleBytes("coffee.png")
            // Other decodes hold the whole budget past this request's 300 ms limit.
            let held = try await budget.reserve(budget.capacity, timeout: nil)
            let refused = try await client.execute(uri: "/v1/classify", method: .post, headers: [.contentType: "image/png"],
                                                   body: ByteBuffer(bytes: png))
            #expect(refused.status == .serviceUnavailable)
            #expect(refused.errorCode == "decode_memory_busy")
            #expect(refused.headers[.retryAfter] == "1")
            #expect(budget.waiting == 0)
            // A waiting request goes through once the memory is given back within its limit.
            async let waiting = client.execute(uri: "/v1/classify", method: .post, headers: [.contentType: "image/png"],
                                               body: ByteBuffer(bytes: png))
            try await waitUntil { budget.waiting == 1 }
            held.release()
            #expect(try await waiting.status == .ok)
            #expect(budget.inUse == 0 && budget.peakInUse <= budget.capacity)
        }
    }

    @Test func largeImagesDecodeOneAtATimeAndWaitingPastTheLimitIs503() async throws {
        let configuration = try Fixture.configuration(heads: false, limits: RequestLimits(timeout: .milliseconds(300)))
        try await Fixture.withServer(configuration) { client, host in
            let lane = try host.ready().largeDecodeLane
            // 20 megapixels of zeros (a bomb under the pixel limit), over the large-decode threshold.
            let bomb = ZeroPNG.make(width: 5_000, height: 4_000, colorType: .rgb, interlaced: false)
            let held = try await lane.reserve(1, timeout: nil)
            let refused = try await client.execute(uri: "/v1/classify", method: .post, headers: [.contentType: "image/png"],
                                                   body: ByteBuffer(bytes: bomb))
            #expect(refused.status == .serviceUnavailable)
            #expect(refused.errorCode == "large_decodes_busy")
            #expect(refused.headers[.retryAfter] == "1")
            // Small images do not take the lane: they are served while it is held.
            let small = try await client.execute(uri: "/v1/classify", method: .post, headers: [.contentType: "image/png"],
                                                 body: ByteBuffer(bytes: try Fixture.sampleBytes("coffee.png")))
            #expect(small.status == .ok)
            held.release()
            let served = try await client.execute(uri: "/v1/classify?top_k=1", method: .post, headers: [.contentType: "image/png"],
                                                  body: ByteBuffer(bytes: bomb))
            #expect(served.status == .ok)
            #expect(lane.inUse == 0)
        }
    }

    @Test func fullQueueIs503WithRetryAfterAndSlowRequestsTimeOut() async throws {
        let batching = BatchingSettings(maxBatch: 1, maxDelay: .zero, queueCapacity: 1, threads: 2)
        let limits = RequestLimits(timeout: .milliseconds(300))
        try await Fixture.withServer(try Fixture.configuration(heads: false, batching: batching, limits: limits)) { client, host in
            let worker = try host.ready().worker
            let png = try Fixture.sampleBytes("coffee.png")
            // Occupy the inference thread until released, queue one image behind it (the queue is
            // then full), and send one more.
            let release = Gate()
            async let busy: Void = worker.perform(timeout: .seconds(60)) {
                while !release.isOpen { Thread.sleep(forTimeInterval: 0.005) }
            }
            async let queued = client.execute(uri: "/v1/classify", method: .post, headers: [.contentType: "image/png"],
                                              body: ByteBuffer(bytes: png))
            try await waitUntil { worker.queuedImageCount == 1 }
            let refused = try await client.execute(uri: "/v1/classify", method: .post, headers: [.contentType: "image/png"],
                                                   body: ByteBuffer(bytes: png))
            #expect(refused.status == .serviceUnavailable)
            #expect(refused.errorCode == "queue_full")
            #expect(refused.headers[.retryAfter] == "1")
            // The queued request waits longer than its 300 ms limit behind the busy thread.
            try await Task.sleep(for: .milliseconds(400))
            release.open()
            let late = try await queued
            #expect(late.status == .serviceUnavailable)
            #expect(late.errorCode == "timeout")
            try await busy
            // Once the thread is free, requests go through again.
            let after = try await client.execute(uri: "/v1/classify", method: .post, headers: [.contentType: "image/png"],
                                                 body: ByteBuffer(bytes: png))
            #expect(after.status == .ok)
            let metrics = try await client.execute(uri: "/metrics", method: .get).text
            #expect(BatchingTests.value(of: "headtune_queue_rejected_total", in: metrics) == 1)
        }
    }
}

/// A flag one task opens and another polls.
final class Gate: Sendable {
    private let state = Mutex(false)
    var isOpen: Bool { state.withLock { $0 } }
    func open() { state.withLock { $0 = true } }
}

@Suite struct MultipartParserTests {
    @Test func partsWithNamesFilenamesAndFields() throws {
        var form = Multipart()
        form.parts.append(("labels", nil, nil, Array("cat,dog".utf8)))
        form.parts.append(("image", "a b.png", "image/png", [1, 2, 3, 13, 10]))
        form.parts.append(("image", nil, "image/jpeg", [4]))
        let parts = try MultipartParser.parse(Array(buffer: form.body), boundary: form.boundary)
        #expect(parts.count == 3)
        #expect(parts[0].name == "labels" && parts[0].filename == nil && parts[0].body == Array("cat,dog".utf8))
        #expect(parts[1].filename == "a b.png" && parts[1].contentType == "image/png" && parts[1].body == [1, 2, 3, 13, 10])
        #expect(parts[2].name == "image" && parts[2].filename == nil && parts[2].body == [4])
    }

    @Test func malformedBodiesAreRefused() {
        #expect(throws: ServiceError.badRequest("multipart body does not contain its boundary 'b'")) {
            try MultipartParser.parse(Array("nothing".utf8), boundary: "b")
        }
        #expect(throws: ServiceError.badRequest("multipart part 1 has no end of headers")) {
            try MultipartParser.parse(Array("--b\r\nContent-Disposition: form-data".utf8), boundary: "b")
        }
    }

    @Test func thePartCountIsBounded() throws {
        var form = Multipart()
        for index in 0..<4 { form.parts.append(("image", "\(index).png", "image/png", [UInt8(index)])) }
        let body = Array(buffer: form.body)
        #expect(try MultipartParser.parse(body, boundary: form.boundary, maxParts: 4).count == 4)
        #expect(throws: ServiceError.tooManyParts(limit: 3)) {
            try MultipartParser.parse(body, boundary: form.boundary, maxParts: 3)
        }
    }

    @Test func aPartsHeaderBlockIsBounded() throws {
        var form = Multipart()
        form.parts.append(("image", "a.png", "image/png", [1]))
        form.parts.append(("image", String(repeating: "n", count: 300) + ".png", "image/png", [2]))
        let body = Array(buffer: form.body)
        // The second part's headers (about 370 bytes) are over a 200-byte limit; the first's are not.
        #expect(throws: ServiceError.partHeadersTooLarge(part: 2, limit: 200)) {
            try MultipartParser.parse(body, boundary: form.boundary, maxHeaderBytes: 200)
        }
        #expect(try MultipartParser.parse(body, boundary: form.boundary, maxHeaderBytes: 400).count == 2)
        // Headers that never end, in a body shorter than the limit, are malformed framing, not too large.
        #expect(throws: ServiceError.badRequest("multipart part 1 has no end of headers")) {
            try MultipartParser.parse(Array("--b\r\nContent-Disposition: form-data".utf8), boundary: "b", maxHeaderBytes: 1000)
        }
        // Headers that never end, past the limit: refused as too large, whatever follows.
        let endless = Array("--b\r\nX-Padding: ".utf8) + [UInt8](repeating: UInt8(ascii: "x"), count: 5000)
        #expect(throws: ServiceError.partHeadersTooLarge(part: 1, limit: 1000)) {
            try MultipartParser.parse(endless, boundary: "b", maxHeaderBytes: 1000)
        }
    }

    @Test func mediaTypeParameters() {
        let media = MediaTypeHeader(#"Multipart/Form-Data; boundary="a;b"; charset=utf-8"#)
        #expect(media?.type == "multipart/form-data")
        #expect(media?.parameters["boundary"] == "a;b")
        #expect(media?.parameters["charset"] == "utf-8")
    }
}
