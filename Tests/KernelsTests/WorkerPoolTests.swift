import Foundation
import Synchronization
import Testing
@testable import Kernels

@Suite struct WorkerPoolTests {
    /// Every chunk runs exactly once, and a participant never runs two chunks at once (it indexes
    /// per-thread scratch memory in EfficientNetLite's lanes).
    @Test func everyChunkOnceAndParticipantsExclusive() {
        for participants in [1, 2, 3, 8] {
            let chunks = 1000
            // [runs per chunk, participant currently inside, overlaps, out of range]
            let state = Mutex((runs: [Int](repeating: 0, count: chunks), inside: [Bool](repeating: false, count: participants),
                               overlaps: 0, outOfRange: 0))
            runOnPool(chunks: chunks, participants: participants) { chunk, participant in
                let valid = state.withLock { s -> Bool in
                    s.runs[chunk] += 1
                    guard participant >= 0 && participant < participants else { s.outOfRange += 1; return false }
                    if s.inside[participant] { s.overlaps += 1 }
                    s.inside[participant] = true
                    return true
                }
                guard valid else { return }
                var spin = 0.0
                for i in 0..<(chunk % 7) * 100 { spin += Double(i) }
                state.withLock { s in s.inside[participant] = spin < 0 }
            }
            state.withLock { s in
                #expect(s.runs.allSatisfy { $0 == 1 }, "participants \(participants)")
                #expect(s.overlaps == 0 && s.outOfRange == 0, "participants \(participants)")
            }
        }
    }

    /// A parallelFor inside a pool job (nested) and jobs from several threads at once (the service runs
    /// concurrent forwards) must complete, running inline when the pool is taken.
    @Test func nestedAndConcurrentCallersComplete() async {
        final class Counter: Sendable { let value = Atomic<Int>(0) }
        let total = Counter()
        await withTaskGroup(of: Void.self) { group in
            for _ in 0..<4 {
                group.addTask {
                    for _ in 0..<200 {
                        parallelFor(64, threads: 2) { outer in
                            for _ in outer {
                                parallelFor(4, threads: 2) { inner in total.value.add(inner.count, ordering: .relaxed) }
                            }
                        }
                    }
                }
            }
        }
        #expect(total.value.load(ordering: .relaxed) == 4 * 200 * 64 * 4)
    }
}
