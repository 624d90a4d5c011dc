import ArgumentParser
import Foundation
import HeadTune
import Imaging
import Logging
import Service

struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Serve the ImageNet classifier, trained heads, embeddings and text matching over HTTP.",
        discussion: """
            Routes: POST /v1/classify?head=NAME&top_k=K (image/jpeg, image/png or multipart/form-data with \
            several images; the ImageNet classifier is the head named 'imagenet'), POST /v1/embed/image, \
            POST /v1/embed/text, POST /v1/zero-shot, POST /v1/match, GET /v1/heads, /healthz, /readyz, /metrics.
            Errors are JSON: {"error": {"code": ..., "message": ...}}. Concurrent requests are batched \
            (--max-batch, --max-delay-ms); a full queue answers 503 with Retry-After. SIGTERM stops \
            accepting connections, answers the requests in flight and exits 0. One log line per request on stderr. \
            Slow and idle clients are cut (--header-timeout, --max-header-bytes, --min-body-rate, --idle-timeout) \
            and open connections are capped (--max-connections); /metrics counts cuts by reason. Request bodies \
            in flight share --body-memory: a body that does not fit in time is answered 503 with Retry-After unread. \
            In a multipart request, a part that is not a decodable image gets an error record; the others are classified.

            Examples:
              headtune serve --head demo-data/textures.head --port 8080
              curl -F image=@samples/rocket.jpg -F image=@notes.txt 'localhost:8080/v1/classify?top_k=2'
              curl -H 'Content-Type: image/jpeg' --data-binary @samples/rocket.jpg \\
                  'localhost:8080/v1/classify?head=textures'
            """)

    @Option(name: .customLong("head"), help: ArgumentHelp("A head trained with `headtune train`, repeatable; served under its file name without .head, or NAME=PATH.",
                                                           valueName: "file"),
            completion: .file())
    var heads: [String] = []

    @Option(help: "Address to listen on (0.0.0.0: every interface).")
    var host = "127.0.0.1"

    @Option(help: "TCP port.")
    var port = 8080

    @Option(help: "Most images in one backbone batch (1: no batching).")
    var maxBatch = 8

    @Option(help: "Longest the oldest queued image waits for a batch to fill, in milliseconds.")
    var maxDelayMs = 5.0

    @Option(help: "Most images waiting for the network; more is answered with 503 and Retry-After.")
    var queueCapacity = 64

    @Option(help: "Largest request body in bytes (413 beyond).")
    var maxBodyBytes = 20 * 1024 * 1024

    @Option(help: ArgumentHelp("Memory the request bodies in flight may hold together (e.g. 256m, 1g); a request whose body "
                               + "does not fit within --request-timeout is answered 503 with Retry-After before it is read, "
                               + "one that could never fit 413.", valueName: "bytes"))
    var bodyMemory = MemorySize(bytes: RequestLimits.defaultBodyMemory)

    @Option(help: "Most images in one multipart request (413 beyond).")
    var maxImages = 32

    @Option(help: "Longest a request may wait for the queue and the network, in seconds (then 503 'timeout').")
    var requestTimeout = 30.0

    @Option(help: "Most parts (files and fields) in one multipart body (413 beyond).")
    var maxParts = RequestLimits().maxParts

    @Option(help: "Largest header block of one multipart part, in bytes (400 beyond).")
    var maxPartHeaderBytes = RequestLimits().maxPartHeaderBytes

    @Option(help: "Largest request head (target and header fields), in bytes (431 and close beyond).")
    var maxHeaderBytes = ConnectionLimits().maxHeaderBytes

    @Option(help: ArgumentHelp("Seconds from a connection's opening (or a keep-alive request's first byte) to the end of "
                               + "its request head (408 and close beyond).", valueName: "seconds"))
    var headerTimeout = ConnectionLimits().headerTimeout / .seconds(1)

    @Option(help: ArgumentHelp("Slowest request body, in bytes per second while the server waits for it, after "
                               + "--body-rate-grace (408 and close below; 0: no minimum).", valueName: "bytes/s"))
    var minBodyRate = ConnectionLimits().minBodyRate

    @Option(help: ArgumentHelp("Seconds of waiting for a body before --min-body-rate applies.", valueName: "seconds"))
    var bodyRateGrace = ConnectionLimits().bodyRateGrace / .seconds(1)

    @Option(help: ArgumentHelp("Seconds a keep-alive connection may wait for its next request before it is closed "
                               + "(keep it above the idle timeout of a load balancer in front).", valueName: "seconds"))
    var idleTimeout = ConnectionLimits().idleTimeout / .seconds(1)

    @Option(help: "Most connections open at once; one more is answered 503 with Retry-After and closed.")
    var maxConnections = ConnectionLimits().maxConnections

    @Option(help: "Threads for inference.")
    var threads = ProcessInfo.processInfo.activeProcessorCount

    @Option(help: ArgumentHelp("Image encoder: a bundled model's name or a model folder (a CLIP folder serves its text tower too).",
                               discussion: "Default: efficientnet-lite0 (see `headtune models`)."),
            completion: .directory)
    var model: String?

    @OptionGroup var precisionOptions: PrecisionOptions

    @Option(help: ArgumentHelp("Directory with the converted weights.", discussion: "Default: $HEADTUNE_WEIGHTS, then ./weights and its parents."),
            completion: .directory)
    var weights: String?

    @Option(help: "Refuse images whose header declares more pixels than this (422).")
    var maxPixels = DecodeOptions().maxPixels

    @Option(help: ArgumentHelp("Memory the requests' concurrent decodes may hold together (e.g. 256m, 1g); a request whose share "
                               + "does not free up within --request-timeout is answered 503 with Retry-After.", valueName: "bytes"))
    var decodeMemory = MemorySize(bytes: MemoryBudget.defaultDecodeCapacity)

    @Flag(inversion: .prefixedNo, help: "Load the text encoder when its weights are there (/v1/embed/text, /v1/zero-shot, /v1/match).")
    var textEncoder = true

    @Option(help: "Image-text alignment file made by `headtune align` (default: in the weights directory).", completion: .file())
    var alignment: String?

    @Option(help: "Log level: trace, debug, info, notice, warning, error, critical.")
    var logLevel = "info"

    func validate() throws {
        guard (1...65535).contains(port) || port == 0 else { throw ValidationError("--port must be in 1...65535") }
        guard (1...256).contains(maxBatch) else { throw ValidationError("--max-batch must be in 1...256") }
        guard maxDelayMs >= 0 && maxDelayMs <= 10_000 else { throw ValidationError("--max-delay-ms must be in 0...10000") }
        guard queueCapacity >= 1 else { throw ValidationError("--queue-capacity must be at least 1") }
        guard maxBodyBytes >= 1 else { throw ValidationError("--max-body-bytes must be positive") }
        guard maxImages >= 1 else { throw ValidationError("--max-images must be at least 1") }
        guard requestTimeout > 0 else { throw ValidationError("--request-timeout must be positive") }
        guard threads >= 1 else { throw ValidationError("--threads must be at least 1") }
        guard idleTimeout > 0 else { throw ValidationError("--idle-timeout must be positive") }
        guard headerTimeout > 0 else { throw ValidationError("--header-timeout must be positive") }
        guard bodyRateGrace > 0 else { throw ValidationError("--body-rate-grace must be positive") }
        guard minBodyRate >= 0 else { throw ValidationError("--min-body-rate must be 0 or more") }
        guard maxHeaderBytes >= 1024 else { throw ValidationError("--max-header-bytes must be at least 1024") }
        guard maxConnections >= 1 else { throw ValidationError("--max-connections must be at least 1") }
        guard maxParts >= 1 else { throw ValidationError("--max-parts must be at least 1") }
        guard maxPartHeaderBytes >= 64 else { throw ValidationError("--max-part-header-bytes must be at least 64") }
        guard maxPixels >= 1 else { throw ValidationError("--max-pixels must be positive") }
        guard decodeMemory.bytes >= 1 << 20 else { throw ValidationError("--decode-memory must be at least 1m") }
        guard bodyMemory.bytes >= 1 << 20 else { throw ValidationError("--body-memory must be at least 1m") }
        guard Logger.Level(rawValue: logLevel) != nil else { throw ValidationError("unknown --log-level \(logLevel)") }
        let names = heads.map { ModelSpecification.parseHead($0).name }
        for name in names where name == ModelSpecification.imagenetHead || names.filter({ $0 == name }).count > 1 {
            throw ValidationError("head name '\(name)' is taken; name heads with --head NAME=PATH")
        }
        for head in heads where !FileManager.default.fileExists(atPath: ModelSpecification.parseHead(head).path) {
            throw ValidationError("\(ModelSpecification.parseHead(head).path): no such head file")
        }
    }

    func run() async throws {
        LoggingSystem.bootstrap(StreamLogHandler.standardError)
        var logger = Logger(label: "headtune.serve")
        logger.logLevel = Logger.Level(rawValue: logLevel) ?? .info
        let configuration = ServerConfiguration(
            host: host, port: port,
            models: ModelSpecification(model: model, weightsDirectory: weights.map { URL(fileURLWithPath: $0) },
                                       heads: heads.map(ModelSpecification.parseHead), maxPixels: maxPixels,
                                       decodeMemory: decodeMemory.bytes,
                                       textEncoder: textEncoder, alignmentPath: alignment,
                                       precision: precisionOptions.precision, quantizedFile: precisionOptions.quantizedFile),
            batching: BatchingSettings(maxBatch: maxBatch, maxDelay: .microseconds(Int64(maxDelayMs * 1000)),
                                       queueCapacity: queueCapacity, threads: threads),
            limits: RequestLimits(maxBodyBytes: maxBodyBytes, maxImagesPerRequest: maxImages,
                                  timeout: .milliseconds(Int64(requestTimeout * 1000)),
                                  maxParts: maxParts, maxPartHeaderBytes: maxPartHeaderBytes, bodyMemory: bodyMemory.bytes),
            connections: ConnectionLimits(maxHeaderBytes: maxHeaderBytes, headerTimeout: .milliseconds(Int64(headerTimeout * 1000)),
                                          minBodyRate: minBodyRate, bodyRateGrace: .milliseconds(Int64(bodyRateGrace * 1000)),
                                          idleTimeout: .milliseconds(Int64(idleTimeout * 1000)), maxConnections: maxConnections))
        try await InferenceServer.run(configuration, logger: logger)
    }
}
