import Hummingbird
import Logging

/// Everything `headtune serve` configures.
public struct ServerConfiguration: Sendable {
    public var host: String
    public var port: Int
    public var models: ModelSpecification
    public var batching: BatchingSettings
    public var limits: RequestLimits
    /// Connections idle (no request bytes, no response) this long are closed.
    public var idleTimeout: Duration

    public init(host: String = "127.0.0.1", port: Int = 8080, models: ModelSpecification = .init(),
                batching: BatchingSettings = .init(), limits: RequestLimits = .init(), idleTimeout: Duration = .seconds(60)) {
        self.host = host
        self.port = port
        self.models = models
        self.batching = batching
        self.limits = limits
        self.idleTimeout = idleTimeout
    }
}

/// The HTTP inference service: runs until SIGTERM or SIGINT, then stops accepting connections,
/// answers the requests in flight, drains the inference queue and returns (exit status 0).
public enum InferenceServer {
    public static func run(_ configuration: ServerConfiguration, logger: Logger) async throws {
        let app = buildApplication(configuration, logger: logger)
        try await app.runService(gracefulShutdownSignals: [.sigterm, .sigint])
    }
}
