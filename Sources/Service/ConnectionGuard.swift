import HTTPTypes
import Hummingbird
import HummingbirdCore
import Logging
import NIOCore
import NIOHTTP1
import NIOHTTPTypes
import Synchronization

/// What one connection may hold, whatever its requests ask: the size of a request head and the time it
/// may take to arrive, the pace of a body, the wait between keep-alive requests, and how many
/// connections are open at once. These bound the memory and file descriptors slow or idle clients can
/// hold (a client sending a byte a second, a thousand connections that send nothing).
public struct ConnectionLimits: Sendable, Equatable {
    /// Largest request head in bytes, counted as the HTTP decoder does (request target, header names and
    /// values); 431 beyond.
    public var maxHeaderBytes: Int
    /// Longest from a connection's opening, or from the first byte of a keep-alive connection's next
    /// request, to the end of the request head; 408 beyond.
    public var headerTimeout: Duration
    /// Slowest accepted body pace in bytes per second (0: none), averaged over the time the server waits
    /// for body bytes (not the time it holds off reading to push back), once `bodyRateGrace` of such
    /// waiting has passed; 408 below.
    public var minBodyRate: Int
    /// Waiting for body bytes the server allows before the minimum rate applies (a client's slow start,
    /// curl's one-second wait for `100 Continue`).
    public var bodyRateGrace: Duration
    /// Longest a keep-alive connection may wait for its next request; then it is closed without an answer.
    public var idleTimeout: Duration
    /// Most connections open at once; the next is answered 503 `too_many_connections` and closed.
    public var maxConnections: Int

    public init(maxHeaderBytes: Int = 16 * 1024, headerTimeout: Duration = .seconds(10), minBodyRate: Int = 4096,
                bodyRateGrace: Duration = .seconds(5), idleTimeout: Duration = .seconds(60), maxConnections: Int = 1024) {
        self.maxHeaderBytes = maxHeaderBytes
        self.headerTimeout = headerTimeout
        self.minBodyRate = minBodyRate
        self.bodyRateGrace = bodyRateGrace
        self.idleTimeout = idleTimeout
        self.maxConnections = maxConnections
    }
}

/// Why the connection guard closed a connection (the `reason` of `headtune_connections_cut_total`).
enum ConnectionCut: String, CaseIterable, Sendable {
    case headerTimeout = "header_timeout"
    case headersTooLarge = "headers_too_large"
    case bodyTooSlow = "body_too_slow"
    case idle
    case overCapacity = "over_capacity"
}

/// The open connections of one server, counted across event loops.
final class ConnectionCensus: Sendable {
    let limit: Int
    let metrics: ServiceMetrics
    private let open = Atomic<Int>(0)

    init(limit: Int, metrics: ServiceMetrics) {
        self.limit = limit
        self.metrics = metrics
    }

    /// Counts a new connection in, or refuses it (false) when `limit` are open.
    func admit() -> Bool {
        let count = open.add(1, ordering: .relaxed).newValue
        guard count <= limit else {
            open.subtract(1, ordering: .relaxed)
            return false
        }
        metrics.openConnections.record(count)
        return true
    }

    func release() {
        metrics.openConnections.record(open.subtract(1, ordering: .relaxed).newValue)
    }

    var openConnections: Int { open.load(ordering: .relaxed) }
}

/// Hummingbird's HTTP/1 child channel with the connection guard in front of the HTTP decoder: the
/// guard sees the socket's bytes and reads (time and pace), the phase handler after the decoder sees
/// where each request's head and body end, and tells the guard.
struct GuardedHTTP1Channel: ServerChildChannel, HTTPChannelHandler {
    typealias Value = HTTP1Channel.Value

    let responder: HTTPChannelHandler.Responder
    let limits: ConnectionLimits
    let census: ConnectionCensus

    init(responder: @escaping HTTPChannelHandler.Responder, limits: ConnectionLimits, census: ConnectionCensus) {
        self.responder = responder
        self.limits = limits
        self.census = census
    }

    /// Largest single socket read. What a connection holds before its handler reads the body (a request
    /// waiting for body memory) is the reads the HTTP decoder and Hummingbird buffer ahead of the handler,
    /// about 14 of them: with NIO's default reads of up to 64 KiB that was ~0.9 MB per waiting upload
    /// (200 waiting: 177 MB beside the body budget), with 16 KiB about a quarter of it.
    static let maxReadBytes = 16 * 1024

    func setup(channel: any Channel, logger: Logger) -> EventLoopFuture<Value> {
        let connection = ConnectionGuardHandler(limits: limits, census: census, logger: logger)
        do {
            try channel.syncOptions?.setOption(ChannelOptions.recvAllocator,
                                               value: AdaptiveRecvByteBufferAllocator(minimum: 64, initial: 2048,
                                                                                      maximum: Self.maxReadBytes))
            try channel.pipeline.syncOperations.addHandler(connection)
        } catch {
            return channel.eventLoop.makeFailedFuture(error)
        }
        let guardOnLoop = NIOLoopBound(connection, eventLoop: channel.eventLoop)
        // The guard times the idle wait itself (so every cut has its reason counted): Hummingbird's own
        // idle timer stays off.
        var configuration = HTTP1Channel.Configuration(
            idleTimeout: nil,
            httpDecoderConfiguration: .init(maxHeaderFieldSize: limits.maxHeaderBytes, maxHeaderListSize: limits.maxHeaderBytes))
        configuration.additionalChannelHandlers = { [RequestPhaseHandler(connection: guardOnLoop.value)] }
        return HTTP1Channel(responder: responder, configuration: configuration).setup(channel: channel, logger: logger)
    }

    func handle(value: Value, logger: Logger) async {
        await handleHTTP(asyncChannel: value, logger: logger)
    }
}

extension HTTPServerBuilder {
    /// HTTP/1 behind the connection guard (see `ConnectionLimits`).
    static func guardedHTTP1(limits: ConnectionLimits, census: ConnectionCensus) -> HTTPServerBuilder {
        .init { responder in GuardedHTTP1Channel(responder: responder, limits: limits, census: census) }
    }
}

/// First in a connection's pipeline (the socket's bytes): admits the connection under the census,
/// times the request head, the body's pace and the keep-alive wait, and cuts the connection with a JSON
/// answer (when no other answer is under way) and a reason counted in the metrics.
final class ConnectionGuardHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer
    typealias OutboundIn = IOData
    typealias OutboundOut = IOData

    private enum Phase: Equatable {
        /// Keep-alive: the last answer is written, no byte of a next request yet.
        case idle
        /// A request head is arriving (a new connection starts here).
        case readingHead
        /// The head is complete; its body is arriving.
        case readingBody
        /// The request is read; the server is answering.
        case awaitingAnswer
        /// Cut: the answer (if any) is written, the output is closed, input is read and dropped.
        case closing
    }

    private let limits: ConnectionLimits
    private let census: ConnectionCensus
    private let logger: Logger
    private var context: ChannelHandlerContext?
    private var phase = Phase.readingHead
    private var admitted = false
    /// Request heads read minus answers ended.
    private var outstandingAnswers = 0
    /// The answer to the request now being read has begun (e.g. 413 before its body was read).
    private var answerBegun = false
    private var timer: Scheduled<Void>?
    private var bodyBytes = 0
    /// Time the server spent waiting for this body's bytes (a read requested and nothing come yet).
    private var bodyWaited = TimeAmount.zero
    /// A read is requested of the socket and no bytes have come since: the client is who we wait for.
    private var readPending = false

    /// How often the body's pace is checked: often enough to cut within a fraction of the grace.
    private var paceCheckInterval: TimeAmount {
        .init(min(.seconds(1), max(.milliseconds(10), limits.bodyRateGrace / 4)))
    }

    /// How long a cut connection may keep sending (dropped) before it is closed outright: time for the
    /// client to read the answer, rather than a reset that could discard it.
    private static let linger = TimeAmount.seconds(2)

    init(limits: ConnectionLimits, census: ConnectionCensus, logger: Logger) {
        self.limits = limits
        self.census = census
        self.logger = logger
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        if context.channel.isActive { admit(context: context) }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        timer?.cancel()
        timer = nil
        releaseOnce()
        self.context = nil
    }

    func channelActive(context: ChannelHandlerContext) {
        context.fireChannelActive()
        admit(context: context)
    }

    func channelInactive(context: ChannelHandlerContext) {
        timer?.cancel()
        timer = nil
        releaseOnce()
        context.fireChannelInactive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        readPending = false
        switch phase {
        case .closing:
            return  // dropped: the connection is cut
        case .idle:
            phase = .readingHead
            armTimer(in: .init(limits.headerTimeout), reason: .headerTimeout)
        case .awaitingAnswer:
            // A pipelined next request; its head is timed once the answers before it are written.
            phase = .readingHead
        case .readingHead, .readingBody:
            break
        }
        context.fireChannelRead(data)
    }

    func read(context: ChannelHandlerContext) {
        readPending = true
        context.read()
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        guard phase != .closing else {
            promise?.fail(ChannelError.outputClosed)
            return
        }
        context.write(data, promise: promise)
    }

    // MARK: From the phase handler, after the HTTP decoder

    func requestHeadReceived() {
        outstandingAnswers += 1
        guard phase != .closing else { return }
        phase = .readingBody
        answerBegun = false
        bodyBytes = 0
        bodyWaited = .zero
        timer?.cancel()
        timer = nil
        if limits.minBodyRate > 0 { armPaceCheck() }
    }

    func bodyReceived(bytes: Int) {
        bodyBytes += bytes
    }

    func requestEnded() {
        guard phase == .readingBody else { return }
        timer?.cancel()
        timer = nil
        if outstandingAnswers == 0 {
            // Answered before its body was read (e.g. 413 from Content-Length): the wait for the next
            // request begins now.
            phase = .idle
            armTimer(in: .init(limits.idleTimeout), reason: .idle)
        } else {
            phase = .awaitingAnswer
        }
    }

    func answerBegan() {
        answerBegun = true
    }

    func answerEnded() {
        outstandingAnswers -= 1
        guard outstandingAnswers == 0 else { return }
        switch phase {
        case .awaitingAnswer:
            phase = .idle
            armTimer(in: .init(limits.idleTimeout), reason: .idle)
        case .readingHead:
            armTimer(in: .init(limits.headerTimeout), reason: .headerTimeout)
        case .idle, .readingBody, .closing:
            break
        }
    }

    func headersOverflowed() {
        cut(.headersTooLarge)
    }

    // MARK: Timing and cutting

    private func admit(context: ChannelHandlerContext) {
        guard !admitted, phase != .closing else { return }
        guard census.admit() else {
            cut(.overCapacity)
            return
        }
        admitted = true
        armTimer(in: .init(limits.headerTimeout), reason: .headerTimeout)
    }

    private func releaseOnce() {
        if admitted { census.release() }
        admitted = false
    }

    private func armTimer(in delay: TimeAmount, reason: ConnectionCut) {
        guard let context else { return }
        timer?.cancel()
        timer = context.eventLoop.assumeIsolated().scheduleTask(in: delay) { [self] in
            timer = nil
            cut(reason)
        }
    }

    private func armPaceCheck() {
        guard let context else { return }
        let interval = paceCheckInterval
        timer = context.eventLoop.assumeIsolated().scheduleTask(in: interval) { [self] in
            timer = nil
            guard phase == .readingBody else { return }
            if readPending { bodyWaited = bodyWaited + interval }
            let waitedSeconds = Double(bodyWaited.nanoseconds) / 1e9
            if bodyWaited >= TimeAmount(limits.bodyRateGrace), Double(bodyBytes) < Double(limits.minBodyRate) * waitedSeconds {
                cut(.bodyTooSlow)
            } else {
                armPaceCheck()
            }
        }
    }

    /// The answer a cut writes, when writing one cannot interleave with another answer.
    private func answer(for reason: ConnectionCut) -> ServiceError? {
        switch reason {
        case .overCapacity:
            return .tooManyConnections(limit: census.limit)
        case .headerTimeout where outstandingAnswers == 0:
            return .headerTimeout(seconds: limits.headerTimeout / .seconds(1))
        case .headersTooLarge where outstandingAnswers == 0:
            return .headersTooLarge(limit: limits.maxHeaderBytes)
        case .bodyTooSlow where outstandingAnswers == 1 && !answerBegun:
            let seconds = max(Double(bodyWaited.nanoseconds) / 1e9, 1e-9)
            return .bodyTooSlow(bytesPerSecond: Int(Double(bodyBytes) / seconds), minimum: limits.minBodyRate)
        case .idle, .headerTimeout, .headersTooLarge, .bodyTooSlow:
            return nil
        }
    }

    private func cut(_ reason: ConnectionCut) {
        guard let context, phase != .closing else { return }
        let error = answer(for: reason)
        phase = .closing
        timer?.cancel()
        timer = nil
        census.metrics.recordCut(reason)
        var metadata: Logger.Metadata = ["reason": .string(reason.rawValue)]
        if let remote = context.channel.remoteAddress { metadata["remote"] = .string("\(remote)") }
        if reason == .idle { logger.debug("connection closed", metadata: metadata) } else { logger.info("connection cut", metadata: metadata) }
        guard let error else {
            context.close(promise: nil)
            return
        }
        let written = context.writeAndFlush(wrapOutboundOut(.byteBuffer(error.rawHTTPResponse)))
        let channel = context.channel
        guard reason != .overCapacity else {
            // Not counted in the census, so it must not linger: a flood of refused connections would
            // hold descriptors past the cap.
            written.whenComplete { _ in channel.close(promise: nil) }
            return
        }
        // Half-close, then read and drop what the client still sends for a moment, so the answer
        // reaches it instead of being discarded by a reset.
        context.close(mode: .output, promise: nil)
        context.eventLoop.assumeIsolated().scheduleTask(in: Self.linger) { channel.close(promise: nil) }
    }
}

@available(*, unavailable)
extension ConnectionGuardHandler: Sendable {}

/// After the HTTP decoder: tells the connection guard where each request's head and body end and when
/// its answer ends, and turns the decoder's header overflow into the guard's 431.
final class RequestPhaseHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPRequestPart
    typealias InboundOut = HTTPRequestPart
    typealias OutboundIn = HTTPResponsePart
    typealias OutboundOut = HTTPResponsePart

    private let connection: ConnectionGuardHandler

    init(connection: ConnectionGuardHandler) {
        self.connection = connection
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head: connection.requestHeadReceived()
        case .body(let bytes): connection.bodyReceived(bytes: bytes.readableBytes)
        case .end: connection.requestEnded()
        }
        context.fireChannelRead(data)
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        switch unwrapOutboundIn(data) {
        case .head(let head) where head.status.kind != .informational: connection.answerBegan()
        case .end: connection.answerEnded()
        case .head, .body: break
        }
        context.write(data, promise: promise)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        if let parserError = error as? HTTPParserError, case .headerOverflow = parserError {
            connection.headersOverflowed()
            return
        }
        context.fireErrorCaught(error)
    }
}

@available(*, unavailable)
extension RequestPhaseHandler: Sendable {}

extension ServiceError {
    /// The whole HTTP/1.1 response for this error, for the connection guard, which answers below
    /// Hummingbird's router (the same JSON document the routes answer with), closing the connection.
    var rawHTTPResponse: ByteBuffer {
        let body = json.serialized() + "\n"
        var head = "HTTP/1.1 \(status.code) \(status.reasonPhrase)\r\n"
            + "Content-Type: application/json; charset=utf-8\r\nContent-Length: \(body.utf8.count)\r\nConnection: close\r\n"
        if let retryAfterSeconds { head += "Retry-After: \(retryAfterSeconds)\r\n" }
        return ByteBuffer(string: head + "\r\n" + body)
    }
}
