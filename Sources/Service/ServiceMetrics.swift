import CoreMetrics
import Dispatch
import Foundation
import Hummingbird
import Imaging
import Logging
import Prometheus
import Synchronization

/// The service's Prometheus metrics, in a registry of its own (not the process-wide swift-metrics
/// bootstrap), so several servers in one process (the tests) keep separate counts.
public final class ServiceMetrics: Sendable {
    public let registry: PrometheusCollectorRegistry
    let factory: PrometheusMetricsFactory
    /// Time from enqueueing an image job to the start of its batch.
    let queueWait: CoreMetrics.Timer
    /// Time of one backbone forward pass (one sub-batch).
    let inference: CoreMetrics.Timer
    /// Time of one text-encoder call.
    let textInference: CoreMetrics.Timer
    /// Images per backbone forward pass.
    let batchSize: CoreMetrics.Recorder
    /// Images waiting in the inference queue.
    let queueDepth: CoreMetrics.Gauge
    /// Requests refused because the queue was full.
    let rejectedRequests: CoreMetrics.Counter
    /// Connections open now (the connection guard's count, bounded by `--max-connections`).
    let openConnections: CoreMetrics.Gauge
    /// Connections the server cut, by reason (every reason has its series from the start, so a rate reads 0, not absent).
    private let connectionsCut: [ConnectionCut: CoreMetrics.Counter]
    /// Each memory budget's capacity, bytes in use and holders waiting, as of the last scrape.
    private let budgetGauges: [MemoryBudgetName: (capacity: CoreMetrics.Gauge, inUse: CoreMetrics.Gauge, waiting: CoreMetrics.Gauge)]
    /// Each budget's reservations that had to wait, and waits that ran out (503s), since the start.
    private let budgetCounters: [MemoryBudgetName: (waits: CoreMetrics.Counter, timeouts: CoreMetrics.Counter)]
    /// The budgets' own counts at the last scrape (the counters advance by the difference).
    private let budgetCountsSeen = Mutex<[MemoryBudgetName: (waits: Int, timeouts: Int)]>([:])
    private let requestMetrics = Mutex<[RequestKey: (count: CoreMetrics.Counter, duration: CoreMetrics.Timer)]>([:])

    private struct RequestKey: Hashable {
        var route: String
        var method: String
        var status: Int
    }

    public init() {
        registry = PrometheusCollectorRegistry()
        var factory = PrometheusMetricsFactory(registry: registry)
        let fast: [Duration] = [.microseconds(500), .milliseconds(1), .milliseconds(2), .milliseconds(5), .milliseconds(10),
                                .milliseconds(20), .milliseconds(50), .milliseconds(100), .milliseconds(200),
                                .milliseconds(500), .seconds(1), .seconds(2), .seconds(5), .seconds(10), .seconds(30)]
        factory.defaultDurationHistogramBuckets = fast
        factory.valueHistogramBuckets["headtune_batch_size"] = [1, 2, 4, 8, 16, 32, 64]
        self.factory = factory
        queueWait = CoreMetrics.Timer(label: "headtune_queue_wait_seconds", factory: factory)
        inference = CoreMetrics.Timer(label: "headtune_inference_seconds", dimensions: [("model", "backbone")], factory: factory)
        textInference = CoreMetrics.Timer(label: "headtune_inference_seconds", dimensions: [("model", "text_encoder")], factory: factory)
        batchSize = CoreMetrics.Recorder(label: "headtune_batch_size", aggregate: true, factory: factory)
        queueDepth = CoreMetrics.Gauge(label: "headtune_queue_depth", factory: factory)
        rejectedRequests = CoreMetrics.Counter(label: "headtune_queue_rejected_total", factory: factory)
        openConnections = CoreMetrics.Gauge(label: "headtune_open_connections", factory: factory)
        connectionsCut = Dictionary(uniqueKeysWithValues: ConnectionCut.allCases.map { reason in
            (reason, CoreMetrics.Counter(label: "headtune_connections_cut_total", dimensions: [("reason", reason.rawValue)],
                                         factory: factory))
        })
        budgetGauges = Dictionary(uniqueKeysWithValues: MemoryBudgetName.allCases.map { name in
            let dimensions = [("budget", name.rawValue)]
            return (name, (CoreMetrics.Gauge(label: "headtune_memory_budget_capacity_bytes", dimensions: dimensions, factory: factory),
                           CoreMetrics.Gauge(label: "headtune_memory_budget_in_use_bytes", dimensions: dimensions, factory: factory),
                           CoreMetrics.Gauge(label: "headtune_memory_budget_waiting", dimensions: dimensions, factory: factory)))
        })
        budgetCounters = Dictionary(uniqueKeysWithValues: MemoryBudgetName.allCases.map { name in
            let dimensions = [("budget", name.rawValue)]
            return (name, (CoreMetrics.Counter(label: "headtune_memory_budget_waits_total", dimensions: dimensions, factory: factory),
                           CoreMetrics.Counter(label: "headtune_memory_budget_timeouts_total", dimensions: dimensions, factory: factory)))
        })
        queueDepth.record(0)
        openConnections.record(0)
    }

    /// Records a budget's state (called when `/metrics` is scraped, so the figures are the budget's own
    /// at that moment rather than updates racing each other).
    func recordBudget(_ name: MemoryBudgetName, _ budget: MemoryBudget) {
        guard let gauges = budgetGauges[name], let counters = budgetCounters[name] else { return }
        gauges.capacity.record(budget.capacity)
        gauges.inUse.record(budget.inUse)
        gauges.waiting.record(budget.waiting)
        budgetCountsSeen.withLock { seen in
            let now = (waits: budget.waits, timeouts: budget.timeouts), before = seen[name] ?? (0, 0)
            if now.waits > before.waits { counters.waits.increment(by: Int64(now.waits - before.waits)) }
            if now.timeouts > before.timeouts { counters.timeouts.increment(by: Int64(now.timeouts - before.timeouts)) }
            seen[name] = now
        }
    }

    /// Counts one answered request and its latency under its route template (e.g. `/v1/classify`),
    /// never the raw path, so unknown URLs cannot grow the label set.
    func recordRequest(route: String, method: String, status: Int, nanoseconds: UInt64) {
        let key = RequestKey(route: route, method: method, status: status)
        let metrics = requestMetrics.withLock { cache in
            if let found = cache[key] { return found }
            let dimensions = [("route", route), ("method", method), ("status", String(status))]
            let made = (CoreMetrics.Counter(label: "headtune_http_requests_total", dimensions: dimensions, factory: factory),
                        CoreMetrics.Timer(label: "headtune_http_request_duration_seconds", dimensions: dimensions, factory: factory))
            cache[key] = made
            return made
        }
        metrics.count.increment()
        metrics.duration.recordNanoseconds(Int64(nanoseconds))
    }

    /// Counts one connection the connection guard closed.
    func recordCut(_ reason: ConnectionCut) { connectionsCut[reason]?.increment() }

    /// The Prometheus text exposition.
    public func exposition() -> String { registry.emitToString() }
}

/// The memory budgets `/metrics` reports (the `budget` label).
enum MemoryBudgetName: String, CaseIterable, Sendable {
    /// Request bodies being read or held (`--body-memory`).
    case body
    /// Image decodes (`--decode-memory`).
    case decode
}

/// Outermost middleware: turns every error into the JSON error document, counts the request by route
/// and status, and writes one structured log line per request (method, route, status, duration,
/// bytes in and out; never bodies).
struct RequestObservationMiddleware<Context: RequestContext>: RouterMiddleware {
    let metrics: ServiceMetrics
    let maxBodyBytes: Int
    let routes: RouteMethods

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let started = DispatchTime.now().uptimeNanoseconds
        var response: Response
        var errorCode: String?
        do {
            response = try await next(request, context)
        } catch {
            let serviceError: ServiceError
            switch error {
            case let e as ServiceError: serviceError = e
            case let e as HTTPError where e.status == .notFound:
                let allowed = routes.allowed(path: request.uri.path)
                serviceError = allowed.isEmpty ? .notFound(method: request.method.rawValue, path: request.uri.path)
                    : .methodNotAllowed(method: request.method.rawValue, path: request.uri.path, allowed: allowed)
            case let e as HTTPError where e.status == .contentTooLarge:
                serviceError = .bodyTooLarge(limit: maxBodyBytes)
            case let e as HTTPError:
                serviceError = e.status.code < 500 ? .badRequest(e.description) : .internal(e.description)
            case is CancellationError:
                serviceError = .shuttingDown
            default:
                serviceError = .internal(String(describing: type(of: error)))
            }
            errorCode = serviceError.code
            response = try serviceError.response(from: request, context: context)
        }
        let elapsed = DispatchTime.now().uptimeNanoseconds - started
        let route = context.endpointPath ?? "unmatched"
        metrics.recordRequest(route: route, method: request.method.rawValue, status: response.status.code, nanoseconds: elapsed)
        var metadata: Logger.Metadata = [
            "method": .string(request.method.rawValue), "route": .string(route), "path": .string(request.uri.path),
            "status": .stringConvertible(response.status.code),
            "duration_ms": .string(String(format: "%.2f", Double(elapsed) / 1e6)),
            "request_bytes": .string(request.headers[.contentLength] ?? "-"),
        ]
        if let errorCode { metadata["error"] = .string(errorCode) }
        context.logger.info("request", metadata: metadata)
        return response
    }
}
