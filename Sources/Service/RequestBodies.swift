import Hummingbird
import Imaging
import NIOCore

/// Request bodies in memory, under one budget shared by every route that reads a body. Without it
/// each body is bounded (`maxBodyBytes`) but their number is only bounded by the connection cap:
/// 1,024 connections x 20 MB is 20 GB. A request reserves its body's bytes before reading any, waits
/// (without reading) while the budget is spent, and is answered 503 `body_memory_busy` with
/// Retry-After when its share does not free up within the request timeout; a body that could never
/// fit is 413. The reservation is given back when the handler is done with the bytes and what it
/// made of them.
struct RequestBodies: Sendable {
    let budget: MemoryBudget
    let limits: RequestLimits

    /// The budget `limits` ask for. First fit: a small upload is not held up behind large ones
    /// waiting for room (a 20 MB one needs 20 MB free; a 100 kB photo fits beside it).
    static func budget(for limits: RequestLimits) -> MemoryBudget {
        MemoryBudget(capacity: max(1, limits.bodyMemory), order: .firstFit)
    }

    /// A body read under the budget. `release()` it (once) when its bytes and what was made of them
    /// are no longer held.
    struct Body: Sendable {
        var bytes: [UInt8]
        var reservation: MemoryBudget.Reservation
        func release() { reservation.release() }
    }

    /// Reads the whole body once its memory is reserved: `copies` times its length, for a route that
    /// also holds a copy made from the bytes (multipart parts, the JSON parser's input) while they
    /// are alive. The length is Content-Length's; a body without one (chunked) reserves the most it
    /// may grow to up front and gives back the rest once read. (Reserving chunk by chunk as it grows
    /// would let every chunked body hold part of the budget while waiting for more: none could finish.)
    /// 413 when the body is over `maxBodyBytes`, or could not fit in the budget with its copies.
    func read(_ request: Request, copies: Int = 1) async throws -> Body {
        let limit = min(limits.maxBodyBytes, budget.capacity / copies)
        let declared = request.headers[.contentLength].flatMap { Int($0) }
        if let declared, declared > limit { throw ServiceError.bodyTooLarge(limit: limit) }
        let expected = declared ?? limit
        var reservation: MemoryBudget.Reservation
        do {
            reservation = try await budget.reserve(expected * copies, timeout: limits.timeout)
        } catch {
            throw ServiceError.bodyMemoryBusy(bytes: error.bytes, capacity: error.capacity, seconds: limits.timeout / .seconds(1))
        }
        do {
            let bytes = try await Self.collect(request.body, limit: expected, tooLarge: limit)
            if declared == nil { reservation.shrink(to: bytes.count * copies) }
            return Body(bytes: bytes, reservation: reservation)
        } catch {
            reservation.release()
            throw error
        }
    }

    /// The body's chunks appended to one array as they arrive, each chunk freed once copied (so the
    /// body is held once, not as a ByteBuffer and then an [UInt8] copy of it). The capacity is set
    /// up front: growing by doubling would briefly hold the old and the new storage.
    private static func collect(_ body: RequestBody, limit: Int, tooLarge: Int) async throws -> [UInt8] {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(limit)
        for try await chunk in body {
            guard bytes.count + chunk.readableBytes <= limit else { throw ServiceError.bodyTooLarge(limit: tooLarge) }
            bytes.append(contentsOf: chunk.readableBytesView)
        }
        return bytes
    }
}
