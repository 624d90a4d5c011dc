// libFuzzer target: text -> the BERT WordPiece tokenizer of all-MiniLM-L6-v2 (normalizer, pre-tokenizer,
// greedy longest match, [CLS] ... [SEP] with truncation). Built by scripts/build-fuzzer with
// WordPieceTokenizer.swift, VocabularyTrie.swift and what they use of Sources/Models. The vocabulary is
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
/// of `tokenize`'s pieces (all of them unless truncated); every piece is a vocabulary entry; on short
/// texts each step equals a plain reference.
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
    // On short texts (cheap enough): normalization equals the plain one below, and each word's pieces
    // from the byte trie equal those of the String lookup (which finds canonically equivalent
    // entries); where the String lookup is the path taken, its bound (the longest entry) gives the
    // pieces of the unbounded search from the word's end.
    if size <= 256 {
        let normalized = tokenizer.normalize(text)
        let reference = referenceNormalize(text, tokenizer.configuration)
        let referenceText = WordPieceTokenizer.string(reference[...])
        require(normalized.scalars == reference,
                "normalize \(text.debugDescription): \(WordPieceTokenizer.string(normalized.scalars[...]).debugDescription) against \(referenceText.debugDescription)")
        require(normalized.isDecomposed == referenceText.decomposedStringWithCanonicalMapping.unicodeScalars.elementsEqual(reference),
                "isDecomposed \(normalized.isDecomposed) for \(referenceText.debugDescription)")
        var utf8: [UInt8] = []
        tokenizer.forEachWord(in: normalized.scalars) { range in
            let word = normalized.scalars[range]
            guard word.count <= tokenizer.configuration.maxCharactersPerWord else { return true }
            let byLookup = tokenizer.wordPiecesByStringLookup(word)
            if WordPieceTokenizer.piecesAreOwnDecomposition(word, textIsDecomposed: normalized.isDecomposed) {
                var byBytes: [Int32] = []
                tokenizer.appendPiecesByBytes(of: word, to: &byBytes, utf8: &utf8)
                require(byBytes == byLookup,
                        "\(WordPieceTokenizer.string(word).debugDescription): \(byBytes) by bytes against \(byLookup) by String lookup")
            } else {
                let unbounded = unboundedWordPieces(word, tokenizer)
                require(byLookup == unbounded, "\(WordPieceTokenizer.string(word).debugDescription): \(byLookup) against \(unbounded) unbounded")
            }
            return true
        }
    }
    return 0
}

/// BertNormalizer as the tokenizer did it before it wrote one buffer: Unicode properties for every
/// scalar (no ASCII shortcuts), Foundation's NFD whenever accents are stripped, lowercase per scalar.
func referenceNormalize(_ text: String, _ configuration: WordPieceConfiguration) -> [Unicode.Scalar] {
    let controlCategories: [Unicode.GeneralCategory] = [.control, .format, .unassigned, .privateUse, .surrogate]
    var cleaned: [Unicode.Scalar] = []
    for scalar in text.unicodeScalars {
        let isControl = !(scalar == "\t" || scalar == "\n" || scalar == "\r") && controlCategories.contains(scalar.properties.generalCategory)
        if scalar.value == 0 || scalar.value == 0xFFFD || isControl { continue }
        if scalar.properties.isWhitespace {
            cleaned.append(" ")
        } else if configuration.splitCJKCharacters && WordPieceTokenizer.isCJK(scalar) {
            cleaned += [" ", scalar, " "]
        } else {
            cleaned.append(scalar)
        }
    }
    var result = cleaned
    if configuration.stripAccents ?? configuration.lowercase {
        result = WordPieceTokenizer.string(cleaned[...]).decomposedStringWithCanonicalMapping.unicodeScalars
            .filter { $0.properties.generalCategory != .nonspacingMark }
    }
    if configuration.lowercase { result = result.flatMap { $0.properties.lowercaseMapping.unicodeScalars } }
    return result
}

/// WordPiece with a String per candidate from the word's end down (no bound, no trie).
func unboundedWordPieces(_ word: ArraySlice<Unicode.Scalar>, _ tokenizer: WordPieceTokenizer) -> [Int32] {
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
