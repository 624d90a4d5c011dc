// libFuzzer target: text -> the BERT WordPiece tokenizer of all-MiniLM-L6-v2 (normalizer, pre-tokenizer,
// greedy longest match, [CLS] ... [SEP] with truncation). Built by scripts/build-fuzzer with
// WordPieceTokenizer.swift and what it uses of Sources/Models. The vocabulary is
// weights/all-minilm-l6-v2/vocab.txt (HEADTUNE_FUZZ_VOCAB overrides), else a small built-in one.
import Foundation
@testable import Models

let fuzzTokenizer: WordPieceTokenizer = {
    let path = ProcessInfo.processInfo.environment["HEADTUNE_FUZZ_VOCAB"] ?? "weights/all-minilm-l6-v2/vocab.txt"
    if let tokenizer = try? WordPieceTokenizer(vocabularyFile: URL(fileURLWithPath: path)) { return tokenizer }
    FileHandle.standardError.write(Data("wordpiece fuzzer: \(path) unreadable, using a small built-in vocabulary\n".utf8))
    let letters = (UInt8(ascii: "a")...UInt8(ascii: "z")).map { String(UnicodeScalar($0)) }
    let tokens = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "the", "cat", "##s", "un", "##able", ".", ",", "!", "'"]
        + letters + letters.map { "##" + $0 }
    return try! WordPieceTokenizer(tokens: tokens)
}()

/// `encode` is `[CLS]`, at most maxLength - 2 vocabulary ids, `[SEP]`, and its middle is a prefix
/// of `tokenize`'s pieces (all of them unless truncated); every piece is a vocabulary entry.
@_cdecl("LLVMFuzzerTestOneInput")
public func headtuneFuzzWordPiece(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let text = String(decoding: UnsafeBufferPointer(start: data, count: size), as: UTF8.self)
    let tokenizer = fuzzTokenizer
    let ids = tokenizer.encode(text)
    require(ids.count >= 2 && ids.count <= tokenizer.maxLength && ids.first == tokenizer.classID && ids.last == tokenizer.separatorID,
            "encode gave \(ids.count) ids")
    require(ids.allSatisfy { $0 >= 0 && Int($0) < tokenizer.vocabularySize }, "an id outside the vocabulary")
    let pieces = tokenizer.tokenize(text)
    let middle = ids.dropFirst().dropLast().map(tokenizer.token)
    require(Array(pieces.prefix(middle.count)) == middle && (middle.count == pieces.count || middle.count == tokenizer.maxLength - 2),
            "encode \(middle.prefix(8)) is not tokenize's prefix \(pieces.prefix(8))")
    require(pieces.allSatisfy { tokenizer.vocabulary[$0] != nil }, "a piece outside the vocabulary")
    // The greedy match starts at the vocabulary's longest entry; on short texts (cheap enough) the
    // pieces must be those of the unbounded search from the word's end.
    if size <= 256 {
        for word in tokenizer.preTokenize(tokenizer.normalize(text)) where word.count <= tokenizer.configuration.maxCharactersPerWord {
            let bounded = tokenizer.wordPieces(word)
            let unbounded = unboundedWordPieces(word, tokenizer)
            require(bounded == unbounded, "\(String(word).debugDescription): \(bounded) against \(unbounded) unbounded")
        }
    }
    return 0
}

/// WordPiece as it was before the bound: every candidate from the word's end down.
func unboundedWordPieces(_ word: String.UnicodeScalarView, _ tokenizer: WordPieceTokenizer) -> [Int32] {
    let scalars = Array(word)
    var pieces: [Int32] = [], start = 0
    while start < scalars.count {
        var end = scalars.count, match: Int32?
        while end > start {
            var candidate = start > 0 ? tokenizer.configuration.continuingPrefix : ""
            candidate.unicodeScalars.append(contentsOf: scalars[start..<end])
            if let id = tokenizer.vocabulary[candidate] { match = id; break }
            end -= 1
        }
        guard let match else { return [tokenizer.unknownID] }
        pieces.append(match)
        start = end
    }
    return pieces
}
