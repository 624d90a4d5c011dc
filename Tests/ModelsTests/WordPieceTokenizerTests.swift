import Foundation
import Testing
import TestSupport
@testable import Models

/// The WordPiece tokenizer against Hugging Face `tokenizers` (tokenizer.json of all-MiniLM-L6-v2):
/// the six reference sentences of golden_minilm.json, plus edge cases dumped by
/// scripts/make_minilm_goldens.py into Tests/Golden/minilm/tokenizer_cases.json.
@Suite struct WordPieceTokenizerTests {
    let tokenizer: WordPieceTokenizer

    init() throws {
        let vocabulary = try Golden.asset("weights/all-minilm-l6-v2/vocab.txt", fetchWith: "make weights")
        tokenizer = try WordPieceTokenizer(vocabularyFile: vocabulary)
    }

    struct Case: Decodable {
        let name: String
        let text: String
        let input_ids: [Int32]
        let tokens: [String]
    }

    static func edgeCases() throws -> [Case] {
        struct File: Decodable { let cases: [Case] }
        let data = try Data(contentsOf: Golden.miniLM.appendingPathComponent("tokenizer_cases.json"))
        return try JSONDecoder().decode(File.self, from: data).cases
    }

    @Test func specialTokenIDs() {
        #expect(tokenizer.vocabularySize == 30522)
        #expect((tokenizer.classID, tokenizer.separatorID, tokenizer.paddingID, tokenizer.unknownID) == (101, 102, 0, 100))
    }

    @Test func goldenSentencesGiveTheReferenceIDs() throws {
        let sentences = try Golden.miniLMSentences()
        #expect(sentences.count == 6)
        for sentence in sentences {
            let ids = tokenizer.encode(sentence.text)
            #expect(ids == sentence.input_ids, "sentence \(sentence.index): \(sentence.text.prefix(40))")
            if let tokens = sentence.tokens { #expect(ids.map(tokenizer.token) == tokens) }
        }
    }

    @Test func edgeCasesGiveTheReferenceIDs() throws {
        let cases = try Self.edgeCases()
        #expect(cases.count >= 20)
        for c in cases {
            let ids = tokenizer.encode(c.text)
            #expect(ids == c.input_ids, "case \(c.name): got \(ids.map(tokenizer.token))")
        }
    }

    @Test func accentsAreStrippedAndCaseFolded() {
        #expect(tokenizer.tokenize("Crème brûlée") == ["cr", "##eme", "br", "##ule", "##e"])
        // Precomposed and combining forms give the same tokens.
        #expect(tokenizer.tokenize("caf\u{E9}") == tokenizer.tokenize("cafe\u{301}"))
        #expect(tokenizer.tokenize("ÜBER") == ["uber"])
    }

    @Test func cjkIdeographsAreSplitOneByOne() {
        let tokens = tokenizer.tokenize("我爱北京")
        #expect(tokens.count == 4)
        #expect(!tokens.contains { $0.hasPrefix("##") })
    }

    @Test func punctuationIncludesASCIISymbols() {
        #expect(tokenizer.tokenize("a$b+c^d`e") == ["a", "$", "b", "+", "c", "^", "d", "`", "e"])
        #expect(tokenizer.tokenize("well...done!") == ["well", ".", ".", ".", "done", "!"])
    }

    @Test func overlongWordIsOneUnknownToken() {
        #expect(tokenizer.encode(String(repeating: "a", count: 101)) == [101, 100, 102])
        // 100 characters is still split into pieces.
        #expect(tokenizer.encode(String(repeating: "a", count: 100)).count > 3)
    }

    @Test func truncationKeepsSeparatorAt256Tokens() {
        let ids = tokenizer.encode(Array(repeating: "cat", count: 1000).joined(separator: " "))
        #expect(ids.count == 256)
        #expect(ids.first == 101 && ids.last == 102)
        var short = WordPieceConfiguration()
        short.maxLength = 5
        let tiny = try? WordPieceTokenizer(tokens: tokenizer.tokens, configuration: short)
        #expect(tiny?.encode("the cat sat on the mat") == [101, 1996, 4937, 2938, 102])
    }

    @Test func emptyAndControlOnlyInputsGiveJustSpecialTokens() {
        #expect(tokenizer.encode("") == [101, 102])
        #expect(tokenizer.encode("\u{0}\u{7}\u{200B}\t\n ") == [101, 102])
    }

    @Test func vocabularyWithoutSpecialTokensIsRejected() {
        #expect(throws: ModelsError.self) { try WordPieceTokenizer(tokens: ["a", "b"]) }
    }
}
