import Dispatch
import Foundation
import Synchronization
import Testing
import TestSupport
@testable import Imaging

/// The memory budget concurrent decodes and request bodies share, and the header-only estimates decodes reserve.
@Suite("Memory budget")
struct MemoryBudgetTests {
    @Test("a reservation that does not fit waits for a release; arrival order is kept")
    func waitsForRelease() async throws {
        let budget = MemoryBudget(capacity: 100)
        let first = try await budget.reserve(70, timeout: nil)
        // Each returns the instant it was granted.
        async let second: ContinuousClock.Instant = {
            let r = try await budget.reserve(60, timeout: .seconds(30))
            defer { r.release() }
            return ContinuousClock.now
        }()
        // The third fits beside the first but arrived after the second: it must not overtake it.
        try await waitUntil { budget.waiting == 1 }
        async let third: ContinuousClock.Instant = {
            let r = try await budget.reserve(20, timeout: .seconds(30))
            defer { r.release() }
            return ContinuousClock.now
        }()
        try await waitUntil { budget.waiting == 2 }
        #expect(budget.waiting == 2 && budget.inUse == 70)
        let released = ContinuousClock.now
        first.release()
        let (secondGranted, thirdGranted) = try await (second, third)
        #expect(secondGranted >= released && thirdGranted >= released)
        #expect(budget.inUse == 0 && budget.peakInUse <= 100)
    }

    @Test("a wait past its timeout throws, and the waiters behind it go on")
    func timeoutThrows() async throws {
        let budget = MemoryBudget(capacity: 100)
        let held = try await budget.reserve(90, timeout: nil)
        await #expect(throws: MemoryBudget.Timeout(bytes: 50, capacity: 100)) {
            _ = try await budget.reserve(50, timeout: .milliseconds(50))
        }
        #expect(budget.waiting == 0 && budget.inUse == 90)
        // Head of line times out; the small one behind it fits and is granted at once then.
        async let large: Void = { _ = try? await budget.reserve(80, timeout: .milliseconds(100)) }()
        try await waitUntil { budget.waiting == 1 }
        async let small = budget.reserve(10, timeout: .seconds(30))
        await large
        let granted = try await small
        #expect(granted.bytes == 10 && budget.inUse == 100)
        granted.release()
        held.release()
        #expect(budget.inUse == 0)
    }

    @Test("first fit: a waiter that fits goes ahead of an earlier one that does not; arrival order does not")
    func firstFitOvertakes() async throws {
        for order in [MemoryBudget.Order.firstFit, .arrival] {
            let budget = MemoryBudget(capacity: 100, order: order)
            let held = try await budget.reserve(70, timeout: nil)
            // The large one cannot time out during the test (30 s): it is granted only when `held` is
            // released below, however slowly a loaded machine runs the steps before.
            async let large = try? await budget.reserve(60, timeout: .seconds(30))
            try await waitUntil { budget.waiting == 1 }
            let small = try? await budget.reserve(20, timeout: .milliseconds(100))
            if order == .firstFit {
                #expect(small?.bytes == 20 && budget.waiting == 1)
            } else {
                #expect(small == nil)
            }
            small?.release()
            held.release()
            let granted = await large
            #expect(granted?.bytes == 60)
            granted?.release()
            #expect(budget.inUse == 0 && budget.waits == (order == .firstFit ? 1 : 2))
        }
    }

    @Test("shrinking a reservation gives back the difference at once and serves waiters; release gives back the rest")
    func shrinkGivesBack() async throws {
        let budget = MemoryBudget(capacity: 100, order: .firstFit)
        var held = try await budget.reserve(100, timeout: nil)
        async let waiter = budget.reserve(40, timeout: .seconds(30))
        try await waitUntil { budget.waiting == 1 }
        held.shrink(to: 60)
        let granted = try await waiter
        #expect(held.bytes == 60 && budget.inUse == 100)
        held.release()
        granted.release()
        #expect(budget.inUse == 0 && budget.peakInUse == 100)
    }

    @Test("a reservation larger than the budget is cut to it and runs alone")
    func oversizedRunsAlone() async throws {
        let budget = MemoryBudget(capacity: 100)
        let huge = try await budget.reserve(1_000, timeout: .seconds(1))
        #expect(huge.bytes == 100 && budget.inUse == 100)
        huge.release()
    }

    @Test("blocking reservations from many threads never hold more than the budget together")
    func blockingNeverExceeds() {
        let budget = MemoryBudget(capacity: 1_000)
        let current = Atomic<Int>(0), worst = Atomic<Int>(0)
        DispatchQueue.concurrentPerform(iterations: 64) { i in
            let bytes = 100 + (i * 37) % 400
            budget.withReservation(bytes) {
                let now = current.add(bytes, ordering: .relaxed).newValue
                _ = worst.max(now, ordering: .relaxed)
                usleep(500)
                current.subtract(bytes, ordering: .relaxed)
            }
        }
        #expect(worst.load(ordering: .relaxed) <= 1_000)
        #expect(budget.peakInUse <= 1_000 && budget.inUse == 0)
    }

    @Test("the header estimate bounds the measured peak (PNG plain, interlaced, RGBA, reduced; JPEG)")
    func estimateBoundsPeak() throws {
        let cases: [([UInt8], String, Int?)] = [
            (ZeroPNG.make(width: 9_999, height: 9_999, colorType: .rgb, interlaced: false), "bomb.png", 256),
            (ZeroPNG.make(width: 3_000, height: 2_000, colorType: .rgba, interlaced: true), "interlaced.png", 224),
            (ZeroPNG.make(width: 800, height: 600, colorType: .rgba, interlaced: false), "exact.png", nil),
            (try TestFiles.bytes(TestFiles.fixture("jpeg_643x481.jpg")), "photo.jpg", 12),
        ]
        for (bytes, name, side) in cases {
            let options = DecodeOptions(minimumSide: side)
            let estimate = try bytes.withUnsafeBytes { try ImageDecoder.estimate(bytes: $0, name: name, options: options) }
            let decoded = try ImageDecoder.decodeDetailed(bytes: bytes, name: name, options: options)
            #expect(estimate.width == decoded.image.width && estimate.height == decoded.image.height, "\(name)")
            #expect(estimate.reductionFactor == decoded.reductionFactor, "\(name)")
            if name.hasSuffix(".png") {  // libjpeg's own allocations are not counted in peakDecodeBytes
                #expect(estimate.decoderBytes >= decoded.peakDecodeBytes, "\(name): estimate \(estimate.decoderBytes) < peak \(decoded.peakDecodeBytes)")
                #expect(estimate.decoderBytes < 2 * decoded.peakDecodeBytes + 200_000, "\(name): estimate \(estimate.decoderBytes) far above peak \(decoded.peakDecodeBytes)")
            }
        }
    }

    @Test("the estimate runs the header checks: a bomb over the pixel limit throws tooLarge, nothing decoded")
    func estimateChecksHeader() throws {
        let path = TestFiles.fixture("png_bomb_100000x100000.png")
        let bytes = try TestFiles.bytes(path)
        #expect(throws: ImagingError.tooLarge(path: path, width: 100_000, height: 100_000, limit: DecodeOptions.defaultMaxPixels)) {
            _ = try bytes.withUnsafeBytes { try ImageDecoder.estimate(bytes: $0, name: path) }
        }
    }
}
