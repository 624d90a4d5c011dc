import Testing
@testable import Models

/// The greedy match starts at the longest vocabulary entry (in canonical decomposition) instead of
/// the word's end; the pieces must be those of the unbounded search.
@Suite struct WordPieceMatchBoundTests {
    func tokenizer(_ extra: [String]) throws -> WordPieceTokenizer {
        try WordPieceTokenizer(tokens: ["[PAD]", "[UNK]", "[CLS]", "[SEP]"] + extra)
    }

    /// The unbounded greedy longest match, as the tokenizer did it before the bound.
    func unboundedPieces(_ tokenizer: WordPieceTokenizer, _ word: String) -> [String] {
        let scalars = Array(word.unicodeScalars)
        var pieces: [String] = [], start = 0
        while start < scalars.count {
            var end = scalars.count, match: String?
            while end > start {
                var candidate = start > 0 ? "##" : ""
                candidate.unicodeScalars.append(contentsOf: scalars[start..<end])
                if tokenizer.vocabulary[candidate] != nil { match = candidate; break }
                end -= 1
            }
            guard let match else { return ["[UNK]"] }
            pieces.append(tokenizer.token(tokenizer.vocabulary[match]!))
            start = end
        }
        return pieces
    }

    @Test func aLongWordSplitsAsTheUnboundedSearchSplitsIt() throws {
        let tokenizer = try tokenizer(["ab", "##ab", "##c", "a", "##b"])
        #expect(tokenizer.longestTokenScalars == 5)  // "[PAD]"
        for word in ["ababababababc", "abababababababababab", "abx", "a" + String(repeating: "b", count: 40)] {
            #expect(tokenizer.tokenize(word) == unboundedPieces(tokenizer, word), "\(word)")
        }
        #expect(tokenizer.tokenize("ababababababc") == ["ab", "##ab", "##ab", "##ab", "##ab", "##ab", "##c"])
    }

    /// Normalization decomposes Hangul syllables into jamo (8 scalars for 한국어), which still equal
    /// the precomposed entry (3 scalars): the bound counts decomposed scalars.
    @Test func aDecomposedWordStillMatchesItsPrecomposedEntry() throws {
        let tokenizer = try tokenizer(["한국어"])
        #expect(tokenizer.longestTokenScalars == 8)
        #expect(tokenizer.tokenize("한국어") == ["한국어"])
    }
}
