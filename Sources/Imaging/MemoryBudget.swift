import Dispatch
import Synchronization

/// A fixed amount of memory shared by concurrent work: the decodes of the service's requests and of a
/// batch run's decode threads, the service's request bodies. Each holder first reserves what it will
/// hold (a decode what `ImageDecoder.estimatedPeakBytes` says, a body its length), waits while the
/// budget is spent, and gives it back when done, so memory stays bounded by the budget however many
/// bombs or uploads arrive at once. A reservation larger than the whole budget is cut to it: that
/// holder runs alone instead of never (the service refuses such bodies before reserving).
public final class MemoryBudget: Sendable {
    /// Which waiter a release serves.
    public enum Order: Sendable {
        /// Strict arrival order: nobody overtakes the first waiter, so a large reservation is not
        /// starved by a stream of small ones (decodes: a large image must get its turn).
        case arrival
        /// In arrival order, but a waiter that fits goes ahead of earlier ones that do not (bodies: a
        /// small upload is not held up behind 20 MB ones waiting for room; a large one waits for room
        /// only as long as its deadline allows).
        case firstFit
    }

    /// The async wait passed its deadline.
    public struct Timeout: Error, Sendable, Equatable {
        /// What was asked for (after the cut to the capacity).
        public let bytes: Int
        public let capacity: Int
    }

    /// Bytes held by one holder; give them back with `release()` (once).
    public struct Reservation: Sendable {
        private let budget: MemoryBudget
        public private(set) var bytes: Int

        fileprivate init(budget: MemoryBudget, bytes: Int) {
            self.budget = budget
            self.bytes = bytes
        }

        public func release() { budget.give(bytes) }

        /// Gives back what is held beyond `bytes` now (a body whose length was not known up front,
        /// one whose copy was just dropped); `release()` later gives back the rest.
        public mutating func shrink(to bytes: Int) {
            precondition(bytes >= 0 && bytes <= self.bytes, "shrink \(self.bytes) to \(bytes)")
            guard bytes < self.bytes else { return }
            budget.give(self.bytes - bytes)
            self.bytes = bytes
        }
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
        var waits = 0
        var timeouts = 0
    }

    public let capacity: Int
    public let order: Order
    private let state = Mutex(State())

    /// 256 MiB: with the service's ~300 MB of weights and runtime, request bodies and the network's
    /// activations, it keeps the process under a 1 GiB pod limit; a 9,999 x 9,999 bomb reduced on
    /// decode costs about 7 MB of it, a 12-megapixel photo DCT-scaled a few MB.
    public static let defaultDecodeCapacity = 256 << 20

    public init(capacity: Int, order: Order = .arrival) {
        precondition(capacity > 0, "memory budget \(capacity)")
        self.capacity = capacity
        self.order = order
    }

    /// Bytes reserved right now.
    public var inUse: Int { state.withLock { $0.inUse } }
    /// The most ever reserved at once.
    public var peakInUse: Int { state.withLock { $0.peakInUse } }
    /// Holders waiting for memory.
    public var waiting: Int { state.withLock { $0.waiters.count } }
    /// Reservations that had to wait (granted later or timed out), since the start.
    public var waits: Int { state.withLock { $0.waits } }
    /// Async waits that passed their deadline, since the start.
    public var timeouts: Int { state.withLock { $0.timeouts } }

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

    /// Grants at once (returns nil; `resume` is not called) when the bytes fit and the order lets
    /// them past whoever waits; otherwise queues the waiter and returns its id.
    private func enqueue(_ bytes: Int, resume: @escaping @Sendable (Bool) -> Void) -> UInt64? {
        state.withLock { state in
            if (order == .firstFit || state.waiters.isEmpty) && state.inUse + bytes <= capacity {
                state.inUse += bytes
                state.peakInUse = max(state.peakInUse, state.inUse)
                return nil
            }
            state.waits += 1
            state.nextID += 1
            state.waiters.append(Waiter(id: state.nextID, bytes: bytes, resume: resume))
            return state.nextID
        }
    }

    private func give(_ bytes: Int) {
        let granted = state.withLock { state -> [Waiter] in
            state.inUse -= bytes
            return Self.grantWaiting(&state, capacity: capacity, order: order)
        }
        for waiter in granted { waiter.resume(true) }
    }

    private func expire(_ id: UInt64) {
        let expired = state.withLock { state -> (Waiter?, [Waiter]) in
            guard let index = state.waiters.firstIndex(where: { $0.id == id }) else { return (nil, []) }
            let waiter = state.waiters.remove(at: index)
            state.timeouts += 1
            // The one that timed out may have been first in line, holding back smaller ones behind it.
            return (waiter, Self.grantWaiting(&state, capacity: capacity, order: order))
        }
        expired.0?.resume(false)
        for waiter in expired.1 { waiter.resume(true) }
    }

    /// Grants waiters in arrival order while they fit: under `.arrival` it stops at the first that
    /// does not (so a large reservation is not overtaken forever by small ones), under `.firstFit` it
    /// passes over it to later ones that fit.
    private static func grantWaiting(_ state: inout State, capacity: Int, order: Order) -> [Waiter] {
        var granted: [Waiter] = []
        var index = 0
        while index < state.waiters.count {
            let waiter = state.waiters[index]
            guard state.inUse + waiter.bytes <= capacity else {
                if order == .arrival { break }
                index += 1
                continue
            }
            state.waiters.remove(at: index)
            state.inUse += waiter.bytes
            state.peakInUse = max(state.peakInUse, state.inUse)
            granted.append(waiter)
        }
        return granted
    }
}
