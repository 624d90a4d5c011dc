import Foundation
import Hummingbird
import HummingbirdTesting
import Testing
@testable import Service
#if canImport(Glibc)
import Glibc
#endif

/// Idle connections, on a live server over loopback with raw sockets (a client that sends nothing),
/// so what is measured is the server's own handling.
@Suite(.serialized) struct ConnectionLimitTests {
    /// A TCP connection to 127.0.0.1:port with a receive timeout.
    final class RawConnection {
        let fd: Int32

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

        /// What arrives before the timeout: bytes, "" on an orderly close, nil when nothing came.
        func receive() -> String? {
            var buffer = [UInt8](repeating: 0, count: 4096)
            let n = recv(fd, &buffer, buffer.count, 0)
            if n < 0 { return nil }
            return String(decoding: buffer.prefix(n), as: UTF8.self)
        }
    }

    static func withLiveServer(_ configure: (inout ServerConfiguration) -> Void,
                               _ test: @escaping @Sendable (Int) async throws -> Void) async throws {
        var configuration = try Fixture.configuration(heads: false)
        configure(&configuration)
        configuration.port = 0
        let metrics = ServiceMetrics()
        let host = ModelHost(specification: configuration.models, batching: configuration.batching, metrics: metrics,
                             logger: Fixture.logger)
        let app = buildApplication(configuration, host: host, metrics: metrics, logger: Fixture.logger)
        try await app.test(.live) { client in
            try await test(try #require(client.port))
        }
    }

    @Test func idleConnectionsAreClosedAfterTheIdleTimeout() async throws {
        try await Self.withLiveServer({ $0.idleTimeout = .milliseconds(500) }) { port in
            let started = ContinuousClock.now
            let idle = try RawConnection(port: port, receiveTimeout: 5)
            // Sends nothing: the server closes it (recv sees the orderly close) after about 0.5 s.
            #expect(idle.receive() == "")
            let elapsed = ContinuousClock.now - started
            #expect(elapsed >= .milliseconds(400) && elapsed < .seconds(4), "closed after \(elapsed)")
        }
    }
}
