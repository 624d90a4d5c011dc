/// The condition a test waited for did not come true in time.
public struct ConditionTimeout: Error, CustomStringConvertible {
    public let timeout: Duration
    public var description: String { "condition not met within \(timeout)" }
}

/// Polls `condition` until it holds, for tests of concurrent code: waiting for a state instead of
/// sleeping a fixed time keeps them right on a loaded machine. Throws `ConditionTimeout` after
/// `timeout` instead of hanging.
public func waitUntil(timeout: Duration = .seconds(20), _ condition: () -> Bool) async throws {
    let start = ContinuousClock.now
    while !condition() {
        guard ContinuousClock.now - start < timeout else { throw ConditionTimeout(timeout: timeout) }
        try await Task.sleep(for: .milliseconds(2))
    }
}
