import Dispatch
import Foundation
import Hummingbird
import Imaging
import NIOCore
import ServiceLifecycle
import Synchronization
import Testing
@testable import Service
#if canImport(Glibc)
import Glibc
#endif

/// The connection guard, on a live server over loopback with raw sockets (clients that stall, trickle
/// or send nothing), so what is measured is the server's own handling. Limits are short so each test
/// takes a few seconds at most.
@Suite(.serialized) struct ConnectionLimitTests {
    /// A TCP connection to 127.0.0.1:port with a receive timeout. Receiving blocks, so it runs on a
    /// dispatch thread: on the cooperative pool it would starve the server's own handlers (two
    /// threads on two cores, the other suites running beside).
    final class RawConnection: Sendable {
        let fd: Int32
        /// When the last receive returned, taken on the receiving thread: what the tests time, since
        /// resuming on a busy cooperative pool can come seconds later.
        private let lastReturn = Mutex(ContinuousClock.now)
        var lastArrival: ContinuousClock.Instant { lastReturn.withLock { $0 } }

        init(port: Int, receiveTimeout seconds: Int) throws {
            fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            var address = sockaddr_in()
            address.sin_family = sa_family_t(AF_INET)
            address.sin_port = in_port_t(UInt16(port).bigEndian)
            address.sin_addr.s_addr = inet_addr("127.0.0.1")
            let connected = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
            }
            try #require(connected == 0, "connect: \(String(cString: strerror(errno)))")
            var timeout = timeval(tv_sec: seconds, tv_usec: 0)
            setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        }

        deinit { close(fd) }

        /// Sends all of `bytes`; false once the server has closed (no SIGPIPE: MSG_NOSIGNAL).
        @discardableResult
        func send(_ bytes: [UInt8]) -> Bool {
            var sent = 0
            while sent < bytes.count {
                let n = bytes.withUnsafeBytes { Glibc.send(fd, $0.baseAddress! + sent, bytes.count - sent, Int32(MSG_NOSIGNAL)) }
                if n <= 0 { return false }
                sent += n
            }
            return true
        }

        @discardableResult
        func send(_ text: String) -> Bool { send(Array(text.utf8)) }

        /// Whether the server has sent something or closed (without waiting or consuming it).
        var hasIncoming: Bool {
            var byte: UInt8 = 0
            return recv(fd, &byte, 1, Int32(MSG_PEEK | MSG_DONTWAIT)) >= 0
        }

        /// What arrives before the timeout: bytes, "" on an orderly close, nil when nothing came.
        func receive() async -> String? {
            await offThePool { self.receiveNow() }
        }

        /// Everything until the server closes (or the receive timeout, or a reset), and whether it closed.
        func receiveUntilClosed() async -> (text: String, closed: Bool) {
            await offThePool {
                var text = ""
                while true {
                    guard let chunk = self.receiveNow() else { return (text, false) }
                    if chunk.isEmpty { return (text, true) }
                    text += chunk
                }
            }
        }

        /// Sends `bytes` `chunk` at a time, `interval` apart, on a dispatch thread (a steady pace however
        /// busy the cooperative pool), until they are all sent, the server answers or closes, or `giveUp`
        /// has passed; returns how many were sent.
        func trickle(_ bytes: [UInt8], chunk: Int = 1, every interval: Duration, giveUp: Duration) async -> Int {
            await offThePool {
                let started = ContinuousClock.now
                var sent = 0
                while sent < bytes.count, !self.hasIncoming, ContinuousClock.now - started < giveUp,
                      self.send(Array(bytes[sent..<min(sent + chunk, bytes.count)])) {
                    sent = min(sent + chunk, bytes.count)
                    usleep(UInt32(interval / .microseconds(1)))
                }
                return sent
            }
        }

        private func receiveNow() -> String? {
            var buffer = [UInt8](repeating: 0, count: 65536)
            let n = recv(fd, &buffer, buffer.count, 0)
            lastReturn.withLock { $0 = .now }
            if n < 0 { return nil }
            return String(decoding: buffer.prefix(n), as: UTF8.self)
        }

        private func offThePool<T: Sendable>(_ body: @escaping @Sendable () -> T) async -> T {
            await withCheckedContinuation { continuation in
                DispatchQueue.global().async { continuation.resume(returning: body()) }
            }
        }
    }

    /// Runs `test` against a live server on a port the kernel picks, once its models are loaded. (Not
    /// HummingbirdTesting's live framework: its client holds a connection open, which the guard would
    /// count and cut beside the test's own.)
    /// - bodyBudget: the request bodies' budget (nil: the server makes its own), for tests that watch it
    static func withLiveServer(_ configure: (inout ServerConfiguration) -> Void, bodyBudget: MemoryBudget? = nil,
                               _ test: @escaping @Sendable (Int, ServiceMetrics) async throws -> Void) async throws {
        var configuration = try Fixture.configuration(heads: false)
        configure(&configuration)
        configuration.port = 0
        let metrics = ServiceMetrics()
        let host = ModelHost(specification: configuration.models, batching: configuration.batching, metrics: metrics,
                             logger: Fixture.logger)
        let (ports, portContinuation) = AsyncStream<Int>.makeStream()
        let app = buildApplication(configuration, host: host, metrics: metrics, logger: Fixture.logger, bodyBudget: bodyBudget) { channel in
            portContinuation.yield(channel.localAddress?.port ?? 0)
        }
        let services = ServiceGroup(configuration: .init(services: [app], logger: Fixture.logger))
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await services.run() }
            do {
                var iterator = ports.makeAsyncIterator()
                let port = try #require(await iterator.next())
                let started = ContinuousClock.now
                while !host.isReady {
                    guard ContinuousClock.now - started < .seconds(120) else { throw ServiceError.notReady }
                    try await Task.sleep(for: .milliseconds(10))
                }
                try await test(port, metrics)
            } catch {
                await services.triggerGracefulShutdown()
                throw error
            }
            await services.triggerGracefulShutdown()
            try await group.waitForAll()
        }
    }

    /// `GET /healthz` on a connection of its own, answered 200 (the server keeps serving others).
    static func healthCheck(port: Int) async throws -> String {
        let connection = try RawConnection(port: port, receiveTimeout: 20)
        connection.send("GET /healthz HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n")
        return await connection.receiveUntilClosed().text
    }

    /// The status line's code and the JSON error code of a raw response.
    static func statusAndCode(_ response: String) -> (status: Int?, code: String?) {
        let status = response.split(separator: " ", maxSplits: 2).dropFirst().first.flatMap { Int($0) }
        let body = response.range(of: "\r\n\r\n").map { Data(response[$0.upperBound...].utf8) } ?? Data()
        let document = (try? JSONSerialization.jsonObject(with: body)) as? [String: Any]
        return (status, (document?["error"] as? [String: Any])?["code"] as? String)
    }

    static func cutCount(_ metrics: ServiceMetrics, _ reason: String) -> Int? {
        let prefix = "headtune_connections_cut_total{reason=\"\(reason)\"} "
        return metrics.exposition().split(separator: "\n").first { $0.hasPrefix(prefix) }.flatMap { Int($0.dropFirst(prefix.count)) }
    }

    @Test func aConnectionThatSendsNothingIsCutAtTheHeaderTimeoutWith408() async throws {
        try await Self.withLiveServer({ $0.connections.headerTimeout = .milliseconds(500) }) { port, metrics in
            let started = ContinuousClock.now
            let silent = try RawConnection(port: port, receiveTimeout: 5)
            let (response, closed) = await silent.receiveUntilClosed()
            let elapsed = silent.lastArrival - started
            #expect(closed)
            #expect(Self.statusAndCode(response) == (408, "header_timeout"))
            #expect(response.contains("the request head was not complete within 0.5 s"))
            #expect(elapsed >= .milliseconds(400) && elapsed < .seconds(4), "cut after \(elapsed)")
            #expect(Self.cutCount(metrics, "header_timeout") == 1)
        }
    }

    @Test func aHeadTrickledByteByByteIsCutWhileOthersAreServed() async throws {
        try await Self.withLiveServer({ $0.connections.headerTimeout = .seconds(1) }) { port, metrics in
            let slow = try RawConnection(port: port, receiveTimeout: 5)
            let head = Array("GET /healthz HTTP/1.1\r\nHost: test\r\nX-Padding: \(String(repeating: "a", count: 100))\r\n\r\n".utf8)
            // One byte every 50 ms: the head would take over 7 s; the server cuts it at about 1 s.
            async let trickled = slow.trickle(head, every: .milliseconds(50), giveUp: .seconds(8))
            var served: [String] = []
            for _ in 0..<3 {
                served.append(try await Self.healthCheck(port: port))
                try await Task.sleep(for: .milliseconds(100))
            }
            let sent = await trickled
            let (response, closed) = await slow.receiveUntilClosed()
            #expect(closed)
            #expect(Self.statusAndCode(response) == (408, "header_timeout"))
            // The bytes that went out before the cut time it (one per 50 ms, fewer when this machine
            // is loaded); the answer's arrival time is not used: it is read only after the health
            // checks, whose pace depends on the load.
            #expect(sent < head.count, "the whole head got through")
            #expect(sent <= 60, "\(sent) bytes (50 ms apart) went out before the 1 s limit cut the head")
            #expect(!served.isEmpty && served.allSatisfy { $0.hasPrefix("HTTP/1.1 200") }, "\(served)")
            #expect(Self.cutCount(metrics, "header_timeout") == 1)
        }
    }

    @Test func keepAliveConnectionsAreClosedAfterTheIdleTimeout() async throws {
        try await Self.withLiveServer({ $0.connections.idleTimeout = .milliseconds(500) }) { port, metrics in
            let connection = try RawConnection(port: port, receiveTimeout: 5)
            connection.send("GET /healthz HTTP/1.1\r\nHost: test\r\n\r\n")
            let answered = try #require(await connection.receive())
            #expect(answered.hasPrefix("HTTP/1.1 200"))
            // Kept alive, then closed without an answer about 0.5 s after the answer (the 10 s header
            // timeout does not apply between requests).
            let started = connection.lastArrival
            let closedNote = await connection.receive()
            #expect(closedNote == "")
            let elapsed = connection.lastArrival - started
            #expect(elapsed >= .milliseconds(400) && elapsed < .seconds(4), "closed after \(elapsed)")
            #expect(Self.cutCount(metrics, "idle") == 1)
        }
    }

    @Test func aRequestAnsweredBeforeItsBodyEndsIsIdleOnceTheBodyIsRead() async throws {
        try await Self.withLiveServer({
            $0.limits.maxBodyBytes = 1000
            $0.connections.idleTimeout = .milliseconds(500)
            $0.connections.minBodyRate = 0  // the client holds its body until the 413: not slowness to cut here
        }) { port, metrics in
            let connection = try RawConnection(port: port, receiveTimeout: 5)
            // 413 from Content-Length, before the body is read; the server reads (drops) the body after.
            connection.send("POST /v1/classify HTTP/1.1\r\nHost: test\r\nContent-Type: image/png\r\nContent-Length: 2000\r\n\r\n")
            let answered = try #require(await connection.receive())
            #expect(Self.statusAndCode(answered) == (413, "body_too_large"))
            connection.send([UInt8](repeating: 0, count: 2000))
            let started = ContinuousClock.now
            let (rest, closed) = await connection.receiveUntilClosed()
            let elapsed = connection.lastArrival - started
            #expect(closed && rest.isEmpty, "\(rest)")
            #expect(elapsed >= .milliseconds(400) && elapsed < .seconds(4), "closed after \(elapsed)")
            #expect(Self.cutCount(metrics, "idle") == 1)
        }
    }

    @Test func aKeepAliveRequestGetsTheHeaderTimeoutFromItsFirstByte() async throws {
        try await Self.withLiveServer({
            $0.connections.idleTimeout = .seconds(5)
            $0.connections.headerTimeout = .milliseconds(800)
        }) { port, _ in
            let connection = try RawConnection(port: port, receiveTimeout: 5)
            connection.send("GET /healthz HTTP/1.1\r\nHost: test\r\n\r\n")
            let first = await connection.receive()
            #expect(first?.hasPrefix("HTTP/1.1 200") == true)
            // Idle for longer than the header timeout: still open, since no request has begun.
            try await Task.sleep(for: .milliseconds(1200))
            #expect(connection.send("GET /healthz HTTP/1.1\r\n"))
            let started = ContinuousClock.now
            let (response, closed) = await connection.receiveUntilClosed()
            let elapsed = connection.lastArrival - started
            #expect(closed)
            #expect(Self.statusAndCode(response) == (408, "header_timeout"))
            #expect(elapsed >= .milliseconds(600) && elapsed < .seconds(4), "cut after \(elapsed)")
        }
    }

    @Test func anOversizedHeadIsAnswered431() async throws {
        try await Self.withLiveServer({ $0.connections.maxHeaderBytes = 4096 }) { port, metrics in
            let connection = try RawConnection(port: port, receiveTimeout: 5)
            connection.send("GET /healthz HTTP/1.1\r\nHost: test\r\nX-Padding: \(String(repeating: "a", count: 6000))\r\n\r\n")
            let (response, closed) = await connection.receiveUntilClosed()
            #expect(closed)
            #expect(Self.statusAndCode(response) == (431, "headers_too_large"))
            #expect(response.contains("the request head is larger than the limit of 4096 bytes"))
            // A long URL counts too.
            let longURL = try RawConnection(port: port, receiveTimeout: 5)
            longURL.send("GET /healthz?\(String(repeating: "q", count: 6000)) HTTP/1.1\r\nHost: test\r\n\r\n")
            let longURLAnswer = await longURL.receiveUntilClosed().text
            #expect(Self.statusAndCode(longURLAnswer) == (431, "headers_too_large"))
            // Within the limit: served.
            #expect(try await Self.healthCheck(port: port).hasPrefix("HTTP/1.1 200"))
            #expect(Self.cutCount(metrics, "headers_too_large") == 2)
        }
    }

    @Test func aTrickledBodyIsCutAndAPacedOneIsNot() async throws {
        try await Self.withLiveServer({
            $0.connections.minBodyRate = 1000
            $0.connections.bodyRateGrace = .milliseconds(400)
        }) { port, metrics in
            // 20 bytes every 100 ms (200 bytes/s, under 1000) of a declared 4000: cut with 408.
            let slow = try RawConnection(port: port, receiveTimeout: 5)
            slow.send("POST /v1/classify HTTP/1.1\r\nHost: test\r\nContent-Type: image/png\r\nContent-Length: 4000\r\n\r\n")
            let started = ContinuousClock.now
            let sent = await slow.trickle([UInt8](repeating: 7, count: 4000), chunk: 20, every: .milliseconds(100), giveUp: .seconds(4))
            let (response, closed) = await slow.receiveUntilClosed()
            let elapsed = slow.lastArrival - started
            #expect(closed)
            #expect(Self.statusAndCode(response) == (408, "body_too_slow"))
            #expect(response.contains("below the minimum of 1000 bytes/s"))
            #expect(sent < 4000 && elapsed < .seconds(4), "\(sent) bytes over \(elapsed)")
            #expect(Self.cutCount(metrics, "body_too_slow") == 1)

            // 1000 bytes every 100 ms (10 kB/s) for a second: read to the end and answered by the route
            // (422: not an image), not cut.
            let paced = try RawConnection(port: port, receiveTimeout: 20)
            paced.send("POST /v1/classify HTTP/1.1\r\nHost: test\r\nContent-Type: image/png\r\nContent-Length: 10000\r\n\r\n")
            let pacedSent = await paced.trickle([UInt8](repeating: 7, count: 10000), chunk: 1000, every: .milliseconds(100),
                                                giveUp: .seconds(10))
            #expect(pacedSent == 10000)
            let answer = try #require(await paced.receive())
            #expect(Self.statusAndCode(answer).status == 422, "\(answer)")
            #expect(Self.cutCount(metrics, "body_too_slow") == 1)
        }
    }

    @Test func connectionsOverTheCapAreAnswered503AndClosed() async throws {
        try await Self.withLiveServer({ $0.connections.maxConnections = 3 }) { port, metrics in
            var held = try (0..<3).map { _ in try RawConnection(port: port, receiveTimeout: 5) }
            try await Task.sleep(for: .milliseconds(200))  // accepted and counted
            let refused = try RawConnection(port: port, receiveTimeout: 5)
            let (response, closed) = await refused.receiveUntilClosed()
            #expect(closed)
            #expect(Self.statusAndCode(response) == (503, "too_many_connections"))
            #expect(response.contains("Retry-After: 1"))
            #expect(Self.cutCount(metrics, "over_capacity") == 1)
            #expect(metrics.exposition().contains("headtune_open_connections 3"))
            // A held connection is still served, and once it is closed a new one gets in.
            held[0].send("GET /healthz HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n")
            let heldAnswer = await held[0].receiveUntilClosed().text
            #expect(heldAnswer.hasPrefix("HTTP/1.1 200"))
            held.removeFirst()  // closes it: the server waits for the client's close after `Connection: close`
            try await Task.sleep(for: .milliseconds(200))
            let admitted = try await Self.healthCheck(port: port)
            #expect(admitted.hasPrefix("HTTP/1.1 200"), "\(admitted)")
        }
    }
}

@Suite struct DescriptorLimitTests {
    @Test func theSoftLimitIsRaisedToFitTheConnectionCapUpToTheHardLimit() {
        // Enough already: unchanged.
        #expect(InferenceServer.descriptorLimit(soft: 20000, hard: 20000, maxConnections: 1024) == (20000, nil))
        // The usual 1024 soft limit under a high hard one: raised to the cap and the reserve.
        #expect(InferenceServer.descriptorLimit(soft: 1024, hard: 1_048_576, maxConnections: 1024) == (1088, nil))
        // A hard limit below what is needed: raised to it, and the shortfall said.
        #expect(InferenceServer.descriptorLimit(soft: 256, hard: 1024, maxConnections: 1024) == (1024, 64))
    }
}
