// Byte-level byte-pair encoding (Sennrich et al. 2016 for BPE; Radford et al. 2019, GPT-2, for running it
// over UTF-8 bytes shown as printable characters): the model part of GPT-2- and CLIP-style tokenizers,
// equal to Hugging Face `tokenizers`' `BPE` model loaded from vocab.json + merges.txt (models/bpe/model.rs:
// merges applied lowest rank first, ties leftmost first; an optional end-of-word suffix on the last symbol).
//
// A word is merged with a priority queue over a linked list of symbols, O(n log n) in its length, so a
// 10,000-character word costs milliseconds, not the O(n^2) of rescanning all pairs after every merge.

import Foundation

/// vocab.json + merges.txt of a byte-level BPE tokenizer, and the merge loop.
public struct ByteLevelBPE: Sendable {
    /// id -> token string, as in vocab.json.
    public let tokens: [String]
    /// token string -> id.
    let vocabulary: [String: Int32]
    /// (left id << 32 | right id) -> (rank << 32 | merged id).
    let merges: [UInt64: UInt64]
    /// Appended to the last symbol of every word (`</w>` for CLIP, "" for GPT-2).
    public let endOfWordSuffix: String
    /// byte -> id of its symbol, and of its symbol with the end-of-word suffix.
    let byteIDs: [Int32]
    let finalByteIDs: [Int32]
    private let cache = WordCache()

    public var vocabularySize: Int { tokens.count }

    /// Strict load: a missing file, malformed JSON, a vocabulary whose ids are not 0..<count, a merges line
    /// that is not `left right`, a merge whose halves or product are not in the vocabulary, a duplicate
    /// merge, or a byte without its symbol is a `ModelsError` naming the file and the line or token.
    public init(vocabularyFile: URL, mergesFile: URL, endOfWordSuffix: String) throws(ModelsError) {
        let vocabulary = try Self.readVocabulary(vocabularyFile)
        let merges = try Self.readMerges(mergesFile)
        try self.init(vocabulary: vocabulary, merges: merges, endOfWordSuffix: endOfWordSuffix,
                      vocabularyName: vocabularyFile.path, mergesName: mergesFile.path)
    }

    /// - vocabulary: token -> id, ids exactly 0..<count.
    /// - merges: (left, right) in rank order, each with its merges.txt line number for error messages.
    public init(vocabulary: [String: Int32], merges: [(left: String, right: String, line: Int)], endOfWordSuffix: String,
                vocabularyName: String = "vocab.json", mergesName: String = "merges.txt") throws(ModelsError) {
        var tokens = [String?](repeating: nil, count: vocabulary.count)
        for (token, id) in vocabulary {
            guard id >= 0, Int(id) < vocabulary.count, tokens[Int(id)] == nil else {
                throw .invalidVocabulary(file: vocabularyName, reason: "id \(id) of \(Self.quoted(token)) is not unique in 0..<\(vocabulary.count)")
            }
            tokens[Int(id)] = token
        }
        self.tokens = tokens.map { $0! }
        self.vocabulary = vocabulary
        self.endOfWordSuffix = endOfWordSuffix

        var table: [UInt64: UInt64] = [:]
        table.reserveCapacity(merges.count)
        for (rank, merge) in merges.enumerated() {
            func id(_ token: String, _ role: String) throws(ModelsError) -> Int32 {
                guard let id = vocabulary[token] else {
                    throw .invalidVocabulary(file: mergesName, reason: "line \(merge.line): \(role) \(Self.quoted(token)) is not in the vocabulary")
                }
                return id
            }
            let key = Self.pairKey(try id(merge.left, "left symbol"), try id(merge.right, "right symbol"))
            let merged = try id(merge.left + merge.right, "merged token")
            guard table[key] == nil else {
                throw .invalidVocabulary(file: mergesName, reason: "line \(merge.line): \(Self.quoted(merge.left + " " + merge.right)) is merged twice")
            }
            table[key] = UInt64(rank) << 32 | UInt64(UInt32(merged))
        }
        self.merges = table

        var byteIDs: [Int32] = []
        var finalByteIDs: [Int32] = []
        for symbol in Self.byteSymbols {
            let plain = String(Character(symbol))
            guard let id = vocabulary[plain], let final = vocabulary[plain + endOfWordSuffix] else {
                let missing = vocabulary[plain] == nil ? plain : plain + endOfWordSuffix
                throw .invalidVocabulary(file: vocabularyName, reason: "no token for the byte symbol \(Self.quoted(missing))")
            }
            byteIDs.append(id)
            finalByteIDs.append(final)
        }
        self.byteIDs = byteIDs
        self.finalByteIDs = finalByteIDs
    }

    /// The id of a token string, if the vocabulary has it.
    public func id(of token: String) -> Int32? { vocabulary[token] }

    // MARK: - Encoding

    /// The ids of one pre-tokenized word given as its UTF-8 bytes (memoized for short words).
    public func encodeWord(_ utf8: [UInt8]) -> [Int32] {
        guard !utf8.isEmpty else { return [] }
        let cacheable = utf8.count <= WordCache.maxWordBytes
        if cacheable, let hit = cache[utf8] { return hit }
        let ids = merge(utf8)
        if cacheable { cache[utf8] = ids }
        return ids
    }

    /// Applies the merges to the word's byte symbols: lowest rank first, the leftmost of equal ranks first.
    func merge(_ utf8: [UInt8]) -> [Int32] {
        let count = utf8.count
        var ids = utf8.map { byteIDs[Int($0)] }
        ids[count - 1] = finalByteIDs[Int(utf8[count - 1])]
        if count == 1 { return ids }
        // Doubly linked list over positions; `count` is the end marker, -1 the start marker.
        var next = Array(1...count)
        var previous = Array(-1..<(count - 1))
        var removed = [Bool](repeating: false, count: count)
        // Min-heap of rank << 32 | position: a pair's rank decides, then its position.
        var queue = MinHeap(capacity: count)
        func enqueue(_ position: Int) {
            let right = next[position]
            guard right < count, let merge = merges[Self.pairKey(ids[position], ids[right])] else { return }
            queue.push((merge >> 32) << 32 | UInt64(position))
        }
        for position in 0..<(count - 1) { enqueue(position) }
        while let top = queue.pop() {
            let position = Int(top & 0xFFFF_FFFF)
            let rank = top >> 32
            // Entries go stale when a neighbour merged first; the pair now there must still be this merge.
            guard !removed[position], next[position] < count,
                  let merge = merges[Self.pairKey(ids[position], ids[next[position]])], merge >> 32 == rank else { continue }
            let right = next[position]
            ids[position] = Int32(truncatingIfNeeded: merge & 0xFFFF_FFFF)
            removed[right] = true
            next[position] = next[right]
            if next[right] < count { previous[next[right]] = position }
            if previous[position] >= 0 { enqueue(previous[position]) }
            enqueue(position)
        }
        // Position 0 is never removed: a merge keeps its left symbol.
        var result: [Int32] = []
        var position = 0
        while position < count {
            result.append(ids[position])
            position = next[position]
        }
        return result
    }

    static func pairKey(_ left: Int32, _ right: Int32) -> UInt64 {
        UInt64(UInt32(bitPattern: left)) << 32 | UInt64(UInt32(bitPattern: right))
    }

    // MARK: - GPT-2's byte-to-unicode table

    /// The symbol that stands for each byte: printable Latin-1 bytes (`!`...`~`, `¡`...`¬`, `®`...`ÿ`) stand
    /// for themselves, the other 68 (controls, space, soft hyphen) for U+0100... in byte order, so that no
    /// symbol is whitespace or a control character (GPT-2's `bytes_to_unicode`).
    public static let byteSymbols: [Unicode.Scalar] = {
        var symbols = [Unicode.Scalar](repeating: "\0", count: 256)
        var extra: UInt32 = 0
        for byte in 0..<256 {
            switch byte {
            case 0x21...0x7E, 0xA1...0xAC, 0xAE...0xFF:
                symbols[byte] = Unicode.Scalar(UInt32(byte))!
            default:
                symbols[byte] = Unicode.Scalar(256 + extra)!
                extra += 1
            }
        }
        return symbols
    }()

    // MARK: - Reading the files

    static func readVocabulary(_ url: URL) throws(ModelsError) -> [String: Int32] {
        let data = try readFile(url)
        let vocabulary: [String: Int32]
        do { vocabulary = try JSONDecoder().decode([String: Int32].self, from: data) } catch {
            throw .invalidVocabulary(file: url.path, reason: "not a JSON object of token -> integer id (\(describe(error)))")
        }
        guard !vocabulary.isEmpty else { throw .invalidVocabulary(file: url.path, reason: "empty vocabulary") }
        return vocabulary
    }

    private static func describe(_ error: any Error) -> String {
        switch error as? DecodingError {
        case .dataCorrupted(let context)?:
            return context.underlyingError.map { "\(context.debugDescription) \($0.localizedDescription)" } ?? context.debugDescription
        case .typeMismatch(_, let context)?, .valueNotFound(_, let context)?:
            let key = context.codingPath.last.map { " at \(quoted($0.stringValue))" } ?? ""
            return "\(context.debugDescription)\(key)"
        default:
            return error.localizedDescription
        }
    }

    /// merges.txt: an optional `#version` first line, then one `left right` pair per line (a final newline
    /// allowed, CRLF accepted), as tokenizers' `convert_merges_to_hashmap` reads it.
    static func readMerges(_ url: URL) throws(ModelsError) -> [(left: String, right: String, line: Int)] {
        let data = try readFile(url)
        guard let text = String(data: data, encoding: .utf8) else {
            throw .invalidVocabulary(file: url.path, reason: "not UTF-8 text")
        }
        var lines = text.split(separator: "\n", omittingEmptySubsequences: false)
        if lines.last == "" { lines.removeLast() }
        var merges: [(left: String, right: String, line: Int)] = []
        merges.reserveCapacity(lines.count)
        for (index, rawLine) in lines.enumerated() {
            let line = rawLine.hasSuffix("\r") ? rawLine.dropLast() : rawLine
            if index == 0 && line.hasPrefix("#version") { continue }
            let parts = line.split(separator: " ", omittingEmptySubsequences: false)
            guard parts.count == 2, !parts[0].isEmpty, !parts[1].isEmpty else {
                throw .invalidVocabulary(file: url.path, reason: "line \(index + 1) is \(quoted(String(line.prefix(80)))), expected two symbols separated by one space")
            }
            merges.append((String(parts[0]), String(parts[1]), index + 1))
        }
        return merges
    }

    static func readFile(_ url: URL) throws(ModelsError) -> Data {
        guard FileManager.default.fileExists(atPath: url.path) else {
            throw .unreadableFile(file: url.path, reason: "no such file")
        }
        do { return try Data(contentsOf: url) } catch {
            throw .unreadableFile(file: url.path, reason: error.localizedDescription)
        }
    }

    static func quoted(_ token: String) -> String {
        "\"" + token.unicodeScalars.map { $0.properties.generalCategory == .control ? $0.escaped(asASCII: true) : String($0) }.joined() + "\""
    }
}

/// Word -> ids, shared by the copies of a tokenizer (a class behind a lock, so `encode` stays non-mutating
/// and Sendable). Bounded like tokenizers' BPE cache: once full, new words are computed but not stored.
final class WordCache: @unchecked Sendable {
    static let capacity = 10_000
    static let maxWordBytes = 64
    private var entries: [[UInt8]: [Int32]] = [:]
    private let lock = NSLock()

    subscript(word: [UInt8]) -> [Int32]? {
        get { lock.withLock { entries[word] } }
        set {
            lock.withLock {
                if entries.count < Self.capacity { entries[word] = newValue }
            }
        }
    }
}

/// A binary min-heap of UInt64 keys.
struct MinHeap {
    private var items: [UInt64] = []

    init(capacity: Int) { items.reserveCapacity(capacity) }

    mutating func push(_ item: UInt64) {
        items.append(item)
        var child = items.count - 1
        while child > 0 {
            let parent = (child - 1) / 2
            if items[parent] <= items[child] { break }
            items.swapAt(parent, child)
            child = parent
        }
    }

    mutating func pop() -> UInt64? {
        guard let top = items.first else { return nil }
        let last = items.removeLast()
        if !items.isEmpty {
            items[0] = last
            var parent = 0
            while true {
                let left = 2 * parent + 1
                guard left < items.count else { break }
                let right = left + 1
                let smaller = right < items.count && items[right] < items[left] ? right : left
                if items[parent] <= items[smaller] { break }
                items.swapAt(parent, smaller)
                parent = smaller
            }
        }
        return top
    }
}
