import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Imaging
import NIOCore
import Testing
import TestSupport
@testable import Service

/// The request bodies' shared memory budget (`--body-memory`): a body is reserved before it is read,
/// waits while the budget is spent, is refused (503, unread) when its share does not free up in time,
/// is 413 when it could never fit, and gives its share back on every way out of a handler.
@Suite(.serialized) struct BodyBudgetTests {
    typealias RawConnection = ConnectionLimitTests.RawConnection

    static func head(_ route: String = "/v1/classify", contentType: String = "image/png", length: Int) -> String {
        "POST \(route) HTTP/1.1\r\nHost: test\r\nContent-Type: \(contentType)\r\nContent-Length: \(length)\r\nConnection: close\r\n\r\n"
    }

    @Test func aSecondUploadWaitsForTheFirstBodysMemoryAndIsServedOnceItIsDone() async throws {
        let png = try Fixture.sampleBytes("coffee.png")
        // Room for one body and a half: the second cannot be read beside the first.
        let limits = RequestLimits(timeout: .seconds(20), bodyMemory: png.count * 3 / 2)
        let budget = RequestBodies.budget(for: limits)
        try await ConnectionLimitTests.withLiveServer({ $0.limits = limits }, bodyBudget: budget) { port, _ in
            let first = try RawConnection(port: port, receiveTimeout: 20)
            first.send(Self.head(length: png.count))
            first.send(Array(png[..<(png.count / 2)]))
            try await waitUntil { budget.inUse == png.count }
            let second = try RawConnection(port: port, receiveTimeout: 20)
            second.send(Self.head(length: png.count))
            second.send(png)
            try await waitUntil { budget.waiting == 1 }
            try await Task.sleep(for: .milliseconds(200))
            #expect(!second.hasIncoming, "answered while the first body held the budget")
            #expect(budget.inUse == png.count)
            first.send(Array(png[(png.count / 2)...]))
            let firstAnswer = await first.receiveUntilClosed().text
            let secondAnswer = await second.receiveUntilClosed().text
            #expect(ConnectionLimitTests.statusAndCode(firstAnswer).status == 200, "\(firstAnswer)")
            #expect(ConnectionLimitTests.statusAndCode(secondAnswer).status == 200, "\(secondAnswer)")
            try await waitUntil { budget.inUse == 0 }
            #expect(budget.waits == 1 && budget.timeouts == 0)
            #expect(budget.peakInUse == png.count)
        }
    }

    @Test func aBodyWhoseShareDoesNotFreeUpInTimeIs503WithRetryAfterUnread() async throws {
        let limits = RequestLimits(timeout: .seconds(2), bodyMemory: 4 << 20)
        let budget = RequestBodies.budget(for: limits)
        try await ConnectionLimitTests.withLiveServer({ $0.limits = limits }, bodyBudget: budget) { port, _ in
            let held = try await budget.reserve(budget.capacity - 100_000, timeout: nil)
            // Only the head is sent: the answer must not need the body.
            let refused = try RawConnection(port: port, receiveTimeout: 10)
            let started = ContinuousClock.now
            refused.send(Self.head(length: 200_000))
            let answer = await refused.receiveUntilClosed().text
            let waited = refused.lastArrival - started
            #expect(ConnectionLimitTests.statusAndCode(answer) == (503, "body_memory_busy"), "\(answer)")
            #expect(answer.contains("Retry-After: 1"))
            #expect(answer.contains("this request's 200000 bytes did not free up within 2 s"), "\(answer)")
            #expect(waited >= .seconds(2) && waited < .seconds(8), "\(waited)")
            #expect(budget.waiting == 0 && budget.inUse == budget.capacity - 100_000)
            // A small body fits beside what is held, and goes ahead of a large one waiting for room: it
            // is answered while the large one still waits.
            let large = try RawConnection(port: port, receiveTimeout: 10)
            large.send(Self.head(length: 300_000))
            try await waitUntil { budget.waiting == 1 }
            let small = try RawConnection(port: port, receiveTimeout: 10)
            small.send(Self.head(length: 10))
            small.send([UInt8](repeating: 7, count: 10))
            let smallAnswer = await small.receiveUntilClosed().text
            #expect(budget.waiting == 1, "the small body waited behind the large one")
            #expect(ConnectionLimitTests.statusAndCode(smallAnswer).status == 422, "\(smallAnswer)")  // read, then not an image
            #expect(ConnectionLimitTests.statusAndCode(await large.receiveUntilClosed().text) == (503, "body_memory_busy"))
            held.release()
            let metrics = try RawConnection(port: port, receiveTimeout: 10)
            metrics.send("GET /metrics HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n")
            let exposition = await metrics.receiveUntilClosed().text
            #expect(exposition.contains("headtune_memory_budget_timeouts_total{budget=\"body\"} 2"), "\(exposition)")
            #expect(exposition.contains("headtune_memory_budget_waits_total{budget=\"body\"} 2"))
            #expect(exposition.contains("headtune_memory_budget_in_use_bytes{budget=\"body\"} 0"))
            #expect(exposition.contains("headtune_memory_budget_capacity_bytes{budget=\"body\"} 4194304"))
            #expect(exposition.contains("headtune_memory_budget_capacity_bytes{budget=\"decode\"} 268435456"))
        }
    }

    @Test func aChunkedBodyReservesTheLargestBodyWhileItArrivesAndKeepsOnlyItsLength() async throws {
        let png = try Fixture.sampleBytes("chelsea.png")
        let limits = RequestLimits(maxBodyBytes: 1 << 20, timeout: .seconds(20), bodyMemory: 4 << 20)
        let budget = RequestBodies.budget(for: limits)
        try await ConnectionLimitTests.withLiveServer({ $0.limits = limits }, bodyBudget: budget) { port, _ in
            let connection = try RawConnection(port: port, receiveTimeout: 20)
            connection.send("POST /v1/classify HTTP/1.1\r\nHost: test\r\nContent-Type: image/png\r\nTransfer-Encoding: chunked\r\n"
                            + "Connection: close\r\n\r\n")
            let half = png.count / 2
            connection.send(Array(String(half, radix: 16).utf8) + Array("\r\n".utf8) + png[..<half] + Array("\r\n".utf8))
            try await waitUntil { budget.inUse == 1 << 20 }
            connection.send(Array(String(png.count - half, radix: 16).utf8) + Array("\r\n".utf8) + png[half...]
                            + Array("\r\n0\r\n\r\n".utf8))
            let answer = await connection.receiveUntilClosed().text
            #expect(ConnectionLimitTests.statusAndCode(answer).status == 200, "\(answer)")
            try await waitUntil { budget.inUse == 0 }
            #expect(budget.peakInUse == 1 << 20)
        }
    }

    @Test func failedRequestsGiveTheirBodyMemoryBack() async throws {
        let limits = RequestLimits(maxImagesPerRequest: 2, timeout: .seconds(20), bodyMemory: 8 << 20)
        let budget = RequestBodies.budget(for: limits)
        try await Fixture.withServer(try Fixture.configuration(text: true, limits: limits), bodyBudget: budget) { client, _ in
            let png = try Fixture.sampleBytes("chelsea.png")
            var unterminated = Multipart()
            unterminated.parts.append(("image", "a.png", "image/png", png))
            var tooMany = Multipart()
            for i in 0..<3 { tooMany.parts.append(("image", "x\(i).png", "image/png", png)) }
            var fieldsOnly = Multipart()
            fieldsOnly.parts.append(("labels", nil, nil, Array("cat,dog".utf8)))
            let multipart: HTTPFields = [.contentType: tooMany.contentType]
            let failing: [(route: String, headers: HTTPFields, body: ByteBuffer, status: HTTPResponse.Status)] = [
                ("/v1/classify", multipart, ByteBuffer(bytes: Array(unterminated.body.readableBytesView.dropLast(30))), .badRequest),
                ("/v1/classify", multipart, tooMany.body, .contentTooLarge),
                ("/v1/embed/image", multipart, fieldsOnly.body, .badRequest),
                ("/v1/classify", [.contentType: "image/png"], ByteBuffer(bytes: Array(png.prefix(png.count / 2))), .unprocessableContent),
                ("/v1/embed/image", [.contentType: "image/png"], ByteBuffer(string: "<html>"), .unprocessableContent),
                ("/v1/classify?head=nope", [.contentType: "image/png"], ByteBuffer(bytes: png), .notFound),
                ("/v1/embed/text", [.contentType: "application/json"], ByteBuffer(string: "{\"not\": \"an array\"}"), .badRequest),
                ("/v2/models/pets/infer", [.contentType: "application/json"], ByteBuffer(string: "[1, 2"), .badRequest),
                ("/v2/models/pets/infer", [.contentType: "application/json"],
                 ByteBuffer(string: "{\"inputs\": [{\"name\": \"image\", \"datatype\": \"FP32\", \"shape\": [1], \"data\": [1]}]}"), .badRequest),
            ]
            for _ in 0..<5 {
                for request in failing {
                    let response = try await client.execute(uri: request.route, method: .post, headers: request.headers, body: request.body)
                    #expect(response.status == request.status, "\(request.route): \(response.text)")
                    #expect(budget.inUse == 0, "\(request.route) \(response.status) kept \(budget.inUse) bytes")
                }
            }
            // And a request that succeeds gives it back too.
            let served = try await client.execute(uri: "/v1/classify", method: .post, headers: [.contentType: "image/png"], body: ByteBuffer(bytes: png))
            #expect(served.status == .ok)
            #expect(budget.inUse == 0 && budget.waits == 0)
            #expect(budget.peakInUse >= png.count)
            // The whole budget is there for the taking at once.
            let all = try await budget.reserve(budget.capacity, timeout: .milliseconds(1))
            #expect(all.bytes == budget.capacity)
            all.release()
        }
    }

    @Test func aBodyThatCouldNeverFitTheBudgetIs413() async throws {
        let limits = RequestLimits(timeout: .seconds(20), bodyMemory: 1 << 20)
        let budget = RequestBodies.budget(for: limits)
        try await Fixture.withServer(try Fixture.configuration(heads: false, limits: limits), bodyBudget: budget) { client, _ in
            let raw = try await client.execute(uri: "/v1/classify", method: .post, headers: [.contentType: "image/png"],
                                               body: ByteBuffer(bytes: [UInt8](repeating: 0, count: (1 << 20) + 1)))
            #expect(raw.status == .contentTooLarge)
            #expect(raw.errorCode == "body_too_large")
            #expect(raw.errorMessage == "request body is larger than the limit of 1048576 bytes")
            // Multipart holds its parts beside the body while parsing: half the budget is its limit.
            var form = Multipart()
            form.parts.append(("image", "coffee.png", "image/png", Array(try Fixture.sampleBytes("astronaut.png").prefix(600_000))))
            let multipart = try await client.execute(uri: "/v1/classify", method: .post, headers: [.contentType: form.contentType], body: form.body)
            #expect(multipart.status == .contentTooLarge)
            #expect(multipart.errorMessage == "request body is larger than the limit of 524288 bytes")
            #expect(budget.inUse == 0 && budget.waits == 0 && budget.peakInUse == 0)
            // Under the limit it is served.
            let png = try Fixture.sampleBytes("coffee.png")
            let fits = try await client.execute(uri: "/v1/classify", method: .post, headers: [.contentType: "image/png"], body: ByteBuffer(bytes: png))
            #expect(fits.status == .ok)
        }
    }

    @Test func theServerBuildsAFirstFitBudgetOfTheConfiguredSize() {
        let budget = RequestBodies.budget(for: RequestLimits())
        #expect(budget.capacity == 256 << 20 && budget.order == .firstFit)
    }
}
