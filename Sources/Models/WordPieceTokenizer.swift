// BERT WordPiece tokenization (Devlin et al. 2019; Wu et al. 2016 for WordPiece), equal to the Hugging
// Face `tokenizers` pipeline of all-MiniLM-L6-v2's tokenizer.json: BertNormalizer (clean text, CJK
// spacing, strip accents, lowercase), BertPreTokenizer (whitespace + punctuation), WordPiece (greedy
// longest match, `##` continuations, 100-character words), TemplateProcessing `[CLS] $A [SEP]`.
//
// Everything works on Unicode scalars, as the Rust implementation works on `char`s: Swift `Character`s
// (grapheme clusters) would glue combining marks to their base letter and change the splits.
// Normalization writes one scalar buffer and words are ranges of it; the longest match walks a
// word's UTF-8 in a byte trie of the vocabulary (VocabularyTrie), so a text costs a few
// allocations, not one String per candidate piece.

import Foundation

/// Settings of a BERT-style uncased WordPiece tokenizer.
public struct WordPieceConfiguration: Sendable, Equatable {
    public var lowercase = true
    /// nil follows `lowercase`, as in BertNormalizer.
    public var stripAccents: Bool? = nil
    public var splitCJKCharacters = true
    public var unknownToken = "[UNK]"
    public var classToken = "[CLS]"
    public var separatorToken = "[SEP]"
    public var paddingToken = "[PAD]"
    public var continuingPrefix = "##"
    /// Longer words (in Unicode scalars) become `[UNK]` without being split.
    public var maxCharactersPerWord = 100
    /// Total tokens including `[CLS]` and `[SEP]` (sentence-transformers' max_seq_length: 256 for
    /// all-MiniLM-L6-v2, not the 512 positions the network has).
    public var maxLength = 256

    public init() {}
}

/// Text -> token ids for BERT-family encoders.
public struct WordPieceTokenizer: Sendable {
    public let configuration: WordPieceConfiguration
    /// Token -> id, the line number in vocab.txt. String keys: an entry also matches the texts that are
    /// canonically equivalent to it (the tokenizer has always matched that way).
    let vocabulary: [String: Int32]
    /// id -> token.
    let tokens: [String]
    /// The entries by the UTF-8 of their canonical decomposition (NFD), each with the id `vocabulary`
    /// gives it: for a piece that is its own NFD, the trie finds what `vocabulary` finds.
    let trie: VocabularyTrie
    /// Where continuation pieces start in `trie`: the node of the continuing prefix (`##`), nil when
    /// no entry begins with it.
    let continuationNode: Int32?
    public let unknownID: Int32
    public let classID: Int32
    public let separatorID: Int32
    public let paddingID: Int32
    /// The most Unicode scalars a vocabulary entry has in canonical decomposition (NFD): no longer
    /// candidate can equal one (String equality is canonical equivalence, and decomposing never
    /// shortens), so the String-lookup match starts there instead of at the word's end.
    let longestTokenScalars: Int

    public var vocabularySize: Int { tokens.count }

    /// Reads vocab.txt: one token per line, the id is the (0-based) line number.
    public init(vocabularyFile url: URL, configuration: WordPieceConfiguration = WordPieceConfiguration()) throws(ModelsError) {
        let text: String
        do { text = try String(contentsOf: url, encoding: .utf8) } catch {
            throw .unreadableFile(file: url.path, reason: error.localizedDescription)
        }
        var lines = text.components(separatedBy: "\n").map { $0.hasSuffix("\r") ? String($0.dropLast()) : $0 }
        if lines.last == "" { lines.removeLast() }
        try self.init(tokens: lines, configuration: configuration, sourceName: url.path)
    }

    /// - tokens: the vocabulary in id order.
    public init(tokens: [String], configuration: WordPieceConfiguration = WordPieceConfiguration(),
                sourceName: String = "vocabulary") throws(ModelsError) {
        self.configuration = configuration
        self.tokens = tokens
        var vocabulary: [String: Int32] = [:]
        vocabulary.reserveCapacity(tokens.count)
        // First occurrence wins, as in tokenizers' vocab loading... duplicates would be a broken file.
        for (id, token) in tokens.enumerated() where vocabulary[token] == nil { vocabulary[token] = Int32(id) }
        self.vocabulary = vocabulary
        var entries: [(key: [UInt8], id: Int32)] = []
        entries.reserveCapacity(tokens.count)
        var longest = 0
        for token in tokens {
            let decomposed = token.decomposedStringWithCanonicalMapping
            longest = max(longest, decomposed.unicodeScalars.count)
            // Canonically equivalent entries share a key and the id of the first of them.
            entries.append((Array(decomposed.utf8), vocabulary[token]!))
        }
        longestTokenScalars = longest
        trie = VocabularyTrie(entries: entries)
        continuationNode = trie.node(after: configuration.continuingPrefix.decomposedStringWithCanonicalMapping.utf8)
        func id(_ token: String) throws(ModelsError) -> Int32 {
            guard let id = vocabulary[token] else { throw .invalidVocabulary(file: sourceName, reason: "no \(token) token") }
            return id
        }
        unknownID = try id(configuration.unknownToken)
        classID = try id(configuration.classToken)
        separatorID = try id(configuration.separatorToken)
        paddingID = try id(configuration.paddingToken)
    }

    /// The token string of an id (for debugging and tests).
    public func token(_ id: Int32) -> String { tokens[Int(id)] }

    /// `[CLS] pieces... [SEP]`, truncated to `maxLength` tokens in total.
    public func encode(_ text: String) -> [Int32] {
        let budget = max(0, configuration.maxLength - 2)
        var ids: [Int32] = []
        ids.reserveCapacity(min(budget, text.utf8.count) + 2)
        ids.append(classID)
        appendPieceIDs(of: text, to: &ids, limit: budget)
        ids.append(separatorID)
        return ids
    }

    /// The word pieces of `text` without special tokens or truncation.
    public func tokenize(_ text: String) -> [String] {
        var ids: [Int32] = []
        appendPieceIDs(of: text, to: &ids, limit: .max)
        return ids.map(token)
    }

    /// Appends the first `limit` piece ids of `text`: normalize, split into words, match each.
    func appendPieceIDs(of text: String, to ids: inout [Int32], limit: Int) {
        let normalized = normalize(text)
        let first = ids.count
        // The current word's UTF-8, reused: longer words are [UNK] before they are encoded.
        var utf8: [UInt8] = []
        utf8.reserveCapacity(4 * configuration.maxCharactersPerWord)
        forEachWord(in: normalized.scalars) { word in
            appendPieces(of: normalized.scalars[word], textIsDecomposed: normalized.isDecomposed, to: &ids, utf8: &utf8)
            return ids.count - first < limit
        }
        if ids.count - first > limit { ids.removeLast(ids.count - first - limit) }
    }

    // MARK: - BertNormalizer

    /// Normalized text as Unicode scalars.
    struct NormalizedText {
        var scalars: [Unicode.Scalar]
        /// Every scalar is its own canonical decomposition (NFD leaves the text as it is).
        var isDecomposed: Bool
    }

    /// Clean text, space out CJK ideographs, strip accents (NFD, drop nonspacing marks), lowercase:
    /// the order of tokenizers' BertNormalizer, in one buffer.
    func normalize(_ text: String) -> NormalizedText {
        var scalars: [Unicode.Scalar] = []
        // Enough for the cleaned text: a scalar takes at least one byte, a spaced-out ideograph
        // (three scalars) three bytes.
        scalars.reserveCapacity(text.utf8.count)
        var allBelowC0 = true
        for scalar in text.unicodeScalars {
            if scalar.value == 0 || scalar.value == 0xFFFD || Self.isControl(scalar) { continue }
            if Self.isWhitespace(scalar) {
                scalars.append(" ")
            } else if configuration.splitCJKCharacters && Self.isCJK(scalar) {
                scalars.append(" ")
                scalars.append(scalar)
                scalars.append(" ")
                allBelowC0 = false
            } else {
                scalars.append(scalar)
                if scalar.value >= 0xC0 { allBelowC0 = false }
            }
        }
        // Below U+00C0 no scalar has a canonical decomposition or is a nonspacing mark: the text is
        // its own NFD with nothing to strip, and Foundation's NFD pass is skipped (most of the time
        // of a short English text).
        var isDecomposed = allBelowC0
        if configuration.stripAccents ?? configuration.lowercase, !allBelowC0 {
            let decomposed = Self.string(scalars[...]).decomposedStringWithCanonicalMapping
            scalars.removeAll(keepingCapacity: true)
            for scalar in decomposed.unicodeScalars where scalar.properties.generalCategory != .nonspacingMark {
                scalars.append(scalar)
            }
            isDecomposed = true
        }
        if configuration.lowercase {
            // Per scalar, without context (no final-sigma rule), as Rust's char::to_lowercase.
            var index = 0
            while index < scalars.count {
                let scalar = scalars[index]
                if scalar.isASCII {
                    if scalar.value >= 0x41 && scalar.value <= 0x5A { scalars[index] = Unicode.Scalar(UInt8(scalar.value + 0x20)) }
                    index += 1
                    continue
                }
                // At most three scalars: a small String, not an allocation.
                let lowered = scalar.properties.lowercaseMapping.unicodeScalars
                if lowered.count == 1 {
                    scalars[index] = lowered[lowered.startIndex]
                    index += 1
                } else {
                    // U+0130 (I with dot above) -> i + U+0307; rare enough to shift the rest.
                    scalars.replaceSubrange(index...index, with: lowered)
                    index += lowered.count
                }
            }
        }
        // Lowercasing keeps a scalar without a canonical decomposition without one (every Unicode
        // scalar is checked by WordPieceByteMatchTests), and below U+00C0 it stays below U+00C0: only a
        // text neither decomposed nor below U+00C0 needs Foundation's NFD to tell.
        if !isDecomposed { isDecomposed = Self.isOwnDecomposition(scalars[...]) }
        return NormalizedText(scalars: scalars, isDecomposed: isDecomposed)
    }

    /// Whether NFD leaves `scalars` unchanged; then no scalar in them has a canonical decomposition
    /// (decomposing one would change the scalars, which reordering cannot undo).
    static func isOwnDecomposition(_ scalars: ArraySlice<Unicode.Scalar>) -> Bool {
        if scalars.allSatisfy({ $0.value < 0xC0 }) { return true }
        return string(scalars).decomposedStringWithCanonicalMapping.unicodeScalars.elementsEqual(scalars)
    }

    /// `scalars` as a String, written as UTF-8 in one buffer (String.UnicodeScalarView(_:) appends
    /// scalar by scalar and reallocated about once per scalar of a fuzzed kilobyte).
    static func string(_ scalars: ArraySlice<Unicode.Scalar>) -> String {
        let byteCount = scalars.reduce(0) { $0 + UTF8.width($1) }
        return String(unsafeUninitializedCapacity: byteCount) { buffer in
            var count = 0
            for scalar in scalars {
                UTF8.encode(scalar) { buffer[count] = $0; count += 1 }
            }
            return count
        }
    }

    /// BERT treats \t \n \r as whitespace, not control; other C* categories are control.
    static func isControl(_ s: Unicode.Scalar) -> Bool {
        // ASCII's C* scalars are its Cc: 0-31 and 127.
        if s.isASCII { return (s.value < 0x20 && s != "\t" && s != "\n" && s != "\r") || s.value == 0x7F }
        switch s.properties.generalCategory {
        case .control, .format, .unassigned, .privateUse, .surrogate: return true
        default: return false
        }
    }

    /// Unicode White_Space, as Rust's char::is_whitespace.
    static func isWhitespace(_ s: Unicode.Scalar) -> Bool {
        // ASCII's White_Space: \t \n \u{B} \u{C} \r and the space.
        if s.isASCII { return s == " " || (s.value >= 0x09 && s.value <= 0x0D) }
        return s.properties.isWhitespace
    }

    /// The CJK Unified Ideographs blocks BERT spaces out (not Hangul, Hiragana or Katakana).
    static func isCJK(_ s: Unicode.Scalar) -> Bool {
        switch s.value {
        case 0x4E00...0x9FFF, 0x3400...0x4DBF, 0x20000...0x2A6DF, 0x2A700...0x2B73F, 0x2B740...0x2B81F,
             0x2B820...0x2CEAF, 0xF900...0xFAFF, 0x2F800...0x2FA1F: return true
        default: return false
        }
    }

    // MARK: - BertPreTokenizer

    /// Calls `body` with the range of each word of `text`, in order, until it returns false: runs
    /// split on whitespace (dropped) and punctuation (kept as one-scalar words).
    func forEachWord(in text: [Unicode.Scalar], _ body: (Range<Int>) -> Bool) {
        var start = 0
        for (index, scalar) in text.enumerated() {
            let isWhitespace = Self.isWhitespace(scalar)
            guard isWhitespace || Self.isPunctuation(scalar) else { continue }
            if start < index && !body(start..<index) { return }
            if !isWhitespace && !body(index..<index + 1) { return }
            start = index + 1
        }
        if start < text.count { _ = body(start..<text.count) }
    }

    /// BERT's punctuation: all non-alphanumeric printable ASCII (so `$`, `+`, `^`, `` ` `` count, which
    /// Unicode calls symbols) plus every Unicode P* category.
    static func isPunctuation(_ s: Unicode.Scalar) -> Bool {
        switch s.value {
        case 33...47, 58...64, 91...96, 123...126: return true
        // Every ASCII P* scalar is in the ranges above.
        case 0..<128: return false
        default: break
        }
        switch s.properties.generalCategory {
        case .connectorPunctuation, .dashPunctuation, .openPunctuation, .closePunctuation,
             .initialPunctuation, .finalPunctuation, .otherPunctuation: return true
        default: return false
        }
    }

    // MARK: - WordPiece

    /// Appends the pieces of `word`, or one `[UNK]` when it is too long or any rest of it matches no
    /// entry. Greedy longest-match-first.
    func appendPieces(of word: ArraySlice<Unicode.Scalar>, textIsDecomposed: Bool, to ids: inout [Int32], utf8: inout [UInt8]) {
        if word.count > configuration.maxCharactersPerWord {
            ids.append(unknownID)
        } else if Self.piecesAreOwnDecomposition(word, textIsDecomposed: textIsDecomposed) {
            appendPiecesByBytes(of: word, to: &ids, utf8: &utf8)
        } else {
            ids.append(contentsOf: wordPiecesByStringLookup(word))
        }
    }

    /// Whether every piece `word` can be cut into, with or without the continuing prefix before it,
    /// is its own NFD, so that comparing its bytes with the trie's keys finds the entries String
    /// equality finds: no scalar has a decomposition, and none has a combining class (a mark at the
    /// start of a piece would be reordered with the prefix's end).
    static func piecesAreOwnDecomposition(_ word: ArraySlice<Unicode.Scalar>, textIsDecomposed: Bool) -> Bool {
        // Below U+0300 every combining class is 0.
        guard word.allSatisfy({ $0.value < 0x300 || $0.properties.canonicalCombiningClass == .notReordered }) else { return false }
        return textIsDecomposed || isOwnDecomposition(word)
    }

    /// The greedy match on the word's UTF-8 in the trie; `utf8` is scratch space.
    func appendPiecesByBytes(of word: ArraySlice<Unicode.Scalar>, to ids: inout [Int32], utf8: inout [UInt8]) {
        utf8.removeAll(keepingCapacity: true)
        for scalar in word { UTF8.encode(scalar) { utf8.append($0) } }
        let first = ids.count
        let matched = utf8.withUnsafeBufferPointer { bytes in
            var start = 0
            var node: Int32? = VocabularyTrie.root
            while start < bytes.count {
                // A key is whole UTF-8, so a match that starts on a scalar also ends on one.
                guard let from = node, let match = trie.longestMatch(in: bytes, from: start, under: from) else { return false }
                ids.append(match.id)
                start = match.end
                node = continuationNode
            }
            return true
        }
        if !matched {
            ids.removeSubrange(first...)
            ids.append(unknownID)
        }
    }

    /// The greedy match with a String per candidate, looked up in `vocabulary` (so canonically
    /// equivalent spellings match): for words whose pieces are not their own NFD.
    func wordPiecesByStringLookup(_ word: ArraySlice<Unicode.Scalar>) -> [Int32] {
        let scalarCount = word.count
        if scalarCount > configuration.maxCharactersPerWord { return [unknownID] }
        // The word's UTF-8 and where each scalar starts in it: a candidate is one slice, decoded at
        // once (appending scalar by scalar was most of the tokenizer's time).
        var utf8: [UInt8] = []
        utf8.reserveCapacity(4 * scalarCount)
        var offsets = [0]
        offsets.reserveCapacity(scalarCount + 1)
        for scalar in word {
            UTF8.encode(scalar) { utf8.append($0) }
            offsets.append(utf8.count)
        }
        var pieces: [Int32] = []
        var start = 0
        let prefixScalars = configuration.continuingPrefix.unicodeScalars.count
        while start < scalarCount {
            // Longer candidates cannot be in the vocabulary: without this bound a 100-scalar word
            // built 5,050 candidate strings.
            var end = min(scalarCount, start + max(0, longestTokenScalars - (start > 0 ? prefixScalars : 0)))
            var match: Int32?
            while end > start {
                let piece = String(decoding: utf8[offsets[start]..<offsets[end]], as: UTF8.self)
                let candidate = start > 0 ? configuration.continuingPrefix + piece : piece
                if let id = vocabulary[candidate] {
                    match = id
                    break
                }
                end -= 1
            }
            guard let match else { return [unknownID] }
            pieces.append(match)
            start = end
        }
        return pieces
    }
}

extension WordPieceTokenizer: TextTokenizer {
    public var maxLength: Int { configuration.maxLength }
}
