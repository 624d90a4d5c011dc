import Foundation
import Testing
import TestSupport
@testable import Models

/// The tokenizer matches pieces on UTF-8 bytes in a trie of the vocabulary's NFD spellings and
/// normalizes into one buffer; its output must be what the String-per-candidate tokenizer gave
/// (the ids in tokenizer_string_lookup_cases.json were dumped from it) and what the String lookup,
/// still the path for words that are not their own NFD, gives.
@Suite struct WordPieceByteMatchTests {
    let miniLM: WordPieceTokenizer

    init() throws {
        let vocabulary = try Golden.asset("weights/all-minilm-l6-v2/vocab.txt", fetchWith: "make weights")
        miniLM = try WordPieceTokenizer(vocabularyFile: vocabulary)
    }

    func tokenizer(_ extra: [String], _ configuration: WordPieceConfiguration = WordPieceConfiguration()) throws -> WordPieceTokenizer {
        try WordPieceTokenizer(tokens: ["[PAD]", "[UNK]", "[CLS]", "[SEP]"] + extra, configuration: configuration)
    }

    /// Each word of `text` by the trie and by the String lookup (the words the trie takes).
    func expectBothPathsAgree(_ tokenizer: WordPieceTokenizer, _ text: String, sourceLocation: SourceLocation = #_sourceLocation) {
        let normalized = tokenizer.normalize(text)
        var utf8: [UInt8] = []
        tokenizer.forEachWord(in: normalized.scalars) { range in
            let word = normalized.scalars[range]
            if word.count <= tokenizer.configuration.maxCharactersPerWord,
               WordPieceTokenizer.piecesAreOwnDecomposition(word, textIsDecomposed: normalized.isDecomposed) {
                var byBytes: [Int32] = []
                tokenizer.appendPiecesByBytes(of: word, to: &byBytes, utf8: &utf8)
                #expect(byBytes == tokenizer.wordPiecesByStringLookup(word), "\(WordPieceTokenizer.string(word).debugDescription)",
                        sourceLocation: sourceLocation)
            }
            return true
        }
    }

    @Test func edgeCasesGiveTheIDsOfTheStringLookupTokenizer() throws {
        struct File: Decodable {
            struct Case: Decodable { let text: String; let input_ids: [Int32] }
            let cases: [Case]
        }
        let data = try Data(contentsOf: Golden.miniLM.appendingPathComponent("tokenizer_string_lookup_cases.json"))
        let cases = try JSONDecoder().decode(File.self, from: data).cases
        #expect(cases.count == 33)
        for c in cases {
            #expect(miniLM.encode(c.text) == c.input_ids, "\(c.text.debugDescription): got \(miniLM.encode(c.text).map(miniLM.token))")
            expectBothPathsAgree(miniLM, c.text)
        }
    }

    /// Every entry as a word (without its `##`), in upper case too: the trie finds what the dictionary finds.
    @Test func everyVocabularyEntryMatchesAlikeByBytesAndByStringLookup() {
        for token in miniLM.tokens {
            let word = token.hasPrefix("##") ? String(token.dropFirst(2)) : token
            expectBothPathsAgree(miniLM, word + " x" + word + " " + word.uppercased())
        }
    }

    @Test func accentsAreStrippedBeforeTheByteMatch() {
        // Precomposed, combining and uppercase spellings give the same pieces.
        let pieces = miniLM.tokenize("résumé")
        #expect(pieces == ["resume"])
        #expect(miniLM.tokenize("re\u{301}sume\u{301}") == pieces)
        #expect(miniLM.tokenize("RÉSUMÉ") == pieces)
        #expect(miniLM.normalize("résumé").isDecomposed)
    }

    @Test func cjkIdeographsArePiecesOfTheirOwnAndKanaIsNot() {
        #expect(miniLM.tokenize("abc我def") == ["abc", "我", "def"])
        // Hiragana is not spaced out: one word, continued with ## pieces.
        #expect(miniLM.tokenize("こんにちは").count == 5)
        #expect(miniLM.tokenize("こんにちは").dropFirst().allSatisfy { $0.hasPrefix("##") })
    }

    @Test func punctuationIsAWordOfItsOwn() {
        #expect(miniLM.tokenize("¿Qué?—ok…") == ["¿", "que", "?", "—", "ok", "…"])
    }

    @Test func wordsOverTheLimitAfterNormalizationAreOneUnknown() {
        // 33 Hangul syllables decompose into 99 jamo, 34 into 102 (over 100).
        #expect(miniLM.encode(String(repeating: "한", count: 33)).count > 3)
        #expect(miniLM.encode(String(repeating: "한", count: 34)) == [101, 100, 102])
        // 101 precomposed letters are 101 scalars once stripped.
        #expect(miniLM.encode(String(repeating: "é", count: 101)) == [101, 100, 102])
        #expect(miniLM.encode(String(repeating: "é", count: 100)).count > 3)
    }

    @Test func aWordWithAnUnmatchableRestIsOneUnknown() throws {
        let small = try tokenizer(["ab", "##c"])
        #expect(small.tokenize("abc") == ["ab", "##c"])
        #expect(small.tokenize("abcd abc") == ["[UNK]", "ab", "##c"])
        #expect(small.tokenize("b") == ["[UNK]"])
    }

    @Test func withoutContinuationEntriesOnlyWholeWordsMatch() throws {
        // No entry begins with "##": the trie has no node for the prefix.
        let small = try tokenizer(["ab", "c"])
        #expect(small.continuationNode == nil)
        #expect(small.tokenize("ab c abc") == ["ab", "c", "[UNK]"])
    }

    @Test func truncationCanCutAWordsPieces() throws {
        var configuration = WordPieceConfiguration()
        configuration.maxLength = 5
        let short = try WordPieceTokenizer(tokens: miniLM.tokens, configuration: configuration)
        let pieces = miniLM.encode("the unaffable").dropFirst().dropLast()
        #expect(pieces.count == 4)
        #expect(short.encode("the unaffable") == [101] + pieces.prefix(3) + [102])
    }

    @Test func emptyAndWhitespaceTextsHaveNoPieces() {
        for text in ["", " ", "\t\n\r \u{B}\u{C}", "\u{A0}\u{2003}\u{3000}", "\u{200B}\u{FEFF}\u{0}"] {
            #expect(miniLM.tokenize(text) == [], "\(text.debugDescription)")
            #expect(miniLM.encode(text) == [101, 102])
        }
    }

    @Test func invalidUTF8IsDroppedAsItsReplacementCharacter() {
        let decoded = String(decoding: [0x61, 0x62, 0xFF, 0xC3, 0x63] as [UInt8], as: UTF8.self)
        #expect(decoded.unicodeScalars.contains("\u{FFFD}"))
        #expect(miniLM.encode(decoded) == miniLM.encode("abc"))
    }

    /// Pieces whose NFD differs from their spelling go through the String lookup, which matches
    /// canonically equivalent entries, as the tokenizer always did.
    @Test func canonicallyEquivalentSpellingsMatchTheSameEntry() throws {
        var keepAccents = WordPieceConfiguration()
        keepAccents.stripAccents = false
        let small = try tokenizer(["caf\u{E9}", "caf", "##e\u{301}"], keepAccents)
        #expect(small.tokenize("caf\u{E9}") == ["caf\u{E9}"])
        #expect(small.tokenize("cafe\u{301}") == ["caf\u{E9}"])
        #expect(!small.normalize("caf\u{E9}").isDecomposed)
        // Two spellings of one entry: the first id, as in the dictionary.
        let twice = try tokenizer(["\u{E9}", "e\u{301}", "x"], keepAccents)
        #expect(twice.encode("\u{E9} e\u{301}") == [2, 4, 4, 3])
        // A decomposed word takes the trie, whose key is the precomposed entry's NFD.
        let hangul = try tokenizer(["한", "##국"])
        #expect(hangul.tokenize("한국") == ["한", "##국"])
    }

    /// A combining mark that is no nonspacing mark (U+1D165, a spacing mark of class 216) survives
    /// accent stripping and sends its word to the String lookup.
    @Test func aWordWithACombiningClassTakesTheStringLookup() {
        let normalized = miniLM.normalize("a\u{1D165}b")
        #expect(normalized.isDecomposed)
        #expect(!WordPieceTokenizer.piecesAreOwnDecomposition(normalized.scalars[...], textIsDecomposed: true))
        #expect(miniLM.encode("a\u{1D165}b stem") == [101, 100, 7872, 102])
    }

    /// normalize takes a text that accent stripping decomposed as decomposed after lowercasing.
    @Test func lowercasingKeepsEveryScalarWithoutDecompositionWithout() {
        for value in 0...0x10FFFF {
            guard let scalar = Unicode.Scalar(value), scalar.properties.changesWhenLowercased else { continue }
            let original = String(scalar)
            guard original.decomposedStringWithCanonicalMapping.unicodeScalars.elementsEqual(original.unicodeScalars) else { continue }
            let lowered = scalar.properties.lowercaseMapping
            #expect(lowered.decomposedStringWithCanonicalMapping.unicodeScalars.elementsEqual(lowered.unicodeScalars),
                    "U+\(String(value, radix: 16, uppercase: true))")
        }
    }

    /// The ASCII shortcuts of isControl, isWhitespace and isPunctuation equal the Unicode properties.
    @Test func asciiShortcutsEqualTheUnicodeProperties() {
        let controlCategories: [Unicode.GeneralCategory] = [.control, .format, .unassigned, .privateUse, .surrogate]
        let punctuationCategories: [Unicode.GeneralCategory] = [.connectorPunctuation, .dashPunctuation, .openPunctuation,
            .closePunctuation, .initialPunctuation, .finalPunctuation, .otherPunctuation]
        for value in UInt8(0)..<128 {
            let scalar = Unicode.Scalar(value)
            let category = scalar.properties.generalCategory
            #expect(WordPieceTokenizer.isControl(scalar) == (!["\t", "\n", "\r"].contains(scalar) && controlCategories.contains(category)), "\(value)")
            #expect(WordPieceTokenizer.isWhitespace(scalar) == scalar.properties.isWhitespace, "\(value)")
            let symbol = (33...47).contains(value) || (58...64).contains(value) || (91...96).contains(value) || (123...126).contains(value)
            #expect(WordPieceTokenizer.isPunctuation(scalar) == (symbol || punctuationCategories.contains(category)), "\(value)")
        }
    }

    @Test func trieFindsTheLongestEntryAtEachStart() {
        let trie = VocabularyTrie(entries: [(Array("a".utf8), 1), (Array("abc".utf8), 2), (Array("abd".utf8), 3), (Array("b".utf8), 4)])
        #expect(trie.nodeCount == 6)  // root, a, ab, abc, abd, b
        let bytes = Array("abcabx".utf8)
        bytes.withUnsafeBufferPointer { buffer in
            #expect(trie.longestMatch(in: buffer, from: 0, under: VocabularyTrie.root).map { [$0.id, Int32($0.end)] } == [2, 3])
            // "ab" is no entry: the longest is "a".
            #expect(trie.longestMatch(in: buffer, from: 3, under: VocabularyTrie.root).map { [$0.id, Int32($0.end)] } == [1, 4])
            #expect(trie.longestMatch(in: buffer, from: 5, under: VocabularyTrie.root) == nil)
        }
    }
}
