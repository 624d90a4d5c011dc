import ArgumentParser
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A probe for container HEALTHCHECKs, so the runtime image needs no curl: GET the URL over plain
/// HTTP on a socket and exit 0 for a 2xx status, 1 otherwise.
struct Healthcheck: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Exit 0 if an HTTP GET of --url answers 2xx within --timeout (for container health checks).",
        discussion: """
            Example (a Dockerfile's HEALTHCHECK):
              headtune healthcheck --url http://127.0.0.1:8080/readyz --timeout 2
            """)

    @Option(help: "http://HOST:PORT/PATH to fetch.")
    var url = "http://127.0.0.1:8080/healthz"

    @Option(help: "Seconds to wait for the answer.")
    var timeout = 3.0

    func run() throws {
        guard let components = URLComponents(string: url), components.scheme == "http", let host = components.host else {
            throw ValidationError("--url must be http://HOST[:PORT]/PATH")
        }
        let port = components.port ?? 80
        let path = components.percentEncodedPath.isEmpty ? "/" : components.percentEncodedPath
        let status = try Self.get(host: host, port: port, path: path, timeout: timeout)
        guard (200..<300).contains(status) else {
            FileHandle.standardError.write(Data("headtune: \(url) answered \(status)\n".utf8))
            throw ExitCode(1)
        }
        print("\(url): \(status)")
    }

    /// The status code of `GET path` on host:port.
    static func get(host: String, port: Int, path: String, timeout: Double) throws -> Int {
        var hints = addrinfo()
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        var list: UnsafeMutablePointer<addrinfo>?
        guard getaddrinfo(host, String(port), &hints, &list) == 0, let first = list else {
            throw ValidationError("cannot resolve \(host)")
        }
        defer { freeaddrinfo(list) }
        let fd = socket(first.pointee.ai_family, first.pointee.ai_socktype, first.pointee.ai_protocol)
        guard fd >= 0 else { throw ValidationError("socket: \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        var limit = timeval(tv_sec: Int(timeout), tv_usec: Int((timeout - timeout.rounded(.down)) * 1e6))
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &limit, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &limit, socklen_t(MemoryLayout<timeval>.size))
        guard connect(fd, first.pointee.ai_addr, first.pointee.ai_addrlen) == 0 else {
            throw ValidationError("cannot connect to \(host):\(port): \(String(cString: strerror(errno)))")
        }
        let request = Array("GET \(path) HTTP/1.0\r\nHost: \(host)\r\nConnection: close\r\n\r\n".utf8)
        guard send(fd, request, request.count, 0) == request.count else { throw ValidationError("send failed") }
        var response: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 512)
        while !response.contains(UInt8(ascii: "\n")) {
            let n = recv(fd, &buffer, buffer.count, 0)
            guard n > 0 else { break }
            response += buffer[0..<n]
        }
        let statusLine = String(decoding: response.prefix { $0 != UInt8(ascii: "\r") && $0 != UInt8(ascii: "\n") }, as: UTF8.self)
        let fields = statusLine.split(separator: " ")
        guard fields.count >= 2, fields[0].hasPrefix("HTTP/"), let status = Int(fields[1]) else {
            throw ValidationError("no HTTP answer from \(host):\(port)")
        }
        return status
    }
}
