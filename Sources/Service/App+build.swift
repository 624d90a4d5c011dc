import Hummingbird
import Imaging
import Logging
import NIOCore

/// The application: the router, and the model host as a service of its own (it loads the weights
/// while the server already answers `/healthz`, and outlives the server on shutdown).
public func buildApplication(_ configuration: ServerConfiguration, logger: Logger,
                             metrics: ServiceMetrics = ServiceMetrics()) -> some ApplicationProtocol {
    let host = ModelHost(specification: configuration.models, batching: configuration.batching, metrics: metrics,
                         logger: logger)
    return buildApplication(configuration, host: host, metrics: metrics, logger: logger)
}

/// - onServerRunning: called with the listening channel (the tests read the port the kernel picked).
/// - bodyBudget: the request bodies' budget (nil: one of `configuration.limits.bodyMemory`; the tests
///   pass theirs to watch it)
func buildApplication(_ configuration: ServerConfiguration, host: ModelHost, metrics: ServiceMetrics, logger: Logger,
                      bodyBudget: MemoryBudget? = nil,
                      onServerRunning: @escaping @Sendable (any Channel) async -> Void = { _ in }) -> some ApplicationProtocol {
    let router = buildRouter(host: host, metrics: metrics, limits: configuration.limits, bodyBudget: bodyBudget)
    let census = ConnectionCensus(limit: configuration.connections.maxConnections, metrics: metrics)
    return Application(router: router, server: .guardedHTTP1(limits: configuration.connections, census: census),
                       configuration: .init(address: .hostname(configuration.host, port: configuration.port),
                                            serverName: "headtune"),
                       services: [host], onServerRunning: onServerRunning, logger: logger)
}

/// Routes (see each handler for its request and response documents; all are described in
/// Resources/openapi.json).
func buildRouter(host: ModelHost, metrics: ServiceMetrics, limits: RequestLimits,
                 bodyBudget: MemoryBudget? = nil) -> Router<BasicRequestContext> {
    let router = Router()
    let bodies = RequestBodies(budget: bodyBudget ?? RequestBodies.budget(for: limits), limits: limits)
    let routes = RouteMethods()
    router.add(middleware: RequestObservationMiddleware(metrics: metrics, maxBodyBytes: limits.maxBodyBytes, routes: routes))
    let status = StatusHandlers(host: host, metrics: metrics, bodyBudget: bodies.budget)
    router.get("/healthz", use: status.health)
    router.get("/readyz", use: status.ready)
    router.get("/metrics", use: status.metrics)
    router.get("/v1/heads", use: status.heads)
    router.post("/v1/classify", use: ClassifyHandler(host: host, limits: limits, bodies: bodies).handle)
    router.post("/v1/embed/image", use: EmbedImageHandler(host: host, limits: limits, bodies: bodies).handle)
    let text = TextHandlers(host: host, limits: limits, bodies: bodies)
    router.post("/v1/embed/text", use: text.embedText)
    router.post("/v1/zero-shot", use: text.zeroShot)
    router.post("/v1/match", use: text.match)
    OpenInferenceRoutes.add(to: router, host: host, bodies: bodies)
    router.get("/openapi.json", use: OpenAPIDocument.handle)
    routes.record(router.routes)
    return router
}
