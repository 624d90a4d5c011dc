import Dispatch

/// Splits `0..<count` into at most `threads` contiguous chunks and runs them concurrently.
/// The body gets a half-open range; chunks never overlap, so writes to disjoint outputs are safe.
@inline(__always)
public func parallelFor(_ count: Int, threads: Int, minimumChunk: Int = 1, _ body: (Range<Int>) -> Void) {
    let chunks = max(1, min(threads, count / max(1, minimumChunk)))
    if chunks == 1 {
        body(0..<count)
        return
    }
    // The chunks write disjoint ranges, and concurrentPerform returns only after all of them: the
    // non-Sendable body (it captures raw buffers) never outlives this call or races with itself.
    nonisolated(unsafe) let body = body
    DispatchQueue.concurrentPerform(iterations: chunks) { chunk in
        let start = count * chunk / chunks
        let end = count * (chunk + 1) / chunks
        if start < end { body(start..<end) }
    }
}
