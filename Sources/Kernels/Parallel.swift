import CKernels

/// Splits `0..<count` into at most `threads` contiguous chunks and runs them concurrently on the
/// persistent worker pool (CKernels' pool.c). The body gets a half-open range; chunks never overlap, so
/// writes to disjoint outputs are safe.
@inline(__always)
public func parallelFor(_ count: Int, threads: Int, minimumChunk: Int = 1, _ body: (Range<Int>) -> Void) {
    let chunks = max(1, min(threads, count / max(1, minimumChunk)))
    if chunks == 1 {
        body(0..<count)
        return
    }
    runOnPool(chunks: chunks, participants: chunks) { chunk, _ in
        let start = count * chunk / chunks
        let end = count * (chunk + 1) / chunks
        if start < end { body(start..<end) }
    }
}

/// Runs `body(chunk, participant)` for every chunk in `0..<chunks` on the calling thread and up to
/// `participants - 1` pool workers, which take the next chunk as they finish one; returns when all
/// are done. `participant` (in `0..<participants`) runs one chunk at a time: it can index scratch memory.
public func runOnPool(chunks: Int, participants: Int, _ body: (_ chunk: Int, _ participant: Int) -> Void) {
    // Not escaping in fact: hk_pool_run returns only after every chunk has run. The closure travels
    // inside a struct because a bare function value stored through a pointer is re-abstracted through
    // a heap-allocated thunk on every call.
    if participants <= 1 || chunks <= 1 {
        for chunk in 0..<chunks { body(chunk, 0) }
        return
    }
    // withoutActuallyEscaping copies the closure's context to the heap: one small allocation per
    // parallel region, which the single-thread path above avoids.
    struct Job { let body: (Int, Int) -> Void }
    withoutActuallyEscaping(body) { body in
        var job = Job(body: body)
        withUnsafeMutablePointer(to: &job) { pointer in
            hk_pool_run(chunks, participants, { raw, chunk, participant in
                raw!.assumingMemoryBound(to: Job.self).pointee.body(chunk, participant)
            }, pointer)
        }
    }
}
