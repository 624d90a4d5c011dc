import Training

/// One of `count` disjoint parts of an input list (`--shard index/count`), chosen by a hash of each
/// path's UTF-8 bytes. FNV-1a, not Swift's `Hasher` (seeded per process): every machine and every
/// run puts a path in the same shard, so N containers given the same list cover it exactly once.
public struct InputShard: Sendable, Equatable, CustomStringConvertible {
    /// 0-based, like a Kubernetes Indexed Job's JOB_COMPLETION_INDEX.
    public let index: Int
    public let count: Int

    public init?(index: Int, count: Int) {
        guard count >= 1, index >= 0, index < count else { return nil }
        self.index = index
        self.count = count
    }

    /// Parses "I/N", e.g. "0/8".
    public init?(_ text: String) {
        let parts = text.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 2, let i = Int(parts[0]), let n = Int(parts[1]) else { return nil }
        self.init(index: i, count: n)
    }

    public var description: String { "\(index)/\(count)" }

    public func contains(_ path: String) -> Bool {
        Int(FNV1a.hash(Array(path.utf8)) % UInt64(count)) == index
    }

    /// The paths of this shard, in their original order.
    public func select(_ paths: [String]) -> [String] { paths.filter(contains) }
}
