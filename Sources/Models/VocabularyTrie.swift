// A byte trie of a WordPiece vocabulary: the greedy longest match walks a word's UTF-8 once from
// each piece's start, instead of building and hashing a String per candidate length (under
// AddressSanitizer those allocations were nearly all of the tokenizer's time).

/// Vocabulary entries by their UTF-8 bytes, for longest-prefix lookups that allocate nothing.
struct VocabularyTrie: Sendable {
    /// Node 0 is the root. Nodes are numbered breadth-first, so the children of a node are
    /// consecutive nodes, sorted by the byte that leads to them.
    private let labels: [UInt8]
    private let firstChild: [Int32]
    private let childCounts: [UInt16]
    /// The id of the entry that ends at each node, -1 where none does.
    private let ids: [Int32]

    static let root: Int32 = 0

    var nodeCount: Int { labels.count }

    /// - entries: each key's bytes and its id; equal keys must come with equal ids (one is kept).
    init(entries: [(key: [UInt8], id: Int32)]) {
        let sorted = entries.sorted { $0.key.lexicographicallyPrecedes($1.key) }
        var labels: [UInt8] = [0], firstChild: [Int32] = [0], childCounts: [UInt16] = [0], ids: [Int32] = [-1]
        // Breadth first over runs of `sorted` that share their first `depth` bytes, one run per node.
        var pending: [(node: Int, keys: Range<Int>, depth: Int)] = [(0, 0..<sorted.count, 0)]
        var next = 0
        while next < pending.count {
            let (node, keys, depth) = pending[next]
            next += 1
            var index = keys.lowerBound
            // A key that ends here sorts before the longer keys it begins.
            while index < keys.upperBound && sorted[index].key.count == depth {
                ids[node] = sorted[index].id
                index += 1
            }
            firstChild[node] = Int32(labels.count)
            while index < keys.upperBound {
                let byte = sorted[index].key[depth]
                var end = index + 1
                while end < keys.upperBound && sorted[end].key[depth] == byte { end += 1 }
                pending.append((labels.count, index..<end, depth + 1))
                labels.append(byte)
                firstChild.append(0)
                childCounts.append(0)
                ids.append(-1)
                childCounts[node] += 1
                index = end
            }
        }
        self.labels = labels
        self.firstChild = firstChild
        self.childCounts = childCounts
        self.ids = ids
    }

    /// The node reached from `node` by `byte`, nil where no key continues that way.
    @inline(__always)
    func child(of node: Int32, _ byte: UInt8) -> Int32? {
        var low = Int(firstChild[Int(node)])
        var high = low + Int(childCounts[Int(node)])
        while low < high {
            let middle = (low + high) >> 1
            let label = labels[middle]
            if label == byte { return Int32(middle) }
            if label < byte { low = middle + 1 } else { high = middle }
        }
        return nil
    }

    /// The node reached from `node` by all of `bytes`, nil where no key begins with them.
    func node(after bytes: some Sequence<UInt8>, from node: Int32 = root) -> Int32? {
        var node = node
        for byte in bytes {
            guard let next = child(of: node, byte) else { return nil }
            node = next
        }
        return node
    }

    /// The longest key that, appended to `node`'s bytes, begins `bytes[start...]` with at least one
    /// byte: its id and the offset in `bytes` where it ends.
    func longestMatch(in bytes: UnsafeBufferPointer<UInt8>, from start: Int, under node: Int32) -> (id: Int32, end: Int)? {
        var node = node, offset = start
        var match: (id: Int32, end: Int)?
        while offset < bytes.count, let next = child(of: node, bytes[offset]) {
            node = next
            offset += 1
            let id = ids[Int(node)]
            if id >= 0 { match = (id, offset) }
        }
        return match
    }
}
