import Dispatch
import Synchronization

/// A fixed amount of memory shared by concurrent decodes (the service's requests, a batch run's
/// decode threads). Each decode first reserves what `ImageDecoder.estimatedPeakBytes` says it will
/// hold, waits in arrival order while the budget is spent, and gives it back when done, so memory
/// stays bounded by the budget however many bombs arrive at once. A reservation larger than the whole
/// budget is cut to it: that decode runs alone instead of never.
public final class DecodeBudget: Sendable {
    /// The async wait passed its deadline.
    public struct Timeout: Error, Sendable, Equatable {
        /// What was asked for (after the cut to the capacity).
        public let bytes: Int
        public let capacity: Int
    }

    /// Bytes held by one decode; give them back with `release()` (once).
    public struct Reservation: Sendable {
        fileprivate let budget: DecodeBudget
        public let bytes: Int
        public func release() { budget.give(bytes) }
    }

    private struct Waiter {
        let id: UInt64
        let bytes: Int
        /// true: granted (the bytes are already counted as in use); false: timed out.
        let resume: @Sendable (Bool) -> Void
    }

    private struct State {
        var inUse = 0
        var nextID: UInt64 = 0
        var waiters: [Waiter] = []
        var peakInUse = 0
    }

    public let capacity: Int
    private let state = Mutex(State())

    /// 256 MiB: with the service's ~300 MB of weights and runtime, request bodies and the network's
    /// activations, it keeps the process under a 1 GiB pod limit; a 9,999 x 9,999 bomb reduced on
    /// decode costs about 7 MB of it, a 12-megapixel photo DCT-scaled a few MB.
    public static let defaultCapacity = 256 << 20

    public init(capacity: Int) {
        precondition(capacity > 0, "decode budget \(capacity)")
        self.capacity = capacity
    }

    /// Bytes reserved right now.
    public var inUse: Int { state.withLock { $0.inUse } }
    /// The most ever reserved at once.
    public var peakInUse: Int { state.withLock { $0.peakInUse } }
    /// Decodes waiting for memory.
    public var waiting: Int { state.withLock { $0.waiters.count } }

    /// Waits (suspending, not blocking a thread) until `bytes` fit, or throws `Timeout` once
    /// `timeout` has passed; nil waits as long as it takes.
    public func reserve(_ bytes: Int, timeout: Duration?) async throws(Timeout) -> Reservation {
        let bytes = clamp(bytes)
        let granted: Bool = await withCheckedContinuation { (continuation: CheckedContinuation<Bool, Never>) in
            guard let id = enqueue(bytes, resume: { continuation.resume(returning: $0) }) else {
                continuation.resume(returning: true)
                return
            }
            if let timeout {
                Task {
                    try? await Task.sleep(for: timeout)
                    self.expire(id)
                }
            }
        }
        if !granted { throw Timeout(bytes: bytes, capacity: capacity) }
        return Reservation(budget: self, bytes: bytes)
    }

    /// Blocks the calling thread until `bytes` fit (batch runs' decode threads, which are not on
    /// Swift's cooperative pool).
    public func reserveBlocking(_ bytes: Int) -> Reservation {
        let bytes = clamp(bytes)
        let semaphore = DispatchSemaphore(value: 0)
        if enqueue(bytes, resume: { _ in semaphore.signal() }) != nil { semaphore.wait() }
        return Reservation(budget: self, bytes: bytes)
    }

    /// Reserves, runs `body`, releases (also when it throws).
    public func withReservation<T, E: Error>(_ bytes: Int, _ body: () throws(E) -> T) throws(E) -> T {
        let reservation = reserveBlocking(bytes)
        defer { reservation.release() }
        return try body()
    }

    private func clamp(_ bytes: Int) -> Int { min(max(bytes, 1), capacity) }

    /// Grants at once (returns nil; `resume` is not called) when nobody waits and the bytes fit;
    /// otherwise queues the waiter and returns its id.
    private func enqueue(_ bytes: Int, resume: @escaping @Sendable (Bool) -> Void) -> UInt64? {
        state.withLock { state in
            if state.waiters.isEmpty && state.inUse + bytes <= capacity {
                state.inUse += bytes
                state.peakInUse = max(state.peakInUse, state.inUse)
                return nil
            }
            state.nextID += 1
            state.waiters.append(Waiter(id: state.nextID, bytes: bytes, resume: resume))
            return state.nextID
        }
    }

    private func give(_ bytes: Int) {
        let granted = state.withLock { state -> [Waiter] in
            state.inUse -= bytes
            return Self.grantWaiting(&state, capacity: capacity)
        }
        for waiter in granted { waiter.resume(true) }
    }

    private func expire(_ id: UInt64) {
        let expired = state.withLock { state -> (Waiter?, [Waiter]) in
            guard let index = state.waiters.firstIndex(where: { $0.id == id }) else { return (nil, []) }
            let waiter = state.waiters.remove(at: index)
            // The one that timed out may have been first in line, holding back smaller ones behind it.
            return (waiter, Self.grantWaiting(&state, capacity: capacity))
        }
        expired.0?.resume(false)
        for waiter in expired.1 { waiter.resume(true) }
    }

    /// Strict arrival order: grants from the front while the first waiter fits, so a large decode
    /// is not overtaken forever by small ones.
    private static func grantWaiting(_ state: inout State, capacity: Int) -> [Waiter] {
        var granted: [Waiter] = []
        while let first = state.waiters.first, state.inUse + first.bytes <= capacity {
            state.waiters.removeFirst()
            state.inUse += first.bytes
            state.peakInUse = max(state.peakInUse, state.inUse)
            granted.append(first)
        }
        return granted
    }
}
