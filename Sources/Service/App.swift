import Foundation
import Hummingbird
import Logging
import NIOCore

/// Everything `headtune serve` configures.
public struct ServerConfiguration: Sendable {
    public var host: String
    public var port: Int
    public var models: ModelSpecification
    public var batching: BatchingSettings
    public var limits: RequestLimits
    /// What one connection may hold (head size and time, body pace, keep-alive wait, open connections).
    public var connections: ConnectionLimits

    public init(host: String = "127.0.0.1", port: Int = 8080, models: ModelSpecification = .init(),
                batching: BatchingSettings = .init(), limits: RequestLimits = .init(), connections: ConnectionLimits = .init()) {
        self.host = host
        self.port = port
        self.models = models
        self.batching = batching
        self.limits = limits
        self.connections = connections
    }
}

/// The HTTP inference service: runs until SIGTERM or SIGINT, then stops accepting connections,
/// answers the requests in flight, drains the inference queue and returns (exit status 0).
public enum InferenceServer {
    public static func run(_ configuration: ServerConfiguration, logger: Logger) async throws {
        // Before any loading, so a taken port is the first and only thing said (not "ready", then a bind error).
        try checkListenable(host: configuration.host, port: configuration.port)
        fitDescriptorLimit(maxConnections: configuration.connections.maxConnections, logger: logger)
        let app = buildApplication(configuration, logger: logger)
        do {
            try await app.runService(gracefulShutdownSignals: [.sigterm, .sigint])
        } catch let error as IOError where error.errnoCode == EADDRINUSE {
            // Taken between the check and the bind.
            throw ServiceError.cannotListen(host: configuration.host, port: configuration.port, reason: "\(error)", portInUse: true)
        }
    }

    /// Descriptors the server holds besides its connections (weights, logs, the listening socket,
    /// event loops), with room: 15 are open at rest.
    static let reservedDescriptors = 64

    /// The soft open-file limit `--max-connections` needs (raised up to the hard limit), and how many
    /// descriptors short even the hard limit leaves it (nil: none).
    static func descriptorLimit(soft: UInt64, hard: UInt64, maxConnections: Int) -> (soft: UInt64, shortBy: UInt64?) {
        let needed = UInt64(maxConnections + reservedDescriptors)
        guard soft < needed else { return (soft, nil) }
        return (min(needed, hard), needed > hard ? needed - hard : nil)
    }

    /// Raises the soft open-file limit so `maxConnections` fit (the default soft limit is often 1024,
    /// the hard one far higher), warning when the hard limit is too low: accepting would then fail
    /// before the connection cap is reached.
    static func fitDescriptorLimit(maxConnections: Int, logger: Logger) {
        var limit = rlimit()
        guard getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0 else { return }
        let (soft, shortBy) = descriptorLimit(soft: UInt64(limit.rlim_cur), hard: UInt64(limit.rlim_max), maxConnections: maxConnections)
        if soft != UInt64(limit.rlim_cur) {
            limit.rlim_cur = rlim_t(soft)
            _ = setrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)
        }
        if let shortBy {
            let advice = "raise it (ulimit -n) or lower --max-connections"
            logger.warning("the open-file limit is \(limit.rlim_max), \(shortBy) short of what --max-connections \(maxConnections) needs; \(advice)")
        }
    }

    /// Binds and closes a socket on host:port as the server will (SO_REUSEADDR, so a port whose last
    /// connections are in TIME_WAIT passes), throwing `ServiceError.cannotListen` if that fails.
    /// Port 0 (any free port) always passes.
    static func checkListenable(host: String, port: Int) throws {
        guard port != 0 else { return }
        var hints = addrinfo()
        hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        var found: UnsafeMutablePointer<addrinfo>?
        let resolved = getaddrinfo(host, String(port), &hints, &found)
        guard resolved == 0, let address = found else {
            throw ServiceError.cannotListen(host: host, port: port, reason: String(cString: gai_strerror(resolved)), portInUse: false)
        }
        defer { freeaddrinfo(found) }
        let descriptor = socket(address.pointee.ai_family, address.pointee.ai_socktype, address.pointee.ai_protocol)
        guard descriptor >= 0 else { return }  // no socket to try with: let the server's own bind report
        defer { close(descriptor) }
        var on: Int32 = 1
        setsockopt(descriptor, SOL_SOCKET, SO_REUSEADDR, &on, socklen_t(MemoryLayout<Int32>.size))
        guard bind(descriptor, address.pointee.ai_addr, address.pointee.ai_addrlen) == 0 else {
            let code = errno
            throw ServiceError.cannotListen(host: host, port: port, reason: String(cString: strerror(code)), portInUse: code == EADDRINUSE)
        }
    }
}
